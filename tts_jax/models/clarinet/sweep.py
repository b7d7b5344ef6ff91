"""``tts-jax sweep FILE.py:VARIANT --workdir W``: the ClariNet distillation comparison, the
runner of a sweep file that names none (tts_jax/sweep.py: the sweep-file protocol and what
runners share).

``FILE.py`` defines ``get_sweep(variant)`` returning ``{"teacher_config", "student_config",
"variants": {name: model overrides}, "seeds", "heldout"}`` (experiments/clarinet_kl.py). The
comparison

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

import io
import json
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax import distributions as D
from tts_jax import sweep as S
from tts_jax.config import load_config
from tts_jax.eval.metrics import MetricError, mr_stft
from tts_jax.models import wavenet as W
from tts_jax.models.clarinet.train import build_student, teacher_config
from tts_jax.paths import write_bytes_via
from tts_jax.plotting import plt, save_figure  # matplotlib with the file-only Agg backend
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


def compare_objectives(
    sweep: dict, spec: str, workdir, overrides: list[str], sequential: bool = False
) -> dict:
    """The teacher, then every variant x seed distilled from it (stacked: the students share
    their shapes, so they train as one program, unless ``sequential``) and scored; the
    report."""
    teacher_dir = workdir / "teacher"
    teacher_cfg = load_config(sweep["teacher_config"], S.only(overrides, "teacher."))
    S.train_to_end(teacher_cfg, teacher_dir)
    reference = workdir / "teacher_heldout.json"
    if not reference.is_file():
        reference.write_text(json.dumps(_teacher_heldout(teacher_dir, teacher_cfg, sweep)))

    runs = []
    for name, model_overrides in sweep["variants"].items():
        for seed in sweep["seeds"]:
            cfg = load_config(sweep["student_config"], S.only(overrides, "student."))
            cfg.seed = seed
            cfg.model.teacher_workdir = str(teacher_dir)
            for k, v in model_overrides.items():
                cfg.model[k] = v
            run_name = f"{name}-seed{seed}"
            runs.append((name, S.Run(run_name, cfg, workdir / "runs" / run_name)))
    layout = S.train_runs([run for _, run in runs], workdir, sequential)
    rows = []
    for name, run in runs:
        score = partial(_distil, name, run.config, run.workdir, sweep)
        failed = S.failed_row(run.workdir, {"variant": name, "seed": run.config.seed})
        rows.append(failed or S.resumable(run.workdir, score))
    write_report(workdir, rows, spec, json.loads(reference.read_text()), layout)
    return {"rows": rows}


def _distil(name: str, cfg, run_dir, sweep: dict) -> dict:
    """Trains (when :func:`tts_jax.sweep.train_runs` has not) and scores one student;
    ``minutes`` counts what this call spent, so a stacked student's holds its scoring only."""
    t0 = time.time()
    S.ensure_trained(cfg, run_dir)
    row = {"variant": name, "seed": cfg.seed, "minutes": (time.time() - t0) / 60}
    row.update(S.training_summary(run_dir, "kl_reverse", "kl"))
    row.update(_heldout(run_dir, cfg, sweep["heldout"]))
    return row


def _teacher_heldout(teacher_dir, tconfig, sweep: dict) -> dict:
    """The teacher's NLL of the recordings themselves on the held-out windows: the reference
    for the NLL it gives the students' samples (lower than this means samples the teacher
    finds more likely than real speech: mode-seeking)."""
    state = restore(teacher_dir, "wavenet", config=tconfig)
    windows = S.heldout_windows(tconfig, sweep["heldout"])
    nlls = W.recording_nll(tconfig, state.params, windows)
    return {"teacher_step": int(state.step), "teacher_nll_of_recordings": float(np.mean(nlls))}


def _heldout(run_dir, config, limit: int) -> dict:
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
    for i, audio, mel in S.heldout_windows(config, limit):
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
    q, p = np.concatenate(log_qs), np.concatenate(log_ps)
    write_bytes_via(run_dir / "log_scales.npz", lambda f: np.savez(f, q=q, p=p))
    return {
        "heldout_kl": float(np.mean(kls)),
        "heldout_teacher_nll": float(np.mean(nlls)),
        "heldout_mr_stft": float(np.mean(stfts)) if stfts else float("nan"),
        "heldout_n": len(kls),
    }


def write_report(workdir, rows: list[dict], spec: str, reference: dict, layout=()) -> None:
    """``layout``: the lines :func:`tts_jax.sweep.train_runs` returned. Failed runs are named
    under the table and left out of its means."""
    S.write_csv(
        workdir / "results.csv", rows, ["variant", "seed", *[k for k, _ in METRICS], "minutes"]
    )

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
        group = [r for r in rows if r["variant"] == v and not r.get("failed")]
        if not group:
            continue
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
    lines += ["", *S.layout_lines(list(layout), rows)]
    lines += ["", "![validation KL](curves.png)", "", "![log-scales](log_scales.png)", ""]
    (workdir / "report.md").write_text("\n".join(lines))

    S.plot_curves(workdir / "curves.png", rows, "validation KL(q‖p) per sample (nats)", log=True)

    scales = {}
    for v in variants:
        seed = min(r["seed"] for r in rows if r["variant"] == v)
        path = workdir / "runs" / f"{v}-seed{seed}" / "log_scales.npz"
        if path.is_file():
            scales[v] = dict(np.load(io.BytesIO(path.read_bytes())))
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
    save_figure(fig, workdir / "log_scales.png")
    plt.close(fig)
