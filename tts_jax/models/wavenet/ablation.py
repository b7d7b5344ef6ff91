"""The receptive-field ablation of Tacotron 2's WaveNet vocoder (Shen et al. 2018, Table 4):
the runner of experiments/wavenet_receptive_field.py under ``tts-jax sweep`` (the sweep-file
protocol is tts_jax/sweep.py's).

The sweep dict holds ``"config"`` (the spec every run starts from), ``"variants"`` (name ->
model overrides: layers and stacks, nothing else), ``"paper"`` (name -> the paper's receptive
field in samples and MOS), ``"heldout"`` (test utterances scored), ``"nll_seconds"`` and
``"sample_seconds"`` (the windows scored) and ``"budget_note"`` (what the budget can show).
:func:`run_ablation`

1. trains every variant in ``W/runs/NAME`` (resumable; skipped once ``done.json`` exists);
2. scores it on the test split: its NLL of the recordings (teacher forcing, the first
   ``nll_seconds`` of each), and cached autoregressive samples of the first ``sample_seconds``
   from the ground-truth mel against the recording (MR-STFT distance, MCD); the first two
   samples are kept as wavs;
3. writes ``W/report.md`` (the table next to the paper's), ``W/results.csv``,
   ``W/curves.png`` (validation NLL over steps) and ``W/receptive_field.png`` (the held-out
   scores and the paper's MOS against the receptive field).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from tts_jax import audio as audio_lib
from tts_jax import sweep as S
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.eval.metrics import MetricError, mcd_and_f0, mr_stft, summarize
from tts_jax.models.wavenet.inference import Vocoder, recording_nll
from tts_jax.models.wavenet.model import WaveNetConfig, receptive_field, receptive_field_ms
from tts_jax.plotting import plt, save_figure  # matplotlib with the file-only Agg backend
from tts_jax.workdir import restore

PREFIX = "teacher."  # `--set teacher.a.b=v`: every run here is a Gaussian WaveNet (teacher)

# (row key, column title); "±" columns are a mean with its 95 % interval over utterances.
COLUMNS = (
    ("nll_final", "final val. NLL ↓"),
    ("heldout_nll", "held-out NLL ↓"),
    ("delta_nll", "Δ held-out NLL vs {base} ↓"),
    ("mr_stft", "MR-STFT ↓"),
    ("mcd_db", "MCD (dB) ↓"),
    ("seconds_per_step", "s / step"),
    ("nonfinite_steps", "non-finite steps"),
)
CSV_COLUMNS = [
    "variant", "layers", "stacks", "rf_samples", "rf_ms", "paper_rf_samples", "paper_mos",
    "nll_final", "nll_best", "heldout_nll", "heldout_nll_ci95", "delta_nll", "delta_nll_ci95",
    "mr_stft", "mr_stft_ci95", "mcd_db", "mcd_db_ci95", "heldout_n", "seconds_per_step",
    "nonfinite_steps", "sampling_samples_per_s", "score_minutes",
]  # fmt: skip


def run_ablation(
    sweep: dict, spec: str, workdir: Path, overrides: list[str], sequential: bool = False
) -> dict:
    """Trains (or resumes) and scores every variant, then writes the report; returns the rows.
    The variants differ in shape (layers, cycles), so each is a group of its own under
    :func:`tts_jax.sweep.train_runs`, trained one after another, alone; only runs that differ
    in numbers (seeds, the learning rate) would share a stack."""
    wrong = [o for o in overrides if not o.startswith(PREFIX)]
    if wrong:
        raise UserError(
            f"--set {wrong[0]!r}: the receptive-field ablation trains WaveNets only; "
            f"override their config with {PREFIX}a.b=VALUE"
        )
    runs = [
        S.Run(name, variant_config(sweep, name, overrides), workdir / "runs" / name)
        for name in sweep["variants"]
    ]
    layout = S.train_runs(runs, workdir, sequential)
    rows, failed = [], []
    for run in runs:
        row = S.failed_row(run.workdir, {"variant": run.name, "seed": run.config.seed})
        if row is not None:
            failed.append(row)
            continue
        score = partial(_train_and_score, run.name, run.config, run.workdir, sweep)
        rows.append(S.resumable(run.workdir, score))
    if not rows:
        raise UserError(f"every run of the ablation failed: {failed[0]['reason']}")
    cfg = variant_config(sweep, rows[0]["variant"], overrides)
    write_report(workdir, rows, spec, sweep, cfg, S.layout_lines(layout, failed))
    return {"rows": rows + failed}


def variant_config(sweep: dict, name: str, overrides=()):
    """The config of variant ``name``: the sweep's config (with ``teacher.*`` overrides) and
    the variant's model overrides (its layers and stacks) on top."""
    cfg = load_config(sweep["config"], S.only(overrides, PREFIX))
    for key, value in sweep["variants"][name].items():
        cfg.model[key] = value
    return cfg


def _train_and_score(name: str, cfg, run_dir: Path, sweep: dict) -> dict:
    S.ensure_trained(cfg, run_dir)
    m = WaveNetConfig.from_config(cfg.model)
    paper_rf, paper_mos = sweep["paper"].get(name, (None, None))
    row = {
        "variant": name,
        "seed": cfg.seed,
        "layers": m.layers,
        "stacks": m.stacks,
        "rf_samples": receptive_field(m),
        "rf_ms": receptive_field_ms(cfg),
        "paper_rf_samples": paper_rf,
        "paper_mos": paper_mos,
    }
    row.update(S.training_summary(run_dir, "nll", "nll"))
    row["seconds_per_step"] = 1.0 / row["steps_per_s"] if row["steps_per_s"] else float("nan")
    t0 = time.time()
    row.update(_score(run_dir, cfg, sweep))
    row["score_minutes"] = (time.time() - t0) / 60
    return row


def _score(run_dir: Path, cfg, sweep: dict) -> dict:
    """Held-out NLL of the recordings and distances of cached autoregressive samples."""
    state = restore(run_dir, "wavenet", config=cfg)
    sr, limit = cfg.data.sample_rate, sweep["heldout"]
    nlls = recording_nll(cfg, state.params, S.heldout_windows(cfg, limit, sweep["nll_seconds"]))

    vocoder = Vocoder(run_dir, config=cfg, state=state, seed=0)
    (run_dir / "samples").mkdir(exist_ok=True)
    stfts, mcds, timings = [], [], []
    for i, audio, mel in S.heldout_windows(cfg, limit, sweep["sample_seconds"]):
        t0 = time.time()
        wav = vocoder(mel[0])
        timings.append((len(wav), time.time() - t0))
        if i < 2:
            audio_lib.save_wav(run_dir / "samples" / f"test{i}.wav", wav, sr)
            audio_lib.save_wav(run_dir / "samples" / f"test{i}_recording.wav", audio, sr)
        try:
            scores = mr_stft(audio, wav, sr)["total"], mcd_and_f0(audio, wav, sr)["mcd_db"]
        except MetricError:
            continue  # a silent or non-finite sample: left out of both means
        stfts.append(scores[0])
        mcds.append(scores[1])
    sampled, seconds = np.sum(timings[1:] or [(0, 0.0)], axis=0)  # the first call compiles
    return {
        "nll_per_utterance": nlls,
        **_mean_ci("heldout_nll", nlls),
        **_mean_ci("mr_stft", stfts),
        **_mean_ci("mcd_db", mcds),
        "heldout_n": len(nlls),
        "sampled_n": len(stfts),
        "sample_window_s": timings[0][0] / sr,
        "sampling_samples_per_s": float(sampled / seconds) if seconds else float("nan"),
    }


def _mean_ci(key: str, values) -> dict:
    s = summarize(values)
    return {key: s["mean"], f"{key}_ci95": s["ci95"]}


# ------------------------------------------------------------------------------ the report


def write_report(
    workdir: Path, rows: list[dict], spec: str, sweep: dict, cfg, layout: list[str] = ()
) -> None:
    """``cfg``: the first variant's config (the report states what every run shares);
    ``layout``: the paragraph on how the runs were trained (:func:`tts_jax.sweep.layout_lines`)."""
    base = rows[0]
    for r in rows:  # paired with the first variant (the paper's baseline) utterance by utterance
        diff = np.subtract(r["nll_per_utterance"], base["nll_per_utterance"])
        r.update(_mean_ci("delta_nll", diff))
    S.write_csv(workdir / "results.csv", rows, CSV_COLUMNS)
    lines = [
        f"# WaveNet receptive field (Tacotron 2, Table 4): `{spec}`",
        "",
        _setup(cfg, sweep, base),
        "",
        _table(rows, base["variant"]),
        "",
        sweep["budget_note"],
        "",
        *layout,
        "",
        "![validation NLL](curves.png)",
        "",
        "![held-out scores against the receptive field](receptive_field.png)",
        "",
    ]
    (workdir / "report.md").write_text("\n".join(lines))
    S.plot_curves(workdir / "curves.png", rows, "validation NLL per sample (nats)")
    _plot_against_receptive_field(workdir / "receptive_field.png", rows)


def _setup(cfg, sweep: dict, base: dict) -> str:
    """The paragraph that says what every run shares."""
    m, t, sr = WaveNetConfig.from_config(cfg.model), cfg.train, cfg.data.sample_rate
    return (
        "Every variant is the same Gaussian WaveNet config but for its layers and dilation "
        f"cycles (`model.stacks`; dilations 1, 2, 4, ... restart every layers / cycles layers): "
        f"{m.residual_channels} residual / {m.gate_channels} gate / {m.skip_channels} skip "
        f"channels, filter {m.kernel_size}, the same data (`{cfg.data.path}`, {sr} Hz), seed "
        f"{cfg.seed}, batch {t.batch_size} x {t.segment_length} samples "
        f"({1000 * t.segment_length / sr:.0f} ms), {t.num_steps} steps. The receptive field is "
        f"`wavenet.receptive_field(cfg)`: (filter - 1) x sum(dilations) + 1 plus "
        f"front_kernel - 1 for the input convolution, which is counted: here front_kernel = "
        f"{m.front_kernel} (a 1x1 projection when 1), so it adds {m.front_kernel - 1} samples "
        "and the numbers are the paper's. NLL: nats per sample of the recording under teacher "
        f"forcing, the first {sweep['nll_seconds']:g} s of each of {base['heldout_n']} test "
        "utterances (Δ: paired with the first row, utterance by utterance). MR-STFT and MCD: "
        f"one cached autoregressive sample (temperature 1) of the first "
        f"{base['sample_window_s']:.2f} s from the ground-truth mel against the recording; "
        "± is a 95 % interval over utterances. The paper's receptive fields and MOS are its "
        "Table 4 (its own single-speaker US English data at 24 kHz, where 6,139 samples are "
        "256 ms); there is no listening test here."
    )


def _table(rows: list[dict], base: str) -> str:
    head = [
        "variant", "layers", "dilation cycles", "receptive field (samples)",
        "receptive field (ms)", "paper: receptive field", "paper: MOS",
        *[title.format(base=base) for _, title in COLUMNS],
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["variant"], str(r["layers"]), str(r["stacks"]), f"{r['rf_samples']:,}",
            f"{r['rf_ms']:.1f}", _paper(r["paper_rf_samples"], "{:,}"),
            _paper(r["paper_mos"], "{:.3f}"),
        ]  # fmt: skip
        cells += [_cell(r, key) for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paper(value, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def _cell(row: dict, key: str) -> str:
    value = row.get(key, float("nan"))
    if key == "nonfinite_steps":
        return str(int(value))
    ci = row.get(f"{key}_ci95")
    if ci is not None and np.isfinite(ci):
        return f"{value:.3f} ± {ci:.3f}"
    return f"{value:.3f}"


def _plot_against_receptive_field(path: Path, rows: list[dict]) -> None:
    """Held-out NLL, MR-STFT, MCD (with 95 % intervals) and the paper's MOS against the
    receptive field in samples (log scale), each point named by its variant."""
    panels = [
        ("heldout_nll", "held-out NLL (nats) ↓"),
        ("mr_stft", "MR-STFT ↓"),
        ("mcd_db", "MCD (dB) ↓"),
        ("paper_mos", "paper: MOS ↑"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3))
    for ax, (key, title) in zip(axes, panels, strict=True):
        points = [r for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        x = [r["rf_samples"] for r in points]
        y = [r[key] for r in points]
        err = [r.get(f"{key}_ci95") or 0.0 for r in points]
        ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="o", capsize=3)
        for r, xi, yi in zip(points, x, y, strict=True):
            ax.annotate(
                r["variant"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        ax.set_xscale("log")
        ax.set_xlabel("receptive field (samples)", fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
