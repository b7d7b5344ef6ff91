"""Conv-TasNet (Luo & Mesgarani 2019): time-domain speech separation.

``model``: the modules, the SI-SNR / PIT losses and :class:`ConvTasNetConfig`; ``train``: the
shared trainer's entries; ``inference``: the trained model as a :class:`TrainedSeparator`
(the family's ``separator``) and its ``evaluate``.
"""

from tts_jax.family import assemble
from tts_jax.models.conv_tasnet import train
from tts_jax.models.conv_tasnet.inference import TrainedSeparator, evaluate
from tts_jax.models.conv_tasnet.model import (
    ConvTasNet,
    ConvTasNetConfig,
    CumulativeLayerNorm,
    Decoder,
    Encoder,
    GlobalLayerNorm,
    Separator,
    TemporalBlock,
    build_model,
    pit_si_snr,
    si_snr,
    si_snr_improvement,
)

FAMILY = assemble(
    "conv_tasnet",
    train,
    separator=TrainedSeparator,
    evaluate=evaluate,
)
