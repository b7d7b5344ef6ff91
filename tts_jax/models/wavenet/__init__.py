"""Gaussian WaveNet, ClariNet's autoregressive teacher (Ping, Peng & Chen 2018): ``model``
(the network, its cached sampler, :class:`WaveNetConfig`), ``train`` (data, state, NLL step),
``inference`` (the trained teacher as a :class:`Vocoder`)."""

from tts_jax.family import assemble
from tts_jax.inference import evaluate_vocoder
from tts_jax.models.wavenet import train
from tts_jax.models.wavenet.inference import Vocoder, recording_nll
from tts_jax.models.wavenet.model import (
    SQRT_HALF,
    CausalConv,
    ConditionUpsampler,
    Dense,
    ResidualBlock,
    UpsampleLayer,
    WaveNet,
    WaveNetConfig,
    build_model,
    dilations,
    generate,
    normalize_mel,
    receptive_field,
    receptive_field_ms,
    teacher_nll,
)

FAMILY = assemble(
    "wavenet",
    train,
    vocoder=Vocoder,
    evaluate=evaluate_vocoder(Vocoder),
)
