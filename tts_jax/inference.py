"""What the after-training roles share, below the models (see :class:`tts_jax.family.Family`).

:class:`TrainedVocoder` is the base of every trained vocoder (``mel [F, n_mels] -> wav
[F * hop]``), with :func:`frame_bucket` padding so that any length runs without a compilation
per length. :func:`evaluate_vocoder` is the ``evaluate`` entry of a vocoder family: copy
synthesis of its own corpus's held-out split against the recordings.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from tts_jax import audio
from tts_jax.data.inputs import corpus_from_config
from tts_jax.errors import UserError
from tts_jax.eval.evaluate import copy_synthesis_pairs
from tts_jax.family import EvalRequest, Evaluation


def griffin_lim(mel_cfg: audio.MelConfig, n_iter: int = 60) -> Callable[[np.ndarray], np.ndarray]:
    """The training-free vocoder: ``mel [F, n_mels] -> wav [F * hop]`` by Griffin-Lim phase
    recovery. Like the trained vocoders, it pads mels with silence to :func:`frame_bucket`
    lengths and trims the output: one compilation per bucket instead of one per length (an
    evaluation of 50 utterances compiled 50 times)."""
    run = jax.jit(lambda mel: audio.mel_to_audio(mel, mel_cfg, n_iter=n_iter))
    silence = float(np.log(mel_cfg.log_floor))

    def vocode(mel):
        mel = np.asarray(mel, np.float32)
        frames = mel.shape[0]
        padded = np.pad(mel, ((0, frame_bucket(frames) - frames), (0, 0)), constant_values=silence)
        return np.asarray(run(padded))[: frames * mel_cfg.hop_length]

    return vocode


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
    silence (the log floor) to :func:`frame_bucket` lengths and the output trimmed.
    """

    config: object
    step: int
    mel: audio.MelConfig
    hop: int

    _rng = None  # sampling vocoders: set by _seed, advanced by _next_key

    def _generate(self, mel: np.ndarray):
        raise NotImplementedError

    def _seed(self, seed: int) -> None:
        self._rng = jax.random.PRNGKey(seed)

    def _next_key(self):
        """A fresh key per call: two calls on the same mel give two different samples."""
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


def evaluate_vocoder(load: Callable[[object], TrainedVocoder]):
    """A vocoder family's ``evaluate``: ``load(path)``'s copy synthesis of the ground-truth mels
    of its corpus's ``request.split``, paired with the recordings."""

    def evaluate(path, request: EvalRequest) -> Evaluation:
        vocoder = load(path)
        split = corpus_from_config(vocoder.config).split(request.split)
        family = vocoder.config.model.family
        return Evaluation(
            title=f"{family} (step {vocoder.step}) copy-synthesis, {request.split} split",
            step=vocoder.step,
            pairs=copy_synthesis_pairs(split, request.limit, vocoder),
        )

    return evaluate
