"""HiFi-GAN (Kong, Kim & Bae 2020): generator V1/V2/V3, multi-period and multi-scale
discriminators, and the LSGAN + feature-matching + mel-L1 losses.

Layouts are ``[B, T, C]`` (channels last); audio is ``[B, T]``. Names follow the paper and
REFERENCE. Parameter counts match jik876/hifi-gan exactly (tests/test_hifigan.py).

Deviations from the reference implementation, each deliberate:

* Transposed convolutions are weight-normed per *output* channel (flax's WeightNorm default,
  and Salimans & Kingma's definition). PyTorch's ``weight_norm(ConvTranspose1d)`` normalises
  over dim 0, which for a transposed conv is the *input* channel. The folded (inference)
  parameters and their count are the same either way.
* A period discriminator's ``(k, 1)`` 2-D convolutions are computed as 1-D convolutions over
  each of the ``p`` columns (batch ``B * p``): the same arithmetic and parameter count, and
  XLA's CPU backend runs 1-D convolutions faster than 2-D ones with a unit-width kernel.
* The discriminators see real and generated audio in one batch (one call instead of two);
  nothing in them mixes batch items, except that spectral norm's power iteration then
  advances once per update rather than once per call.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from tts_jax import audio
from tts_jax.config import ModelConfig
from tts_jax.nn.conv import Conv1d, ConvTranspose1d, normal_init

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd, dilated kernel."""
    return (kernel_size * dilation - dilation) // 2


# REFERENCE's scale discriminator: (out channels, kernel, stride, groups) of each conv before
# conv_post.
MSD_LAYERS = (
    (128, 15, 1, 1),
    (128, 41, 2, 4),
    (256, 41, 2, 16),
    (512, 41, 4, 16),
    (1024, 41, 4, 16),
    (1024, 41, 1, 16),
    (1024, 5, 1, 1),
)


@dataclasses.dataclass(frozen=True)
class HiFiGANConfig(ModelConfig):
    """``config.model`` of a HiFi-GAN run; the defaults are the paper's V1 generator with the
    full discriminators and the reference's loss weights (experiments/hifigan.py)."""

    # Generator (the paper's table 5 / REFERENCE's config_v1.json).
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)  # their product is the hop length
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock: str = "1"  # "1": ResBlock1 (V1, V2) | "2": ResBlock2 (V3)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_method: str = "polyphase"  # or "dilated" (XLA's zero-stuffed transposed conv)
    # Discriminators.
    conv_impl: str = "auto"  # discriminator convs: split | xla | auto (tts_jax.nn.conv.conv1d)
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    msd_layers: tuple[tuple[int, int, int, int], ...] = MSD_LAYERS
    # Generator objective: adversarial + feature_loss_weight x feature matching +
    # mel_loss_weight x mel L1.
    mel_loss_weight: float = 45.0
    feature_loss_weight: float = 2.0
    loss_mel_full_band: bool = True  # the reference's fmax_for_loss = None

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_rates))


# ------------------------------------------------------------------------------ generator


class ResBlock1(nn.Module):
    """MRF resblock type 1 (V1, V2): per dilation d, x += conv_1(lrelu(conv_d(lrelu(x))))."""

    channels: int
    kernel_size: int
    dilations: tuple[int, ...]
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x):  # [B, T, C] -> [B, T, C]
        k = self.kernel_size
        init = normal_init(0.01)
        for d in self.dilations:
            y = nn.leaky_relu(x, LRELU_SLOPE)
            y = Conv1d(
                self.channels,
                k,
                dilation=d,
                padding=get_padding(k, d),
                norm=self.norm,
                kernel_init=init,
            )(y)
            y = nn.leaky_relu(y, LRELU_SLOPE)
            y = Conv1d(self.channels, k, padding=get_padding(k), norm=self.norm, kernel_init=init)(
                y
            )
            x = x + y
        return x


class ResBlock2(nn.Module):
    """MRF resblock type 2 (V3): per dilation d, x += conv_d(lrelu(x))."""

    channels: int
    kernel_size: int
    dilations: tuple[int, ...]
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x):  # [B, T, C] -> [B, T, C]
        k = self.kernel_size
        for d in self.dilations:
            y = nn.leaky_relu(x, LRELU_SLOPE)
            x = x + Conv1d(
                self.channels,
                k,
                dilation=d,
                padding=get_padding(k, d),
                norm=self.norm,
                kernel_init=normal_init(0.01),
            )(y)
        return x


class MRF(nn.Module):
    """Multi-receptive-field fusion: the mean of one resblock per kernel size."""

    channels: int
    resblock: str  # "1" | "2"
    kernel_sizes: tuple[int, ...]
    dilations: tuple[tuple[int, ...], ...]
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x):  # [B, T, C] -> [B, T, C]
        block = ResBlock1 if self.resblock == "1" else ResBlock2
        out = 0.0
        for k, d in zip(self.kernel_sizes, self.dilations, strict=True):
            out = out + block(self.channels, k, tuple(d), self.norm)(x)
        return out / len(self.kernel_sizes)


class Generator(nn.Module):
    """log-mel ``[B, F, n_mels]`` -> waveform ``[B, F * prod(upsample_rates)]`` in [-1, 1].
    The fields are :class:`HiFiGANConfig`'s (:func:`build_generator`)."""

    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_method: str  # polyphase | dilated (see tts_jax.nn.conv)
    norm: str | None = "weight"  # None after fold_weight_norm (inference)

    @nn.compact
    def __call__(self, mels):
        x = Conv1d(self.upsample_initial_channel, 7, padding=3, norm=self.norm, name="conv_pre")(
            mels
        )
        for i, (u, k) in enumerate(
            zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True)
        ):
            channels = self.upsample_initial_channel // 2 ** (i + 1)
            x = nn.leaky_relu(x, LRELU_SLOPE)
            x = ConvTranspose1d(
                channels,
                k,
                u,
                padding=(k - u) // 2,
                norm=self.norm,
                method=self.upsample_method,
                kernel_init=normal_init(0.01),
                name=f"ups_{i}",
            )(x)
            x = MRF(
                channels,
                self.resblock,
                tuple(self.resblock_kernel_sizes),
                tuple(map(tuple, self.resblock_dilation_sizes)),
                self.norm,
                name=f"mrf_{i}",
            )(x)
        # The reference's last activation is F.leaky_relu with PyTorch's default slope 0.01.
        x = nn.leaky_relu(x, 0.01)
        # The reference draws ups and conv_post from N(0, 0.01) (init_weights), conv_pre not.
        x = Conv1d(
            1, 7, padding=3, norm=self.norm, kernel_init=normal_init(0.01), name="conv_post"
        )(x)
        return jnp.tanh(x[..., 0])

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_rates))


# -------------------------------------------------------------------------- discriminators


class DiscriminatorP(nn.Module):
    """Period-p discriminator: audio ``[B, T]`` viewed as ``[B, ceil(T/p), p]`` (reflect-padded
    to a multiple of p), (k, 1) convs along time per column. Returns (logits ``[B, T' * p]``,
    feature maps after every conv ``[B, T_l, p, C_l]``), time-major as the reference's."""

    period: int
    channels: tuple[int, ...]
    conv_impl: str  # split | xla | auto (tts_jax.nn.conv.conv1d)
    kernel_size: int = 5
    stride: int = 3
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x):
        b, t = x.shape
        p = self.period
        if t % p:
            if t % p >= t:
                raise ValueError(f"reflect padding needs more than {p - t % p} samples, got {t}")
            x = jnp.pad(x, ((0, 0), (0, p - t % p)), mode="reflect")
        # [B, T] -> [B, T/p, p] -> [B * p, T/p, 1]: column j holds samples j, j + p, ...
        h = x.reshape(b, -1, p).transpose(0, 2, 1).reshape(b * p, -1, 1)

        def time_major(h):  # [B * p, T', C] -> [B, T', p, C], the reference's [B, C, T', p]
            return h.reshape(b, p, *h.shape[1:]).transpose(0, 2, 1, 3)

        fmaps = []
        k = self.kernel_size
        for i, c in enumerate(self.channels):
            stride = self.stride if i < len(self.channels) - 1 else 1
            h = Conv1d(c, k, stride, padding=get_padding(k), norm=self.norm, impl=self.conv_impl)(h)
            h = nn.leaky_relu(h, LRELU_SLOPE)
            fmaps.append(time_major(h))
        h = Conv1d(1, 3, padding=1, norm=self.norm, name="conv_post")(h)
        fmaps.append(time_major(h))
        # Flattened time-major, [T', p]: the reference's order (its Conv2d sees [B, 1, T', p]).
        return fmaps[-1].reshape(b, -1), fmaps


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`DiscriminatorP` per period (:class:`HiFiGANConfig`'s ``mpd_*``)."""

    periods: tuple[int, ...]
    channels: tuple[int, ...]
    conv_impl: str
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x, *, update_stats: bool = False):  # noqa: ARG002 - uniform interface
        """x ``[B, T]`` -> (list of logits, list of feature-map lists), one per period."""
        outs = [
            DiscriminatorP(p, tuple(self.channels), conv_impl=self.conv_impl, norm=self.norm)(x)
            for p in self.periods
        ]
        return [o[0] for o in outs], [o[1] for o in outs]


class DiscriminatorS(nn.Module):
    """Scale discriminator on audio ``[B, T]``: grouped strided 1-D convs (REFERENCE's table)."""

    norm: str | None
    layers: tuple[tuple[int, int, int, int], ...]
    conv_impl: str

    @nn.compact
    def __call__(self, x, *, update_stats: bool = False):
        h = x[..., None]
        fmaps = []
        for c, k, s, g in self.layers:
            h = Conv1d(
                c, k, s, groups=g, padding=(k - 1) // 2, norm=self.norm, impl=self.conv_impl
            )(h, update_stats=update_stats)
            h = nn.leaky_relu(h, LRELU_SLOPE)
            fmaps.append(h)
        h = Conv1d(1, 3, padding=1, norm=self.norm, name="conv_post")(h, update_stats=update_stats)
        fmaps.append(h)
        return h.reshape(h.shape[0], -1), fmaps


MSD_NORMS = ("spectral", "weight", "weight")  # the raw-scale discriminator is spectral-normed


class MultiScaleDiscriminator(nn.Module):
    """Three DiscriminatorS on raw, x2 and x4 average-pooled audio (pool 4, stride 2, pad 2,
    zero padding counted, as PyTorch's AvgPool1d); spectral norm on the raw-scale one."""

    layers: tuple[tuple[int, int, int, int], ...]
    conv_impl: str
    norms: tuple[str | None, ...] = MSD_NORMS

    @nn.compact
    def __call__(self, x, *, update_stats: bool = False):
        logits, fmaps = [], []
        for i, norm in enumerate(self.norms):
            if i > 0:
                x = nn.avg_pool(x[..., None], (4,), (2,), padding=[(2, 2)])[..., 0]
            o, f = DiscriminatorS(norm, tuple(map(tuple, self.layers)), self.conv_impl)(
                x, update_stats=update_stats
            )
            logits.append(o)
            fmaps.append(f)
        return logits, fmaps


# ---------------------------------------------------------------------------------- losses


def discriminator_loss(real_logits, fake_logits):
    """LSGAN: sum over sub-discriminators of mean (1 - D(x))^2 + mean D(G(s))^2.
    Returns (total, per-discriminator real terms, per-discriminator fake terms)."""
    real = [jnp.mean(jnp.square(1.0 - r)) for r in real_logits]
    fake = [jnp.mean(jnp.square(g)) for g in fake_logits]
    return sum(real) + sum(fake), real, fake


def generator_loss(fake_logits):
    """LSGAN: sum over sub-discriminators of mean (1 - D(G(s)))^2."""
    terms = [jnp.mean(jnp.square(1.0 - g)) for g in fake_logits]
    return sum(terms), terms


def feature_loss(real_fmaps, fake_fmaps):
    """2 x the sum over sub-discriminators and layers of the mean |D_l(x) - D_l(G(s))|."""
    total = 0.0
    for rs, gs in zip(real_fmaps, fake_fmaps, strict=True):
        for r, g in zip(rs, gs, strict=True):
            total = total + jnp.mean(jnp.abs(r - g))
    return 2.0 * total


def mel_loss(audio_real, audio_fake, cfg: audio.MelConfig):
    """Mean |log-mel(x) - log-mel(G(s))| (multiply by 45 for the generator objective)."""
    return jnp.mean(jnp.abs(audio.log_mel(audio_real, cfg) - audio.log_mel(audio_fake, cfg)))


# ------------------------------------------------------------------------- model building


def build_generator(config, *, folded: bool = False) -> Generator:
    """The generator of ``config``; ``folded``: without weight norm (inference, after
    :func:`tts_jax.nn.conv.fold_weight_norm`)."""
    m = HiFiGANConfig.from_config(config.model)
    return Generator(
        upsample_rates=m.upsample_rates,
        upsample_kernel_sizes=m.upsample_kernel_sizes,
        upsample_initial_channel=m.upsample_initial_channel,
        resblock=m.resblock,
        resblock_kernel_sizes=m.resblock_kernel_sizes,
        resblock_dilation_sizes=m.resblock_dilation_sizes,
        norm=None if folded else "weight",
        upsample_method=m.upsample_method,
    )


def build_discriminators(
    config, *, plain: bool = False
) -> tuple[MultiPeriodDiscriminator, MultiScaleDiscriminator]:
    """MPD and MSD; ``plain``: their twins without weight or spectral norm (same parameter
    paths and draws), whose init gives the kernels' intended scale (torch_weight_norm_init)."""
    m = HiFiGANConfig.from_config(config.model)
    return (
        MultiPeriodDiscriminator(
            m.mpd_periods, m.mpd_channels, m.conv_impl, None if plain else "weight"
        ),
        MultiScaleDiscriminator(
            m.msd_layers, m.conv_impl, (None, None, None) if plain else MSD_NORMS
        ),
    )
