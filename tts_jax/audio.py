"""Audio front end shared by every model: wav I/O, log-mel features and Griffin-Lim.

Conventions (REFERENCE, "Audio front end"):

* Waveforms are float32 in [-1, 1], shape ``[T]`` or ``[B, T]``.
* Mels are natural-log magnitude mels, ``log(max(mel, 1e-5))``, laid out ``[frames, n_mels]``
  (or ``[B, frames, n_mels]``): time first, like every other sequence in this package.
* Framing: frame ``t`` is the Hann-windowed STFT centred on sample ``t * hop`` of the signal
  reflect-padded by ``n_fft // 2`` on both sides (librosa's ``center=True`` with
  ``pad_mode="reflect"``). librosa then returns ``1 + T // hop`` frames; we keep the first
  ``T // hop`` so that a clip of ``T`` samples has exactly ``T // hop`` frames and frame ``t``
  pairs with samples ``[t * hop, (t + 1) * hop)``. Vocoders rely on this pairing, and GTA export
  writes exactly this many frames. ``MelConfig.framing`` names the other front ends an imported
  model was trained on (jik876/hifi-gan's, NVIDIA/tacotron2's): see :data:`FRAMINGS`.

The numpy path (:func:`log_mel_np`) prepares data; the JAX path (:func:`log_mel`) is used inside
losses and is differentiable. Both use librosa's Slaney filterbank and agree with
``librosa.feature.melspectrogram`` to 1e-4 in the log domain (tests/test_audio.py).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import soundfile as sf

from tts_jax.errors import UserError
from tts_jax.paths import is_remote, run_path, write_bytes_via

# Added under the square root of |STFT|^2 so that the magnitude has a finite gradient at exact
# zeros (digital silence). 1e-18 moves a magnitude by at most 1e-9, far below the 1e-5 log floor.
_MAGNITUDE_EPS = 1e-18


@dataclasses.dataclass(frozen=True)
class Framing:
    """How a clip of T samples is cut into STFT frames: reflect-padded by ``pad(n_fft, hop)``
    on each side, framed every hop without centring, ``T // hop + extra_frames`` frames kept,
    and ``eps`` added to |X|^2 under the square root."""

    pad: Callable[[int, int], int]
    eps: float
    extra_frames: int = 0


FRAMINGS = {
    # librosa's center=True, keeping T // hop frames: frame t pairs with samples
    # [t * hop, (t + 1) * hop) (REFERENCE; every model here unless its config says otherwise).
    "centered": Framing(lambda n_fft, hop: n_fft // 2, _MAGNITUDE_EPS),
    # jik876/hifi-gan's meldataset.mel_spectrogram: frame t centred on t * hop + hop / 2.
    "jik876": Framing(lambda n_fft, hop: (n_fft - hop) // 2, 1e-9),
    # NVIDIA/tacotron2's TacotronSTFT: centred frames, all T // hop + 1 of them, no epsilon
    # (ours keeps 1e-18 for a finite gradient; it moves no magnitude above 1e-9).
    "nvidia": Framing(lambda n_fft, hop: n_fft // 2, _MAGNITUDE_EPS, extra_frames=1),
}


@dataclasses.dataclass(frozen=True)
class MelConfig:
    """Front-end parameters; the defaults are REFERENCE's (Tacotron 2 / HiFi-GAN at 22,050 Hz)."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    log_floor: float = 1e-5
    # "centered": frame t centred on sample t * hop (librosa's center=True; Tacotron 2's
    # REFERENCE). "jik876": jik876/hifi-gan's front end, which reflect-pads (n_fft - hop) / 2
    # and frames without centring, so frame t is centred on t * hop + hop / 2, and takes
    # |X| = sqrt(re^2 + im^2 + 1e-9): a generator imported from it needs its own mels.
    # Both give T // hop frames. "nvidia": NVIDIA/tacotron2's, centred like "centered" but
    # with one frame more (T // hop + 1). Griffin-Lim inverts all as centred.
    framing: str = "centered"

    def __post_init__(self):
        if self.framing not in FRAMINGS:
            raise UserError(f"framing={self.framing!r}; expected one of {', '.join(FRAMINGS)}")
        if self.win_length > self.n_fft:
            raise UserError(f"win_length={self.win_length} must be <= n_fft={self.n_fft}")
        if self.fmax is not None and self.fmax > self.sample_rate / 2:
            raise UserError(
                f"fmax={self.fmax} Hz is above the Nyquist frequency {self.sample_rate / 2} Hz"
            )

    @property
    def num_freq(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples):
        """Frames of a clip of ``num_samples`` (an int or an integer array) under this
        framing: ``num_samples // hop``, plus one with ``framing="nvidia"``."""
        return num_samples // self.hop_length + FRAMINGS[self.framing].extra_frames

    @classmethod
    def from_config(cls, cfg) -> MelConfig:
        """Builds from any mapping-like config (e.g. an ml_collections ``config.audio``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(cfg).items() if k in names})


# --------------------------------------------------------------------------------------------
# Waveform I/O and simple processing
# --------------------------------------------------------------------------------------------


def wav_info(path: str | Path):
    """soundfile's ``info`` of an audio file (rate, frames, channels), or a UserError naming
    the file when it is missing or not audio soundfile can read (empty, random bytes)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"audio file not found: {path}")
    try:
        return sf.info(str(path))
    except RuntimeError as e:  # soundfile.LibsndfileError is one
        raise UserError(f"cannot read audio file {path}: {e}") from None


def load_wav(path: str | Path, sample_rate: int) -> np.ndarray:
    """Reads a wav (any format soundfile knows), mixes to mono, resamples to ``sample_rate``.

    Returns float32 ``[T]`` in [-1, 1].
    """
    path = Path(path)
    wav_info(path)
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as e:
        raise UserError(f"cannot read audio file {path}: {e}") from None
    if audio.shape[0] == 0:
        raise UserError(f"audio file {path} holds no samples")
    audio = audio.mean(axis=1)
    return resample(audio, sr, sample_rate)


def save_wav(path: str | Path, audio, sample_rate: int) -> None:
    """Writes mono 16-bit PCM; values outside [-1, 1] are clipped."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise UserError(f"save_wav expects a mono waveform [T], got shape {audio.shape}")
    clipped = np.clip(audio, -1.0, 1.0)
    if is_remote(path):  # a sweep's samples in a bucket: written whole
        write_bytes_via(
            run_path(path), lambda f: sf.write(f, clipped, sample_rate, "PCM_16", format="WAV")
        )
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), clipped, sample_rate, subtype="PCM_16")


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (librosa / soxr); a no-op when the rates agree."""
    if orig_sr == target_sr:
        return np.asarray(audio, dtype=np.float32)
    return librosa.resample(np.asarray(audio), orig_sr=orig_sr, target_sr=target_sr).astype(
        np.float32
    )


def trim_silence(audio: np.ndarray, top_db: float = 40.0) -> np.ndarray:
    """Cuts leading and trailing parts quieter than ``top_db`` below the peak."""
    trimmed, _ = librosa.effects.trim(audio, top_db=top_db, frame_length=1024, hop_length=256)
    return trimmed


def peak_normalize(audio: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scales so that max |x| = ``peak``; silence is returned unchanged."""
    m = np.max(np.abs(audio)) if audio.size else 0.0
    return audio if m == 0 else (audio * (peak / m)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Filterbank and window (numpy constants, shared by both paths)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def mel_basis(cfg: MelConfig) -> np.ndarray:
    """Slaney mel filterbank ``[n_mels, num_freq]`` (librosa's default filters)."""
    return librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    ).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann of ``win_length`` zero-padded to ``n_fft`` about the centre (as librosa)."""
    win = librosa.filters.get_window("hann", win_length, fftbins=True)
    return librosa.util.pad_center(win, size=n_fft).astype(np.float32)


# --------------------------------------------------------------------------------------------
# numpy path (data preparation)
# --------------------------------------------------------------------------------------------


def _magnitude_np(audio: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """|STFT| ``[num_freq, frames]`` with the config's framing (``frames`` =
    ``cfg.num_frames(T)``). With ``"centered"`` this is librosa's ``center=True`` STFT."""
    framing = FRAMINGS[cfg.framing]
    pad = framing.pad(cfg.n_fft, cfg.hop_length)
    spec = librosa.stft(
        np.pad(audio, (pad, pad), mode="reflect"),
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=False,
    )[:, : cfg.num_frames(len(audio))]
    return np.sqrt(np.real(spec) ** 2 + np.imag(spec) ** 2 + framing.eps)


def log_mel_np(audio: np.ndarray, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Log-mel of a mono waveform ``[T]`` -> ``[T // hop, n_mels]`` (float32)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise UserError(f"log_mel_np expects a mono waveform [T], got shape {audio.shape}")
    mel = mel_basis(cfg) @ _magnitude_np(audio, cfg)
    return np.log(np.maximum(mel, cfg.log_floor)).T.astype(np.float32)


def log_linear_np(audio: np.ndarray, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Log linear magnitude ``[T // hop, n_fft / 2 + 1]`` with the mel's framing and floor
    (the target of Tacotron 2's optional post-CBHG head)."""
    mag = _magnitude_np(np.asarray(audio, np.float32), cfg)
    return np.log(np.maximum(mag, cfg.log_floor)).T.astype(np.float32)


# --------------------------------------------------------------------------------------------
# JAX path (losses, Griffin-Lim)
# --------------------------------------------------------------------------------------------


def stft(audio: jax.Array, cfg: MelConfig, *, frames: int | None = None) -> jax.Array:
    """Complex STFT ``[B, T] -> [B, frames, num_freq]`` with the config's framing.

    ``frames`` defaults to ``T // hop``; Griffin-Lim asks for exactly the frames it inverts.
    """
    audio = jnp.asarray(audio, dtype=jnp.float32)
    if audio.ndim != 2:
        raise UserError(f"stft expects a batch of waveforms [B, T], got shape {audio.shape}")
    pad = FRAMINGS[cfg.framing].pad(cfg.n_fft, cfg.hop_length)
    if audio.shape[1] <= pad:
        raise UserError(
            f"waveform of {audio.shape[1]} samples is too short for n_fft={cfg.n_fft} "
            f"(reflect padding needs more than {pad} samples)"
        )
    n = cfg.num_frames(audio.shape[1]) if frames is None else frames
    padded = jnp.pad(audio, ((0, 0), (pad, pad)), mode="reflect")
    idx = np.arange(n)[:, None] * cfg.hop_length + np.arange(cfg.n_fft)[None, :]
    framed = padded[:, idx] * _window(cfg.n_fft, cfg.win_length)  # [B, frames, n_fft]
    return jnp.fft.rfft(framed, axis=-1)


def magnitude(spec: jax.Array, eps: float = _MAGNITUDE_EPS) -> jax.Array:
    """|spec| with a finite gradient at exact zeros (``eps`` added to the power)."""
    return jnp.sqrt(jnp.real(spec) ** 2 + jnp.imag(spec) ** 2 + eps)


def log_mel(audio: jax.Array, cfg: MelConfig = MelConfig()) -> jax.Array:
    """Differentiable log-mel ``[B, T] -> [B, T // hop, n_mels]`` (or ``[T] -> [frames, mels]``)."""
    single = jnp.ndim(audio) == 1
    batch = audio[None] if single else audio
    mel = magnitude(stft(batch, cfg), FRAMINGS[cfg.framing].eps) @ mel_basis(cfg).T
    out = jnp.log(jnp.maximum(mel, cfg.log_floor))
    return out[0] if single else out


def istft(spec: jax.Array, cfg: MelConfig) -> jax.Array:
    """Inverse of :func:`stft` by weighted overlap-add: ``[B, F, num_freq] -> [B, F * hop]``."""
    b, n, _ = spec.shape
    pad = FRAMINGS[cfg.framing].pad(cfg.n_fft, cfg.hop_length)
    win = _window(cfg.n_fft, cfg.win_length)
    frames = jnp.fft.irfft(spec, n=cfg.n_fft, axis=-1) * win  # [B, F, n_fft]
    idx = (np.arange(n)[:, None] * cfg.hop_length + np.arange(cfg.n_fft)[None, :]).reshape(-1)
    length = (n - 1) * cfg.hop_length + cfg.n_fft
    signal = jnp.zeros((b, length), frames.dtype).at[:, idx].add(frames.reshape(b, -1))
    norm = np.zeros(length, np.float32)
    np.add.at(norm, idx, np.tile(win**2, n))
    signal = signal / np.where(norm > 1e-8, norm, 1.0)
    return signal[:, pad : pad + n * cfg.hop_length]


def spectral_convergence(magnitude_target: jax.Array, audio: jax.Array, cfg: MelConfig):
    """|| |STFT(audio)| - S ||_F / || S ||_F per batch item, for ``S`` of shape [B, F, bins]."""
    est = jnp.abs(stft(audio, cfg, frames=magnitude_target.shape[1]))
    num = jnp.linalg.norm((est - magnitude_target).reshape(est.shape[0], -1), axis=-1)
    return num / jnp.linalg.norm(magnitude_target.reshape(est.shape[0], -1), axis=-1)


@functools.partial(jax.jit, static_argnames=("cfg", "n_iter", "return_history"))
def griffin_lim(
    magnitude_target: jax.Array,
    cfg: MelConfig,
    n_iter: int = 60,
    momentum: float = 0.99,
    seed: int = 0,
    return_history: bool = False,
):
    """Phase reconstruction from a linear magnitude ``[B, F, num_freq]`` -> audio ``[B, F*hop]``.

    Griffin & Lim (1984) with the "fast" momentum of Perraudin et al. (2013), as librosa does;
    ``momentum=0`` gives the classic algorithm. Starts from random phase. With
    ``return_history`` also returns the spectral convergence after each iteration ``[n_iter, B]``.
    """
    mag = jnp.asarray(magnitude_target, jnp.float32)
    phase = jax.random.uniform(jax.random.PRNGKey(seed), mag.shape, minval=0, maxval=2 * jnp.pi)
    length_frames = mag.shape[1]

    def project(angles):
        audio = istft(mag * angles, cfg)
        rebuilt = stft(audio, cfg, frames=length_frames)
        return audio, rebuilt

    def body(carry, _):
        angles, prev = carry
        _, rebuilt = project(angles)
        accel = rebuilt - (momentum / (1 + momentum)) * prev
        angles = accel / (jnp.abs(accel) + 1e-16)
        sc = jnp.linalg.norm((jnp.abs(rebuilt) - mag).reshape(mag.shape[0], -1), axis=-1)
        sc = sc / jnp.linalg.norm(mag.reshape(mag.shape[0], -1), axis=-1)
        return (angles, rebuilt), sc

    init = (jnp.exp(1j * phase).astype(jnp.complex64), jnp.zeros(mag.shape, jnp.complex64))
    (angles, _), history = jax.lax.scan(body, init, None, length=n_iter)
    audio = istft(mag * angles, cfg)
    return (audio, history) if return_history else audio


def mel_to_linear(logmel: jax.Array, cfg: MelConfig) -> jax.Array:
    """Approximate linear magnitude from a log-mel ``[..., frames, n_mels]`` by the
    pseudo-inverse of the filterbank (clamped at 1e-10), as Rayhane-mamah/Tacotron-2 does."""
    inv = np.linalg.pinv(mel_basis(cfg)).astype(np.float32)  # [num_freq, n_mels]
    return jnp.maximum(jnp.exp(logmel) @ inv.T, 1e-10)


def mel_to_audio(logmel, cfg: MelConfig = MelConfig(), n_iter: int = 60, power: float = 1.0):
    """Griffin-Lim vocoder for log-mels ``[B, F, n_mels]`` (or ``[F, n_mels]``) -> audio.

    ``power`` > 1 sharpens harmonics smeared by the mel inversion (Rayhane-mamah/Tacotron-2 uses
    1.5), relative to each utterance's peak magnitude so that the level is kept. The default 1
    reconstructs the given mel most faithfully: on an espeak sentence the log-mel of the
    result is 0.19 from the input on average with power 1, 2.3 with power 1.5.
    """
    logmel = jnp.asarray(logmel)
    single = logmel.ndim == 2
    batch = logmel[None] if single else logmel
    frames = batch.shape[1]
    if frames < 4:  # the STFT needs more than n_fft / 2 samples: pad with silence, trim after
        batch = jnp.pad(
            batch, ((0, 0), (0, 4 - frames), (0, 0)), constant_values=float(np.log(cfg.log_floor))
        )
    linear = mel_to_linear(batch, cfg)
    peak = jnp.max(linear, axis=(1, 2), keepdims=True)
    audio = griffin_lim(peak * (linear / peak) ** power, cfg, n_iter=n_iter)
    audio = audio[:, : frames * cfg.hop_length]
    return audio[0] if single else audio
