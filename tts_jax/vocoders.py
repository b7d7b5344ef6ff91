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
