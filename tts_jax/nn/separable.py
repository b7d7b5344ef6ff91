"""Depthwise-separable 1-D convolution (MobileNet, Howard et al. 2017), shared by Conv-TasNet
and any light vocoder variant.

A k-tap convolution from M to N channels costs ``k * M * N`` weights; its depthwise-separable
factorisation, a per-channel k-tap convolution (``feature_group_count = M``) followed by a 1x1
"pointwise" convolution, costs ``k * M + M * N`` (+ biases). Both papers put a nonlinearity and
a normalisation between the two halves (MobileNet: batch norm + ReLU; Conv-TasNet: PReLU +
layer norm): ``inner`` is that module factory.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax.numpy as jnp


class DepthwiseConv1d(nn.Module):
    """``[B, T, C] -> [B, T, C]``: one k-tap (dilated) filter per channel, 'same' length;
    ``causal`` pads only on the left (output t sees inputs <= t)."""

    kernel_size: int
    dilation: int = 1
    causal: bool = False
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        pad = self.dilation * (self.kernel_size - 1)
        padding = [(pad, 0)] if self.causal else [(pad // 2, pad - pad // 2)]
        return nn.Conv(
            x.shape[-1],
            (self.kernel_size,),
            kernel_dilation=(self.dilation,),
            padding=padding,
            feature_group_count=x.shape[-1],
            use_bias=self.use_bias,
        )(x)


class DepthwiseSeparableConv1d(nn.Module):
    """``[B, T, M] -> [B, T, features]``: depthwise, then ``inner()`` (if given), then 1x1."""

    features: int
    kernel_size: int
    dilation: int = 1
    causal: bool = False
    use_bias: bool = True
    inner: Callable[[], nn.Module] | None = None

    @nn.compact
    def __call__(self, x):
        x = DepthwiseConv1d(self.kernel_size, self.dilation, self.causal, self.use_bias)(x)
        if self.inner is not None:
            x = self.inner()(x)
        return nn.Conv(self.features, (1,), use_bias=self.use_bias, name="pointwise")(x)


def separable_param_count(kernel_size: int, m: int, n: int, bias: bool = True) -> int:
    """k M + M N (+ M + N biases): the factorised count."""
    return kernel_size * m + m * n + ((m + n) if bias else 0)


def full_param_count(kernel_size: int, m: int, n: int, bias: bool = True) -> int:
    """k M N (+ N biases): a full convolution's count."""
    return kernel_size * m * n + (n if bias else 0)


class PReLU(nn.Module):
    """Parametric ReLU with one learned slope (init 0.25, as PyTorch's nn.PReLU())."""

    @nn.compact
    def __call__(self, x):
        a = self.param("alpha", nn.initializers.constant(0.25), ())
        return jnp.where(x >= 0, x, a * x)
