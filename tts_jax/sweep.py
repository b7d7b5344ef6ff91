"""What the experiment sweeps share (``tts-jax sweep FILE.py[:VARIANT] --workdir W``).

A sweep file defines ``get_sweep(variant)`` returning a dict; its ``"runner"`` (a function
``(sweep, spec, workdir, overrides) -> {"rows": [...]}``) trains every run in
``W/runs/NAME``, each resumable and skipped once its ``done.json`` exists, scores it and
writes ``W/report.md``. The pieces here are the ones every runner needs: loading the file,
``--set PREFIX.a.b=v`` overrides, the held-out windows runs are scored on, a run's training
summary from its ``metrics.jsonl``, ``results.csv`` and the validation curves.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from tts_jax.config import resolve_config_path
from tts_jax.data.inputs import corpus_from_config
from tts_jax.errors import UserError
from tts_jax.paths import run_path, write_whole
from tts_jax.plotting import plt, save_figure  # matplotlib with the file-only Agg backend
from tts_jax.train.loop import train_and_evaluate
from tts_jax.train.summary import read_metrics


def load_sweep(spec: str) -> dict:
    """The ``get_sweep(variant)`` of ``FILE.py[:VARIANT]``."""
    path, _, variant = resolve_config_path(spec).partition(":")
    if not Path(path).is_file():
        raise UserError(f"sweep file not found: {path}")
    module_spec = importlib.util.spec_from_file_location("sweep_file", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_sweep"):
        raise UserError(f"{path} defines no get_sweep(variant)")
    return module.get_sweep(variant) if variant else module.get_sweep()


def run_sweep(spec: str, workdir, overrides=()) -> dict:
    """``tts-jax sweep``: runs (or resumes) the sweep ``spec`` in ``workdir`` with the runner
    its file names; returns the runner's ``{"rows": [...]}``."""
    sweep = load_sweep(spec)
    runner = sweep.get("runner")
    if runner is None:
        raise UserError(f"{spec}: get_sweep names no runner (its dict's 'runner')")
    workdir = run_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return runner(sweep, spec, workdir, list(overrides))


def only(overrides, prefix: str) -> list[str]:
    """``PREFIX.x.y=v`` -> ``--config.x.y=v`` for the config that prefix names."""
    return [f"--config.{o[len(prefix) :]}" for o in overrides if o.startswith(prefix)]


def train_to_end(config, run_dir: Path):
    """Trains (or resumes) ``config`` in ``run_dir``; returns the state only when it reached
    ``train.num_steps``. A run stopped earlier (SIGTERM, ``train.max_minutes``) raises, so that
    :func:`resumable` does not record it as done and the next sweep resumes it."""
    state = train_and_evaluate(config, run_dir)
    if int(state.step) < config.train.num_steps:
        raise UserError(
            f"{run_dir} stopped at step {int(state.step)} of {config.train.num_steps}; run the "
            "sweep again to resume it"
        )
    return state


def resumable(run_dir: Path, run: Callable[[], dict]) -> dict:
    """A run's row: ``run_dir/done.json`` when it exists, else ``run()`` (which trains,
    resuming from the run's checkpoints, and scores), written there."""
    done = run_dir / "done.json"
    if not done.is_file():
        row = run()
        run_dir.mkdir(parents=True, exist_ok=True)  # a row that trains nothing has no folder yet
        done.write_text(json.dumps(row, indent=1))
    return json.loads(done.read_text())


def heldout_windows(config, limit: int, seconds: float = 2.0) -> Iterator[tuple]:
    """The held-out windows runs are scored on: the first ``seconds`` (or the whole utterance)
    of the first ``limit`` test utterances, as ``(i, audio [T], mel [1, F, n_mels])``; fixed
    lengths keep one compilation."""
    hop = config.data.hop_length
    split = corpus_from_config(config).split("test")
    for i in range(min(limit, len(split))):
        ex = split.example(i)
        frames = min(len(ex["mel"]), int(seconds * config.data.sample_rate) // hop)
        yield i, ex["audio"][: frames * hop], ex["mel"][None, :frames]


def training_summary(run_dir: Path, metric: str, name: str) -> dict:
    """From ``run_dir/metrics.jsonl``: the validation ``metric`` at the end and at its best
    (``NAME_final``, ``NAME_best``), its ``curve`` ``[(step, value)]``, the updates skipped as
    non-finite and the median training ``steps_per_s``."""
    train = read_metrics(run_dir, "train")
    evals = read_metrics(run_dir, "eval")
    values = [r[metric] for r in evals if metric in r]
    finite = [v for v in values if math.isfinite(v)]
    steps = [r["step"] for r in train]
    windows = np.diff([0, *steps])
    nonfinite = sum(
        int(round(r.get("nonfinite", 0.0) * w)) if math.isfinite(r.get("loss", 0.0)) else int(w)
        for r, w in zip(train, windows, strict=True)
    )
    return {
        f"{name}_final": values[-1] if values else float("nan"),
        f"{name}_best": min(finite) if finite else float("nan"),
        "nonfinite_steps": nonfinite,
        "steps_per_s": float(np.median([r["steps_per_second"] for r in train[1:]] or [0.0])),
        "curve": [(r["step"], r.get(metric)) for r in evals],
    }


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """``results.csv``: one line per run, the given columns (empty where a row lacks one)."""
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(k) for k in columns])
    write_whole(path, text.getvalue())


def plot_curves(path: Path, rows: list[dict], ylabel: str, log: bool = False) -> None:
    """Every run's validation ``curve`` in one figure, a colour per variant (its seeds share
    the colour; the legend names each variant once)."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        curve = [(s, v) for s, v in r.get("curve", []) if v is not None and math.isfinite(v)]
        if curve:
            c = colors[variants.index(r["variant"]) % len(colors)]
            label = r["variant"] if r.get("seed") == rows[0].get("seed") else None
            ax.plot(*zip(*curve, strict=True), color=c, label=label, alpha=0.8, marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
