"""Tacotron 2 speed: compile time, training steps/s, inference decoder steps/s.

Training: batch of ``batch`` texts of 95 symbols with 400-frame targets (the shape of the
PyTorch reference measurement), with and without the deferred LSTM kernel gradients of
``Tacotron2._scan_steps``, measured side by side. Inference: the free-running loop with the
stop threshold out of reach, so exactly ``steps`` decoder steps run; batch 1 and 16.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from tts_jax.benchmarks import count_params, register, timed, timed_side_by_side
from tts_jax.config import load_config
from tts_jax.models import tacotron2 as T
from tts_jax.models.tacotron2.train import train_step


def random_batch(b: int, n: int, t: int, n_mels: int = 80):
    """A training batch of ``b`` random texts of ``n`` symbols with ``t``-frame targets (speed
    does not depend on the values)."""
    rng = np.random.default_rng(0)
    return {
        "ids": rng.integers(2, 60, (b, n)).astype(np.int32),
        "id_lengths": np.full((b,), n, np.int32),
        "mels": rng.normal(-5, 2, (b, t, n_mels)).astype(np.float32),
        "mel_lengths": np.full((b,), t, np.int32),
        "mel_mask": np.ones((b, t), np.float32),
        "stop_targets": (np.arange(t)[None] >= t - 1).repeat(b, 0).astype(np.float32),
        "valid": np.ones((b,), bool),
    }


@register("tacotron2")
def tacotron2(config_spec=None, quick=False):
    spec = config_spec or (
        "experiments/tacotron2.py:tiny" if quick else "experiments/tacotron2.py:paper"
    )
    config = load_config(spec)
    r = config.model.reduction
    text, frames = (32, 24 * r) if quick else (95, 400 - 400 % r)
    train_batch = 2 if quick else 8
    batch = random_batch(train_batch, text, frames)
    state = T.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)
    params = count_params(state.params)
    # The ablation: the decoder LSTMs' kernel gradients deferred to one matmul after the scan
    # (the default) or accumulated at every step (autodiff's own), timed in turn.
    model = T.build_model(config)
    variants = {"deferred": model}
    if not quick:
        variants["per_step"] = dataclasses.replace(model, defer_lstm_kernel_grads=False)
    steps = {k: jax.jit(train_step(config, m)) for k, m in variants.items()}
    results = timed_side_by_side(steps, state, batch, repeats=1 if quick else 3)
    for name, res in results.items():
        yield {
            "measure": "train_step",
            "config": spec,
            "lstm_kernel_grads": name,
            "batch": train_batch,
            "text": text,
            "frames": frames,
            "params": params,
            "steps_per_s": 1 / res["median_s"],
            **res,
        }
    del steps

    variables = {"params": state.params, **state.model_state}
    steps = 10 if quick else 200
    infer = jax.jit(
        functools.partial(
            model.apply, method=T.Tacotron2.infer, max_decoder_steps=steps, stop_threshold=2.0
        )
    )
    rngs = {"dropout": jax.random.PRNGKey(0)}
    for b in (1, 16):
        x = random_batch(b, text, frames)
        call = functools.partial(infer, variables, x["ids"], x["id_lengths"], rngs=rngs)
        res = timed(call, repeats=1 if quick else 3)
        audio_s = steps * r * config.data.hop_length / config.data.sample_rate
        yield {
            "measure": "inference",
            "config": spec,
            "batch": b,
            "text": text,
            "decoder_steps": steps,
            "params": params,
            "ms_per_decoder_step": 1000 * res["median_s"] / steps,
            "decoder_steps_per_s": steps / res["median_s"],
            "x_real_time": b * audio_s / res["median_s"],
            **res,
        }
