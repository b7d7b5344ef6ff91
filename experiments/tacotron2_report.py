"""Report on a Tacotron 2 learning run: when it aligned, and how it synthesises held-out text.

    python experiments/tacotron2_report.py --workdir runs/tacotron2_cpu \
        --out runs/eval/tacotron2_cpu

1. Alignment over training, from the run's logs: the diagonality score is the attention
   *focus* (mean over decoder steps of the largest weight, tts_jax.eval.attention), on the
   validation batches with teacher forcing. "Aligned" = first evaluation with focus >= 0.5
   (uniform attention over a 60-symbol sentence gives 0.017). Steps and wall-clock seconds
   since the first logged step are reported, with a plot.
2. Held-out synthesis of the test split (default 50 sentences): free-running decoding, the
   fraction that ended by the stop token (not max decoder steps), alignment focus /
   monotonicity / coverage of the free-running attention, and MCD (WORLD + SPTK, DTW), PESQ,
   STOI, ... of the Griffin-Lim audio against espeak's own recording of the same sentence.

3. With ``--curve-every K``: MCD against training time. Every kept checkpoint whose step is a
   multiple of K synthesises the first ``--curve-limit`` test sentences; training time is the
   run's own wall clock between logged steps (compilation and evaluation included, the time
   between a stop and its resume not).

Writes OUT/report.json, OUT/report.md, OUT/alignment_curve.png, OUT/eval.{json,md} (and
OUT/mcd_curve.{json,png}).
"""

from __future__ import annotations

import argparse
import glob
import json
import struct
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def eval_curve(workdir: Path) -> list[dict]:
    """Eval rows of metrics.jsonl with a wall time (from the row, or TensorBoard's events)."""
    from tts_jax.train.summary import read_metrics

    rows = read_metrics(workdir, "eval")
    if rows and all("wall_time" in r for r in rows):
        return rows
    times = {}
    for path in sorted(glob.glob(str(workdir / "tensorboard" / "events.*"))):
        from tensorboardX.proto import event_pb2

        data = Path(path).read_bytes()
        i = 0
        while i + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            ev = event_pb2.Event()
            ev.ParseFromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                if v.tag == "eval/focus":
                    times[ev.step] = ev.wall_time
    return [dict(r, wall_time=times.get(r["step"], float("nan"))) for r in rows]


def first_train_time(workdir: Path) -> float:
    from tts_jax.train.summary import read_metrics

    rows = read_metrics(workdir, "train")
    if rows and "wall_time" in rows[0]:
        return rows[0]["wall_time"]
    return float("nan")


def training_minutes(workdir: Path) -> dict[int, float]:
    """step -> minutes of training up to it, from the logged steps/s of each interval."""
    from tts_jax.train.summary import read_metrics

    minutes, total, previous = {}, 0.0, 0
    for r in read_metrics(workdir, "train"):
        if r["step"] <= previous:  # a resumed run logs its steps again from the checkpoint
            previous = r["step"] - 1
        total += (r["step"] - previous) / r["steps_per_second"] / 60
        minutes[r["step"]] = total
        previous = r["step"]
    return minutes


def mcd_curve(workdir: Path, every: int, limit: int, split: str, done=()) -> list[dict]:
    """Held-out MCD (and stop / focus) of every kept checkpoint at a multiple of ``every``
    and of the newest;
    rows of ``done`` (an earlier call's, same limit and split) are kept, not recomputed."""
    from tts_jax.eval.metrics import mcd_and_f0
    from tts_jax.models.tacotron2 import heldout_synthesis
    from tts_jax.workdir import checkpoint_manager

    mgr = checkpoint_manager(workdir, 1)
    kept = mgr.all_steps()
    steps = [s for s in kept if s % every == 0 or s == max(kept, default=0)]  # + the newest
    mgr.close()
    minutes = training_minutes(workdir)
    rows = [r for r in done if r["step"] in steps]
    for step in sorted(set(steps) - {r["step"] for r in rows}):
        pairs, diag, synth, _ = heldout_synthesis(workdir, split, limit, step=step)
        mcd = []
        for _, ref, wav in pairs:
            try:
                mcd.append(mcd_and_f0(ref, wav, synth.config.data.sample_rate)["mcd_db"])
            except Exception:  # noqa: BLE001 - a clip too short to score counts as missing
                continue
        logged = [m for s, m in minutes.items() if s <= step]
        rows.append(
            {
                "step": step,
                "minutes": logged[-1] if logged else float("nan"),
                "mcd_db": float(np.mean(mcd)) if mcd else float("nan"),
                "scored": len(mcd),
                "stopped_by_token": float(np.mean([d["stopped_by_token"] for d in diag])),
                "focus": float(np.mean([d["focus"] for d in diag])),
                "duration_ratio": float(
                    sum(d["seconds"] for d in diag) / sum(d["reference_seconds"] for d in diag)
                ),
            }
        )
        print(f"curve: {rows[-1]}", flush=True)
    return sorted(rows, key=lambda r: r["step"])


def _curve_table(rows, limit: int) -> str:
    lines = [
        f"| step | training minutes | MCD (dB), {limit} test sentences | ended by stop token | "
        "focus | duration / espeak's |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['step']:,} | {r['minutes']:.0f} | {r['mcd_db']:.2f} | "
            f"{100 * r['stopped_by_token']:.0f} % | {r['focus']:.3f} | {r['duration_ratio']:.3f} |"
        )
    return "\n".join(lines)


def _plot_mcd(rows, floor, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([r["minutes"] for r in rows], [r["mcd_db"] for r in rows], marker="o", label="model")
    if floor:
        ax.axhline(floor, color="gray", linestyle="--", linewidth=0.8, label="Griffin-Lim floor")
    ax.set_xlabel("training minutes (wall time of the run)")
    ax.set_ylabel("held-out MCD vs espeak (dB)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--focus", type=float, default=0.5, help="alignment threshold")
    p.add_argument(
        "--start-time",
        type=float,
        default=None,
        help="unix time the run started (default: the first TensorBoard event)",
    )
    p.add_argument("--curve-every", type=int, default=0, help="MCD curve: checkpoint interval")
    p.add_argument("--curve-limit", type=int, default=20, help="MCD curve: test sentences")
    p.add_argument("--floor", type=float, default=6.868, help="Griffin-Lim MCD floor to draw")
    p.add_argument(
        "--readme",
        "--page",
        dest="readme",
        type=Path,
        help="write the MCD curve's table into this page (docs/tacotron2.md)",
    )
    p.add_argument(
        "--curve-only", action="store_true", help="the two curves only, no held-out evaluation"
    )
    args = p.parse_args()

    from tts_jax.eval.attention import diagnostics_summary
    from tts_jax.eval.evaluate import evaluate_pairs
    from tts_jax.models.tacotron2 import heldout_synthesis
    from tts_jax.plotting import save_png
    from tts_jax.workdir import read_config

    workdir, out = Path(args.workdir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = read_config(workdir)

    if args.curve_every:
        cached = out / "mcd_curve.json"
        done = json.loads(cached.read_text()) if cached.is_file() else []
        rows = mcd_curve(workdir, args.curve_every, args.curve_limit, args.split, done)
        (out / "mcd_curve.json").write_text(json.dumps(rows, indent=1))
        _plot_mcd(rows, args.floor, out / "mcd_curve.png")
        if args.readme:
            from tools.report import update_readme

            update_readme(args.readme, "shipped-curve", _curve_table(rows, args.curve_limit))

    # 1. Alignment over training.
    curve = eval_curve(workdir)
    start = args.start_time or _first_event_time(workdir)
    aligned = next((r for r in curve if r["focus"] >= args.focus), None)
    _plot_curve(curve, start, args.focus, out / "alignment_curve.png", save_png)
    if args.curve_only:
        return

    # 2. Held-out synthesis.
    pairs, diag, synth, _ = heldout_synthesis(workdir, args.split, args.limit)
    n = len(pairs)
    title = f"Tacotron 2 {Path(workdir).name} (step {synth.step}) + Griffin-Lim"
    ev = evaluate_pairs(pairs, config.data.sample_rate, out, title, save_audio=5)
    report = {
        "workdir": str(workdir),
        "step": synth.step,
        "focus_threshold": args.focus,
        "aligned_at_step": aligned["step"] if aligned else None,
        "aligned_after_seconds": (aligned["wall_time"] - start) if aligned else None,
        "eval_curve": [
            {k: r[k] for k in ("step", "focus", "before", "after", "stop", "wall_time") if k in r}
            for r in curve
        ],
        "heldout": {
            "sentences": n,
            **diagnostics_summary(diag),
            "metrics": ev["summary"],
            "compiled_shapes": len(synth.shapes),
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(_markdown(report, title) + "\n")
    print(_markdown(report, title))


def _first_event_time(workdir: Path) -> float:
    t = first_train_time(workdir)
    if np.isfinite(t):
        return t
    paths = sorted(glob.glob(str(workdir / "tensorboard" / "events.*")))
    return float(Path(paths[0]).name.split(".")[3]) if paths else float("nan")


def _plot_curve(curve, start, threshold, path, save_png):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    steps = [r["step"] for r in curve]
    ax.plot(steps, [r["focus"] for r in curve], marker="o")
    ax.axhline(threshold, color="gray", linestyle="--", linewidth=0.8)
    ax.set_xlabel("training step")
    ax.set_ylabel("attention focus (validation)")
    if curve and np.isfinite(start):
        top = ax.secondary_xaxis("top")
        top.set_xlabel("minutes since the run started")
        minutes = {s: (r["wall_time"] - start) / 60 for s, r in zip(steps, curve, strict=True)}
        top.set_xticks(steps[:: max(1, len(steps) // 5)])
        top.set_xticklabels([f"{minutes[s]:.0f}" for s in steps[:: max(1, len(steps) // 5)]])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(report: dict, title: str) -> str:
    h = report["heldout"]
    m = h["metrics"]
    aligned = (
        f"step {report['aligned_at_step']} ({report['aligned_after_seconds'] / 60:.0f} min)"
        if report["aligned_at_step"] is not None
        else "not within this run"
    )
    return "\n".join(
        [
            f"**{title}**",
            "",
            "| measure | value |",
            "|---|---|",
            f"| alignment (validation focus >= {report['focus_threshold']}) | {aligned} |",
            f"| held-out sentences | {h['sentences']} |",
            f"| ended by stop token | {100 * h['stopped_by_token']:.0f} % |",
            f"| free-running focus / monotonicity / coverage | {h['focus']:.3f} / "
            f"{h['monotonicity']:.3f} / {h['coverage']:.3f} |",
            f"| MCD vs espeak (dB, DTW) | {m['mcd_db']['mean']:.2f} ± {m['mcd_db']['ci95']:.2f} |",
            f"| PESQ-WB / STOI | {m['pesq_wb']['mean']:.2f} / {m['stoi']['mean']:.3f} |",
        ]
    )


if __name__ == "__main__":
    main()
