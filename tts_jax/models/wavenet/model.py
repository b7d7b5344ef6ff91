"""Gaussian WaveNet (the ClariNet teacher; Ping, Peng & Chen 2018, section 3.1).

A causal dilated-convolution stack with gated units, residual and skip paths, conditioned on
a log-mel upsampled to the sample rate by transposed 2-D convolutions, whose output at sample
``t`` is the mean and log-scale of a single Gaussian over sample ``t + 1``. Layouts are
``[B, T, C]``; audio is ``[B, T]``.

* Training is parallel (teacher forcing): :meth:`WaveNet.__call__` on the whole clip.
* Sampling is autoregressive and *cached* (the "fast WaveNet" scheme): :func:`generate` scans
  over samples, and each layer keeps a ring buffer of its last ``dilation * (k - 1)`` inputs,
  so a step costs one column of every layer instead of the whole receptive field. With
  ``forced`` audio it runs the same loop on a given sequence, which must reproduce the parallel
  forward pass exactly (tests/test_wavenet.py).

Filter and gate convolutions (and their conditioning projections) are one convolution with
``2 * gate_channels`` outputs split in two: the same parameters and arithmetic as two.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tts_jax import audio as audio_lib
from tts_jax.config import ModelConfig
from tts_jax.distributions import LOG_SCALE_MIN, bound, gaussian_nll
from tts_jax.errors import UserError
from tts_jax.nn.materialize import materialize
from tts_jax.nn.run_axis import per_run_kernels


@dataclasses.dataclass(frozen=True)
class WaveNetConfig(ModelConfig):
    """``config.model`` of a Gaussian WaveNet run; the defaults are ClariNet's teacher (20
    layers in 2 stacks of dilations 1..512, filter 2, 128 channels)."""

    layers: int = 20
    stacks: int = 2  # dilation cycles: dilations 1, 2, 4, ... restart every layers / stacks
    residual_channels: int = 128
    gate_channels: int = 128
    skip_channels: int = 128
    kernel_size: int = 2
    front_kernel: int = 32  # ksw0306/ClariNet's input conv (the paper does not give it)
    upsample_strides: tuple[int, ...] = (16, 16)  # their product is the hop length
    mel_max: float = 3.0  # log-mel value mapped to 1 (the log floor maps to 0)
    log_scale_min: float = -7.0  # floor of the predicted log-scale

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_strides))


def dilations(layers: int, stacks: int) -> list[int]:
    """Dilation of each of ``layers`` residual blocks: 1, 2, 4, ... restarting every
    ``layers / stacks`` blocks (``stacks`` = the dilation cycles; ``stacks == layers``: every
    dilation 1)."""
    if layers % stacks:
        raise UserError(f"model.layers {layers} is not a multiple of model.stacks {stacks}")
    per_stack = layers // stacks
    return [2 ** (i % per_stack) for i in range(layers)]


def receptive_field(m) -> int:
    """Samples that output ``t`` depends on (inputs ``t - R + 1 .. t``), ``R = (front_kernel
    - 1) + (kernel_size - 1) * sum(dilations) + 1``. ``m``: a :class:`WaveNetConfig` or a
    :class:`WaveNet` (the same fields). With ``front_kernel`` 1 (a 1x1 input projection) this
    is the dilated stack's alone, as Tacotron 2's Table 4 counts it (30 layers, 3 cycles,
    filter 3: 6,139)."""
    stack = (m.kernel_size - 1) * sum(dilations(m.layers, m.stacks))
    return (m.front_kernel - 1) + stack + 1


def receptive_field_ms(config) -> float:
    """:func:`receptive_field` of ``config.model`` in milliseconds at ``config.data``'s rate."""
    samples = receptive_field(WaveNetConfig.from_config(config.model))
    return 1000.0 * samples / config.data.sample_rate


_DIMS = ("NWC", "WIO", "NWC")


def _causal_xla(x, kernel, dilation: int):
    pad = dilation * (kernel.shape[0] - 1)
    return lax.conv_general_dilated(
        x, kernel, (1,), [(pad, 0)], rhs_dilation=(dilation,), dimension_numbers=_DIMS
    )


def _causal_taps(x, kernel, dilation: int):
    """The causal convolution as one matmul over the k shifted views of ``x``, concatenated."""
    k, c, o = kernel.shape
    t = x.shape[1]
    xp = jnp.pad(x, ((0, 0), (dilation * (k - 1), 0), (0, 0)))
    views = jnp.concatenate([xp[:, j * dilation : j * dilation + t] for j in range(k)], axis=-1)
    return jnp.einsum("btc,co->bto", views, kernel.reshape(k * c, o))


def _per_run_kernels(lone, stacked):
    """``lone`` with a vmap rule: where the kernel (argument 1) is batched (a kernel per run),
    ``vmap(stacked)``; else ``vmap(lone)`` (XLA folds the batch into the convolution's)."""
    fn = jax.custom_batching.custom_vmap(lone)

    @fn.def_vmap
    def rule(axis_size, in_batched, *args):
        args = [
            a if b else jnp.broadcast_to(a, (axis_size, *a.shape))
            for a, b in zip(args, in_batched, strict=True)
        ]
        out = jax.vmap(stacked if in_batched[1] else lone)(*args)
        return out, jax.tree.map(lambda _: True, out)

    return fn


@functools.cache
def _causal_conv(dilation: int):
    """The custom-VJP causal convolution of one dilation (see :func:`causal_conv`)."""
    xla = functools.partial(_causal_xla, dilation=dilation)
    taps = functools.partial(_causal_taps, dilation=dilation)
    forward = _per_run_kernels(xla, taps)
    backward = _per_run_kernels(
        lambda x, w, dy: jax.vjp(xla, x, w)[1](dy), lambda x, w, dy: jax.vjp(taps, x, w)[1](dy)
    )

    @jax.custom_vjp
    def conv(x, kernel):
        return forward(x, kernel)

    conv.defvjp(lambda x, w: (forward(x, w), (x, w)), lambda res, dy: backward(*res, dy))
    return conv


def causal_conv(x, kernel, dilation: int = 1):
    """``[B, T, C] x [k, C, O] -> [B, T, O]``, output t seeing inputs t, t - d, ..., t - (k-1) d:
    the causal convolution in its stacked form (:class:`CausalConv` uses it while a stacked
    trainer traces its step, :mod:`tts_jax.nn.run_axis`; else the plain ``lax`` one).

    Alone it computes ``lax.conv_general_dilated`` and that convolution's own gradient, bit
    for bit. Under ``vmap`` with a kernel per run, where jax would batch the convolution into
    one grouped convolution (several times slower on XLA's CPU backend than the runs one by
    one), a custom vmap rule on its forward and on its backward pass makes each a matmul over
    the k shifted views of the input, batched over the runs; the two forms agree to float
    rounding (tests/test_run_convs.py). Reverse-mode only (a custom VJP): forward-mode
    differentiation (``jax.jvp``, ``jacfwd``) needs the plain form."""
    return _causal_conv(dilation)(x, kernel)


class CausalConv(nn.Module):
    """``[B, T, C] -> [B, T, features]``; output t sees inputs t, t - d, ..., t - (k-1) d."""

    features: int
    kernel_size: int
    dilation: int = 1

    @nn.compact
    def __call__(self, x):
        kernel = self.param(
            "kernel",
            nn.initializers.kaiming_normal(),
            (self.kernel_size, x.shape[-1], self.features),
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        conv = causal_conv if per_run_kernels() else _causal_xla  # tts_jax/nn/run_axis.py
        return conv(x, kernel, self.dilation) + bias


class Dense(nn.Module):
    """1x1 convolution ``[..., C] -> [..., features]`` (kaiming-normal, as the reference)."""

    features: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.features, kernel_init=nn.initializers.kaiming_normal())(x)


class UpsampleLayer(nn.Module):
    """Single-channel transposed 2-D convolution over (time, frequency) ``[B, F, M, 1] ->
    [B, F * s, M, 1]``: kernel (2 s, 3), stride (s, 1), padding (s / 2, 1), then leaky ReLU 0.4."""

    stride: int

    @nn.compact
    def __call__(self, x):
        s = self.stride
        k, p = 2 * s, s // 2
        kernel = self.param("kernel", nn.initializers.kaiming_normal(), (k, 3, 1, 1))
        bias = self.param("bias", nn.initializers.zeros, (1,))
        if s % 2:
            y = _transposed_upsample_dilated(x, kernel, s, p)
        else:
            y = transposed_upsample(x[..., 0], kernel[..., 0, 0], s)[..., None]
        return nn.leaky_relu(y + bias, 0.4)


def _transposed_upsample_dilated(x, kernel, s: int, p: int):
    """:class:`UpsampleLayer`'s transposed convolution as the correlation of the time-stuffed
    input ``[B, F, M, 1]`` with the flipped kernel ``[2 s, 3, 1, 1]`` (any stride)."""
    k = kernel.shape[0]
    return lax.conv_general_dilated(
        x,
        kernel[::-1, ::-1],
        (1, 1),
        [(k - 1 - p, k - 1 - p), (1, 1)],
        lhs_dilation=(s, 1),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


def transposed_upsample(x, kernel, s: int):
    """:class:`UpsampleLayer`'s transposed convolution for an even stride ``s``, polyphase:
    ``[B, F, M]`` x kernel ``[2 s, 3]`` -> ``[B, F * s, M]``.

    Output sample ``q s + r`` (phase r) receives ``x[q - d, m + 1 - b] * kernel[r + s / 2 + d s,
    b]`` for d in {-1, 0, 1} with that tap in range, so the whole layer is 9 shifted views of the
    *un-stuffed* input times a ``[9, s]`` matrix: ``s`` times fewer multiply-adds than the
    correlation over the zero-stuffed input (:func:`_transposed_upsample_dilated`, the same sums
    up to float rounding), and, under ``vmap`` over runs with a kernel each, a batched matmul
    where the stuffed form becomes a grouped convolution (slow on XLA's CPU backend)."""
    b, f, m = x.shape
    k, p = 2 * s, s // 2
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1)))
    taps = [(d, j) for d in (-1, 0, 1) for j in range(3)]
    views = jnp.stack([xp[:, 1 - d : 1 - d + f, 2 - j : 2 - j + m] for d, j in taps], axis=-1)
    rows = np.asarray([[r + p + d * s for r in range(s)] for d, _ in taps])  # [9, s]
    cols = np.asarray([j for _, j in taps])[:, None]
    phase = jnp.where((rows >= 0) & (rows < k), kernel[np.clip(rows, 0, k - 1), cols], 0.0)
    y = jnp.einsum("bfmj,jr->bfrm", views, phase.astype(x.dtype))
    return y.reshape(b, f * s, m)


class ConditionUpsampler(nn.Module):
    """Log-mel ``[B, F, M]`` (normalised to [0, 1]) -> ``[B, F * prod(strides), M]`` by one
    :class:`UpsampleLayer` per stride (paper section 3.1; ksw0306/ClariNet)."""

    strides: tuple[int, ...]

    @nn.compact
    def __call__(self, mel):
        x = mel[..., None]  # time and frequency are the two spatial axes
        for s in self.strides:
            x = UpsampleLayer(s)(x)
        return x[..., 0]


SQRT_HALF = 0.5**0.5  # a Python float: weakly typed, so bfloat16 stays bfloat16


class ResidualBlock(nn.Module):
    """Gated dilated causal conv: ``z = tanh(W_f x + V_f c) * sigmoid(W_g x + V_g c)``;
    returns ``((x + W_r z) * sqrt(0.5), W_s z)``."""

    residual_channels: int
    gate_channels: int
    skip_channels: int
    kernel_size: int
    dilation: int

    def setup(self):
        self.conv = CausalConv(2 * self.gate_channels, self.kernel_size, self.dilation)
        self.cond = Dense(2 * self.gate_channels)
        self.res = Dense(self.residual_channels)
        self.skip = Dense(self.skip_channels)

    def __call__(self, x, c):  # [B, T, R], [B, T, M]
        out, skip = self.gated(self.conv(x), x, c)
        return materialize(out), skip  # the residual stream, kept (tts_jax/nn/materialize.py)

    def gated(self, h, x, c):
        """The block after its dilated conv ``h``: shared by the parallel and cached paths."""
        h = h + self.cond(c)
        f, g = jnp.split(h, 2, axis=-1)
        z = jnp.tanh(f) * jax.nn.sigmoid(g)
        return (x + self.res(z)) * SQRT_HALF, self.skip(z)


class WaveNet(nn.Module):
    """audio ``[B, T]`` and mel ``[B, T / hop, M]`` -> (mean, log_scale) ``[B, T]`` of the
    Gaussian over the *next* sample. The fields are :class:`WaveNetConfig`'s."""

    layers: int
    stacks: int
    residual_channels: int
    gate_channels: int
    skip_channels: int
    kernel_size: int
    front_kernel: int
    upsample_strides: tuple[int, ...]

    def setup(self):
        self.front = CausalConv(self.residual_channels, self.front_kernel)
        self.blocks = [
            ResidualBlock(
                self.residual_channels, self.gate_channels, self.skip_channels, self.kernel_size, d
            )
            for d in self.dilations
        ]
        self.post1 = Dense(self.skip_channels)
        self.post2 = Dense(2)
        self.upsampler = ConditionUpsampler(tuple(self.upsample_strides))

    @property
    def dilations(self) -> list[int]:
        return dilations(self.layers, self.stacks)

    def receptive_field(self) -> int:
        return receptive_field(self)

    def upsample(self, mel):
        """Normalised log-mel ``[B, F, M]`` -> ``[B, F * hop, M]``."""
        return self.upsampler(mel)

    def __call__(self, audio, mel):
        """Teacher forcing: audio ``[B, T]``, normalised mel ``[B, T / hop, M]``."""
        return self.forward(audio, self.upsample(mel))

    def forward(self, audio, cond):
        """The stack on already upsampled conditioning ``[B, T, M]``."""
        h = nn.relu(self.front(audio[..., None]))
        skip = 0.0
        for block in self.blocks:
            h, s = block(h, cond)
            skip = skip + s
        return self.head(skip)

    def head(self, skip):
        out = self.post2(nn.relu(self.post1(nn.relu(skip))))
        return out[..., 0], out[..., 1]

    # ---- cached autoregressive step (see generate) ----

    def step(self, buffers, x_t, c_t, t):
        """One sample of every layer from cached inputs. ``buffers`` is a list (front conv,
        then one per block) of ring buffers ``[B, L, C]`` of past inputs, L = d (k - 1) + 1
        slots holding inputs t - L + 1 .. t at slot index (time mod L)."""
        new_buffers = []
        h, skip = None, 0.0
        convs = [self.front, *[b.conv for b in self.blocks]]
        dilations = [1, *self.dilations]
        kernels = [self.front_kernel] + [self.kernel_size] * self.layers
        inp = x_t[:, None]  # [B, 1]
        for i, (conv, d, k, buf) in enumerate(zip(convs, dilations, kernels, buffers, strict=True)):
            size = buf.shape[1]
            buf = lax.dynamic_update_slice_in_dim(buf, inp[:, None, :], t % size, axis=1)
            new_buffers.append(buf)
            # Taps j = 0..k-1 read inputs t - (k - 1 - j) d.
            idx = (t - (k - 1 - jnp.arange(k)) * d) % size
            window = jnp.take(buf, idx, axis=1)  # [B, k, C]
            kernel, bias = conv.variables["params"]["kernel"], conv.variables["params"]["bias"]
            out = jnp.einsum("bkc,kco->bo", window, kernel) + bias
            if i == 0:
                h = nn.relu(out)
                inp = h
            else:
                block = self.blocks[i - 1]
                h, s = block.gated(out, h, c_t)
                skip = skip + s
                inp = h
        mean, log_scale = self.head(skip)
        return new_buffers, mean, log_scale

    def init_buffers(self, batch: int, dtype=jnp.float32):
        sizes = [self.front_kernel] + [d * (self.kernel_size - 1) + 1 for d in self.dilations]
        channels = [1] + [self.residual_channels] * self.layers
        return [jnp.zeros((batch, n, c), dtype) for n, c in zip(sizes, channels, strict=True)]


def generate(
    model: WaveNet,
    params,
    cond,
    rng,
    *,
    forced=None,
    log_scale_min: float = LOG_SCALE_MIN,
    temperature: float = 1.0,
):
    """Cached autoregressive sampling: ``cond`` ``[B, T, M]`` (upsampled) -> audio ``[B, T]``.

    Sample t + 1 ~ N(mean_t, (temperature * sigma_t)^2), clipped to [-1, 1]; the first input
    is 0 (silence), as in training where sample 0 conditions nothing. With ``forced`` ``[B, T]``
    the loop feeds the given samples instead of its own and returns the per-step
    (mean, log_scale) ``[B, T]``: the parallel forward pass on ``forced``.
    """
    b, t_len, _ = cond.shape
    variables = {"params": params}
    buffers = model.apply(variables, b, method=WaveNet.init_buffers)

    def body(carry, inputs):
        buffers, x_t = carry
        c_t, t, key, forced_next = inputs
        buffers, mean, log_scale = model.apply(variables, buffers, x_t, c_t, t, method=WaveNet.step)
        sigma = jnp.exp(bound(log_scale, log_scale_min)) * temperature
        sample = jnp.clip(mean + sigma * jax.random.normal(key, mean.shape), -1.0, 1.0)
        nxt = sample if forced is None else forced_next
        return (buffers, nxt), (nxt, mean, log_scale)

    keys = jax.random.split(rng, t_len)
    forced_seq = (
        jnp.zeros((t_len, b))
        if forced is None
        else jnp.concatenate([forced[:, 1:], jnp.zeros((b, 1))], axis=1).T
    )
    x0 = jnp.zeros((b,)) if forced is None else forced[:, 0]
    (_, _), (samples, means, log_scales) = lax.scan(
        body,
        (buffers, x0),
        (cond.transpose(1, 0, 2), jnp.arange(t_len), keys, forced_seq),
    )
    if forced is not None:
        return means.T, log_scales.T
    return samples.T


# ------------------------------------------------------------------ conditioning, building


def normalize_mel(mel, config):
    """Log-mel -> [0, 1]: the log floor maps to 0 and ``model.mel_max`` (natural-log units)
    to 1, clipped (paper: conditioning normalised to [0, 1])."""
    lo = float(np.log(audio_lib.MelConfig.from_config(config.data).log_floor))
    mel_max = WaveNetConfig.from_config(config.model).mel_max
    return jnp.clip((mel - lo) / (mel_max - lo), 0.0, 1.0)


def build_model(config) -> WaveNet:
    m = WaveNetConfig.from_config(config.model)
    if m.hop != config.data.hop_length:
        raise UserError(
            f"model.upsample_strides {m.upsample_strides} multiply to "
            f"{m.hop}, not data.hop_length {config.data.hop_length}"
        )
    return WaveNet(
        layers=m.layers,
        stacks=m.stacks,
        residual_channels=m.residual_channels,
        gate_channels=m.gate_channels,
        skip_channels=m.skip_channels,
        kernel_size=m.kernel_size,
        front_kernel=m.front_kernel,
        upsample_strides=m.upsample_strides,
    )


def teacher_nll(model: WaveNet, params, audio, mel, log_scale_min: float):
    """Mean Gaussian NLL of samples 1..T-1 given everything before them (teacher forcing)."""
    mean, log_scale = model.apply({"params": params}, audio, mel)
    return jnp.mean(gaussian_nll(audio[:, 1:], mean[:, :-1], log_scale[:, :-1], log_scale_min))
