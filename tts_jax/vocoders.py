"""Mel -> waveform by name: ``griffin-lim``, or ``FAMILY:PATH`` for a trained model of any
family that is a vocoder (``hifigan:DIR``, ``clarinet:DIR`` for a distilled student,
``wavenet:DIR`` for the autoregressive teacher).

``load_vocoder(spec, mel_cfg)`` returns a callable ``mel [frames, n_mels] -> wav [frames *
hop]`` for ``tts-jax synthesize --vocoder``, ``vocode`` and ``evaluate``. A trained vocoder must
have been trained on the same front end as the mels it is given; it is refused otherwise, except
for the framing (``MelConfig.framing``), which only places frames up to half a hop apart: that
is allowed with a warning, as jik876/hifi-gan's generators are used on NVIDIA/tacotron2's mels.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from tts_jax import audio
from tts_jax.errors import UserError
from tts_jax.family import families_with, family_names, get_family
from tts_jax.inference import griffin_lim
from tts_jax.paths import run_path


def kinds() -> list[str]:
    """The names ``load_vocoder`` takes."""
    return ["griffin-lim", *(f"{n}:WORKDIR" for n in families_with("vocoder"))]


def load_vocoder(spec: str, mel_cfg: audio.MelConfig) -> Callable[[np.ndarray], np.ndarray]:
    if spec == "griffin-lim":
        return griffin_lim(mel_cfg)
    name, _, path = spec.partition(":")
    if not path or name not in family_names():
        raise UserError(f"--vocoder {spec!r}: expected one of {', '.join(kinds())}")
    load = get_family(name).require("vocoder", f"--vocoder {spec!r}")
    path = run_path(path)
    if not path.is_dir():
        raise UserError(f"--vocoder {spec!r}: {path} is not a folder")
    vocoder = load(path)
    if dataclasses.replace(vocoder.mel, framing=mel_cfg.framing) != mel_cfg:
        raise UserError(
            f"--vocoder {spec!r} was trained on mels {vocoder.mel}, but these mels are {mel_cfg}"
        )
    if vocoder.mel.framing != mel_cfg.framing:
        warnings.warn(
            f"--vocoder {spec!r} was trained on {vocoder.mel.framing!r} framing and these mels "
            f"are {mel_cfg.framing!r}: the same filterbank and floor, frames up to half a hop "
            "apart; fine-tuning the vocoder on this model's GTA mels removes the mismatch",
            stacklevel=2,
        )
    return vocoder
