"""Conv-TasNet in the shared trainer: mixture data, state, train and eval steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.config import data_seed
from tts_jax.data import Data
from tts_jax.data.mixtures import MixtureSegments, load_split, sample_rate_of
from tts_jax.family import count_params
from tts_jax.models.conv_tasnet.model import (
    ConvTasNetConfig,
    build_model,
    pit_si_snr,
    si_snr_improvement,
)
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState, make_train_step


def make_data(config, process_index, process_count):
    root = config.data.mixtures
    sr = sample_rate_of(root)
    segment = int(config.train.segment_seconds * sr)
    common = dict(seed=data_seed(config), process_index=process_index, process_count=process_count)
    train = MixtureSegments(load_split(root, "train"), config.train.batch_size, segment, **common)
    val_items = load_split(root, "validation")

    def eval_batches():
        n = min(len(val_items), config.train.batch_size)
        return MixtureSegments(val_items, n, segment, shuffle=False, **common).epoch_batches()

    describe = (
        f"data: {len(train.items)} training mixtures at {sr} Hz, {segment}-sample segments",
    )
    return Data(train=train, eval=eval_batches, describe=describe)


def example_batch(config) -> dict:
    """``{"mixture" [1, T], "sources" [1, C, T]}`` of zeros, T four filter lengths (the
    parameters do not depend on T, and the mixtures need not be on disk)."""
    cfg = ConvTasNetConfig.from_config(config.model)
    t = 4 * cfg.filter_length
    return {
        "mixture": np.zeros((1, t), np.float32),
        "sources": np.zeros((1, cfg.num_sources, t), np.float32),
    }


def init_state(config, rng, batch):
    params = build_model(config).init(rng, batch["mixture"][:1])["params"]
    tx, _ = make_optimizer(config.optim)
    return TrainState.create(params, tx, rng)


def train_step(config):
    model = build_model(config)
    _, schedule = make_optimizer(config.optim)

    def loss_fn(params, model_state, batch, rng):
        estimates = model.apply({"params": params}, batch["mixture"])
        score, _ = pit_si_snr(estimates, batch["sources"])
        return -jnp.mean(score), ({"si_snr": jnp.mean(score)}, model_state)

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def eval_step(config):
    model = build_model(config)

    def step(state, batch):
        estimates = model.apply({"params": state.params}, batch["mixture"])
        improvement, score = si_snr_improvement(estimates, batch["sources"], batch["mixture"])
        return {"si_snr": jnp.mean(score), "si_snri": jnp.mean(improvement)}

    return step


def param_count(config) -> dict[str, int]:
    mixture = example_batch(config)["mixture"]
    return {"model": count_params(lambda: build_model(config).init(jax.random.key(0), mixture))}
