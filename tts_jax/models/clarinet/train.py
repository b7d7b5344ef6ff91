"""Distilling the ClariNet student from a trained Gaussian WaveNet: the teacher's workdir
(config and parameters, frozen in the train state), the student built to match its
conditioner, and the distillation step."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import optax

from tts_jax import distributions as D
from tts_jax import workdir
from tts_jax.errors import UserError
from tts_jax.family import Stacking, count_params
from tts_jax.models import wavenet as W
from tts_jax.models.clarinet.model import (
    OBJECTIVES,
    ClariNetConfig,
    Student,
    distillation_terms,
    objective_weights,
    stft_config,
    stft_loss,
    weighted_objective,
)
from tts_jax.train.optim import make_optimizer
from tts_jax.train.precision import cast_floating, compute_dtype
from tts_jax.train.state import TrainState, make_train_step

make_data = W.FAMILY.make_data  # the teacher's audio segments
example_batch = W.FAMILY.example_batch


def check_config(config) -> None:
    m = ClariNetConfig.from_config(config.model)
    if m.objective not in OBJECTIVES:
        raise UserError(f"model.objective must be one of {OBJECTIVES}, got {m.objective!r}")
    if m.objective == "reverse_mc" and m.mc_samples < 1:
        raise UserError(f"model.mc_samples must be >= 1, got {m.mc_samples}")


# --------------------------------------------------------------------------------- teacher


def teacher_config(config):
    """The config saved in ``model.teacher_workdir`` (a trained wavenet run)."""
    path = ClariNetConfig.from_config(config.model).teacher_workdir
    if not path:
        raise UserError("model.teacher_workdir is empty: train a teacher (experiments/wavenet.py)")
    tconfig = workdir.read_config(path)
    if tconfig.model.family != "wavenet":
        raise UserError(
            f"model.teacher_workdir {path} holds {tconfig.model.family!r}, not a wavenet teacher"
        )
    if tconfig.data.hop_length != config.data.hop_length:
        raise UserError("the teacher was trained with another data.hop_length")
    return tconfig


def teacher_params(config):
    """The teacher's parameters, read from its newest checkpoint without building it."""
    teacher_config(config)  # checks it is a wavenet run
    return workdir.restore_params(ClariNetConfig.from_config(config.model).teacher_workdir)


def build_student(config, upsample_strides=None) -> Student:
    """The student of ``config``; its conditioner has the teacher's strides (it is a copy),
    read from the teacher's workdir unless given."""
    m = ClariNetConfig.from_config(config.model)
    if upsample_strides is None:
        teacher = W.WaveNetConfig.from_config(teacher_config(config).model)
        upsample_strides = teacher.upsample_strides
    return Student(
        flows=m.flows,
        layers=m.student_layers,
        residual_channels=m.student_channels,
        gate_channels=m.student_channels,
        skip_channels=m.student_channels,
        kernel_size=m.student_kernel_size,
        front_kernel=m.student_front_kernel,
        upsample_strides=tuple(upsample_strides),
    )


# ----------------------------------------------------------------------------- train state


def init_state(config, rng, batch):
    check_config(config)
    tconfig = teacher_config(config)
    inputs = _init_inputs(tconfig, batch)
    return _state(config, tconfig, teacher_params(config), rng, inputs)


def state_with_random_teacher(config, tconfig, rng, batch):
    """A distillation state whose frozen teacher (of ``tconfig``) is freshly initialised, for
    benchmarks and tests: the step reads only the teacher's config from its workdir."""
    inputs = _init_inputs(tconfig, batch)
    teacher = W.build_model(tconfig).init(rng, *inputs)["params"]
    return _state(config, tconfig, teacher, rng, inputs)


def _init_inputs(tconfig, batch):
    """(silent audio, normalised mel) of the batch's first example: what initialisation sees."""
    mel = W.normalize_mel(jnp.asarray(batch["mels"][:1]), tconfig)
    return jnp.zeros_like(jnp.asarray(batch["audio"][:1])), mel


def _state(config, tconfig, teacher, rng, inputs):
    strides = tuple(W.WaveNetConfig.from_config(tconfig.model).upsample_strides)
    params = build_student(config, strides).init(rng, *inputs)["params"]
    params = dict(params, upsampler=teacher["upsampler"])  # the teacher's conditioner
    return TrainState.create(params, optimizer(config), rng, model_state={"teacher": teacher})


def optimizer(config, learning_rate=None):
    """Adam from config (``learning_rate``: as in :func:`tts_jax.train.optim.make_optimizer`),
    skipping (and counting, in the ``nonfinite`` metric) any update whose
    gradients are not finite, so that an unstable objective shows up in the comparison as
    non-finite steps rather than ending the run."""
    tx, _ = make_optimizer(config.optim, learning_rate)
    return optax.apply_if_finite(tx, max_consecutive_errors=1000)


# ----------------------------------------------------------------------------------- steps


def _loss_fn(config, monte_carlo: bool):
    """The distillation loss ``(params, model_state, batch, rng, weights) -> (loss, (metrics,
    model_state))``; ``weights`` ``[len(TERMS)]`` (:func:`objective_weights`) pick the
    objective, so that one function serves every objective (and a stack of them)."""
    m = ClariNetConfig.from_config(config.model)
    tconfig = teacher_config(config)
    student = build_student(config)
    teacher = W.build_model(tconfig)
    cfg_stft = stft_config(config.data.sample_rate)
    dtype = compute_dtype(config.train.compute_dtype)

    def loss_fn(params, model_state, batch, rng, weights):
        # The frozen teacher runs in the compute dtype too (it is state, which mixed
        # precision does not cast).
        teacher_params = cast_floating(jax.lax.stop_gradient(model_state["teacher"]), dtype)
        if m.freeze_conditioner:
            params = dict(params, upsampler=jax.lax.stop_gradient(params["upsampler"]))
        y = batch["audio"]
        mel = W.normalize_mel(batch["mels"], tconfig)
        z_rng, mc_rng = jax.random.split(rng)
        z = jax.random.normal(z_rng, y.shape).astype(y.dtype)  # the same draw in any dtype
        x, mu_q, log_q = student.apply({"params": params}, z, mel)
        mu_p, log_p = teacher.apply({"params": teacher_params}, x, mel)
        # q(x_t | z_<t) against the teacher's p(x_t | x_<t), its output at t - 1.
        # The KL and its terms in float32 (under mixed precision the networks alone run in
        # bfloat16: differences of log-scales lose too much in 8 mantissa bits).
        mu_q, log_q, mu_p, log_p = (a.astype(jnp.float32) for a in (mu_q, log_q, mu_p, log_p))
        terms = distillation_terms(
            config, mu_q[:, 1:], log_q[:, 1:], mu_p[:, :-1], log_p[:, :-1], mc_rng, monte_carlo
        )
        frame = stft_loss(x.astype(jnp.float32), y.astype(jnp.float32), cfg_stft)  # FFT: f32
        loss, total = weighted_objective(weights, dict(terms, stft=frame))
        metrics = dict(terms, stft=frame, distill=loss)
        metrics["teacher_nll_of_student"] = jnp.mean(
            D.gaussian_nll(x[:, 1:], mu_p[:, :-1], log_p[:, :-1], m.log_scale_min)
        )
        metrics["log_scale_q"] = jnp.mean(log_q)
        metrics["log_scale_p"] = jnp.mean(log_p)
        metrics["nonfinite"] = 1.0 - jnp.isfinite(total).astype(jnp.float32)
        return total, (metrics, model_state)

    return loss_fn


def train_step(config):
    check_config(config)
    m = ClariNetConfig.from_config(config.model)
    loss_fn = partial(
        _loss_fn(config, m.objective == "reverse_mc"), weights=objective_weights(config)
    )
    _, schedule = make_optimizer(config.optim)
    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def stacked_train_step(configs):
    """One run's step inside a stack of ``configs`` (which may differ in the objective and its
    weights): ``(state, batch, {"loss_weights": [len(TERMS)]}) -> (state, metrics)``. The
    Monte-Carlo KL is drawn for every run when any run's objective needs it."""
    for c in configs:
        check_config(c)
    monte_carlo = any(
        ClariNetConfig.from_config(c.model).objective == "reverse_mc" for c in configs
    )
    loss_fn = _loss_fn(configs[0], monte_carlo)
    _, schedule = make_optimizer(configs[0].optim)  # only the logged rate's schedule

    def step(state, batch, hparams):
        weighted = partial(loss_fn, weights=hparams["loss_weights"])
        return make_train_step(weighted, schedule, configs[0].train.compute_dtype)(state, batch)

    return step


stacking = Stacking(
    optimizer=optimizer,
    model_fields=("objective", "stft_weight", "reg_weight"),
    hparams=lambda config: {"loss_weights": objective_weights(config)},
    train_step=stacked_train_step,
)


def eval_step(config):
    floor = ClariNetConfig.from_config(config.model).log_scale_min
    tconfig = teacher_config(config)
    student = build_student(config)
    teacher = W.build_model(tconfig)
    cfg_stft = stft_config(config.data.sample_rate)

    def step(state, batch):
        y = batch["audio"]
        mel = W.normalize_mel(batch["mels"], tconfig)
        z = jax.random.normal(jax.random.PRNGKey(0), y.shape)  # fixed noise: comparable evals
        x, mu_q, log_q = student.apply({"params": state.params}, z, mel)
        mu_p, log_p = teacher.apply({"params": state.model_state["teacher"]}, x, mel)
        kl = D.gaussian_kl(mu_q[:, 1:], log_q[:, 1:], mu_p[:, :-1], log_p[:, :-1], floor)
        nll = D.gaussian_nll(x[:, 1:], mu_p[:, :-1], log_p[:, :-1], floor)
        stft_d = jax.vmap(lambda a, b: stft_loss(a[None], b[None], cfg_stft))(x, y)
        valid = batch["valid"].astype(jnp.float32)
        n = jnp.maximum(jnp.sum(valid), 1.0)
        return {
            "kl_reverse": jnp.sum(jnp.mean(kl, axis=1) * valid) / n,
            "teacher_nll_of_student": jnp.sum(jnp.mean(nll, axis=1) * valid) / n,
            "stft": jnp.sum(stft_d * valid) / n,
            "weight": jnp.sum(valid),
        }

    return step


def param_count(config) -> dict[str, int]:
    """The student's flows. Its mel upsampler is the teacher's, counted with the teacher and
    left out here, so one stride stands in for the teacher's (no teacher workdir needed)."""
    batch = example_batch(config)
    audio, mel = jnp.asarray(batch["audio"]), jnp.asarray(batch["mels"])
    student = build_student(config, upsample_strides=(config.data.hop_length,))
    init = lambda: student.init(jax.random.key(0), audio, mel)  # noqa: E731
    return {"student": count_params(init, leave_out=("upsampler",))}
