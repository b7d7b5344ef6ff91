"""Speed against the PyTorch reference implementations, measured side by side in one run.

Long-lived workers, ours (this package, JAX) and the reference's (PyTorch, its own checkout),
each build the same-shaped model and inputs once, warm up (JAX compiles), then are asked in
turn, alternating, for one timed call each round: ours beside each of :data:`OTHERS` in turn
(the reference as it ships, and the swapped allocator policies). All see the same threads: the
reference gets ``torch.set_num_threads(--threads)``, and ours runs on a CPU with that many
cores (XLA uses them all). Each case's line holds both medians, the ratio of the medians
(reference / ours: above 1, ours is faster) and the spread of the per-round ratios.

Setup (neither is a dependency of tts-jax):

    python3.11 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 librosa unidecode inflect
    git clone https://github.com/NVIDIA/tacotron2 /tmp/ref/nvidia_tacotron2
    git clone https://github.com/jik876/hifi-gan /tmp/ref/hifigan
    git clone https://github.com/ksw0306/ClariNet /tmp/ref/clarinet

Run (nothing else running on the machine), then paste the table it prints or let it write
the section of docs/performance.md:

    .venv/bin/python tools/vs_reference.py --torch /tmp/torchenv/bin/python \\
        --nvidia /tmp/ref/nvidia_tacotron2 --jik876 /tmp/ref/hifigan \\
        --out runs/bench/vs_reference.jsonl --readme docs/performance.md

Cases (:data:`CASES`, each a :class:`Case`: its shapes, our side, the reference's):
``tacotron2-train`` (paper size, batch 8 x 95 symbols x 400 frames: forward, loss,
backward, clipping and Adam), ``hifigan-v1|v2|v3`` (generator inference on 10 s of mel,
random weights, weight norm folded), ``hifigan-v1|v2|v3-train`` (one GAN step, batch 4 x 8,192),
``clarinet-student`` (ksw0306/ClariNet's student on 1 s of mel, upsampler included) and
``clarinet-train`` (one distillation step of the paper's student against a paper-size teacher,
batch 1 x 4,096 samples). Each row also holds our GFLOP/s (XLA's FLOP count over the median
time) as a share of XLA's 2,048^3 float32 matmul measured at the start of the run.
``--quick`` shrinks every case to check the plumbing; ``--render FILE`` re-tabulates a run.
Random weights and inputs: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tts_jax.host_memory is stdlib only: the torch env imports it
from tts_jax.host_memory import ENV_DEFAULT, retain_freed_memory  # noqa: E402

if __name__ == "__main__" and "--worker" in sys.argv:
    # tts-jax's host allocator policy, set before numpy starts its threads, unless the
    # worker was started with $TTS_JAX_SYSTEM_MALLOC=1 (see OTHERS).
    retain_freed_memory()

import numpy as np  # noqa: E402

GEMM = "gemm"  # not a comparison: XLA's matmul rate, the ceiling each row is shown against


def compiled(fn, *args):
    """``fn`` (jitted) compiled for ``args``, and XLA's count of the floating-point operations
    of one call (0 when the backend gives none). The caller calls the compiled function: one
    compilation serves both the count and the timing."""
    exe = fn.lower(*args).compile()
    cost = exe.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return exe, float((cost or {}).get("flops", 0.0))


def training(step, state, batch):
    """A timed call that advances ``state`` by one jitted ``step`` on ``batch`` (the state is
    carried from call to call, as in training)."""
    import jax

    holder = {"state": state}

    def call():
        holder["state"], metrics = step(holder["state"], batch)
        jax.block_until_ready(metrics)

    return call


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The rate of XLA's own n x n x n float32 matmul here, best of ``repeats``: the ceiling a
    model's rate is shown against (what `tts-jax bench gemm` measures)."""
    import jax
    import jax.numpy as jnp

    from tts_jax.benchmarks import timed

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    return 2.0 * n**3 / timed(jax.jit(jnp.matmul), a, a, repeats=repeats)["min_s"] / 1e9


def _config(spec: str):
    from tts_jax.config import load_config

    return load_config(str(ROOT / "experiments" / spec))


# --------------------------------------------------------------------------------------------
# The cases. Each side builds its model and inputs once; its call is then timed, round after
# round. Ours are JAX (this package) and return (call, XLA's FLOPs per call); the
# reference's are PyTorch, from its own checkout, in the environment of --torch.
# --------------------------------------------------------------------------------------------


def tacotron2_sizes(quick: bool) -> dict:
    return (
        {"batch": 2, "text": 32, "frames": 60} if quick else {"batch": 8, "text": 95, "frames": 400}
    )


def ours_tacotron2_train(s: dict):
    """One training step of experiments/tacotron2.py:nvidia: forward, loss, backward, clipping
    and Adam."""
    import jax

    from tts_jax.benchmarks.tacotron2 import random_batch
    from tts_jax.models import tacotron2 as T

    config = _config("tacotron2.py:nvidia")
    batch = random_batch(s["batch"], s["text"], s["frames"])
    state = T.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)
    step = jax.jit(T.FAMILY.train_step(config), donate_argnums=0)
    # No FLOP count: XLA's cost analysis counts a while loop's body once.
    return training(step, state, batch), 0.0


def nvidia_train_step(s: dict, args):
    """One step of NVIDIA/tacotron2's train.py at full size (its hparams), on the CPU."""
    import torch

    sys.path.insert(0, args.nvidia)
    import layers
    import librosa
    import utils

    layers.librosa_mel_fn = lambda sr, n_fft, n_mels, fmin, fmax: librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax
    )

    def mask_from_lengths(lengths):  # the reference builds this index on the GPU
        return torch.arange(int(lengths.max()))[None, :] < lengths[:, None]

    utils.get_mask_from_lengths = mask_from_lengths
    import model as nv

    nv.get_mask_from_lengths = mask_from_lengths
    from tools.nvidia_tacotron2_fixtures import HParams, hparams

    rng = np.random.default_rng(0)
    net = nv.Tacotron2(HParams(hparams(full=True), n_symbols=148)).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-6)
    b, n, t = s["batch"], s["text"], s["frames"]
    ids = torch.from_numpy(rng.integers(2, 60, (b, n))).long()
    mels = torch.from_numpy(rng.normal(-5, 2, (b, 80, t)).astype(np.float32))
    gate = torch.zeros(b, t)
    gate[:, -1] = 1.0
    lengths_in, lengths_out = torch.full((b,), n), torch.full((b,), t)

    def call():
        before, after, g, _ = net((ids, lengths_in, mels, n, lengths_out))
        loss = (
            torch.nn.functional.mse_loss(before, mels)
            + torch.nn.functional.mse_loss(after, mels)
            + torch.nn.functional.binary_cross_entropy_with_logits(g, gate)
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    return call


def hifigan_sizes(quick: bool) -> dict:
    return {"frames": 86 if quick else 861}  # 1 s or 10 s at hop 256


def hifigan_train_sizes(quick: bool) -> dict:
    # jik876's segment, a quarter of its batch of 16
    return {"batch": 1 if quick else 4, "segment": 2048 if quick else 8192}


def ours_hifigan(version: str, s: dict):
    """Generator inference of experiments/hifigan.py:VERSION, weight norm folded."""
    import jax

    from tts_jax.benchmarks.hifigan import random_batch
    from tts_jax.models import hifigan as H
    from tts_jax.nn.conv import fold_weight_norm

    config = _config(f"hifigan.py:{version}")
    hop = config.data.hop_length
    mel = random_batch(1, s["frames"] * hop, hop)["mels"]
    gen = H.build_generator(config)
    params = fold_weight_norm(gen.init(jax.random.PRNGKey(0), mel[:, :8])["params"])
    infer, count = compiled(
        jax.jit(H.build_generator(config, folded=True).apply), {"params": params}, mel
    )
    return lambda: jax.block_until_ready(infer({"params": params}, mel)), count


def ours_hifigan_train(version: str, s: dict):
    """One GAN step of experiments/hifigan.py:VERSION: both discriminators, then the
    generator."""
    import jax

    from tts_jax.benchmarks.hifigan import random_batch
    from tts_jax.models import hifigan as H

    config = _config(f"hifigan.py:{version}")
    config.optim.decay_steps = 1000  # no corpus needed for the schedule
    batch = random_batch(s["batch"], s["segment"], config.data.hop_length)
    state = H.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)
    step, count = compiled(jax.jit(H.FAMILY.train_step(config)), state, batch)
    return training(step, state, batch), count


def _jik876(version: str, args):
    """jik876/hifi-gan's config_VERSION.json, its checkout put on the path."""
    sys.path.insert(0, args.jik876)
    from env import AttrDict

    return AttrDict(json.loads((Path(args.jik876) / f"config_{version}.json").read_text()))


def jik876_generator(version: str, s: dict, args):
    """jik876's generator in eval mode, weight norm removed, under no_grad."""
    import torch
    from models import Generator

    gen = Generator(_jik876(version, args)).eval()
    gen.remove_weight_norm()
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.normal(-5, 2, (1, 80, s["frames"])).astype(np.float32))

    def call():
        with torch.no_grad():
            gen(mel)

    return call


def clarinet_student_sizes(quick: bool) -> dict:
    return {"frames": 16 if quick else 86}  # 1 s: the student is ~3x slower than real time


def clarinet_train_sizes(quick: bool) -> dict:
    return {"batch": 1, "segment": 2048 if quick else 4096}  # a short batch on a CPU


def ours_clarinet_student(s: dict):
    """ksw0306/ClariNet's default student in our modules: 6 flows x 10 layers, 64 residual /
    128 gate / 64 skip channels, filter 3, front kernel 32; the conditioner upsamples by the
    teacher's strides (16 x 16), as its synthesis runs the teacher's upsampler first."""
    import jax

    from tts_jax.models import clarinet as CL

    teacher = _config("wavenet.py:paper")
    hop = teacher.data.hop_length
    student = CL.Student(6, 10, 64, 128, 64, 3, 32, tuple(teacher.model.upsample_strides))
    rng = np.random.default_rng(0)
    mel = rng.normal(-5, 2, (1, s["frames"], 80)).astype(np.float32)
    z = rng.normal(size=(1, s["frames"] * hop)).astype(np.float32)
    params = student.init(jax.random.PRNGKey(0), z, mel)["params"]
    run = jax.jit(lambda z, c: student.apply({"params": params}, z, c)[0])
    run, count = compiled(run, z, mel)
    return lambda: jax.block_until_ready(run(z, mel)), count


def ksw0306_teacher(args, gate_channels: int):
    """ksw0306/ClariNet's teacher WaveNet (2 x 10 layers of 128 channels, filter 2, mel
    upsampled 16 x 16), its checkout put on the path."""
    sys.path.insert(0, args.clarinet)
    from wavenet import Wavenet

    return Wavenet(out_channels=2, num_blocks=2, num_layers=10, residual_channels=128,
                   gate_channels=gate_channels, skip_channels=128, kernel_size=2,
                   cin_channels=80, upsample_scales=[16, 16])  # fmt: skip


def ksw0306_student(s: dict, args):
    """ksw0306/ClariNet's student as its synthesize_student.py runs it: weight norm removed,
    the teacher's upsampler first, under no_grad."""
    import torch

    teacher = ksw0306_teacher(args, gate_channels=256).eval()  # only its upsampler runs
    from wavenet_iaf import Wavenet_Student

    student = Wavenet_Student(num_blocks_student=[1] * 6, num_layers=10).eval()
    student.remove_weight_norm()
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.normal(-5, 2, (1, 80, s["frames"])).astype(np.float32))
    z = torch.randn(1, 1, s["frames"] * 256)

    def call():
        with torch.no_grad():
            student.generate(z, teacher.upsample(mel))

    return call


def clarinet_train_step(s: dict):
    """Our distillation step of the paper's student (experiments/clarinet_kl.py:paper) against a
    random paper-size teacher (experiments/wavenet.py:paper): `tts-jax bench clarinet`'s."""
    import jax

    from tts_jax.benchmarks.clarinet import distillation_setup

    step, state, batch = distillation_setup("paper", s["batch"], s["segment"])
    step, count = compiled(jax.jit(step), state, batch)
    return training(step, state, batch), count


def ksw0306_train_step(s: dict, args):
    """One step of ksw0306/ClariNet's train_student.py at our paper sizes (student 6 flows x
    10 layers of 128 channels, filter 3, front kernel 32; teacher 2 x 10 layers of 128, filter
    2): student sample, teacher on it, KL(q || p) + 4 x regulariser, linear STFT MSE (its
    ``stft`` restated for torch 2), clipping at 10, Adam. The teacher is frozen as ours is."""
    import torch

    teacher = ksw0306_teacher(args, gate_channels=128)
    from modules import KL_Loss
    from wavenet_iaf import Wavenet_Student

    rng = np.random.default_rng(0)
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = Wavenet_Student(num_blocks_student=[1] * 6, num_layers=10, front_channels=32,
                              residual_channels=128, gate_channels=128, skip_channels=128,
                              kernel_size=3)  # fmt: skip
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    kl = KL_Loss()
    b, seg = s["batch"], s["segment"]
    x = torch.from_numpy((0.1 * rng.standard_normal((b, 1, seg))).astype(np.float32))
    c = torch.from_numpy(rng.uniform(-8, 0, (b, 80, seg // 256)).astype(np.float32))
    window = torch.hann_window(1024)

    def spec(y):
        d = torch.stft(y, n_fft=1024, hop_length=256, win_length=1024, window=window,
                       return_complex=True)  # fmt: skip
        return torch.sqrt(d.real**2 + d.imag**2 + 1e-10)

    def call():
        z = torch.randn_like(x)
        opt.zero_grad()
        x_s, mu_s, logs_s = student(z, teacher.upsample(c))
        mu_logs_t = teacher(x_s, c)
        loss_t, _, _ = kl(mu_s, logs_s, mu_logs_t[:, 0:1, :-1], mu_logs_t[:, 1:, :-1])
        loss = loss_t + torch.nn.functional.mse_loss(spec(x_s[:, 0, 1:]), spec(x[:, 0, 1:]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 10.0)
        opt.step()

    return call


def jik876_train_step(version: str, s: dict, args):
    """One step of jik876's train.py: both discriminators' update on the detached generator
    output, then the generator's (adversarial + 2 x feature matching + 45 x mel L1), AdamW
    with its betas. Its mel_spectrogram is restated with ``return_complex=True`` (torch 2
    refuses its call) and the same magnitude floor."""
    import torch
    import torch.nn.functional as F
    from librosa.filters import mel as librosa_mel

    h = _jik876(version, args)
    from models import (
        Generator,
        MultiPeriodDiscriminator,
        MultiScaleDiscriminator,
        discriminator_loss,
        feature_loss,
        generator_loss,
    )

    rng = np.random.default_rng(0)

    gen, mpd, msd = (
        Generator(h).train(),
        MultiPeriodDiscriminator().train(),
        MultiScaleDiscriminator().train(),
    )
    opt_g = torch.optim.AdamW(gen.parameters(), h.learning_rate, betas=[h.adam_b1, h.adam_b2])
    opt_d = torch.optim.AdamW(
        list(msd.parameters()) + list(mpd.parameters()),
        h.learning_rate,
        betas=[h.adam_b1, h.adam_b2],
    )
    basis = torch.from_numpy(
        librosa_mel(sr=h.sampling_rate, n_fft=h.n_fft, n_mels=h.num_mels, fmin=h.fmin, fmax=None)
    ).float()
    window = torch.hann_window(h.win_size)

    def mel(y):
        pad = (h.n_fft - h.hop_size) // 2
        y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            y,
            h.n_fft,
            hop_length=h.hop_size,
            win_length=h.win_size,
            window=window,
            center=False,
            return_complex=True,
        )
        spec = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
        return torch.log(torch.clamp(basis @ spec, min=1e-5))

    b, seg = s["batch"], s["segment"]
    y = torch.from_numpy(rng.uniform(-0.5, 0.5, (b, 1, seg)).astype(np.float32))
    x = torch.from_numpy(rng.normal(-5, 2, (b, h.num_mels, seg // h.hop_size)).astype(np.float32))
    y_mel = mel(y.squeeze(1))

    def call():
        y_g = gen(x)
        opt_d.zero_grad()
        r, g, _, _ = mpd(y, y_g.detach())
        loss_d = discriminator_loss(r, g)[0]
        r, g, _, _ = msd(y, y_g.detach())
        (loss_d + discriminator_loss(r, g)[0]).backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_mel = F.l1_loss(y_mel, mel(y_g.squeeze(1))) * 45
        _, f_g, fm_r, fm_g = mpd(y, y_g)
        _, s_g, sm_r, sm_g = msd(y, y_g)
        loss = (
            feature_loss(fm_r, fm_g)
            + feature_loss(sm_r, sm_g)
            + generator_loss(f_g)[0]
            + generator_loss(s_g)[0]
            + loss_mel
        )
        loss.backward()
        opt_g.step()

    return call


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison. ``sizes(quick)``: the shapes both sides run at (and the row's shape
    columns); ``ours(sizes)``: our timed call and XLA's FLOPs per call (0: no count);
    ``reference(sizes, args)``: the reference's timed call (``args`` names its checkouts)."""

    sizes: Callable[[bool], dict]
    ours: Callable[[dict], tuple[Callable[[], None], float]]
    reference: Callable[[dict, argparse.Namespace], Callable[[], None]]


HIFIGAN_VERSIONS = ("v1", "v2", "v3")
CASES: dict[str, Case] = {
    "tacotron2-train": Case(tacotron2_sizes, ours_tacotron2_train, nvidia_train_step),
    **{
        f"hifigan-{v}": Case(
            hifigan_sizes,
            functools.partial(ours_hifigan, v),
            functools.partial(jik876_generator, v),
        )
        for v in HIFIGAN_VERSIONS
    },
    **{
        f"hifigan-{v}-train": Case(
            hifigan_train_sizes,
            functools.partial(ours_hifigan_train, v),
            functools.partial(jik876_train_step, v),
        )
        for v in HIFIGAN_VERSIONS
    },
    "clarinet-student": Case(clarinet_student_sizes, ours_clarinet_student, ksw0306_student),
    "clarinet-train": Case(clarinet_train_sizes, clarinet_train_step, ksw0306_train_step),
}


def get_case(name: str) -> Case:
    """The case called ``name``, or a ValueError listing the cases."""
    if name not in CASES:
        raise ValueError(f"unknown case {name!r}; the cases are {', '.join(CASES)} (and {GEMM})")
    return CASES[name]


def sizes(name: str, quick: bool) -> dict:
    """The shapes case ``name`` runs at: the same for both sides."""
    return get_case(name).sizes(quick)


def worker(args) -> None:
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the replies
        if args.case == GEMM:  # the ceiling, measured by our side: nothing to time after
            call, count = None, gemm_gflops()
        elif args.worker == "ours":
            call, count = get_case(args.case).ours(sizes(args.case, args.quick))
        else:
            import torch

            torch.set_num_threads(args.threads)
            torch.manual_seed(0)
            call = get_case(args.case).reference(sizes(args.case, args.quick), args)
            count = 0.0
        for _ in range(2 if call else 0):  # warm-up (compilation, allocator)
            call()
    print(f"ready {count}", flush=True)
    for line in sys.stdin if call else ():
        if line.strip() != "run":
            break
        start = time.perf_counter()
        call()
        print(time.perf_counter() - start, flush=True)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def start(python: str, side: str, case: str, args, env: dict | None = None) -> subprocess.Popen:
    cmd = [python, __file__, "--worker", side, "--case", case, "--threads", str(args.threads)]
    cmd += ["--nvidia", args.nvidia, "--jik876", args.jik876, "--clarinet", args.clarinet]
    cmd += ["--quick"] if args.quick else []
    env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    word, _, value = proc.stdout.readline().strip().partition(" ")
    if word != "ready":
        raise SystemExit(f"{side} worker for {case} failed to start (see its stderr above)")
    proc.flops = float(value or 0)  # ours: XLA's FLOPs per call; gemm: the ceiling in GFLOP/s
    return proc


def ask(proc: subprocess.Popen) -> float:
    proc.stdin.write("run\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def ceiling(args) -> float:
    """XLA's dense float32 matmul rate on this machine now, in GFLOP/s."""
    proc = start(sys.executable, "ours", "gemm", args)
    proc.wait()
    return proc.flops


# The workers timed beside ours, by name: (side, environment). Ours and ``reference`` run as
# each project ships: tts-jax under its host allocator policy (its entry point sets it, see
# tts_jax/host_memory.py), the reference under glibc's defaults. The other two swap the
# policies: the ratio with both under the policy, and the policy's ablation on our side.
OTHERS = {
    "reference": ("reference", {ENV_DEFAULT: "1"}),
    "reference_retained": ("reference", {}),
    "ours_system_malloc": ("ours", {ENV_DEFAULT: "1"}),
}


def measure(case: str, args, gemm: float) -> dict:
    """Our worker stays up; each worker of :data:`OTHERS` in turn is up beside it for
    ``rounds`` rounds of one call each, the side going first alternating. Each comparison is
    thus side by side, with ours timed again in each (two workers at a time: four training
    steps' scratch memory does not fit in 24 GB)."""
    ours = start(sys.executable, "ours", case, args)
    times = {name: [] for name in OTHERS}
    pairs = {}  # name -> our times in its rounds
    try:
        for name, (side, env) in OTHERS.items():
            python = sys.executable if side == "ours" else args.torch
            other = start(python, side, case, args, env=env)
            pairs[name] = []
            try:
                for r in range(args.rounds):
                    first, second = (ours, other) if r % 2 == 0 else (other, ours)
                    a, b = ask(first), ask(second)
                    ours_s, other_s = (a, b) if first is ours else (b, a)
                    pairs[name].append(ours_s)
                    times[name].append(other_s)
            finally:
                other.stdin.close()
                other.wait()
    finally:
        ours.stdin.close()
        ours.wait()
    times["ours"] = pairs["reference"]
    ratio = {k: statistics.median(times[k]) / statistics.median(pairs[k]) for k in pairs}
    per_round = [ref / our for our, ref in zip(times["ours"], times["reference"], strict=True)]
    ours_s, ref_s = statistics.median(times["ours"]), statistics.median(times["reference"])
    rate = ours.flops / ours_s / 1e9
    return {
        "ours_gflops": rate or None,
        "gemm_gflops": gemm,
        "share_of_gemm": rate / gemm if rate else None,
        "case": case,
        **sizes(case, args.quick),
        "ours_median_s": ours_s,
        "reference_median_s": ref_s,
        "ratio": ref_s / ours_s,
        "ratio_min": min(per_round),
        "ratio_max": max(per_round),
        "rounds": args.rounds,
        "ours_s": times["ours"],
        "reference_s": times["reference"],
        # The swapped pair, each against ours timed in its own rounds.
        "reference_retained_median_s": statistics.median(times["reference_retained"]),
        "ratio_both_retained": ratio["reference_retained"],
        "reference_retained_s": times["reference_retained"],
        "ours_beside_reference_retained_s": pairs["reference_retained"],
        "ours_system_malloc_median_s": statistics.median(times["ours_system_malloc"]),
        "policy_speedup": ratio["ours_system_malloc"],
        "ours_system_malloc_s": times["ours_system_malloc"],
        "ours_beside_system_malloc_s": pairs["ours_system_malloc"],
        "threads": args.threads,
        "device": f"CPU ({platform.processor() or platform.machine()}), {args.threads} threads",
        "quick": args.quick,
    }


def shape(r: dict) -> str:
    if "text" in r:
        return f"batch {r['batch']} x {r['text']} symbols x {r['frames']} frames"
    if "segment" in r:
        return f"batch {r['batch']} x {r['segment']} samples"
    return f"{r['frames']} mel frames"


def table(rows: list[dict]) -> str:
    lines = [
        "| case | shape | ours (s) | PyTorch reference (s) | reference / ours | per-round range "
        "| ours GFLOP/s (share of XLA's matmul) | both under the allocator policy: reference "
        "(s), reference / ours | ours under glibc's defaults (s) | device |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rate = (
            f"{r['ours_gflops']:.1f} ({100 * r['share_of_gemm']:.0f} % of {r['gemm_gflops']:.0f})"
            if r.get("ours_gflops")
            else "–"
        )
        retained = r.get("reference_retained_median_s")
        both = f"{retained:.3f}, {r['ratio_both_retained']:.2f}x" if retained else "–"
        system = r.get("ours_system_malloc_median_s")
        speedup = r.get("policy_speedup") or (system / r["ours_median_s"] if system else 0)
        ablation = f"{system:.3f} ({speedup:.2f}x ours)" if system else "–"
        lines.append(
            f"| {r['case']} | {shape(r)} | {r['ours_median_s']:.3f} "
            f"| {r['reference_median_s']:.3f} "
            f"| **{r['ratio']:.2f}x** | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} "
            f"| {rate} | {both} | {ablation} | {r['device']} |"
        )
    return "\n".join(lines)


def case_name(text: str) -> str:
    """argparse type of ``--case``: a name of :data:`CASES` (or ``gemm``)."""
    if text != GEMM:
        try:
            get_case(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torch", help="the Python of an environment with torch 2.13")
    p.add_argument("--nvidia", default="/tmp/ref/nvidia_tacotron2", help="NVIDIA/tacotron2")
    p.add_argument("--jik876", default="/tmp/ref/hifigan", help="jik876/hifi-gan checkout")
    p.add_argument("--clarinet", default="/tmp/ref/clarinet", help="ksw0306/ClariNet checkout")
    p.add_argument("--case", action="append", type=case_name, help="default: every case")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="small shapes: checks the plumbing")
    p.add_argument("--out", type=Path, help="append the JSON lines here")
    p.add_argument("--readme", type=Path, help="rewrite its table here (docs/performance.md)")
    p.add_argument("--render", type=Path, help="tabulate this --out file instead of measuring")
    p.add_argument("--worker", choices=("ours", "reference"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        if args.case and isinstance(args.case, list):
            args.case = args.case[0]
        worker(args)
        return
    if args.render:  # the table of a past run (the newest row per case), measuring nothing
        latest = {}
        for line in args.render.read_text().splitlines():
            row = json.loads(line)
            if not row.get("quick"):
                latest[row["case"]] = row
        rows = [latest[c] for c in CASES if c in latest]
    else:
        if not args.torch:
            p.error("--torch is required (see the setup in this script's docstring)")
        rows = []
        gemm = ceiling(args)
        for case in args.case or CASES:
            rows.append(measure(case, args, gemm))
            print(json.dumps(rows[-1]), flush=True)
    if args.out and not args.render:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    print(table(rows))
    if args.readme:
        # Imported here: report.py imports JAX, which the reference's environment lacks.
        from tools.report import update_readme

        update_readme(args.readme, "vs_reference", table(rows))


if __name__ == "__main__":
    main()
