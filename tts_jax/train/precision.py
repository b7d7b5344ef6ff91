"""Mixed precision: bfloat16 compute over float32 parameters and optimiser state.

``train.compute_dtype = "bfloat16"`` casts the parameters and the batch's floating arrays to
bfloat16 where a training step's loss is computed; gradients flow back through the cast to the
float32 parameters, which the optimiser updates in float32. The loss and metrics come back as
float32, and non-trained state (BatchNorm statistics, spectral-norm vectors) is stored in its
own dtype. Operations that meet a float32 operand created inside a model (a recurrent carry
initialised in float32, say) run in float32 by JAX's type promotion; the STFTs of the losses
run in float32 because XLA's FFT has no bfloat16 kernel. Evaluation and inference stay float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tts_jax.errors import UserError

COMPUTE_DTYPES = ("float32", "bfloat16")


def compute_dtype(name: str):
    if name not in COMPUTE_DTYPES:
        raise UserError(f"train.compute_dtype must be one of {COMPUTE_DTYPES}, got {name!r}")
    return jnp.dtype(name)


def cast_floating(tree, dtype):
    """Every floating array of ``tree`` in ``dtype``; integer and boolean arrays unchanged."""

    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, tree)


def like(new, old):
    """``new`` with the dtypes of ``old`` (same structure): state kept in its own precision."""
    return jax.tree.map(lambda a, b: jnp.asarray(a).astype(jnp.asarray(b).dtype), new, old)


def mixed_precision(loss_fn, name: str):
    """A ``loss_fn(params, model_state, batch, rng) -> (loss, (metrics, model_state))`` that
    computes in ``name`` (see the module docstring); ``loss_fn`` itself when float32."""
    dtype = compute_dtype(name)
    if dtype == jnp.float32:
        return loss_fn

    def wrapped(params, model_state, batch, rng):
        loss, (metrics, new_state) = loss_fn(
            cast_floating(params, dtype), model_state, cast_floating(batch, dtype), rng
        )
        return loss.astype(jnp.float32), (
            cast_floating(metrics, jnp.float32),
            like(new_state, model_state),
        )

    return wrapped
