"""HiFi-GAN learning run on a CPU budget, with copy-synthesis quality at budget checkpoints.

    python experiments/hifigan_report.py --workdir runs/hifigan_cpu [--minutes 30 90]

Trains ``experiments/hifigan.py:cpu`` (or ``--config``) on the embedded corpus until each
cumulative wall-clock budget (default 30 and 90 minutes of training, compilation included),
and after each scores copy synthesis of the test split's ground-truth mels (default 50
utterances): log-mel L1, multi-resolution STFT distance, PESQ-WB (16 kHz) and the rest of
``tts_jax.eval.metrics``, next to Griffin-Lim (60 iterations) on the same utterances as the
training-free floor. Re-running resumes: finished phases are skipped (WORKDIR/phases.json),
an interrupted one continues from its last checkpoint.

Writes WORKDIR/report.md, WORKDIR/report.json and WORKDIR/eval_<M>min/, WORKDIR/eval_griffin_lim/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tts_jax.config import load_config  # noqa: E402
from tts_jax.data.inputs import corpus_from_config  # noqa: E402
from tts_jax.eval.evaluate import (  # noqa: E402
    copy_synthesis_pairs,
    evaluate_pairs,
    griffin_lim_pairs,
    markdown_table,
)
from tts_jax.models.hifigan import Vocoder  # noqa: E402
from tts_jax.train.loop import train_and_evaluate  # noqa: E402


def _cumulative(phases: list[dict], result: dict) -> float:
    """Training minutes spent up to the end of ``result``'s phase."""
    target = result["phase"]["target_minutes"]
    return sum(ph["minutes"] for ph in phases if ph["target_minutes"] <= target)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--config", default="experiments/hifigan.py:cpu")
    p.add_argument("--minutes", type=float, nargs="+", default=[30.0, 90.0])
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("overrides", nargs="*", help="--config.x=v style overrides, without dashes")
    args = p.parse_args(argv)

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config = load_config(args.config, [f"--config.{o}" for o in args.overrides])
    split = corpus_from_config(config).split(args.split)
    sr = config.data.sample_rate
    phases_path = workdir / "phases.json"
    phases = json.loads(phases_path.read_text()) if phases_path.is_file() else []

    results = []
    floor_dir = workdir / "eval_griffin_lim"
    if not (floor_dir / "eval.json").is_file():
        evaluate_pairs(griffin_lim_pairs(split, args.limit), sr, floor_dir, "Griffin-Lim (60 it.)")
    floor = json.loads((floor_dir / "eval.json").read_text())

    trained = sum(ph["minutes"] for ph in phases)
    for target in sorted(args.minutes):
        done = [ph for ph in phases if ph["target_minutes"] == target]
        if not done:
            config.train.max_minutes = max(target - trained, 0.0)
            config.train.num_steps = 10**9
            t0 = time.time()
            state = train_and_evaluate(config, workdir)
            minutes = (time.time() - t0) / 60
            trained += minutes
            phases.append({"target_minutes": target, "minutes": minutes, "step": int(state.step)})
            phases_path.write_text(json.dumps(phases, indent=1))
            del state
        phase = next(ph for ph in phases if ph["target_minutes"] == target)
        out = workdir / f"eval_{target:g}min"
        if not (out / "eval.json").is_file():
            vocoder = Vocoder(workdir)
            variant = args.config.partition(":")[2] or "default"
            title = f"HiFi-GAN :{variant}, {target:g} min (step {vocoder.step})"
            evaluate_pairs(
                copy_synthesis_pairs(split, args.limit, vocoder), sr, out, title, save_audio=3
            )
        results.append(dict(json.loads((out / "eval.json").read_text()), phase=phase))

    table = markdown_table([*results, floor])
    lines = [
        f"# HiFi-GAN {args.config} on {config.data.path}: copy synthesis of {args.limit} "
        f"{args.split} utterances",
        "",
        table,
        "",
        "| budget (min) | cumulative training minutes | steps |",
        "|---|---|---|",
        *(
            f"| {r['phase']['target_minutes']:g} | {_cumulative(phases, r):.1f} | "
            f"{r['phase']['step']} |"
            for r in results
        ),
    ]
    (workdir / "report.md").write_text("\n".join(lines) + "\n")
    (workdir / "report.json").write_text(
        json.dumps(
            {
                "phases": phases,
                "results": [r["summary"] for r in results],
                "griffin_lim": floor["summary"],
            },
            indent=1,
        )
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
