"""VQ-VAE (van den Oord et al. 2017) and VQ-VAE-2 (Razavi et al. 2019) on log-mel frames.

``model``: the modules, the loss and :class:`VQVAEConfig`; ``train``: the shared trainer's
entries; ``inference``: the trained model as an :class:`Autoencoder` and its ``evaluate``.
"""

from tts_jax.family import assemble
from tts_jax.models.vqvae import train
from tts_jax.models.vqvae.inference import Autoencoder, evaluate
from tts_jax.models.vqvae.model import (
    VQVAE,
    VQVAE2,
    Decoder,
    Encoder,
    ResidualStack,
    VectorQuantizer,
    VQVAEConfig,
    build_model,
    denormalize,
    ema_update,
    mel_scale,
    nearest_code,
    normalize,
    vq_loss,
)

FAMILY = assemble(
    "vqvae",
    train,
    autoencoder=Autoencoder,
    evaluate=evaluate,
)
