"""What the experiment sweeps share (``tts-jax sweep FILE.py[:VARIANT] --workdir W``).

A sweep file defines ``get_sweep(variant)`` returning a dict; its ``"runner"`` (a function
``(sweep, spec, workdir, overrides, sequential) -> {"rows": [...]}``) trains every run in
``W/runs/NAME``, each resumable and skipped once its ``done.json`` exists, scores it and
writes ``W/report.md``. The pieces here are the ones every runner needs: loading the file,
``--set PREFIX.a.b=v`` overrides, training the runs (:func:`train_runs`: stacked, one program
per group of runs that build the same shapes, or one after another), the held-out windows
runs are scored on, a run's training summary from its ``metrics.jsonl``, ``results.csv`` and
the validation curves.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import numpy as np
from ml_collections import ConfigDict

from tts_jax.config import resolve_config_path
from tts_jax.data.inputs import corpus_from_config
from tts_jax.errors import UserError
from tts_jax.family import get_family
from tts_jax.paths import run_path, write_whole
from tts_jax.plotting import plt, save_figure  # matplotlib with the file-only Agg backend
from tts_jax.train.layout import choose_layout
from tts_jax.train.loop import train_and_evaluate
from tts_jax.train.stacked import FAILED, common_step, stack_key, train_stack
from tts_jax.train.summary import read_metrics
from tts_jax.workdir import checkpoint_manager, config_diff


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


def run_sweep(spec: str, workdir, overrides=(), sequential: bool = False) -> dict:
    """``tts-jax sweep``: runs (or resumes) the sweep ``spec`` in ``workdir`` with the runner
    its file names, its runs stacked (:func:`train_runs`) unless ``sequential``; returns the
    runner's ``{"rows": [...]}``."""
    sweep = load_sweep(spec)
    runner = sweep.get("runner")
    if runner is None:
        raise UserError(f"{spec}: get_sweep names no runner (its dict's 'runner')")
    workdir = run_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return runner(sweep, spec, workdir, list(overrides), sequential)


# ------------------------------------------------------------------------- training the runs


@dataclasses.dataclass(frozen=True)
class Run:
    """One run of a sweep: its name, config and workdir (``W/runs/NAME``)."""

    name: str
    config: ConfigDict
    workdir: Path


LAYOUT = "layout.json"  # W/layout.json: how the sweep's runs were trained, for the report


def stack_groups(runs: list[Run]) -> list[list[Run]]:
    """``runs`` grouped into stacks, in the order of their first run: runs whose configs
    differ only in what a stack of their family may hold (the seed, the learning rate where
    the family injects it, its loss weights: :func:`tts_jax.train.stacked.stack_fields`)
    share a group; any other difference (a size, the data, the family) starts another."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        family = get_family(run.config.model.family)
        groups.setdefault(stack_key(run.config, family), []).append(run)
    return list(groups.values())


def checkpoint_steps(workdir: Path) -> list[int]:
    """The complete checkpoints' steps in ``workdir`` (none when it has no checkpoints)."""
    if not (workdir / "checkpoints").is_dir():
        return []
    mgr = checkpoint_manager(workdir, 1)
    try:
        return sorted(mgr.all_steps())
    finally:
        mgr.close()


def finished(config, workdir: Path) -> bool:
    """Whether ``workdir`` holds ``config`` trained to ``train.num_steps``: its saved config
    is ``config`` and its newest checkpoint is of the last step (training it again would
    restore that and stop)."""
    path = workdir / "config.json"
    if not path.is_file():
        return False
    saved = json.loads(path.read_text())
    if any(config_diff(saved, json.loads(config.to_json_best_effort()))):
        return False
    steps = checkpoint_steps(workdir)
    return bool(steps) and steps[-1] == config.train.num_steps


def train_runs(runs: list[Run], workdir: Path, sequential: bool = False) -> list[str]:
    """Trains (or resumes) every run of ``runs`` not yet done (``done.json``), finished or
    failed (``failed.json``), and returns the lines that say how (also kept in
    ``workdir/layout.json``, so that a later call that trains nothing reports them again).

    Stacked (the default): each group of :func:`stack_groups` with two or more runs trains as
    one program (:func:`tts_jax.train.stacked.train_stack`), the groups one after another; a
    group of one trains alone (:func:`tts_jax.train.loop.train_and_evaluate`). A run that has
    checkpoints its group's others do not share (begun alone, e.g. by ``--sequential``)
    resumes alone, and the rest of its group stacks. ``sequential``: nothing is trained here,
    each run trains alone, data-parallel over every device, when its runner scores it (today's
    way, :func:`train_to_end`)."""
    devices = f"{jax.device_count()} device{'s' * (jax.device_count() != 1)}"
    todo = [
        r
        for r in runs
        if not (r.workdir / "done.json").is_file()
        and not (r.workdir / FAILED).is_file()
        and not finished(r.config, r.workdir)
    ]
    if sequential:
        lines = [f"{len(runs)} runs one after another, each data-parallel over {devices}"]
    elif not todo:
        return _saved_layout(workdir)
    else:
        lines = []
        groups = stack_groups(todo)
        for group in groups:
            steps = [checkpoint_steps(r.workdir) for r in group]
            if any(steps) and common_step(steps) is None:
                alone = [r for r, s in zip(group, steps, strict=True) if s]
                group = [r for r, s in zip(group, steps, strict=True) if not s]
                for r in alone:
                    train_to_end(r.config, r.workdir)
                    lines.append(f"{r.name}: resumed alone on {devices} (begun outside a stack)")
            if len(group) == 1:
                train_to_end(group[0].config, group[0].workdir)
                lines.append(f"{group[0].name}: 1 run alone on {devices}")
            elif group:
                lines.append(_train_group(group))
        if len(groups) > 1:
            lines.insert(0, f"{len(todo)} runs in {len(groups)} groups, one group after another")
    write_whole(workdir / LAYOUT, json.dumps(lines, indent=1))
    return lines


def _train_group(group: list[Run]) -> str:
    """One group of two or more runs, stacked unless the layout rule
    (:func:`tts_jax.train.layout.choose_layout`, from measurements) trains them one after
    another; returns its report line."""
    names = ", ".join(r.name for r in group)
    rule = choose_layout(
        len(group),
        jax.device_count(),
        group[0].config.train.batch_size,
        backend=jax.default_backend(),
        num_steps=group[0].config.train.num_steps,
    )
    if rule.mode == "sequential":
        for r in group:
            train_to_end(r.config, r.workdir)
        return f"{names}: {rule.describe()}"
    report = train_stack([r.config for r in group], [r.workdir for r in group])
    stopped = [r for r in report["runs"] if not r["failed"]]
    _check_reached(stopped, group[0].config.train.num_steps)
    return f"{names}: {report['layout']}"


def _saved_layout(workdir: Path) -> list[str]:
    path = workdir / LAYOUT
    return json.loads(path.read_text()) if path.is_file() else ["every run was already trained"]


def _check_reached(rows: list[dict], num_steps: int) -> None:
    short = [r for r in rows if r["step"] < num_steps]
    if short:
        raise UserError(
            f"{short[0]['workdir']} stopped at step {short[0]['step']} of {num_steps}; run the "
            "sweep again to resume its stack"
        )


def failed_row(run_dir: Path, row: dict) -> dict | None:
    """``row`` (what names the run: variant, seed) with ``failed`` and its ``reason`` when the
    run in ``run_dir`` failed inside a stack (``failed.json``), else None."""
    path = run_dir / FAILED
    if not path.is_file():
        return None
    failure = json.loads(path.read_text())
    return dict(row, failed=True, reason=failure["reason"], failed_at=failure["step"])


def layout_lines(lines: list[str], rows: list[dict]) -> list[str]:
    """The report's paragraph on how the runs were trained, and on each failed run."""
    out = ["**How the runs were trained.** " + "; ".join(lines) + "."]
    for r in rows:
        if r.get("failed"):
            who = r.get("variant", "?") + (f" (seed {r['seed']})" if "seed" in r else "")
            out.append(f"- **{who} failed** at step {r['failed_at']}: {r['reason']}")
    return out


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


def ensure_trained(config, run_dir: Path) -> None:
    """Trains ``config`` in ``run_dir`` to its end (:func:`train_to_end`) unless
    :func:`train_runs` (or an earlier call) already has: what a runner calls before it scores
    a run, stacked or not."""
    if not finished(config, run_dir):
        train_to_end(config, run_dir)


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
