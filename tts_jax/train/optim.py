"""Optax optimisers and learning-rate schedules from config, and freezing a part of the
parameters for a number of steps (warm-started parts trained on top of first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from tts_jax.errors import UserError


def tacotron2_schedule(
    init_value: float = 1e-3,
    decay_begin: int = 50_000,
    decay_steps: int = 40_000,
    decay_rate: float = 0.5,
    final_value: float = 1e-5,
) -> optax.Schedule:
    """REFERENCE / Rayhane-mamah: lr = init until ``decay_begin``, then
    ``init * rate ** ((step - begin) / decay_steps)``, clipped below at ``final_value``
    (1e-3 -> 1e-5 around step 310k)."""
    return optax.exponential_decay(
        init_value,
        transition_steps=decay_steps,
        decay_rate=decay_rate,
        transition_begin=decay_begin,
        end_value=final_value,
    )


# REFERENCE's Tacotron 2 values for a config's optim section (same as tacotron2_schedule()).
TACOTRON2_SCHEDULE = {
    "schedule": "exponential",
    "learning_rate": 1e-3,
    "decay_begin": 50_000,
    "decay_steps": 40_000,
    "decay_rate": 0.5,
    "final_learning_rate": 1e-5,
}


def make_schedule(cfg, learning_rate=None) -> optax.Schedule:
    """``cfg`` is a config's ``optim`` section; ``learning_rate``, when given, stands for
    ``cfg.learning_rate`` (it may be an array: a stacked run's rate injected as optimiser
    state, :mod:`tts_jax.train.stacked`).

    ``exponential``: ``lr * decay_rate ** ((step - decay_begin) / decay_steps)`` after
    ``decay_begin`` (stepwise when ``staircase``), floored at ``final_learning_rate`` if set.
    It covers the papers' schedules: Tacotron 2 (see :data:`TACOTRON2_SCHEDULE`), HiFi-GAN
    (x0.999 per epoch: ``decay_steps`` = steps per epoch, staircase), WaveNet / ClariNet
    (halved every 200k steps).

    ``warmup_steps > 0``: a linear ramp from 0 over that many steps first (Transformers and
    Conformers, Vaswani et al. 2017); the schedule above then starts at the ramp's end.
    """
    warmup = cfg.get("warmup_steps", 0)  # configs saved before the field existed: none
    if warmup < 0:
        raise UserError(f"optim.warmup_steps must be >= 0, got {warmup}")
    lr = cfg.learning_rate if learning_rate is None else learning_rate
    schedule = _base_schedule(cfg, lr)
    if not warmup:
        return schedule
    # Linear from 0 to learning_rate (where both schedules start), then the schedule counted
    # from there.
    ramp = optax.linear_schedule(0.0, lr, warmup)
    return optax.join_schedules([ramp, schedule], [warmup])


def _base_schedule(cfg, lr) -> optax.Schedule:
    if cfg.schedule == "constant":
        return optax.constant_schedule(lr)
    if cfg.schedule == "exponential":
        if cfg.decay_steps < 1:
            raise UserError(f"optim.decay_steps must be >= 1, got {cfg.decay_steps}")
        return optax.exponential_decay(
            lr,
            transition_steps=cfg.decay_steps,
            decay_rate=cfg.decay_rate,
            transition_begin=cfg.decay_begin,
            staircase=cfg.staircase,
            end_value=cfg.final_learning_rate or None,
        )
    raise UserError(f"optim.schedule must be 'constant' or 'exponential', got {cfg.schedule!r}")


class CountState(NamedTuple):
    count: jax.Array  # int32 scalar: updates seen


class HeldState(NamedTuple):
    count: jax.Array  # int32 scalar: updates seen
    inner: Any  # the held transformation's state


def zero_for(steps: int, mask: Callable[[Any], Any]) -> optax.GradientTransformation:
    """Gradients of the leaves ``mask(updates)`` marks True are zero during the first
    ``steps`` updates (decided on the update count, an array: no Python branch on the step);
    the others pass unchanged."""

    def init(params):
        del params
        return CountState(jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        del params
        frozen = state.count < steps
        updates = jax.tree.map(
            lambda g, m: jnp.where(frozen, jnp.zeros_like(g), g) if m else g,
            updates,
            mask(updates),
        )
        return updates, CountState(optax.safe_increment(state.count))

    return optax.GradientTransformation(init, update)


def held_for(steps: int, inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """``inner`` held still for its first ``steps`` updates: zero updates and its state left as
    it was, so that afterwards it starts as if new (Adam's moments, bias correction and its
    schedule count from the first update it makes)."""

    def init(params):
        return HeldState(jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates, state, params=None):
        new_updates, new_inner = inner.update(updates, state.inner, params)
        held = state.count < steps
        new_updates = jax.tree.map(lambda u: jnp.where(held, jnp.zeros_like(u), u), new_updates)
        new_inner = jax.tree.map(lambda a, b: jnp.where(held, a, b), state.inner, new_inner)
        return new_updates, HeldState(optax.safe_increment(state.count), new_inner)

    return optax.GradientTransformation(init, update)


def make_optimizer(
    cfg,
    learning_rate=None,
    *,
    frozen: Callable[[Any], Any] | None = None,
    frozen_steps: int = 0,
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Returns ``(tx, schedule)``: gradient clipping (if ``grad_clip_norm > 0``) then Adam/AdamW.
    ``learning_rate``: as in :func:`make_schedule`.

    ``frozen`` (params -> a tree of bools) with ``frozen_steps`` > 0: the parameters it marks
    stay exactly as they are for the first ``frozen_steps`` updates. Their gradients are zeroed
    before the clipping (whose global norm then measures the trained parameters alone), and
    they get an optimiser of their own, held still until then (:func:`held_for`): when they
    start training, Adam starts on them as on new parameters, not with a bias correction
    already spent on the frozen steps.
    """
    if frozen_steps < 0:
        raise UserError(f"the number of frozen steps must be >= 0, got {frozen_steps}")
    schedule = make_schedule(cfg, learning_rate)
    if cfg.name == "adam":
        opt = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    elif cfg.name == "adamw":
        opt = optax.adamw(
            schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    else:
        raise UserError(f"optim.name must be 'adam' or 'adamw', got {cfg.name!r}")
    freezing = frozen is not None and frozen_steps > 0
    if freezing:
        labels = lambda params: jax.tree.map(  # noqa: E731
            lambda m: "frozen" if m else "trained", frozen(params)
        )
        opt = optax.multi_transform({"frozen": held_for(frozen_steps, opt), "trained": opt}, labels)
    if cfg.grad_clip_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
    if freezing:
        opt = optax.chain(zero_for(frozen_steps, frozen), opt)
    return opt, schedule
