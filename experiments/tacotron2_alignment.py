"""How fast does Tacotron 2 align? Each switch measured on the same budget of CPU time.

    python experiments/tacotron2_alignment.py --data runs/corpus --out runs/alignment \
        [--minutes 30] [--cores 0,1] [--arms cpu,ga,...] [--readme docs/tacotron2.md]

Every arm is ``experiments/tacotron2.py:cpu`` (or its ``:shipped`` variant) with a few config
overrides (``ARMS``), trained by ``tts-jax train`` pinned to one CPU core (``taskset``), one
arm per core of ``--cores`` at a time, each for ``--minutes`` of wall time
(``train.max_minutes``; compilation and evaluation included), evaluating every 100 steps. So
every arm gets the same CPU-minutes, and two cores run two arms side by side without either
slowing the other.

The score is the validation attention focus (teacher forced: the mean over decoder steps of
the largest attention weight; 0.5 = "sharp", see ``experiments/tacotron2_report.py``). An arm
whose workdir already covers the budget is not rerun, so the script resumes; an arm that was
cut short is started again from scratch (its time axis must be unbroken). A workdir trained
on past the budget (the shipped model's run is the ``shipped`` arm continued) is read only up
to the budget.

Writes OUT/alignment.json, OUT/alignment.md and docs/tacotron2_alignment.png; with
``--readme PAGE`` the table replaces that page's ``report:tacotron2-alignment`` block (it is in
docs/tacotron2.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GA = {"model.guided_attention_weight": 50.0}
FB = {"model.lstm_forget_bias": 1.0}
IPA = {"data.text.frontend": "ipa"}

# name -> (variant of experiments/tacotron2.py, overrides, description)
ARMS = {
    "cpu": ("cpu", {}, ":cpu as it was (characters)"),
    "fb": ("cpu", FB, "+ forget-gate bias 1.0"),
    "ga": ("cpu", GA, "+ guided attention (weight 50, g 0.2)"),
    "ga_fb": ("cpu", {**GA, **FB}, "+ guided attention + forget-gate bias"),
    "ipa": ("cpu", IPA, "+ espeak IPA input"),
    "shipped": ("shipped", {}, "guided attention + forget-gate bias + IPA (:shipped)"),
}
EVAL_EVERY = 100
THRESHOLD = 0.5


def launch(name: str, args, core: int | None) -> subprocess.Popen:
    variant, overrides, _ = ARMS[name]
    workdir = args.out / name
    if workdir.exists():
        shutil.rmtree(workdir)  # a run cut short: its time axis would have a hole
    workdir.mkdir(parents=True)
    (workdir / "launched.json").write_text(json.dumps({"time": time.time(), "core": core}))
    cmd = [
        sys.executable,
        "-m",
        "tts_jax",
        "train",
        "--config",
        f"{REPO / 'experiments' / 'tacotron2.py'}:{variant}",
        "--workdir",
        str(workdir),
        f"--config.data.path={args.data}",
        f"--config.train.max_minutes={args.minutes}",
        f"--config.train.eval_every={EVAL_EVERY}",
        "--config.train.progress=False",
        *(f"--config.{k}={v}" for k, v in overrides.items()),
    ]
    if core is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(core), *cmd]
    log = open(args.out / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


def curve(workdir: Path, minutes: float) -> list[dict]:
    """Eval rows within the budget: step, minutes since launch, focus, mel loss."""
    from tts_jax.train.summary import read_metrics

    launched = json.loads((workdir / "launched.json").read_text())["time"]
    rows = []
    for r in read_metrics(workdir, "eval"):
        m = (r["wall_time"] - launched) / 60
        if m <= minutes + 0.5:  # the budget's own final evaluation
            rows.append({"step": r["step"], "minutes": m, "focus": r["focus"], "after": r["after"]})
    return rows


def covered(workdir: Path, minutes: float) -> bool:
    """True when the arm ran its whole budget (or, for a longer run, got past it)."""
    from tts_jax.train.summary import read_metrics

    if not (workdir / "launched.json").is_file():
        return False
    launched = json.loads((workdir / "launched.json").read_text())["time"]
    rows = read_metrics(workdir, "train") if (workdir / "metrics.jsonl").is_file() else []
    return bool(rows) and rows[-1]["wall_time"] - launched >= 60 * minutes - 60


def summarize(name: str, rows: list[dict]) -> dict:
    first = next((r for r in rows if r["focus"] >= THRESHOLD), None)
    last = rows[-1] if rows else {}
    return {
        "arm": name,
        "description": ARMS[name][2],
        "steps": last.get("step"),
        "focus": last.get("focus"),
        "best_focus": max((r["focus"] for r in rows), default=None),
        "mel_loss_after": last.get("after"),
        "aligned_minutes": first["minutes"] if first else None,
        "aligned_step": first["step"] if first else None,
        "curve": rows,
    }


def markdown(results: list[dict], minutes: float) -> str:
    lines = [
        f"| arm | what | steps in {minutes:g} min | focus at {minutes:g} min | best focus | "
        f"first focus ≥ {THRESHOLD} | validation mel loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        aligned = (
            f"{r['aligned_minutes']:.0f} min (step {r['aligned_step']})"
            if r["aligned_step"] is not None
            else "not reached"
        )
        lines.append(
            f"| `{r['arm']}` | {r['description']} | {r['steps']} | {r['focus']:.3f} | "
            f"{r['best_focus']:.3f} | {aligned} | {r['mel_loss_after']:.3f} |"
        )
    return "\n".join(lines)


def plot(results: list[dict], minutes: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for r in results:
        c = r["curve"]
        axes[0].plot([p["minutes"] for p in c], [p["focus"] for p in c], marker=".", label=r["arm"])
        axes[1].plot([p["step"] for p in c], [p["focus"] for p in c], marker=".", label=r["arm"])
    for ax, label in zip(axes, ("minutes on one CPU core", "training step"), strict=True):
        ax.axhline(THRESHOLD, color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_xlim(0, minutes)
    axes[0].set_ylabel("validation attention focus")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Tacotron 2 :cpu size, embedded corpus, {minutes:g} CPU-minutes per arm")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="LJSpeech-format corpus")
    p.add_argument("--out", default=Path("runs/alignment"), type=Path)
    p.add_argument("--minutes", type=float, default=30.0, help="budget per arm, one core")
    p.add_argument(
        "--cores",
        default=",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:2]),
        help="CPU cores to pin arms to, one arm per core at a time",
    )
    p.add_argument("--arms", default=",".join(ARMS), help=f"subset of {','.join(ARMS)}")
    p.add_argument(
        "--readme", "--page", dest="readme", type=Path, help="page whose report block to rewrite"
    )
    args = p.parse_args()
    names = args.arms.split(",")
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        sys.exit(f"error: unknown arm(s) {unknown}; expected some of {list(ARMS)}")
    args.out.mkdir(parents=True, exist_ok=True)

    pending = [n for n in names if not covered(args.out / n, args.minutes)]
    cores = [int(c) for c in args.cores.split(",")]
    running: dict[int, tuple[str, subprocess.Popen]] = {}
    while pending or running:
        for core in cores:
            if core not in running and pending:
                name = pending.pop(0)
                running[core] = (name, launch(name, args, core))
        time.sleep(5)
        for core, (name, proc) in list(running.items()):
            if proc.poll() is not None:
                print(f"[{name}] exited with {proc.returncode}", flush=True)
                if proc.returncode:
                    sys.exit(f"error: arm {name} failed; see {args.out / (name + '.log')}")
                del running[core]

    results = [summarize(n, curve(args.out / n, args.minutes)) for n in names]
    (args.out / "alignment.json").write_text(json.dumps(results, indent=1))
    table = markdown(results, args.minutes)
    (args.out / "alignment.md").write_text(table + "\n")
    plot(results, args.minutes, REPO / "docs" / "tacotron2_alignment.png")
    print(table)
    if args.readme:
        from tools.report import update_readme

        update_readme(args.readme, "tacotron2-alignment", table)


if __name__ == "__main__":
    main()
