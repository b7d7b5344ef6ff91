"""Optax optimisers and learning-rate schedules from config."""

from __future__ import annotations

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


def make_optimizer(cfg, learning_rate=None) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Returns ``(tx, schedule)``: gradient clipping (if ``grad_clip_norm > 0``) then Adam/AdamW.
    ``learning_rate``: as in :func:`make_schedule`."""
    schedule = make_schedule(cfg, learning_rate)
    if cfg.name == "adam":
        opt = optax.adam(schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    elif cfg.name == "adamw":
        opt = optax.adamw(
            schedule, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay
        )
    else:
        raise UserError(f"optim.name must be 'adam' or 'adamw', got {cfg.name!r}")
    if cfg.grad_clip_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
    return opt, schedule
