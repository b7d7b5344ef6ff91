import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from tts_jax import audio, espeak
from tts_jax.errors import UserError

CFG = audio.MelConfig()


def librosa_log_mel(x, cfg=CFG):
    mel = librosa.feature.melspectrogram(
        y=x,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        center=True,
        pad_mode="reflect",
        power=1.0,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
    )
    return np.log(np.maximum(mel, cfg.log_floor)).T[: len(x) // cfg.hop_length]


@pytest.fixture(scope="module")
def speech():
    return espeak.synthesize("The quick brown fox jumps over the lazy dog.", rate=160)


@pytest.mark.parametrize("length", [22050, 22050 + 255, 5000])
def test_mels_match_librosa_on_random_audio(length):
    x = np.random.default_rng(length).uniform(-0.5, 0.5, length).astype(np.float32)
    ref = librosa_log_mel(x)
    np.testing.assert_allclose(audio.log_mel_np(x), ref, atol=1e-4)
    np.testing.assert_allclose(np.asarray(audio.log_mel(jnp.asarray(x))), ref, atol=1e-4)
    assert ref.shape[0] == length // 256


def test_mels_match_librosa_on_speech(speech):
    ref = librosa_log_mel(speech)
    np.testing.assert_allclose(audio.log_mel_np(speech), ref, atol=1e-4)
    np.testing.assert_allclose(np.asarray(audio.log_mel(jnp.asarray(speech))), ref, atol=1e-4)
    # The utterance has real silence: the floor must be reached somewhere.
    assert ref.min() == pytest.approx(np.log(1e-5), abs=1e-6)


def test_batched_jax_mel_equals_per_item():
    x = np.random.default_rng(0).normal(0, 0.1, (3, 4096)).astype(np.float32)
    batched = np.asarray(audio.log_mel(jnp.asarray(x)))
    for i in range(3):
        np.testing.assert_allclose(batched[i], audio.log_mel_np(x[i]), atol=1e-4)


def test_jax_mel_gradient_is_finite_on_digital_silence():
    x = jnp.zeros(4096).at[2000:2100].set(0.3)

    def loss(y):
        return jnp.sum(audio.log_mel(y))

    g = jax.grad(loss)(x)
    assert bool(jnp.all(jnp.isfinite(g)))
    assert float(jnp.abs(g[2000:2100]).sum()) > 0


def test_istft_inverts_stft():
    x = np.random.default_rng(1).normal(0, 0.1, 8192).astype(np.float32)
    spec = audio.stft(jnp.asarray(x)[None], CFG)
    y = np.asarray(audio.istft(spec, CFG))[0]
    assert y.shape == (8192,)
    # Away from the last half-window (covered by fewer frames) the reconstruction is exact.
    np.testing.assert_allclose(y[:-512], x[:-512], atol=1e-5)


def test_griffin_lim_converges_on_speech(speech):
    n = len(speech) // CFG.hop_length
    mag = np.abs(np.asarray(audio.stft(jnp.asarray(speech)[None], CFG, frames=n + 1)))
    wav, history = audio.griffin_lim(mag, CFG, n_iter=60, return_history=True)
    sc = np.asarray(history)[:, 0]
    assert wav.shape == (1, (n + 1) * CFG.hop_length)
    # Monotone-ish: never rises by more than 2% of its value from one iteration to the next,
    # and falls by at least 3x overall.
    assert np.all(np.diff(sc) < 0.02 * sc[:-1])
    assert sc[-1] < sc[0] / 3
    assert sc[-1] < 0.15
    # The reported value is the spectral convergence of the returned audio (up to the
    # final projection).
    final = float(audio.spectral_convergence(jnp.asarray(mag), wav, CFG)[0])
    assert final < 0.15


def test_mel_to_audio_produces_speech_like_signal(speech):
    mel = audio.log_mel_np(speech)
    wav = np.asarray(audio.mel_to_audio(mel, CFG, n_iter=30))
    assert wav.shape == (len(mel) * CFG.hop_length,)
    # Its mel resembles the input's far more than silence's does.
    err = np.abs(audio.log_mel_np(wav)[2:-2] - mel[2:-2]).mean()
    assert err < 0.5 * np.abs(mel - np.log(1e-5)).mean()


def test_wav_io_resample_trim_normalize(tmp_path):
    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype(np.float32)
    padded = np.concatenate([np.zeros(5000, np.float32), x, np.zeros(7000, np.float32)])
    audio.save_wav(tmp_path / "a.wav", padded, 22050)
    back = audio.load_wav(tmp_path / "a.wav", 22050)
    np.testing.assert_allclose(back, padded, atol=1 / 32767 + 1e-6)
    assert len(audio.load_wav(tmp_path / "a.wav", 16000)) == pytest.approx(
        len(padded) * 16000 / 22050, abs=2
    )
    trimmed = audio.trim_silence(back)
    assert len(x) - 1024 <= len(trimmed) <= len(x) + 1024
    assert np.max(np.abs(audio.peak_normalize(x, 0.9))) == pytest.approx(0.9, abs=1e-6)
    assert np.all(audio.peak_normalize(np.zeros(10, np.float32)) == 0)


def test_bad_inputs_raise_user_errors(tmp_path):
    with pytest.raises(UserError, match="mono waveform"):
        audio.log_mel_np(np.zeros((2, 100)))
    with pytest.raises(UserError, match="Nyquist"):
        audio.MelConfig(sample_rate=16000, fmax=9000)
    with pytest.raises(UserError, match="not found"):
        audio.load_wav(tmp_path / "missing.wav", 22050)
    with pytest.raises(UserError, match="too short"):
        audio.log_mel(jnp.zeros(100))
