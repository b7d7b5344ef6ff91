"""Train state and the standard single-optimiser training step.

The trainer needs only a pytree with a ``step`` field; families with one optimiser use
:class:`TrainState` and :func:`make_train_step`; a GAN family defines its own state with two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from tts_jax.train.precision import mixed_precision


class TrainState(struct.PyTreeNode):
    step: jax.Array  # int32 scalar: optimiser updates done
    params: Any
    opt_state: Any
    model_state: Any  # non-trained collections (batch_stats, ...), {} if none
    rng: jax.Array  # raw uint32 base key; step s uses fold_in(rng, s)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @classmethod
    def create(cls, params, tx, rng, model_state=None) -> TrainState:
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            model_state=model_state if model_state is not None else {},
            rng=rng,
            tx=tx,
        )


# loss_fn(params, model_state, batch, rng) -> (loss, (metrics, new_model_state))
LossFn = Callable[[Any, Any, dict, jax.Array], tuple[jax.Array, tuple[dict, Any]]]


def skip_if_nonfinite(old, new, finite, metrics: dict):
    """The non-finite policy, inside a jitted step: ``new`` when ``finite``, else ``old`` with
    only its step advanced (parameters, optimiser and model state unchanged), and
    ``metrics["skipped"]`` 1.0. The trainer stops after ``train.max_skipped_steps`` skips in a
    row. With ``finite`` true the result is ``new`` bitwise."""
    kept = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    metrics = dict(metrics, skipped=1.0 - finite.astype(jnp.float32))
    return kept.replace(step=new.step), metrics


def make_train_step(
    loss_fn: LossFn, schedule: optax.Schedule | None = None, compute_dtype: str = "float32"
):
    """A pure ``(state, batch) -> (state, metrics)`` step: one gradient update on ``loss_fn``,
    skipped when the loss or a gradient is not finite (:func:`skip_if_nonfinite`).
    ``compute_dtype`` "bfloat16": mixed precision (:mod:`tts_jax.train.precision`).

    The step's randomness (dropout, zoneout) is ``fold_in(state.rng, state.step)``: a resumed
    run draws exactly what an uninterrupted one would.
    """

    loss_fn = mixed_precision(loss_fn, compute_dtype)

    def train_step(state: TrainState, batch: dict):
        rng = jax.random.fold_in(state.rng, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
        if schedule is not None:
            metrics["learning_rate"] = schedule(state.step)
        new_state = state.replace(
            step=state.step + 1, params=params, opt_state=opt_state, model_state=model_state
        )
        finite = jnp.isfinite(loss) & jnp.isfinite(metrics["grad_norm"])
        return skip_if_nonfinite(state, new_state, finite, metrics)

    return train_step
