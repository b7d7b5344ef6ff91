"""HiFi-GAN (Kong, Kim & Bae 2020), the GAN vocoder: ``model`` (generator, discriminators,
losses, :class:`HiFiGANConfig`), ``train`` (its data, state and GAN step), ``inference`` (the
trained generator as a :class:`Vocoder`)."""

from tts_jax.family import assemble
from tts_jax.inference import evaluate_vocoder
from tts_jax.models.hifigan import jik876, train
from tts_jax.models.hifigan.inference import Vocoder
from tts_jax.models.hifigan.model import (
    LRELU_SLOPE,
    MRF,
    MSD_LAYERS,
    DiscriminatorP,
    DiscriminatorS,
    Generator,
    HiFiGANConfig,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    ResBlock1,
    ResBlock2,
    build_discriminators,
    build_generator,
    discriminator_loss,
    feature_loss,
    generator_loss,
    get_padding,
    mel_loss,
)
from tts_jax.models.hifigan.train import (
    GANState,
    check_config,
    loss_mel_config,
    optimizer,
    steps_per_epoch,
)

FAMILY = assemble(
    "hifigan",
    train,
    vocoder=Vocoder,
    evaluate=evaluate_vocoder(Vocoder),
    import_checkpoint=jik876.import_checkpoint,
)
