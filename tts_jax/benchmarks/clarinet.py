"""ClariNet speed: the teacher's cached autoregressive sampling (samples/s at batch 1 and 16)
and the student's parallel synthesis (x real time), at paper and CPU sizes, plus the student
at ksw0306/ClariNet's default size (6 flows x 10 layers, 64 residual / 128 gate / 64 skip
channels), the size of the PyTorch reference measurement.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tts_jax.benchmarks import count_params, register, timed
from tts_jax.config import load_config
from tts_jax.models import clarinet as CL
from tts_jax.models import wavenet as W


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
