"""Sequence-level knowledge distillation of Tacotron 2 (Kim & Rush 2016): a
smaller student trained on what a trained teacher says, compared with the same student
trained on the recordings.

The runner of ``tts-jax sweep experiments/tacotron2_distill.py:VARIANT --workdir W``:

1. exports the teacher's mels of the training split with ``tts-jax gta``'s code:
   teacher-forced (``W/teacher_mels/teacher-forced``, the recordings' lengths) and
   free-running (``W/teacher_mels/free-running``, as long as the teacher decodes);
2. trains the student config on each target (``STUDENTS``) in ``W/runs/NAME`` with the same
   steps, seed and data order, each resumable and skipped once ``done.json`` exists;
3. scores the teacher and every student on held-out test sentences (MCD against espeak and
   the other shared metrics, stop-token rate, alignment focus) and times their synthesis side
   by side in one run;
4. writes ``W/report.md``, ``W/results.csv`` and ``W/curves.png`` (validation mel loss).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tts_jax import sweep as S
from tts_jax.audio import MelConfig
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.eval.attention import diagnostics_summary
from tts_jax.eval.evaluate import evaluate_pairs
from tts_jax.models.tacotron2.inference import Synthesizer, export_gta, heldout_synthesis
from tts_jax.models.tacotron2.train import param_count
from tts_jax.paths import is_remote, run_path
from tts_jax.workdir import read_config

# Student name -> the teacher mels it is trained on (None: the recordings' mels).
STUDENTS = {
    "ground_truth": None,
    "teacher_forced": "teacher-forced",
    "free_running": "free-running",
}
REPORTED = (
    ("mcd", "MCD (dB) ↓"),
    ("log_mel_l1", "log-mel L1 ↓"),
    ("stopped_by_token", "stop-token rate ↑"),
    ("focus", "alignment focus ↑"),
    ("mel_after_final", "val. mel loss (GT) ↓"),
    ("synthesis_x_real_time", "synthesis × real time ↑"),
)


def run_distillation(
    sweep: dict, spec: str, workdir: Path, overrides: list[str], sequential: bool = False
) -> dict:
    """The runner ``get_sweep`` names: trains, scores and reports every student (above). The
    students read different targets (``data.mel_dir``), so :func:`tts_jax.sweep.train_runs`
    puts each in a group of its own: stacked or ``sequential``, they train one after
    another, alone."""
    if is_remote(workdir):
        raise UserError(
            f"--workdir {workdir}: the distillation sweep writes its teacher's mels there for "
            "the students to train on, and training data is read from a local disk; give a "
            "local workdir (its teacher may be in a bucket)"
        )
    chosen = [o.partition("=")[2] for o in overrides if o.startswith("teacher.path=")]
    teacher = run_path(chosen[-1] if chosen else sweep["teacher"])
    if not teacher.is_dir():
        raise UserError(f"teacher {teacher} is not a folder (a Tacotron 2 workdir or export)")
    tcfg = read_config(teacher, "tacotron2")
    targets = {
        kind: _teacher_mels(teacher, workdir / "teacher_mels" / kind, kind)
        for kind in STUDENTS.values()
        if kind
    }
    scored = lambda name, path: _score(path, sweep, workdir / "eval" / name)  # noqa: E731
    paths = [teacher]
    rows = [
        S.resumable(
            workdir / "teacher",
            lambda: {"variant": "teacher", "params": _params(tcfg), **scored("teacher", teacher)},
        )
    ]
    runs = []
    for name, kind in STUDENTS.items():
        cfg = student_config(sweep, overrides, targets.get(kind))
        _check_compatible(tcfg, cfg)
        runs.append(S.Run(name, cfg, workdir / "runs" / name))
    layout = S.train_runs(runs, workdir, sequential)
    for run in runs:
        paths.append(run.workdir)
        train_and_score = lambda r=run: {  # noqa: E731
            **_train(r.name, r.config, r.workdir),
            **scored(r.name, r.workdir),
        }
        rows.append(S.resumable(run.workdir, train_and_score))
    speeds = synthesis_speed(paths, sweep["speed_sentences"], sweep["speed_repeats"])
    for row, speed in zip(rows, speeds, strict=True):
        row["synthesis_x_real_time"] = speed
    S.write_csv(workdir / "results.csv", rows, ["variant", "params", *(k for k, _ in REPORTED)])
    S.plot_curves(workdir / "curves.png", [r for r in rows if "curve" in r], "validation mel MSE")
    write_report(workdir, rows, spec, sweep, layout)
    return {"rows": rows}


def student_config(sweep: dict, overrides: list[str], mel_dir: str | None):
    """The student config with ``student.`` overrides and its training targets."""
    cfg = load_config(sweep["student_config"], S.only(overrides, "student."))
    with cfg.unlocked():
        cfg.data.mel_dir = mel_dir
    return cfg


def _check_compatible(tcfg, cfg) -> None:
    """A student learns the teacher's mels only if both read the same text and mels."""
    if dict(tcfg.data.text) != dict(cfg.data.text):
        raise UserError(
            f"the student's data.text {dict(cfg.data.text)} differs from the teacher's "
            f"{dict(tcfg.data.text)}"
        )
    if MelConfig.from_config(tcfg.data) != MelConfig.from_config(cfg.data):
        raise UserError("the student's mel front end (data.*) differs from the teacher's")
    if tcfg.data.path != cfg.data.path:
        raise UserError(
            f"the teacher was trained on {tcfg.data.path!r} and the student reads "
            f"{cfg.data.path!r}: distil on the teacher's corpus"
        )


def _teacher_mels(teacher: Path, out: Path, kind: str) -> str:
    """``out`` holding the teacher's ``kind`` mels of the training split (exported once)."""
    if not (out / "index.json").is_file():
        export_gta(teacher, out, "train", free_running=kind == "free-running")
    return str(out)


def _params(cfg) -> int:
    return param_count(cfg)["model"]


def _train(name: str, cfg, run_dir: Path) -> dict:
    S.ensure_trained(cfg, run_dir)
    row = {"variant": name, "targets": cfg.data.mel_dir or "recordings", "params": _params(cfg)}
    row.update(S.training_summary(run_dir, "after", "mel_after"))  # eval on the recordings
    return row


def _score(path: Path, sweep: dict, out_dir: Path) -> dict:
    """Held-out synthesis of the test split, scored against espeak (Griffin-Lim vocoder: the
    comparison is between text-to-mel models, so every row shares the vocoder)."""
    pairs, diagnostics, synth, _ = heldout_synthesis(path, "test", sweep["heldout"])
    result = evaluate_pairs(pairs, synth.config.data.sample_rate, out_dir, path.name)
    attention = diagnostics_summary(diagnostics)
    summary = result["summary"]
    return {
        "mcd": summary["mcd_db"]["mean"],
        "mcd_ci95": summary["mcd_db"]["ci95"],
        "log_mel_l1": summary["log_mel_l1"]["mean"],
        "stopped_by_token": attention["stopped_by_token"],
        "focus": attention["focus"],
        "heldout": len(pairs),
    }


def synthesis_speed(paths: list[Path], sentences: list[str], repeats: int) -> list[float]:
    """Seconds of mel produced per second of wall time for each model on ``sentences`` (one
    batch), measured in one run, models alternating, median of ``repeats`` after a
    compiling call."""
    synths = [Synthesizer.from_workdir(p) for p in paths]
    hop, rate = synths[0].config.data.hop_length, synths[0].config.data.sample_rate
    times = [[] for _ in synths]
    produced = []
    for s in synths:
        out = s(sentences)  # compiles
        produced.append(sum(len(r["mel"]) for r in out) * hop / rate)
    for _ in range(repeats):
        for k, s in enumerate(synths):
            start = time.perf_counter()
            s(sentences)
            times[k].append(time.perf_counter() - start)
    return [p / float(np.median(t)) for p, t in zip(produced, times, strict=True)]


def write_report(workdir: Path, rows: list[dict], spec: str, sweep: dict, layout=()) -> None:
    """``layout``: the lines :func:`tts_jax.sweep.train_runs` returned."""
    lines = [
        f"# Tacotron 2 distillation: `{spec}`",
        "",
        f"Teacher: `{sweep['teacher']}`. Students: `{sweep['student_config']}`, one seed, the "
        "same steps and data order, trained on the targets named in the first column. "
        f"Scored on the first {rows[0].get('heldout', '?')} test utterances against espeak "
        "(Griffin-Lim vocoder for every row). Synthesis speed: seconds of mel produced per "
        "second of wall time, side by side in this run on "
        f"{len(sweep['speed_sentences'])} sentences, median of {sweep['speed_repeats']} (it "
        "counts what each model decodes, so it also depends on where each stops).",
        "",
        "| model | targets | parameters | " + " | ".join(label for _, label in REPORTED) + " |",
        "|---|---|---|" + "---|" * len(REPORTED),
    ]
    for r in rows:
        cells = [_cell(r.get(k)) for k, _ in REPORTED]
        cells[0] += f" ± {r['mcd_ci95']:.2f}" if np.isfinite(r.get("mcd_ci95", np.nan)) else ""
        lines.append(
            f"| {r['variant']} | {Path(str(r.get('targets', 'recordings'))).name} | "
            f"{r['params']:,} | " + " | ".join(cells) + " |"
        )
    lines += ["", sweep.get("budget_note", ""), "", *S.layout_lines(list(layout), rows)]
    lines += ["", "![validation mel loss](curves.png)", ""]
    (workdir / "report.md").write_text("\n".join(lines))
    (workdir / "results.json").write_text(json.dumps(rows, indent=1, default=str))


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"  # nothing to score: every held-out clip failed (e.g. too short)
    return f"{value:.3f}" if isinstance(value, float) else str(value)
