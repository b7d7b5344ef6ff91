"""Conv-TasNet (Luo & Mesgarani 2019): time-domain speech separation with a learned encoder,
a temporal convolutional network (TCN) separator of depthwise-separable blocks, masks, and a
learned decoder; trained with negative SI-SNR under utterance-level permutation invariant
training. Layouts ``[B, T]`` for waveforms, ``[B, K, N]`` for encoder frames.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.config import ModelConfig
from tts_jax.nn.conv import conv_transpose_1d
from tts_jax.nn.separable import DepthwiseSeparableConv1d, PReLU


@dataclasses.dataclass(frozen=True)
class ConvTasNetConfig(ModelConfig):
    """``config.model`` of a Conv-TasNet run: the paper's best non-causal model (Luo &
    Mesgarani 2019, 5.05 M parameters), the one place its sizes are written;
    experiments/conv_tasnet.py changes what its variants need. Letters as in the paper."""

    num_sources: int = 2  # C
    num_filters: int = 512  # N
    filter_length: int = 16  # L
    bottleneck: int = 128  # B
    hidden: int = 512  # H
    skip: int = 128  # Sc
    kernel_size: int = 3  # P
    blocks: int = 8  # X: dilations 1, 2, ..., 2^(X-1)
    repeats: int = 3  # R
    causal: bool = False  # cLN and causal convolutions instead of gLN and centred ones


class GlobalLayerNorm(nn.Module):
    """gLN: normalise over time *and* channels of each utterance, then per-channel gain and
    bias (paper eq. 13). ``[B, K, C]``."""

    eps: float = 1e-8

    @nn.compact
    def __call__(self, x):
        mean = jnp.mean(x, axis=(1, 2), keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
        gamma = self.param("gamma", nn.initializers.ones, (x.shape[-1],))
        beta = self.param("beta", nn.initializers.zeros, (x.shape[-1],))
        return gamma * (x - mean) / jnp.sqrt(var + self.eps) + beta


class CumulativeLayerNorm(nn.Module):
    """cLN: normalise frame k over channels and frames <= k (causal configuration)."""

    eps: float = 1e-8

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        count = c * jnp.arange(1, x.shape[1] + 1)[None, :, None]
        mean = jnp.cumsum(jnp.sum(x, -1, keepdims=True), axis=1) / count
        power = jnp.cumsum(jnp.sum(jnp.square(x), -1, keepdims=True), axis=1) / count
        var = power - jnp.square(mean)
        gamma = self.param("gamma", nn.initializers.ones, (c,))
        beta = self.param("beta", nn.initializers.zeros, (c,))
        return gamma * (x - mean) / jnp.sqrt(jnp.maximum(var, 0.0) + self.eps) + beta


def _norm(causal: bool):
    return CumulativeLayerNorm if causal else GlobalLayerNorm


class Encoder(nn.Module):
    """Waveform ``[B, T]`` -> non-negative frames ``[B, K, N]``: conv1d N filters of L samples,
    stride L / 2, no bias, ReLU. T is zero-padded to a whole number of strides."""

    num_filters: int
    filter_length: int

    @nn.compact
    def __call__(self, x):
        stride = self.filter_length // 2
        t = x.shape[1]
        frames = max(1, -(-(t - self.filter_length) // stride) + 1)
        x = jnp.pad(x, ((0, 0), (0, (frames - 1) * stride + self.filter_length - t)))
        w = nn.Conv(
            self.num_filters,
            (self.filter_length,),
            strides=(stride,),
            padding="VALID",
            use_bias=False,
        )(x[..., None])
        return nn.relu(w)


class Decoder(nn.Module):
    """Masked frames ``[B, K, N]`` -> waveform ``[B, T]``: transposed conv1d (N -> 1, kernel L,
    stride L / 2, no bias), i.e. overlap-add of learned basis signals; trimmed to ``length``."""

    filter_length: int

    @nn.compact
    def __call__(self, frames, length: int):
        n = frames.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.filter_length, n, 1))
        y = conv_transpose_1d(frames, kernel, self.filter_length // 2, 0)
        return y[:, :length, 0]


class TemporalBlock(nn.Module):
    """1x1 conv B -> H, PReLU, norm, depthwise-separable (D-conv P taps with dilation d, PReLU,
    norm, 1x1 to B + Sc). Returns (x + residual, skip)."""

    bottleneck: int
    hidden: int
    skip: int
    kernel_size: int
    dilation: int
    causal: bool

    @nn.compact
    def __call__(self, x):  # [B, K, bottleneck]
        norm = _norm(self.causal)
        y = nn.Conv(self.hidden, (1,))(x)
        y = norm()(PReLU()(y))
        y = DepthwiseSeparableConv1d(
            self.bottleneck + self.skip,
            self.kernel_size,
            self.dilation,
            self.causal,
            inner=lambda: nn.Sequential([PReLU(), norm()]),
        )(y)
        residual, skip = jnp.split(y, [self.bottleneck], axis=-1)
        return x + residual, skip


class Separator(nn.Module):
    """The separation module: frames ``[B, K, N]`` -> masks ``[B, K, C, N]`` in (0, 1)
    (sigmoid), from R repeats of X temporal blocks with dilations 1, 2, ..., 2^(X-1)."""

    num_sources: int
    bottleneck: int
    hidden: int
    skip: int
    kernel_size: int
    blocks: int
    repeats: int
    causal: bool

    @nn.compact
    def __call__(self, w):
        n = w.shape[-1]
        x = nn.Conv(self.bottleneck, (1,))(_norm(self.causal)()(w))
        skips = 0.0
        for _ in range(self.repeats):
            for i in range(self.blocks):
                x, s = TemporalBlock(
                    self.bottleneck, self.hidden, self.skip, self.kernel_size, 2**i, self.causal
                )(x)
                skips = skips + s
        masks = nn.Conv(self.num_sources * n, (1,))(PReLU()(skips))
        return jax.nn.sigmoid(masks.reshape(*masks.shape[:2], self.num_sources, n))

    def receptive_field(self) -> int:
        """In encoder frames: 1 + R (P - 1) (2^X - 1)."""
        return 1 + self.repeats * (self.kernel_size - 1) * (2**self.blocks - 1)


class ConvTasNet(nn.Module):
    """Mixture ``[B, T]`` -> estimated sources ``[B, C, T]``."""

    cfg: ConvTasNetConfig

    @nn.compact
    def __call__(self, mixture):
        cfg = self.cfg
        w = Encoder(cfg.num_filters, cfg.filter_length)(mixture)
        masks = Separator(
            cfg.num_sources,
            cfg.bottleneck,
            cfg.hidden,
            cfg.skip,
            cfg.kernel_size,
            cfg.blocks,
            cfg.repeats,
            cfg.causal,
        )(w)
        decoder = Decoder(cfg.filter_length)
        b, k, c, n = masks.shape
        masked = (w[:, :, None, :] * masks).transpose(0, 2, 1, 3).reshape(b * c, k, n)
        return decoder(masked, mixture.shape[1]).reshape(b, c, -1)


def build_model(config) -> ConvTasNet:
    """The model of a run's config."""
    return ConvTasNet(ConvTasNetConfig.from_config(config.model))


# ---------------------------------------------------------------------------------- losses


def si_snr(estimate, target, eps: float = 1e-8):
    """Scale-invariant SNR in dB over the last axis (both zero-mean first, paper eq. 7):
    s_t = <s^, s> s / ||s||^2, e = s^ - s_t, 10 log10(||s_t||^2 / ||e||^2)."""
    estimate = estimate - jnp.mean(estimate, axis=-1, keepdims=True)
    target = target - jnp.mean(target, axis=-1, keepdims=True)
    dot = jnp.sum(estimate * target, axis=-1, keepdims=True)
    s_target = dot * target / (jnp.sum(jnp.square(target), axis=-1, keepdims=True) + eps)
    noise = estimate - s_target
    ratio = jnp.sum(jnp.square(s_target), -1) / (jnp.sum(jnp.square(noise), -1) + eps)
    return 10.0 * jnp.log10(ratio + eps)


@functools.cache
def _permutations(c: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(c))))  # numpy: safe to cache


def pit_si_snr(estimates, targets):
    """Utterance-level PIT: per utterance, the permutation of ``estimates`` ``[B, C, T]``
    maximising the mean SI-SNR against ``targets``. Returns (best mean SI-SNR ``[B]``, the
    permutation ``[B, C]``: estimate ``perm[j]`` is matched with target j)."""
    c = targets.shape[1]
    # pair[b, i, j] = SI-SNR(estimate i, target j); every permutation sums C of them.
    pair = si_snr(estimates[:, :, None, :], targets[:, None, :, :])
    perms = jnp.asarray(_permutations(c))  # [P, C]
    scores = jnp.mean(pair[:, perms, jnp.arange(c)], axis=-1)  # [B, P]
    best = jnp.argmax(scores, axis=-1)
    return jnp.max(scores, axis=-1), perms[best]


def si_snr_improvement(estimates, sources, mixture):
    """SI-SNRi per utterance ``[B]``: PIT SI-SNR of the estimates ``[B, C, T]`` against the
    ``sources`` ``[B, C, T]`` minus that of the ``mixture`` ``[B, T]`` itself taken as every
    source's estimate. Returns (SI-SNRi ``[B]``, PIT SI-SNR ``[B]``)."""
    score, _ = pit_si_snr(estimates, sources)
    baseline = jnp.mean(si_snr(mixture[:, None, :], sources), axis=-1)
    return score - baseline, score
