"""1-D convolutions with weight or spectral norm, and a fast transposed convolution.

``Conv1d`` is the convolution of the GAN vocoders: an ``nn.Conv`` (named ``conv``) wrapped
in flax's ``nn.WeightNorm`` or ``nn.SpectralNorm`` or in nothing, so that a weight-normed
model and its folded inference twin share one parameter layout:

    weight norm:  {"conv": {"kernel", "bias"}, "weight_norm": {"conv/kernel/scale"}}
    folded:       {"conv": {"kernel", "bias"}}

:func:`fold_weight_norm` turns the first into the second (kernel := g * v / ||v||);
:func:`torch_weight_norm_init` makes a freshly initialised normed layer compute exactly the
kernel its ``kernel_init`` drew (v := that kernel, g := ||v||, as ``torch.nn.utils.weight_norm``
at creation); flax's WeightNorm alone would store v / ||v|| and g = 1, every filter at norm 1
whatever the init's scale.

``ConvTranspose1d`` upsamples by an integer stride with PyTorch's ``ConvTranspose1d``
semantics (output length ``(T - 1) * stride - 2 * padding + kernel``). ``method="polyphase"``
computes it as an ordinary convolution over the *un-stuffed* input producing ``stride`` phases
at once (sub-pixel convolution), ``stride`` times fewer multiply-adds than ``"dilated"``
(``lax`` transposed convolution over a zero-stuffed input); both read the same kernel and
agree to float rounding (tests/test_hifigan.py).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DIMS = ("NWC", "WIO", "NWC")


def torch_default_init(fan_in: int) -> tuple[Callable, Callable]:
    """(kernel_init, bias_init) of PyTorch's default conv initialisation: U(±1/sqrt(fan_in))
    for both (kaiming_uniform with a = sqrt(5))."""
    bound = 1.0 / np.sqrt(max(fan_in, 1))

    def uniform(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return uniform, uniform


def normal_init(std: float) -> Callable:
    return nn.initializers.normal(std)


class Conv1d(nn.Module):
    """``[B, T, C_in] -> [B, T', features]`` with symmetric zero padding ``padding``.

    ``norm``: ``"weight"``, ``"spectral"`` or ``None``. ``kernel_init=None`` uses PyTorch's
    default; the bias always does (the reference never re-initialises biases).
    """

    features: int
    kernel_size: int
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    padding: int = 0
    norm: str | None = None
    kernel_init: Callable | None = None
    impl: str = "auto"  # see conv1d

    @nn.compact
    def __call__(self, x, *, update_stats: bool = False):
        fan_in = x.shape[-1] // self.groups * self.kernel_size
        default_kernel, default_bias = torch_default_init(fan_in)
        conv = ConvKernel(
            self.features,
            self.kernel_size,
            self.stride,
            self.dilation,
            self.groups,
            self.padding,
            self.kernel_init or default_kernel,
            default_bias,
            self.impl,
            name="conv",
        )
        return _normed(conv, self.norm)(x, update_stats=update_stats)


class ConvKernel(nn.Module):
    """The parameters of ``nn.Conv`` (``kernel`` ``[k, C_in / groups, features]``, ``bias``)
    applied by :func:`conv1d`."""

    features: int
    kernel_size: int
    stride: int
    dilation: int
    groups: int
    padding: int
    kernel_init: Callable
    bias_init: Callable
    impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        if x.shape[-1] % self.groups or self.features % self.groups:
            raise ValueError(
                f"channels {x.shape[-1]} -> {self.features} do not split into {self.groups} groups"
            )
        kernel = self.param(
            "kernel",
            self.kernel_init,
            (self.kernel_size, x.shape[-1] // self.groups, self.features),
        )
        bias = self.param("bias", self.bias_init, (self.features,))
        # flax's rule: compute in the promoted dtype (a float32 spectral-norm kernel meeting a
        # bfloat16 input under mixed precision runs in float32).
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
        y = conv1d(x, kernel, self.stride, self.dilation, self.groups, self.padding, self.impl)
        return y + bias


def conv1d(
    x,
    kernel,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    padding: int = 0,
    impl: str = "auto",
):
    """Cross-correlation ``[B, T, C_in] x [k, C_in / groups, C_out] -> [B, T', C_out]`` with
    symmetric zero padding, as ``torch.nn.functional.conv1d``.

    ``impl="split"`` computes a grouped convolution as ``groups`` separate convolutions,
    concatenated, and a strided one over few channels by space-to-depth: the same arithmetic,
    but XLA's CPU backend differentiates ``feature_group_count`` convolutions 3-5x slower than
    the split form, and strided ones through zero-stuffed (input-dilated) convolutions
    (measured on the HiFi-GAN discriminators' layers: docs/hifigan.md, "Speed"). ``"xla"``
    hands everything to ``lax.conv_general_dilated``. An input at most twice the kernel's
    extent (the last layers of HiFi-GAN's period discriminators on short segments) takes the
    taps form, one matmul per kernel tap: XLA's CPU convolution falls off its fast path there
    (measured, [22, 3, 1024] x [5, 1024, 1024]: 804 ms against 6 ms; the backward pass of
    [22, 5, 512] x [5, 512, 1024] at stride 3: 161 ms against 13 ms). ``"auto"``: ``split``
    on CPU, ``xla`` on accelerators (not measured there yet: their convolution libraries
    handle groups natively).
    """
    if impl == "auto":
        impl = "split" if jax.default_backend() == "cpu" else "xla"
    if impl not in ("split", "xla"):
        raise ValueError(f"impl must be 'auto', 'split' or 'xla', got {impl!r}")
    if impl == "xla":
        return lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(stride,),
            padding=[(padding, padding)],
            rhs_dilation=(dilation,),
            dimension_numbers=_DIMS,
            feature_group_count=groups,
        )

    def one(x, w):
        if x.shape[1] <= 2 * ((w.shape[0] - 1) * dilation + 1):
            return _taps_conv(x, w, stride, dilation, padding)
        if stride > 1 and dilation == 1 and x.shape[-1] * stride <= _S2D_MAX_CHANNELS:
            return _space_to_depth_conv(x, w, stride, padding)
        return lax.conv_general_dilated(
            x,
            w,
            window_strides=(stride,),
            padding=[(padding, padding)],
            rhs_dilation=(dilation,),
            dimension_numbers=_DIMS,
        )

    if groups == 1:
        return one(x, kernel)
    c_in, c_out = x.shape[-1] // groups, kernel.shape[-1] // groups
    return jnp.concatenate(
        [
            one(x[..., g * c_in : (g + 1) * c_in], kernel[..., g * c_out : (g + 1) * c_out])
            for g in range(groups)
        ],
        axis=-1,
    )


def _normed(layer: nn.Module, norm: str | None):
    if norm is None:
        return lambda x, update_stats: layer(x)
    if norm == "weight":
        wn = nn.WeightNorm(layer, name="weight_norm")
        return lambda x, update_stats: wn(x)
    if norm == "spectral":
        # One power iteration per call (as torch.nn.utils.spectral_norm); u and sigma live in
        # the "batch_stats" collection and advance only when update_stats is True.
        sn = nn.SpectralNorm(layer, n_steps=1, name="spectral_norm")
        return lambda x, update_stats: sn(x, update_stats=update_stats)
    raise ValueError(f"norm must be 'weight', 'spectral' or None, got {norm!r}")


class TransposedKernel(nn.Module):
    """Holds the ``[k, C_in, C_out]`` kernel and bias of a transposed convolution and applies
    it with the chosen method (so that flax's WeightNorm can wrap it like any conv)."""

    features: int
    kernel_size: int
    stride: int
    padding: int
    method: str
    kernel_init: Callable | None

    @nn.compact
    def __call__(self, x):
        c_in = x.shape[-1]
        # PyTorch's fan_in for ConvTranspose1d weights [C_in, C_out, k] is C_out * k.
        default_kernel, default_bias = torch_default_init(self.features * self.kernel_size)
        kernel = self.param(
            "kernel",
            self.kernel_init or default_kernel,
            (self.kernel_size, c_in, self.features),
        )
        bias = self.param("bias", default_bias, (self.features,))
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias)
        y = conv_transpose_1d(x, kernel, self.stride, self.padding, self.method)
        return y + bias


class ConvTranspose1d(nn.Module):
    """``[B, T, C_in] -> [B, (T - 1) * stride - 2 * padding + kernel, features]``."""

    features: int
    kernel_size: int
    stride: int
    padding: int = 0
    norm: str | None = None
    method: str = "polyphase"  # polyphase | dilated
    kernel_init: Callable | None = None

    @nn.compact
    def __call__(self, x):
        layer = TransposedKernel(
            self.features,
            self.kernel_size,
            self.stride,
            self.padding,
            self.method,
            self.kernel_init,
            name="conv",
        )
        return _normed(layer, self.norm)(x, update_stats=False)


def conv_transpose_1d(x, kernel, stride: int, padding: int, method: str = "polyphase"):
    """PyTorch ``conv_transpose1d`` semantics: ``y[i * stride + m - padding] += x[i] @ kernel[m]``.

    x ``[B, T, C_in]``, kernel ``[k, C_in, C_out]`` -> ``[B, (T - 1) * stride - 2p + k, C_out]``.
    """
    k, _, c_out = kernel.shape
    t = x.shape[1]
    u, p = stride, padding
    length = (t - 1) * u - 2 * p + k
    if length < 1:
        raise ValueError(f"transposed conv of {t} frames gives no output (k={k}, p={p})")
    if method == "dilated":
        # Correlation of the zero-stuffed input with the flipped kernel.
        return lax.conv_general_dilated(
            x,
            kernel[::-1],
            window_strides=(1,),
            padding=[(k - 1 - p, k - 1 - p)],
            lhs_dilation=(u,),
            dimension_numbers=_DIMS,
        )
    if method != "polyphase":
        raise ValueError(f"method must be 'polyphase' or 'dilated', got {method!r}")
    # Output sample n * u + r receives x[n - q] @ kernel[q * u + r + p] for every q with a
    # tap in range: phase r is an ordinary convolution over x. All u phases share the q range,
    # so one convolution with u * C_out outputs computes them; taps out of range are zero.
    qs = range(-((k + p) // u) - 1, (u + p) // u + 2)
    qs = [q for q in qs if any(0 <= q * u + r + p < k for r in range(u))]
    q_min, q_max = qs[0], qs[-1]
    taps = np.full((q_max - q_min + 1, u), k)  # k indexes the appended zero tap
    for q in range(q_min, q_max + 1):
        for r in range(u):
            m = q * u + r + p
            if 0 <= m < k:
                taps[q_max - q, r] = m  # flipped in q: correlation order
    padded = jnp.concatenate([kernel, jnp.zeros_like(kernel[:1])], axis=0)
    poly = padded[taps]  # [Q, u, C_in, C_out]
    poly = poly.transpose(0, 2, 1, 3).reshape(len(taps), kernel.shape[1], u * c_out)
    n_out = -(-length // u)
    right = n_out - t - q_min  # may be negative: lax.conv crops then
    y = lax.conv_general_dilated(
        x, poly, window_strides=(1,), padding=[(q_max, right)], dimension_numbers=_DIMS
    )
    y = y.reshape(x.shape[0], n_out * u, c_out)
    return y[:, :length]


# A strided convolution over few channels runs as a stride-1 convolution over
# ``stride``-sample blocks when its input has at most this many channels x stride (below it,
# the form measured 1.1-3.4x faster forward + backward on XLA CPU; above it, slower).
_S2D_MAX_CHANNELS = 64


def _taps_conv(x, w, stride: int, dilation: int, padding: int):
    """``conv1d`` as the sum over kernel taps of shifted inputs times that tap's [C_in, C_out]
    slice, for short inputs."""
    k = w.shape[0]
    x = jnp.pad(x, ((0, 0), (padding, padding), (0, 0)))
    out = (x.shape[1] - (k - 1) * dilation - 1) // stride + 1
    taps = jnp.stack(
        [x[:, j * dilation : j * dilation + (out - 1) * stride + 1 : stride] for j in range(k)],
        axis=2,
    )  # [B, T', k, C_in]
    return jnp.einsum("btkc,kco->bto", taps, w)


def _space_to_depth_conv(x, w, stride: int, padding: int):
    """Stride-s convolution as a stride-1 one: ``x`` regrouped into blocks of s samples
    (``[B, T / s, s * C]``) against the kernel regrouped into ceil(k / s) taps of
    ``[s * C, C_out]``. Its gradient then needs no zero-stuffed (input-dilated) convolution."""
    b, t, c = x.shape
    k, _, c_out = w.shape
    t_out = (t + 2 * padding - k) // stride + 1
    taps = -(-k // stride)
    need = (t_out + taps - 1) * stride
    xp = jnp.pad(x, ((0, 0), (padding, max(0, need - t - padding)), (0, 0)))[:, :need]
    blocks = xp.reshape(b, need // stride, stride * c)
    wp = jnp.pad(w, ((0, taps * stride - k), (0, 0), (0, 0))).reshape(taps, stride * c, c_out)
    return lax.conv_general_dilated(blocks, wp, (1,), [(0, 0)], dimension_numbers=_DIMS)


# ------------------------------------------------------------------- weight-norm parameters


def _weight_norm_sites(tree, visit, path=()):
    """Calls ``visit(node, path)`` on every dict holding both ``conv`` and ``weight_norm``."""
    if not isinstance(tree, dict):
        return
    if "conv" in tree and "weight_norm" in tree:
        visit(tree, path)
    for k, v in tree.items():
        _weight_norm_sites(v, visit, (*path, k))


def _copy(tree):
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return {k: _copy(v) for k, v in tree.items()}
    return tree


def _direction(kernel):
    """v / ||v|| with the norm over every axis but the last (one g per output channel)."""
    axes = tuple(range(kernel.ndim - 1))
    return kernel / jnp.sqrt(jnp.sum(jnp.square(kernel), axis=axes, keepdims=True))


def fold_weight_norm(params):
    """Weight-normed params -> plain params of the same model built with ``norm=None``:
    every ``kernel := g * v / ||v||`` and the ``weight_norm`` entries removed."""
    params = _copy(params)

    def visit(node, path):
        scale = node.pop("weight_norm")["conv/kernel/scale"]
        node["conv"]["kernel"] = _direction(node["conv"]["kernel"]) * scale

    _weight_norm_sites(params, visit)
    return params


def torch_weight_norm_init(normed, plain):
    """A weight-normed model's initial params that compute exactly the kernels its
    ``kernel_init`` drew, as ``torch.nn.utils.weight_norm`` leaves a layer at creation:
    v := the kernel drawn, g := ||v||.

    ``normed``: ``init`` of the model with weight norm; flax's WeightNorm stores v / ||v|| and
    g = 1 there, so the draw's scale is lost (every filter would start at norm 1).
    ``plain``: ``init`` of the same model with ``norm=None`` and the same key: its convs sit
    at the same paths and draw the same kernels, at their intended scale.
    """
    normed = _copy(normed)

    def visit(node, path):
        twin = plain
        for key in path:
            twin = twin[key]
        kernel = twin["conv"]["kernel"]
        norm = jnp.sqrt(jnp.sum(jnp.square(kernel), axis=tuple(range(kernel.ndim - 1))))
        node["conv"]["kernel"] = kernel
        node["weight_norm"]["conv/kernel/scale"] = norm.astype(kernel.dtype)

    _weight_norm_sites(normed, visit)
    return normed
