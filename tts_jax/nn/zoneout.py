"""LSTM with zoneout (Krueger et al. 2016), as used by Tacotron 2's encoder and decoder."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.recurrent import DenseParams

GATES = ("i", "f", "g", "o")


class LSTMGates(nn.Module):
    """The four gate pre-activations of an LSTM, ``[x ++ h] @ W + b``: x [B, D], h [B, H] ->
    [B, 4H] in the order i, f, g, o, with the kernel fused once outside any loop.

    The parameters are those of flax's ``OptimizedLSTMCell`` (names, shapes, initialisers:
    ``ii``..``io`` kernels [D, H], ``hi``..``ho`` kernels [H, H] and biases [H]), so that
    checkpoints and the NVIDIA importer read either. ``constant=True`` takes the kernel and
    bias without gradient; see :class:`ZoneoutLSTMCell` for why.
    """

    features: int

    @nn.compact
    def __call__(self, x, h, *, constant: bool = False):
        def dense(prefix, width, use_bias, init):
            return {
                g: DenseParams(
                    self.features, use_bias=use_bias, kernel_init=init, name=f"{prefix}{g}"
                )(jnp.zeros((1, width), x.dtype))
                for g in GATES
            }

        inputs = dense("i", x.shape[-1], False, nn.initializers.lecun_normal())
        hidden = dense("h", h.shape[-1], True, nn.initializers.orthogonal())
        kernel, bias = fused_kernel(inputs, hidden)
        if constant:
            kernel, bias = jax.lax.stop_gradient(kernel), jax.lax.stop_gradient(bias)
        return jnp.concatenate([x, h], axis=-1) @ kernel + bias


def fused_kernel(inputs: dict, hidden: dict):
    """``({g: (kernel [D, H], None)}, {g: (kernel [H, H], bias [H])})`` -> kernel [D + H, 4H]
    and bias [4H] of ``[x ++ h] @ kernel + bias`` (gate order i, f, g, o)."""
    k_in = jnp.concatenate([inputs[g][0] for g in GATES], axis=-1)
    k_h = jnp.concatenate([hidden[g][0] for g in GATES], axis=-1)
    return jnp.concatenate([k_in, k_h], axis=0), jnp.concatenate([hidden[g][1] for g in GATES])


def split_kernel_grad(kernel_grad, bias_grad, input_dim: int) -> dict:
    """The inverse of :func:`fused_kernel` for gradients: kernel [D + H, 4H] and bias [4H] ->
    the ``LSTMGates`` parameter tree ``{ii: {kernel}, ..., ho: {kernel, bias}}``."""
    k_in, k_h = kernel_grad[:input_dim], kernel_grad[input_dim:]
    out = {}
    for j, (ki, kh, b) in enumerate(
        zip(
            jnp.split(k_in, 4, axis=-1),
            jnp.split(k_h, 4, axis=-1),
            jnp.split(bias_grad, 4),
            strict=True,
        )
    ):
        out[f"i{GATES[j]}"] = {"kernel": ki}
        out[f"h{GATES[j]}"] = {"kernel": kh, "bias": b}
    return out


class ZoneoutLSTMCell(nn.RNNCellBase):
    """An LSTM cell whose units keep their previous value with probability ``zoneout``.

    Training (``deterministic=False``): each unit of the cell state and of the output
    independently keeps its previous value with probability ``zoneout`` (random stream
    ``"zoneout"``). Inference: the expectation, ``z * previous + (1 - z) * new``.
    Carry ``(c, h)``, each ``[B, features]``; input ``[B, D]``; output ``h``.

    ``gate_offset`` [B, 4H] is the deferred kernel gradient of a recurrence (Tacotron 2's
    teacher-forced decoder): the gates are computed with the kernel and bias held constant,
    plus the offset (zeros). Autodiff then gives the offset's gradient, the gates' gradient
    dL/dz_t, and no per-step kernel gradient; the caller forms the kernel's gradient
    sum_t [x_t ++ h_{t-1}]^T dL/dz_t after the loop, in one matmul instead of one
    accumulation into a [D + H, 4H] buffer per step.
    """

    features: int
    zoneout: float = 0.1
    deterministic: bool = True

    @nn.compact
    def __call__(self, carry, x, gate_offset=None):
        c, h = carry
        z = LSTMGates(self.features, name="lstm")(x, h, constant=gate_offset is not None)
        if gate_offset is not None:
            z = z + gate_offset
        i, f, g, o = jnp.split(z, 4, axis=-1)
        new_c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        new_h = jax.nn.sigmoid(o) * jnp.tanh(new_c)
        zo = self.zoneout
        if zo > 0:
            if self.deterministic:
                new_c = zo * c + (1 - zo) * new_c
                new_h = zo * h + (1 - zo) * new_h
            else:
                kc, kh = jax.random.split(self.make_rng("zoneout"))
                new_c = jnp.where(jax.random.bernoulli(kc, zo, c.shape), c, new_c)
                new_h = jnp.where(jax.random.bernoulli(kh, zo, h.shape), h, new_h)
        return (new_c, new_h), new_h

    def initialize_carry(self, rng, input_shape):
        shape = (*input_shape[:-1], self.features)
        return jnp.zeros(shape), jnp.zeros(shape)

    @property
    def num_feature_axes(self) -> int:
        return 1


def add_forget_bias(params, value: float):
    """``params`` with ``value`` added to the forget-gate bias (``hf/bias``) of every LSTM.

    TensorFlow's ``LSTMCell`` (Rayhane-mamah/Tacotron-2) adds a constant ``forget_bias = 1.0``
    to the forget gate's pre-activation; flax's cells have none. Under a gradient optimiser a
    constant offset on an unregularised bias is the same as starting that bias at ``value``, so
    the parameter tree stays flax's and only the initial values change.
    """

    def visit(tree):
        if not isinstance(tree, dict):
            return tree
        out = {k: visit(v) for k, v in tree.items()}
        if isinstance(out.get("hf"), dict) and "bias" in out["hf"]:
            out["hf"] = dict(out["hf"], bias=out["hf"]["bias"] + value)
        return out

    return visit(params)
