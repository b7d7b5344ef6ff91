"""LSTM with zoneout (Krueger et al. 2016), as used by Tacotron 2's encoder and decoder."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class ZoneoutLSTMCell(nn.RNNCellBase):
    """An LSTM cell whose units keep their previous value with probability ``zoneout``.

    Training (``deterministic=False``): each unit of the cell state and of the output
    independently keeps its previous value with probability ``zoneout`` (random stream
    ``"zoneout"``). Inference: the expectation, ``z * previous + (1 - z) * new``.
    Carry ``(c, h)``, each ``[B, features]``; input ``[B, D]``; output ``h``.
    """

    features: int
    zoneout: float = 0.1
    deterministic: bool = True

    @nn.compact
    def __call__(self, carry, x):
        c, h = carry
        (new_c, new_h), _ = nn.OptimizedLSTMCell(self.features, name="lstm")((c, h), x)
        z = self.zoneout
        if z > 0:
            if self.deterministic:
                new_c = z * c + (1 - z) * new_c
                new_h = z * h + (1 - z) * new_h
            else:
                kc, kh = jax.random.split(self.make_rng("zoneout"))
                new_c = jnp.where(jax.random.bernoulli(kc, z, c.shape), c, new_c)
                new_h = jnp.where(jax.random.bernoulli(kh, z, h.shape), h, new_h)
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
