"""Speed against the PyTorch reference implementations, measured side by side in one run.

Two long-lived workers, ours (this package, JAX) and the reference's (PyTorch, its own
checkout), each build the same-shaped model and inputs once, warm up (JAX compiles), then are
asked in turn, alternating, for one timed call each round. Both see the same threads: the
reference gets ``torch.set_num_threads(--threads)``, and ours runs on a CPU with that many
cores (XLA uses them all). Each case's line holds both medians, the ratio of the medians
(reference / ours: above 1, ours is faster) and the spread of the per-round ratios.

Setup (neither is a dependency of tts-jax):

    python3.11 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 librosa unidecode inflect
    git clone https://github.com/NVIDIA/tacotron2 /tmp/ref/nvidia_tacotron2
    git clone https://github.com/jik876/hifi-gan /tmp/ref/hifigan

Run (nothing else running on the machine), then paste the table it prints or let it write
the README section:

    .venv/bin/python tools/vs_reference.py --torch /tmp/torchenv/bin/python \\
        --nvidia /tmp/ref/nvidia_tacotron2 --jik876 /tmp/ref/hifigan \\
        --out runs/bench/vs_reference.jsonl --readme README.md

Cases: ``tacotron2-train`` (paper size, batch 8 x 95 symbols x 400 frames: forward, loss,
backward, clipping and Adam), ``hifigan-v1|v2|v3`` (generator inference on 10 s of mel,
random weights, weight norm folded). ``--quick`` shrinks every case to check the plumbing.
Random weights and inputs: speed does not depend on their values.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("tacotron2-train", "hifigan-v1", "hifigan-v2", "hifigan-v3")
BEGIN, END = "<!-- BEGIN report:vs_reference -->", "<!-- END report:vs_reference -->"


def sizes(case: str, quick: bool) -> dict:
    """The shapes a case runs at: the same for both sides."""
    if case == "tacotron2-train":
        return (
            {"batch": 2, "text": 32, "frames": 60}
            if quick
            else {"batch": 8, "text": 95, "frames": 400}
        )
    return {"frames": 86 if quick else 861}  # 1 s or 10 s at hop 256


# --------------------------------------------------------------------------------------------
# Workers: build once, then answer each "run" line with the seconds one call took.
# --------------------------------------------------------------------------------------------


def ours(case: str, quick: bool):
    """A call of our model (JAX), blocking until its result is ready."""
    import jax
    import numpy as np

    from tts_jax.config import load_config

    s = sizes(case, quick)
    rng = np.random.default_rng(0)
    if case == "tacotron2-train":
        from tts_jax.models import tacotron2 as T

        config = load_config(str(ROOT / "experiments" / "tacotron2.py:nvidia"))
        b, n, t = s["batch"], s["text"], s["frames"]
        batch = {
            "ids": rng.integers(2, 60, (b, n)).astype(np.int32),
            "id_lengths": np.full((b,), n, np.int32),
            "mels": rng.normal(-5, 2, (b, t, 80)).astype(np.float32),
            "mel_lengths": np.full((b,), t, np.int32),
            "mel_mask": np.ones((b, t), np.float32),
            "stop_targets": (np.arange(t)[None] >= t - 1).repeat(b, 0).astype(np.float32),
            "valid": np.ones((b,), bool),
        }
        holder = {"state": T.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)}
        step = jax.jit(T.FAMILY.train_step(config), donate_argnums=0)

        def call():
            holder["state"], metrics = step(holder["state"], batch)
            jax.block_until_ready(metrics)

        return call
    from tts_jax.models import hifigan as H
    from tts_jax.nn.conv import fold_weight_norm

    config = load_config(str(ROOT / "experiments" / f"hifigan.py:{case.split('-')[1]}"))
    mel = rng.normal(-5, 2, (1, s["frames"], 80)).astype(np.float32)
    gen = H.build_generator(config)
    params = fold_weight_norm(gen.init(jax.random.PRNGKey(0), mel[:, :8])["params"])
    infer = jax.jit(H.build_generator(config, folded=True).apply)
    return lambda: jax.block_until_ready(infer({"params": params}, mel))


def reference(case: str, quick: bool, nvidia: str, jik876: str, threads: int):
    """A call of the reference model (PyTorch)."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    s = sizes(case, quick)
    rng = np.random.default_rng(0)
    if case == "tacotron2-train":
        sys.path.insert(0, nvidia)
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
        sys.path.insert(0, str(ROOT / "tools"))
        from nvidia_tacotron2_fixtures import HParams, hparams

        h = HParams(hparams(full=True), n_symbols=148)
        net = nv.Tacotron2(h).train()
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
    sys.path.insert(0, jik876)
    from env import AttrDict
    from models import Generator

    version = case.split("-")[1]
    h = AttrDict(json.loads((Path(jik876) / f"config_{version}.json").read_text()))
    gen = Generator(h).eval()
    gen.remove_weight_norm()
    mel = torch.from_numpy(rng.normal(-5, 2, (1, 80, s["frames"])).astype(np.float32))

    def call():
        with torch.no_grad():
            gen(mel)

    return call


def worker(args) -> None:
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the replies
        if args.worker == "ours":
            call = ours(args.case, args.quick)
        else:
            call = reference(args.case, args.quick, args.nvidia, args.jik876, args.threads)
        for _ in range(2):  # warm-up (compilation, allocator)
            call()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        call()
        print(time.perf_counter() - start, flush=True)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def start(python: str, side: str, case: str, args) -> subprocess.Popen:
    cmd = [python, __file__, "--worker", side, "--case", case, "--threads", str(args.threads)]
    cmd += ["--nvidia", args.nvidia, "--jik876", args.jik876] + (["--quick"] if args.quick else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"{side} worker for {case} failed to start (see its stderr above)")
    return proc


def ask(proc: subprocess.Popen) -> float:
    proc.stdin.write("run\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def measure(case: str, args) -> dict:
    """Both workers up at once (each idles while the other runs); ``rounds`` alternating
    calls, the side going first alternating too."""
    procs = {"ours": start(sys.executable, "ours", case, args)}
    procs["reference"] = start(args.torch, "reference", case, args)
    times = {"ours": [], "reference": []}
    try:
        for r in range(args.rounds):
            order = ("ours", "reference") if r % 2 == 0 else ("reference", "ours")
            for side in order:
                times[side].append(ask(procs[side]))
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    per_round = [ref / our for our, ref in zip(times["ours"], times["reference"], strict=True)]
    ours_s, ref_s = statistics.median(times["ours"]), statistics.median(times["reference"])
    return {
        "case": case,
        **sizes(case, args.quick),
        "ours_median_s": ours_s,
        "reference_median_s": ref_s,
        "ratio": ref_s / ours_s,
        "ratio_min": min(per_round),
        "ratio_max": max(per_round),
        "rounds": args.rounds,
        "threads": args.threads,
        "device": f"CPU ({platform.processor() or platform.machine()}), {args.threads} threads",
        "quick": args.quick,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| case | shape | ours (s) | PyTorch reference (s) | reference / ours | per-round range "
        "| device |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = (
            f"batch {r['batch']} x {r['text']} symbols x {r['frames']} frames"
            if "batch" in r
            else f"{r['frames']} mel frames"
        )
        lines.append(
            f"| {r['case']} | {shape} | {r['ours_median_s']:.3f} | {r['reference_median_s']:.3f} "
            f"| **{r['ratio']:.2f}x** | {r['ratio_min']:.2f}–{r['ratio_max']:.2f} "
            f"| {r['device']} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--torch", help="the Python of an environment with torch 2.13")
    p.add_argument("--nvidia", default="/tmp/ref/nvidia_tacotron2", help="NVIDIA/tacotron2")
    p.add_argument("--jik876", default="/tmp/ref/hifigan", help="jik876/hifi-gan checkout")
    p.add_argument("--case", action="append", choices=CASES, help="default: all")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="small shapes: checks the plumbing")
    p.add_argument("--out", type=Path, help="append the JSON lines here")
    p.add_argument("--readme", type=Path, help="write the table into this README's section")
    p.add_argument("--worker", choices=("ours", "reference"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        if args.case and isinstance(args.case, list):
            args.case = args.case[0]
        worker(args)
        return
    if not args.torch:
        p.error("--torch is required (see the setup in this script's docstring)")
    rows = []
    for case in args.case or CASES:
        rows.append(measure(case, args))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    print(table(rows))
    if args.readme:
        text = args.readme.read_text()
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        if not rest:
            raise SystemExit(f"{args.readme} has no {BEGIN} ... {END} section")
        args.readme.write_text(f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}")


if __name__ == "__main__":
    main()
