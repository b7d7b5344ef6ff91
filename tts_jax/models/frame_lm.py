"""A causal convolutional mel predictor: the smallest family that exercises the trainer.

Predicts log-mel frame ``t`` from frames ``< t`` with a few causal convolutions (batch norm,
dropout) and a residual on the previous frame. It is the foundation's smoke-test model: it
uses every part of the text-to-mel batch that masks touch, has a non-trained collection
(batch statistics) and randomness (dropout), and its loss falls within a few dozen steps on
CPU. It is not a speech model; Tacotron 2 is (tts_jax.models.tacotron2).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.config import ModelConfig
from tts_jax.data.inputs import text_mel_data
from tts_jax.family import Family, Stacking, count_params
from tts_jax.plotting import mel_image
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState, make_train_step


@dataclasses.dataclass(frozen=True)
class FrameLMConfig(ModelConfig):
    """``config.model`` of a frame_lm run (experiments/frame_lm.py:cpu), the one place its
    sizes are written."""

    channels: int = 64
    kernel_size: int = 5
    num_layers: int = 2
    dropout: float = 0.1


class CausalConvBlock(nn.Module):
    """conv1d (left-padded, so output t sees inputs <= t) -> batch norm -> ReLU -> dropout."""

    channels: int
    kernel_size: int
    dropout: float

    @nn.compact
    def __call__(self, x, *, train: bool):  # [B, T, C] -> [B, T, channels]
        x = nn.Conv(self.channels, (self.kernel_size,), padding=[(self.kernel_size - 1, 0)])(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.relu(x)
        return nn.Dropout(self.dropout, deterministic=not train)(x)


class FrameLM(nn.Module):
    channels: int
    kernel_size: int
    num_layers: int
    dropout: float

    @nn.compact
    def __call__(self, mels, *, train: bool):
        """mels [B, T, M] -> prediction of each frame from the ones before it [B, T, M]."""
        previous = jnp.pad(mels, ((0, 0), (1, 0), (0, 0)))[:, :-1]
        x = previous
        for _ in range(self.num_layers):
            x = CausalConvBlock(self.channels, self.kernel_size, self.dropout)(x, train=train)
        return previous + nn.Dense(mels.shape[-1])(x)


def masked_mse(pred, target, mask):
    """Mean over real frames (``mask`` [B, T]) and mel bins of the squared error."""
    err = jnp.sum(jnp.square(pred - target), axis=-1) * mask
    return jnp.sum(err) / (jnp.maximum(jnp.sum(mask), 1.0) * pred.shape[-1])


def _model(config) -> FrameLM:
    cfg = FrameLMConfig.from_config(config.model)
    return FrameLM(cfg.channels, cfg.kernel_size, cfg.num_layers, cfg.dropout)


def make_data(config, process_index, process_count):
    return text_mel_data(config, process_index, process_count)


def example_batch(config) -> dict:
    """``{"mels" [1, 8, n_mels], "mel_mask" [1, 8]}`` of zeros (the parameters do not depend on
    the length)."""
    return {
        "mels": np.zeros((1, 8, config.data.n_mels), np.float32),
        "mel_mask": np.ones((1, 8), np.float32),
    }


def optimizer(config, learning_rate=None):
    """The run's optax transformation (``learning_rate``: as in
    :func:`tts_jax.train.optim.make_optimizer`)."""
    return make_optimizer(config.optim, learning_rate)[0]


def init_state(config, rng, batch):
    variables = _model(config).init({"params": rng, "dropout": rng}, batch["mels"], train=False)
    tx = optimizer(config)
    return TrainState.create(
        variables["params"], tx, rng, model_state={"batch_stats": variables["batch_stats"]}
    )


def train_step(config):
    model = _model(config)
    _, schedule = make_optimizer(config.optim)

    def loss_fn(params, model_state, batch, rng):
        pred, updates = model.apply(
            {"params": params, **model_state},
            batch["mels"],
            train=True,
            rngs={"dropout": rng},
            mutable=["batch_stats"],
        )
        loss = masked_mse(pred, batch["mels"], batch["mel_mask"])
        return loss, ({"mse": loss}, {"batch_stats": updates["batch_stats"]})

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def eval_step(config):
    model = _model(config)

    def step(state, batch):
        pred = model.apply(
            {"params": state.params, **state.model_state}, batch["mels"], train=False
        )
        mask = batch["mel_mask"] * batch["valid"][:, None]
        return {"mse": masked_mse(pred, batch["mels"], mask), "weight": jnp.sum(mask)}

    return step


def eval_summaries(config, state, batch):
    pred = _model(config).apply(
        {"params": state.params, **state.model_state}, batch["mels"], train=False
    )
    n = int(jax.device_get(batch["mel_lengths"])[0])
    target = np.asarray(jax.device_get(batch["mels"]))[0, :n]
    pred = np.asarray(jax.device_get(pred))[0, :n]
    return {"images": {"mel": mel_image({"target": target, "one-step prediction": pred})}}


def param_count(config) -> dict[str, int]:
    mels = example_batch(config)["mels"]
    rngs = {"params": jax.random.key(0), "dropout": jax.random.key(0)}
    return {"model": count_params(lambda: _model(config).init(rngs, mels, train=False))}


FAMILY = Family(
    name="frame_lm",
    make_data=make_data,
    init_state=init_state,
    example_batch=example_batch,
    train_step=train_step,
    eval_step=eval_step,
    eval_summaries=eval_summaries,
    param_count=param_count,
    stacking=Stacking(optimizer=optimizer),
)
