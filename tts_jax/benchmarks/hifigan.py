"""HiFi-GAN speed: inference x-real-time and one GAN training step, with ablations.

Inference: the folded (weight norm removed) generator on a 10 s mel (862 frames) at batch 1,
after compilation; x-real-time = seconds of audio per second of compute. Training: one full
step (generator forward, both discriminators' update, generator update) on batch 16 x 8,192
samples, the paper's shape. Each is measured with this codebase's fast convolution forms and
with XLA's plain ones (``upsample_method="dilated"``, ``conv_impl="xla"``; first config only),
so the table shows what each change bought. Without ``--config``, all three paper generators.
"""

from __future__ import annotations

import jax
import numpy as np

from tts_jax.benchmarks import count_params, register, timed
from tts_jax.config import load_config
from tts_jax.models import hifigan as H
from tts_jax.nn.conv import fold_weight_norm


def random_batch(b: int, seg: int, hop: int, n_mels: int = 80) -> dict:
    """A training batch of ``b`` random segments of ``seg`` samples and their ``seg // hop``
    random mel frames."""
    rng = np.random.default_rng(0)
    return {
        "audio": rng.uniform(-0.5, 0.5, (b, seg)).astype(np.float32),
        "mels": rng.normal(-5, 2, (b, seg // hop, n_mels)).astype(np.float32),
    }


def _configs(config_spec, quick):
    if config_spec:
        return [config_spec]
    if quick:
        return ["experiments/hifigan.py:tiny"]
    return [f"experiments/hifigan.py:{v}" for v in ("v1", "v2", "v3")]


@register("hifigan")
def hifigan(config_spec=None, quick=False):
    repeats = 1 if quick else 3
    # The ablations (XLA's own convolution forms) run on the first config only: the
    # discriminators are the same for V1-V3, and --quick skips them.
    for i, spec in enumerate(_configs(config_spec, quick)):
        ablate = i == 0 and not quick
        config = load_config(spec)
        config.optim.decay_steps = 1000  # no corpus needed for the schedule
        hop = config.data.hop_length
        frames = 32 if quick else 862
        mel = random_batch(1, frames * hop, hop)["mels"]
        audio_s = frames * hop / config.data.sample_rate
        params = None
        for method in ("polyphase", "dilated") if ablate else ("polyphase",):
            config.model.upsample_method = method
            gen = H.build_generator(config)
            if params is None:
                params = fold_weight_norm(gen.init(jax.random.PRNGKey(0), mel[:, :8])["params"])
            infer = jax.jit(H.build_generator(config, folded=True).apply)
            res = timed(infer, {"params": params}, mel, repeats=repeats)
            yield {
                "measure": "inference",
                "config": spec,
                "upsample_method": method,
                "batch": 1,
                "frames": frames,
                "params": count_params(params),
                "x_real_time": audio_s / res["median_s"],
                **res,
            }
        config.model.upsample_method = "polyphase"

        b = config.train.batch_size
        seg = config.train.segment_length
        batch = random_batch(b, seg, hop)
        for impl in ("split", "xla") if ablate else ("split",):
            config.model.conv_impl = impl
            state = H.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)
            step = jax.jit(H.FAMILY.train_step(config))
            res = timed(step, state, batch, repeats=1 if quick else 2)
            yield {
                "measure": "train_step",
                "config": spec,
                "conv_impl": impl,
                "batch": b,
                "segment": seg,
                "params": count_params(state.gen_params),
                "disc_params": count_params(state.disc_params),
                "steps_per_s": 1 / res["median_s"],
                **res,
            }
            del state
