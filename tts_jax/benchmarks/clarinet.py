"""ClariNet speed: the teacher's cached autoregressive sampling (samples/s at batch 1 and 16),
the student's parallel synthesis (x real time), at paper and CPU sizes, plus the student at
ksw0306/ClariNet's default size (6 flows x 10 layers, 64 residual / 128 gate / 64 skip
channels), the size of the PyTorch reference measurement; and the distillation step (student
and frozen teacher, forward and backward), with its ablation row: the residual streams of the
WaveNet blocks kept in memory (:func:`tts_jax.nn.materialize.materialize`, the default) or
left to XLA's fusion.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.benchmarks import count_params, register, timed, timed_side_by_side
from tts_jax.config import load_config
from tts_jax.models import clarinet as CL
from tts_jax.models import wavenet as W
from tts_jax.models.wavenet import model as wavenet_model


def distillation_setup(size: str, batch: int, segment: int, seed: int = 0):
    """(train step, state, batch) of ``experiments/clarinet_kl.py:{size}``'s distillation from
    a random teacher of ``experiments/wavenet.py:{size}`` (the step reads only the teacher's
    config from its workdir: a temporary one holds it). The step is not jitted."""
    tconfig = load_config(f"experiments/wavenet.py:{size}")
    teacher_dir = Path(tempfile.mkdtemp(prefix="tts_jax_teacher_"))
    (teacher_dir / "config.json").write_text(json.dumps(tconfig.to_dict()))
    config = load_config(f"experiments/clarinet_kl.py:{size}")
    config.model.teacher_workdir = str(teacher_dir)
    rng = np.random.default_rng(seed)
    hop = config.data.hop_length
    data = {
        "audio": (0.1 * rng.standard_normal((batch, segment))).astype(np.float32),
        "mels": rng.uniform(-8, 0, (batch, segment // hop, 80)).astype(np.float32),
    }
    state = CL.state_with_random_teacher(config, tconfig, jax.random.PRNGKey(seed), data)
    return CL.FAMILY.train_step(config), state, data


def _stream(kept: bool):
    """While a step is traced: the blocks' residual streams kept (the code as it is) or not."""
    if kept:
        return contextlib.nullcontext()
    return mock.patch.object(wavenet_model, "materialize", lambda x: x)


@register("clarinet")
def clarinet(config_spec=None, quick=False):
    sizes = ["tiny"] if quick else ["paper", "cpu"]
    if config_spec:
        sizes = [config_spec.partition(":")[2] or "paper"]
    repeats = 1 if quick else 3
    for size in sizes:
        tconfig = load_config(f"experiments/wavenet.py:{size}")
        teacher = W.build_model(tconfig)
        hop, sr = tconfig.data.hop_length, tconfig.data.sample_rate
        frames = 2 if quick else 8
        params = teacher.init(
            jax.random.PRNGKey(0), jnp.zeros((1, frames * hop)), jnp.zeros((1, frames, 80))
        )["params"]
        for batch in (1, 16):
            mel = jax.random.uniform(jax.random.PRNGKey(1), (batch, frames, 80))
            cond = teacher.apply({"params": params}, mel, method=W.WaveNet.upsample)
            run = jax.jit(lambda c, r, p=params, m=teacher: W.generate(m, p, c, r))
            res = timed(run, cond, jax.random.PRNGKey(2), repeats=repeats)
            yield {
                "measure": "teacher_cached_sampling",
                "config": f"experiments/wavenet.py:{size}",
                "batch": batch,
                "samples": frames * hop,
                "params": count_params(params),
                "samples_per_s": batch * frames * hop / res["median_s"],
                **res,
            }

        sconfig = load_config(f"experiments/clarinet_kl.py:{size}")
        m = sconfig.model
        students = {
            f"experiments/clarinet_kl.py:{size}": CL.Student(
                m.flows,
                m.student_layers,
                m.student_channels,
                m.student_channels,
                m.student_channels,
                m.student_kernel_size,
                m.student_front_kernel,
                tuple(tconfig.model.upsample_strides),
            ),
        }
        if size == "paper":
            students["ksw0306 default (64/128/64)"] = CL.Student(
                6, 10, 64, 128, 64, 3, 32, tuple(tconfig.model.upsample_strides)
            )
        seconds = 0.25 if quick else 1.0
        n_frames = int(seconds * sr / hop)
        mel = jax.random.uniform(jax.random.PRNGKey(1), (1, n_frames, 80))
        for name, student in students.items():
            z = jax.random.normal(jax.random.PRNGKey(3), (1, n_frames * hop))
            sparams = student.init(jax.random.PRNGKey(0), z, mel)["params"]
            run = jax.jit(lambda z, c, p=sparams, s=student: s.apply({"params": p}, z, c)[0])
            res = timed(run, z, mel, repeats=repeats)
            yield {
                "measure": "student_synthesis",
                "config": name,
                "batch": 1,
                "samples": n_frames * hop,
                "params": count_params(sparams),
                "x_real_time": n_frames * hop / sr / res["median_s"],
                **res,
            }

    # The distillation step, paper student and teacher on one 4,096-sample segment (as
    # tools/vs_reference.py's clarinet-train case), with the ablation timed in turn.
    for size in sizes:
        segment = 2048 if quick else 4096
        step, state, data = distillation_setup(size, 1, segment)
        variants = {}
        for name, kept in (("kept", True), ("fused", False)):
            if quick and not kept:
                continue
            with _stream(kept):
                # A fresh function: jit would reuse the first variant's trace of `step`.
                fresh = jax.jit(lambda s, b: step(s, b))  # noqa: B023 - called at once
                variants[name] = fresh.lower(state, data).compile()
        results = timed_side_by_side(variants, state, data, repeats=1 if quick else 7)
        for name, res in results.items():
            yield {
                "measure": "distillation_step",
                "config": f"experiments/clarinet_kl.py:{size}",
                "residual_stream": name,
                "batch": 1,
                "samples": segment,
                "params": count_params(state.params),
                **res,
            }
