"""Mel -> waveform, by name: ``griffin-lim`` or a trained vocoder workdir (``hifigan:DIR``,
``clarinet:DIR`` for a distilled student, ``wavenet:DIR`` for the autoregressive teacher).

``load_vocoder(spec, mel_cfg)`` returns a callable ``mel [frames, n_mels] -> wav [frames * hop]``
used by ``tts-jax synthesize --vocoder``, ``tts-jax vocode`` and ``tts-jax evaluate``. A trained
vocoder must have been trained on the same front end as the mels it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tts_jax import audio
from tts_jax.errors import UserError

KINDS = ("griffin-lim", "hifigan:WORKDIR", "clarinet:WORKDIR", "wavenet:WORKDIR")


def frame_bucket(frames: int) -> int:
    """Padded length of a mel of ``frames`` frames: the next power of two from 32 to 1,024,
    then the next multiple of 1,024. One compilation per bucket, at most 2x padding."""
    if frames <= 1024:
        return max(32, 1 << (max(frames, 1) - 1).bit_length())
    return -(-frames // 1024) * 1024


class TrainedVocoder:
    """Base of the trained vocoders: ``mel [F, n_mels] -> waveform [F * hop]``.

    Subclasses set ``config``, ``step``, ``mel`` (MelConfig), ``hop`` and implement
    ``_generate(mel [1, F', n_mels]) -> wav [1, F' * hop]`` (jitted). Mels are padded with
    silence (the log floor) to :func:`frame_bucket` lengths and the output trimmed, so any
    length runs without a compilation per length.
    """

    config: object
    step: int
    mel: audio.MelConfig
    hop: int

    _rng = None  # sampling vocoders: set by _seed, advanced by _next_key

    def _generate(self, mel: np.ndarray):
        raise NotImplementedError

    def _seed(self, seed: int) -> None:
        import jax

        self._rng = jax.random.PRNGKey(seed)

    def _next_key(self):
        """A fresh key per call: two calls on the same mel give two different samples."""
        import jax

        self._rng, key = jax.random.split(self._rng)
        return key

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        mel = np.asarray(mel, np.float32)
        if mel.ndim != 2 or mel.shape[1] != self.mel.n_mels:
            raise UserError(f"mel of shape {mel.shape}; expected [frames, {self.mel.n_mels}]")
        frames = len(mel)
        padded = np.full((1, frame_bucket(frames), mel.shape[1]), np.log(self.mel.log_floor))
        padded[0, :frames] = mel
        wav = self._generate(padded.astype(np.float32))
        return np.asarray(wav)[0, : frames * self.hop]


def workdir_config(workdir, config, family: str):
    """``config`` or the one saved in ``workdir``, checked to be of ``family``."""
    if config is None:
        from tts_jax.cli import load_workdir_config

        config = load_workdir_config(workdir)
    if config.model.family != family:
        raise UserError(f"{workdir} holds a {config.model.family!r} model, not {family}")
    return config


def load_vocoder(spec: str, mel_cfg: audio.MelConfig) -> Callable[[np.ndarray], np.ndarray]:
    if spec == "griffin-lim":
        return lambda mel: np.asarray(audio.mel_to_audio(mel, mel_cfg))
    kind, _, workdir = spec.partition(":")
    if kind in ("hifigan", "clarinet", "wavenet") and workdir:
        import importlib

        if not Path(workdir).is_dir():
            raise UserError(f"--vocoder {spec!r}: {workdir} is not a folder")
        vocoder = importlib.import_module(f"tts_jax.models.{kind}").Vocoder(workdir)
        _check_front_end(spec, vocoder.mel, mel_cfg)
        return vocoder
    raise UserError(f"--vocoder {spec!r}: expected one of {', '.join(KINDS)}")


def _check_front_end(spec: str, trained: audio.MelConfig, given: audio.MelConfig) -> None:
    if trained != given:
        raise UserError(
            f"--vocoder {spec!r} was trained on mels {trained}, but these mels are {given}"
        )
