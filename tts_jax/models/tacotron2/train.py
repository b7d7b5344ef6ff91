"""Tacotron 2 in the shared trainer: data, state, train and eval steps, summaries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax import audio
from tts_jax.data.inputs import text_mel_data
from tts_jax.family import count_params
from tts_jax.models.tacotron2.alignment import alignment_focus, alignment_monotonicity
from tts_jax.models.tacotron2.losses import losses
from tts_jax.models.tacotron2.model import Tacotron2, Tacotron2Config, build_model
from tts_jax.nn.zoneout import add_forget_bias
from tts_jax.plotting import alignment_image, mel_image
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState, make_train_step


def make_data(config, process_index, process_count):
    cfg = Tacotron2Config.from_config(config.model)
    return text_mel_data(
        config,
        process_index,
        process_count,
        frames_multiple=cfg.reduction,
        linear=cfg.linear_head,
    )


def pass_rngs(rng, prenet_dropout: float):
    """The random streams of a pass: a training step's (``rng`` split into dropout and
    zoneout), or an evaluation's (``rng`` None), where only the prenet's always-on dropout
    draws, from a fixed key."""
    if rng is not None:
        d, z = jax.random.split(rng)
        return {"dropout": d, "zoneout": z}
    return {"dropout": jax.random.PRNGKey(0)} if prenet_dropout > 0 else None


def apply_model(model, variables, batch, *, train, rng=None, mutable=False):
    rngs = pass_rngs(rng, model.cfg.prenet_dropout)
    return model.apply(
        variables,
        batch["ids"],
        batch["id_lengths"],
        batch["mels"],
        batch["mel_lengths"],
        train=train,
        rngs=rngs,
        mutable=mutable,
    )


def init_state(config, rng, batch):
    model = build_model(config)
    p, d, z = jax.random.split(rng, 3)
    variables = model.init(
        {"params": p, "dropout": d, "zoneout": z},
        batch["ids"],
        batch["id_lengths"],
        batch["mels"],
        batch["mel_lengths"],
        train=False,
    )
    params = variables["params"]
    if model.cfg.lstm_forget_bias:
        params = add_forget_bias(params, model.cfg.lstm_forget_bias)
    tx, _ = make_optimizer(config.optim)
    return TrainState.create(params, tx, rng, model_state={"batch_stats": variables["batch_stats"]})


def train_step(config, model: Tacotron2 | None = None):
    """The jittable train step; ``model`` (default ``build_model(config)``) lets a benchmark
    time a variant of the same config."""
    model = model or build_model(config)
    _, schedule = make_optimizer(config.optim)

    def loss_fn(params, model_state, batch, rng):
        out, updates = apply_model(
            model,
            {"params": params, **model_state},
            batch,
            train=True,
            rng=rng,
            mutable=["batch_stats"],
        )
        loss, terms = losses(out, batch, params, model.cfg, config.data.sample_rate, batch["step"])
        terms["focus"] = alignment_focus(
            out["alignments"],
            batch["id_lengths"],
            batch["mel_lengths"],
            model.cfg.reduction,
            batch["valid"],
        )
        return loss, (terms, {"batch_stats": updates["batch_stats"]})

    step_fn = make_train_step(loss_fn, schedule, config.train.compute_dtype)

    def train_step(state, batch):  # the loss sees the step (guided-attention decay)
        return step_fn(state, dict(batch, step=state.step))

    return train_step


def eval_step(config):
    model = build_model(config)

    def step(state, batch):
        out = apply_model(model, {"params": state.params, **state.model_state}, batch, train=False)
        loss, terms = losses(
            out, batch, state.params, model.cfg, config.data.sample_rate, state.step
        )
        terms["loss"] = loss
        terms["focus"] = alignment_focus(
            out["alignments"],
            batch["id_lengths"],
            batch["mel_lengths"],
            model.cfg.reduction,
            batch["valid"],
        )
        terms["monotonicity"] = alignment_monotonicity(
            out["alignments"], batch["mel_lengths"], model.cfg.reduction, batch["valid"]
        )
        return terms

    return step


def eval_summaries(config, state, batch):
    """Alignment and mel pictures (teacher forced and free running) and Griffin-Lim audio of
    the first validation utterance."""
    model = build_model(config)
    variables = {"params": state.params, **state.model_state}
    host = jax.device_get(batch)
    one = {k: v[:1] for k, v in host.items()}
    tf = jax.device_get(apply_model(model, variables, one, train=False))
    n, t = int(one["id_lengths"][0]), int(one["mel_lengths"][0])
    steps = -(-t // model.cfg.reduction)
    free = jax.device_get(
        model.apply(
            variables,
            one["ids"],
            one["id_lengths"],
            method=Tacotron2.infer,
            max_decoder_steps=int(steps * 1.5) + 2,
            rngs={"dropout": jax.random.PRNGKey(0)},
        )
    )
    length = int(free["lengths"][0])
    free_steps = -(-length // model.cfg.reduction)
    mel_cfg = audio.MelConfig.from_config(config.data)
    return {
        "images": {
            "alignment_teacher_forced": alignment_image(tf["alignments"][0, :steps, :n]),
            "alignment_free_running": alignment_image(free["alignments"][0, :free_steps, :n]),
            "mel": mel_image(
                {
                    "target": one["mels"][0, :t],
                    "predicted (teacher forced)": tf["mel_after"][0, :t],
                    "synthesized (free running)": free["mel_after"][0, :length],
                }
            ),
        },
        "audio": {
            "griffin_lim_free_running": audio.mel_to_audio(
                free["mel_after"][0, :length], mel_cfg, n_iter=30
            )
        },
    }


def example_batch(config, batch_size: int = 1, text_length: int = 32):
    """Dummy inputs of the shapes ``init_state`` traces (no data read)."""
    r = Tacotron2Config.from_config(config.model).reduction
    return {
        "ids": np.ones((batch_size, text_length), np.int32),
        "id_lengths": np.full((batch_size,), text_length, np.int32),
        "mels": np.zeros((batch_size, 2 * r, config.data.n_mels), np.float32),
        "mel_lengths": np.full((batch_size,), 2 * r, np.int32),
    }


def param_count(config) -> dict[str, int]:
    frames = 12 * Tacotron2Config.from_config(config.model).reduction
    rngs = {k: jax.random.key(0) for k in ("params", "dropout", "zoneout")}
    ids, n = jnp.zeros((1, 8), jnp.int32), jnp.array([8])
    mels, f = jnp.zeros((1, frames, config.data.n_mels)), jnp.array([frames])
    init = lambda: build_model(config).init(rngs, ids, n, mels, f, train=False)  # noqa: E731
    return {"model": count_params(init)}
