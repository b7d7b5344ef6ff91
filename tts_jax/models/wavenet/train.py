"""Training the Gaussian WaveNet: audio segments in, teacher-forced Gaussian NLL out."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tts_jax.data.inputs import audio_segment_data, audio_segment_example
from tts_jax.distributions import gaussian_nll
from tts_jax.family import count_params
from tts_jax.models.wavenet.model import WaveNetConfig, build_model, normalize_mel, teacher_nll
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState, make_train_step


def make_data(config, process_index, process_count):
    return audio_segment_data(
        config,
        process_index,
        process_count,
        config.train.segment_length,
        eval_segment_length=config.train.eval_segment_length,
    )


def example_batch(config) -> dict:
    """Zeros in the shapes of a training batch (restoring a checkpoint needs only those)."""
    return audio_segment_example(config)


def init_state(config, rng, batch):
    model = build_model(config)
    mel = normalize_mel(batch["mels"][:1], config)
    params = model.init(rng, batch["audio"][:1], mel)["params"]
    tx, _ = make_optimizer(config.optim)
    return TrainState.create(params, tx, rng)


def train_step(config):
    model = build_model(config)
    _, schedule = make_optimizer(config.optim)
    floor = WaveNetConfig.from_config(config.model).log_scale_min

    def loss_fn(params, model_state, batch, rng):
        nll = teacher_nll(
            model, params, batch["audio"], normalize_mel(batch["mels"], config), floor
        )
        return nll, ({"nll": nll}, model_state)

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def eval_step(config):
    model = build_model(config)
    floor = WaveNetConfig.from_config(config.model).log_scale_min

    def step(state, batch):
        audio = batch["audio"]
        mean, log_scale = model.apply(
            {"params": state.params}, audio, normalize_mel(batch["mels"], config)
        )
        nll = jnp.mean(gaussian_nll(audio[:, 1:], mean[:, :-1], log_scale[:, :-1], floor), axis=1)
        valid = batch["valid"].astype(jnp.float32)
        return {
            "nll": jnp.sum(nll * valid) / jnp.maximum(jnp.sum(valid), 1.0),
            "weight": jnp.sum(valid),
        }

    return step


def param_count(config) -> dict[str, int]:
    batch = example_batch(config)
    audio, mel = jnp.asarray(batch["audio"]), jnp.asarray(batch["mels"])
    init = lambda: build_model(config).init(jax.random.key(0), audio, mel)  # noqa: E731
    return {"model": count_params(init)}
