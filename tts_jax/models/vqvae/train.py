"""VQ-VAE in the shared trainer: data, state, train and eval steps, summaries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.data.inputs import text_mel_data
from tts_jax.family import count_params
from tts_jax.models.vqvae.model import VQVAEConfig, build_model, denormalize, normalize, vq_loss
from tts_jax.plotting import mel_image
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState, make_train_step


def make_data(config, process_index, process_count):
    multiple = VQVAEConfig.from_config(config.model).frames_multiple
    return text_mel_data(config, process_index, process_count, frames_multiple=multiple)


def example_batch(config) -> dict:
    """``{"mels" [1, T, n_mels], "mel_mask" [1, T]}`` of zeros, T a multiple of the frames per
    code (the parameters do not depend on T)."""
    t = 8 * VQVAEConfig.from_config(config.model).frames_multiple
    return {
        "mels": np.zeros((1, t, config.data.n_mels), np.float32),
        "mel_mask": np.ones((1, t), np.float32),
    }


def init_state(config, rng, batch):
    variables = build_model(config).init(rng, normalize(batch["mels"][:1], config))
    tx, _ = make_optimizer(config.optim)
    stats = {k: v for k, v in variables.items() if k != "params"}
    return TrainState.create(variables["params"], tx, rng, model_state=stats)


def train_step(config):
    model = build_model(config)
    _, schedule = make_optimizer(config.optim)
    beta = VQVAEConfig.from_config(config.model).beta

    def loss_fn(params, model_state, batch, rng):
        mels = normalize(batch["mels"], config)
        (recon, info), new_state = model.apply(
            {"params": params, **model_state},
            mels,
            batch["mel_mask"],
            train=True,
            mutable=list(model_state),
        )
        total, rec = vq_loss(recon, mels, batch["mel_mask"], info, beta)
        metrics = {
            "reconstruction": rec,
            "commitment": info["losses"]["commit"],
            "perplexity": info["perplexity"],
        }
        return total, (metrics, dict(new_state))

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def eval_step(config):
    model = build_model(config)

    def step(state, batch):
        mask = batch["mel_mask"] * batch["valid"][:, None]
        mels = normalize(batch["mels"], config)
        recon, info = model.apply({"params": state.params, **state.model_state}, mels, mask)
        _, rec = vq_loss(recon, mels, mask, info)
        return {"reconstruction": rec, "perplexity": info["perplexity"], "weight": jnp.sum(mask)}

    return step


def eval_summaries(config, state, batch):
    recon, _ = build_model(config).apply(
        {"params": state.params, **state.model_state}, normalize(batch["mels"][:1], config)
    )
    recon = denormalize(recon, config)
    n = int(jax.device_get(batch["mel_lengths"])[0])
    target = np.asarray(jax.device_get(batch["mels"]))[0, :n]
    return {
        "images": {
            "mel": mel_image({"target": target, "VQ-VAE": np.asarray(jax.device_get(recon))[0, :n]})
        }
    }


def param_count(config) -> dict[str, int]:
    mels = jnp.zeros((1, 64, config.data.n_mels))
    return {"model": count_params(lambda: build_model(config).init(jax.random.key(0), mels))}
