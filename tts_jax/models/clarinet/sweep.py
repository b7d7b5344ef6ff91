"""``tts-jax sweep FILE.py:VARIANT --workdir W``: the ClariNet distillation comparison.

``FILE.py`` defines ``get_sweep(variant)`` returning ``{"teacher_config", "student_config",
"variants": {name: model overrides}, "seeds", "heldout"}`` (experiments/clarinet_kl.py). The
sweep

1. trains the teacher in ``W/teacher`` (or resumes / reuses it when already trained);
2. distils every variant x seed in ``W/runs/NAME-seedS`` for the student config's step
   budget, each resumable and skipped once ``done.json`` is written;
3. scores every student on ``heldout`` test utterances: multi-resolution STFT distance of its
   samples (from the ground-truth mel) to the recording, the teacher's NLL of those samples,
   and the closed-form KL(q || p) on them; keeps log sigma_q and log sigma_p for histograms;
4. writes ``W/report.md``, ``W/results.csv``, ``W/curves.png`` (validation KL over steps) and
   ``W/log_scales.png`` (histograms of log sigma_p and log sigma_q: the paper's Figure 1).

The same command runs a toy sweep on a laptop and a paper-size one on an accelerator: only
the variant (configs) differs.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax import distributions as D
from tts_jax.config import load_config, resolve_config_path
from tts_jax.data.inputs import corpus_from_config
from tts_jax.errors import UserError
from tts_jax.eval.metrics import MetricError, mr_stft
from tts_jax.models import wavenet as W
from tts_jax.models.clarinet.train import build_student, teacher_config
from tts_jax.plotting import plt  # matplotlib with the file-only Agg backend
from tts_jax.train.loop import train_and_evaluate
from tts_jax.train.summary import read_metrics
from tts_jax.workdir import restore

METRICS = (
    ("kl_final", "final val. KL(q‖p) ↓"),
    ("kl_best", "best val. KL(q‖p) ↓"),
    ("heldout_kl", "held-out KL(q‖p) ↓"),
    ("heldout_mr_stft", "held-out MR-STFT ↓"),
    ("heldout_teacher_nll", "teacher NLL of student ↓"),
    ("nonfinite_steps", "non-finite steps"),
    ("steps_per_s", "steps/s"),
)


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


def run_sweep(spec: str, workdir, overrides: list[str] = ()) -> dict:
    """Runs (or resumes) the sweep ``spec`` in ``workdir``; returns the report rows."""
    sweep = load_sweep(spec)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    teacher_dir = workdir / "teacher"
    teacher_cfg = load_config(sweep["teacher_config"], _only(overrides, "teacher."))
    train_and_evaluate(teacher_cfg, teacher_dir)
    reference = workdir / "teacher_heldout.json"
    if not reference.is_file():
        reference.write_text(json.dumps(_teacher_heldout(teacher_dir, teacher_cfg, sweep)))

    rows = []
    for name, model_overrides in sweep["variants"].items():
        for seed in sweep["seeds"]:
            run_dir = workdir / "runs" / f"{name}-seed{seed}"
            done = run_dir / "done.json"
            if not done.is_file():
                cfg = load_config(sweep["student_config"], _only(overrides, "student."))
                cfg.seed = seed
                cfg.model.teacher_workdir = str(teacher_dir)
                for k, v in model_overrides.items():
                    cfg.model[k] = v
                t0 = time.time()
                train_and_evaluate(cfg, run_dir)
                row = {"variant": name, "seed": seed, "minutes": (time.time() - t0) / 60}
                row.update(_training_summary(run_dir))
                row.update(_heldout(run_dir, cfg, sweep["heldout"]))
                done.write_text(json.dumps(row, indent=1))
            rows.append(json.loads(done.read_text()))
    write_report(workdir, rows, spec, json.loads(reference.read_text()))
    return {"rows": rows}


def _only(overrides, prefix: str) -> list[str]:
    """``teacher.x.y=v`` / ``student.x.y=v`` -> ``--config.x.y=v`` for that config."""
    return [f"--config.{o[len(prefix) :]}" for o in overrides if o.startswith(prefix)]


def _training_summary(run_dir: Path) -> dict:
    train = read_metrics(run_dir, "train")
    evals = read_metrics(run_dir, "eval")
    kls = [r["kl_reverse"] for r in evals if "kl_reverse" in r]
    finite_kls = [k for k in kls if math.isfinite(k)]
    steps = [r["step"] for r in train]
    windows = np.diff([0, *steps])
    nonfinite = sum(
        int(round(r.get("nonfinite", 0.0) * w)) if math.isfinite(r.get("loss", 0.0)) else int(w)
        for r, w in zip(train, windows, strict=True)
    )
    return {
        "kl_final": kls[-1] if kls else float("nan"),
        "kl_best": min(finite_kls) if finite_kls else float("nan"),
        "nonfinite_steps": nonfinite,
        "steps_per_s": float(np.median([r["steps_per_second"] for r in train[1:]] or [0.0])),
        "curve": [(r["step"], r.get("kl_reverse")) for r in evals],
    }


def _heldout_windows(config, limit: int):
    """The held-out windows every run is scored on: the first 2 s (or the whole utterance)
    of the first ``limit`` test utterances, as ``(i, audio [T], mel [1, F, n_mels])``; fixed
    lengths keep one compilation."""
    hop = config.data.hop_length
    split = corpus_from_config(config).split("test")
    for i in range(min(limit, len(split))):
        ex = split.example(i)
        frames = min(len(ex["mel"]), 2 * config.data.sample_rate // hop)
        yield i, ex["audio"][: frames * hop], ex["mel"][None, :frames]


def _teacher_heldout(teacher_dir: Path, tconfig, sweep: dict) -> dict:
    """The teacher's NLL of the recordings themselves on the held-out windows: the reference
    for the NLL it gives the students' samples (lower than this means samples the teacher
    finds more likely than real speech: mode-seeking)."""
    state = restore(teacher_dir, "wavenet", config=tconfig)
    model = W.build_model(tconfig)
    floor = W.WaveNetConfig.from_config(tconfig.model).log_scale_min
    score = jax.jit(
        lambda audio, mel: W.teacher_nll(
            model, state.params, audio, W.normalize_mel(mel, tconfig), floor
        )
    )
    nlls = [
        float(score(jnp.asarray(audio)[None], mel))
        for _, audio, mel in _heldout_windows(tconfig, sweep["heldout"])
    ]
    return {"teacher_step": int(state.step), "teacher_nll_of_recordings": float(np.mean(nlls))}


def _heldout(run_dir: Path, config, limit: int) -> dict:
    """Student samples of the test split's ground-truth mels, scored; log-scales kept."""
    state = restore(run_dir, "clarinet", config=config)
    tconfig = teacher_config(config)
    student, teacher = build_student(config), W.build_model(tconfig)
    floor = W.WaveNetConfig.from_config(tconfig.model).log_scale_min

    @jax.jit
    def sample_and_score(mel, z):
        mel = W.normalize_mel(mel, tconfig)
        x, mu_q, log_q = student.apply({"params": state.params}, z, mel)
        mu_p, log_p = teacher.apply({"params": state.model_state["teacher"]}, x, mel)
        kl = D.gaussian_kl(mu_q[:, 1:], log_q[:, 1:], mu_p[:, :-1], log_p[:, :-1], floor)
        nll = D.gaussian_nll(x[:, 1:], mu_p[:, :-1], log_p[:, :-1], floor)
        return x[0], jnp.mean(kl), jnp.mean(nll), log_q[0, 1:], log_p[0, :-1]

    kls, nlls, stfts, log_qs, log_ps = [], [], [], [], []
    for i, audio, mel in _heldout_windows(config, limit):
        z = jax.random.normal(jax.random.PRNGKey(i), (1, len(audio)))
        x, kl, nll, lq, lp = jax.device_get(sample_and_score(mel, z))
        kls.append(float(kl))
        nlls.append(float(nll))
        try:
            stfts.append(mr_stft(audio, np.clip(x, -1, 1))["total"])
        except MetricError:
            pass
        if i < 8:
            log_qs.append(lq)
            log_ps.append(lp)
    np.savez(run_dir / "log_scales.npz", q=np.concatenate(log_qs), p=np.concatenate(log_ps))
    return {
        "heldout_kl": float(np.mean(kls)),
        "heldout_teacher_nll": float(np.mean(nlls)),
        "heldout_mr_stft": float(np.mean(stfts)) if stfts else float("nan"),
        "heldout_n": len(kls),
    }


def write_report(workdir: Path, rows: list[dict], spec: str, reference: dict) -> None:
    keys = [k for k, _ in METRICS]
    with open(workdir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "seed", *keys, "minutes"])
        for r in rows:
            w.writerow([r["variant"], r["seed"], *[r.get(k) for k in keys], r.get("minutes")])

    variants = list(dict.fromkeys(r["variant"] for r in rows))
    lines = [
        f"# ClariNet distillation objectives: `{spec}`",
        "",
        "Mean over seeds (± half the range when there are two or more seeds). The teacher "
        f"(step {reference['teacher_step']}) gives the recordings themselves an NLL of "
        f"{reference['teacher_nll_of_recordings']:.3f} nats per sample on the same held-out "
        "windows.",
        "",
        "| variant | seeds | " + " | ".join(label for _, label in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for v in variants:
        group = [r for r in rows if r["variant"] == v]
        cells = []
        for k, _ in METRICS:
            vals = np.array([float(r.get(k, float("nan"))) for r in group])
            if k == "nonfinite_steps":
                cells.append(str(int(np.nansum(vals))))
            elif len(vals) > 1:
                cells.append(f"{np.mean(vals):.3f} ± {(np.max(vals) - np.min(vals)) / 2:.3f}")
            else:
                cells.append(f"{vals[0]:.3f}")
        lines.append(f"| {v} | {len(group)} | " + " | ".join(cells) + " |")
    lines += ["", "![validation KL](curves.png)", "", "![log-scales](log_scales.png)", ""]
    (workdir / "report.md").write_text("\n".join(lines))

    fig, ax = plt.subplots(figsize=(7, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r in rows:
        curve = [(s, k) for s, k in r.get("curve", []) if k is not None and math.isfinite(k)]
        if curve:
            c = colors[variants.index(r["variant"]) % len(colors)]
            label = r["variant"] if r["seed"] == rows[0]["seed"] else None
            ax.plot(*zip(*curve, strict=True), color=c, label=label, alpha=0.8, marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("validation KL(q‖p) per sample (nats)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(workdir / "curves.png", dpi=100)
    plt.close(fig)

    scales = {}
    for v in variants:
        seed = min(r["seed"] for r in rows if r["variant"] == v)
        path = workdir / "runs" / f"{v}-seed{seed}" / "log_scales.npz"
        if path.is_file():
            scales[v] = dict(np.load(path))
    # One range for every panel, from the data (a small teacher's log sigma spans a unit or
    # two; a paper-size one reaches the -7 floor).
    pooled = np.concatenate([a for d in scales.values() for a in (d["p"], d["q"])] or [[0.0]])
    lo, hi = np.percentile(pooled, [0.1, 99.9])
    bins = np.linspace(lo - 0.25, hi + 0.25, 60)
    fig, axes = plt.subplots(1, len(variants), figsize=(3.2 * len(variants), 3), squeeze=False)
    for ax, v in zip(axes[0], variants, strict=True):
        if v in scales:
            ax.hist(scales[v]["p"], bins, alpha=0.6, label="log σ_p (teacher)")
            ax.hist(scales[v]["q"], bins, alpha=0.6, label="log σ_q (student)")
        ax.set_title(v, fontsize=9)
        ax.set_xlabel("log σ", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(workdir / "log_scales.png", dpi=100)
    plt.close(fig)
