"""``tts-jax listen results``: a test's ratings as tables (CSV, markdown) and a plot.

MUSHRA: listeners are post-screened first (:func:`tts_jax.listen.stats.post_screen`); the
report names each excluded listener and why, and the statistics use the others. MUSHRA and
MOS: per condition the mean, its 95 % t-interval and the listener-and-sentence bootstrap
interval; Wilcoxon signed-rank tests of every pair of conditions (Holm). A/B: the
shares of each pair with Wilson intervals, and a sign test (Holm).

Files written to ``OUT``: ``systems.csv`` and ``pairwise.csv`` (MUSHRA, MOS) or
``preferences.csv`` (A/B), ``results.md``, ``results.png``.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from tts_jax.listen import stats
from tts_jax.listen.design import TestSpec
from tts_jax.listen.store import read_ratings
from tts_jax.plotting import plt, save_figure  # matplotlib with the file-only Agg backend

N_BOOT = 2000


def _who(listener: str, names: dict) -> str:
    name = names.get(listener, "")
    return f"{name} ({listener})" if name else listener


def _flat(row) -> dict:
    """A result row for CSV: a ``(share, low, high)`` field becomes three columns."""
    out = {}
    for k, v in dataclasses.asdict(row).items():
        out |= {k: v[0], f"{k}_low": v[1], f"{k}_high": v[2]} if isinstance(v, tuple) else {k: v}
    return out


def _write_csv(path: Path, rows: list) -> None:
    with open(path, "w", newline="") as f:
        dicts = [_flat(r) for r in rows]
        w = csv.DictWriter(f, fieldnames=list(dicts[0]) if dicts else ["empty"])
        w.writeheader()
        w.writerows(dicts)


def _fmt(x: float, digits: int = 1) -> str:
    return "–" if not np.isfinite(x) else f"{x:.{digits}f}"


def rating_tables(spec: TestSpec, rows: list[dict], names: dict) -> tuple[dict, list[str]]:
    """The statistics of MUSHRA/MOS ``rows`` and the markdown lines that report them."""
    lines = []
    screening = stats.post_screen(rows) if spec.kind == "mushra" else []
    excluded = {s.listener for s in screening if s.excluded}
    if spec.kind == "mushra":
        lines.append(
            f"Post-screening (ITU-R BS.1534-3): a listener who rates the hidden reference below "
            f"{stats.SCREEN_SCORE:.0f} on more than {100 * stats.SCREEN_FRACTION:.0f} % of "
            f"trials is excluded. {len(excluded)} of {len(screening)} excluded"
            + (":" if excluded else ".")
        )
        lines += [f"- {_who(s.listener, names)}: {s.reason}" for s in screening if s.excluded]
        lines.append("")
    kept = [r for r in rows if r["listener"] not in excluded]
    order = [c for c in spec.conditions if any(r["system"] == c for r in kept)]
    summaries = sorted(stats.summarize_systems(kept, N_BOOT), key=lambda s: order.index(s.system))
    pairs = stats.pairwise_wilcoxon(kept, order)
    lo, hi = spec.score_range
    lines += [
        f"Scores {lo}–{hi}; mean with 95 % intervals: Student t over the ratings, and a "
        f"bootstrap that resamples listeners and sentences ({N_BOOT} replicates).",
        "",
        "| system | ratings | listeners | mean | 95 % t-interval | 95 % bootstrap |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.system} | {s.n} | {s.listeners} | {_fmt(s.mean)} | "
            f"{_fmt(s.t_low)} – {_fmt(s.t_high)} | {_fmt(s.boot_low)} – {_fmt(s.boot_high)} |"
        )
    if pairs:
        lines += [
            "",
            "Wilcoxon signed-rank tests on ratings paired by listener and sentence, "
            "Holm-corrected:",
            "",
            "| A | B | pairs | median A − B | W | p | p (Holm) |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in pairs:
            lines.append(
                f"| {t.a} | {t.b} | {t.n} | {_fmt(t.median_difference)} | "
                f"{_fmt(t.statistic)} | {t.p:.3g} | {t.p_holm:.3g} |"
            )
    found = {"systems": summaries, "pairwise": pairs, "screening": screening}
    return found, lines


def preference_tables(prefs: list[dict]) -> tuple[dict, list[str]]:
    found = stats.preferences(prefs)

    def share(s) -> str:
        return f"{100 * s[0]:.0f} % ({100 * s[1]:.0f}–{100 * s[2]:.0f})"

    lines = [
        "Shares of the trials with 95 % Wilson intervals; p: two-sided sign test of A against "
        "B on the trials with a preference, Holm-corrected over the pairs.",
        "",
        "| A | B | trials | prefer A | prefer B | no preference | p | p (Holm) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in found:
        lines.append(
            f"| {p.a} | {p.b} | {p.n} | {share(p.share_a)} | {share(p.share_b)} | "
            f"{share(p.share_none)} | {p.p:.3g} | {p.p_holm:.3g} |"
        )
    return {"preferences": found}, lines


def plot_systems(path: Path, summaries, spec: TestSpec) -> None:
    """Each condition's mean with its t-interval (left bar) and bootstrap interval (right)."""
    fig, ax = plt.subplots(figsize=(1.2 * len(summaries) + 2, 3.5))
    x = np.arange(len(summaries))
    means = np.array([s.mean for s in summaries])
    for off, lo_k, hi_k, label in (
        (-0.1, "t_low", "t_high", "t"),
        (0.1, "boot_low", "boot_high", "bootstrap"),
    ):
        lo = np.array([getattr(s, lo_k) for s in summaries])
        hi = np.array([getattr(s, hi_k) for s in summaries])
        err = np.nan_to_num(np.stack([means - lo, hi - means]))
        ax.errorbar(x + off, means, yerr=err, fmt="o", capsize=4, label=f"95 % {label}")
    ax.set_xticks(x, [s.system for s in summaries], rotation=20, fontsize=8)
    ax.set_ylim(*spec.score_range)
    ax.set_ylabel({"mushra": "MUSHRA score", "mos": "MOS"}[spec.kind])
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_preferences(path: Path, prefs) -> None:
    """Per pair, stacked shares: prefer A, no preference, prefer B."""
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(prefs) + 1.5))
    for i, p in enumerate(prefs):
        a, n, b = p.share_a[0], p.share_none[0], p.share_b[0]
        ax.barh(i, a, color="tab:blue")
        ax.barh(i, n, left=a, color="lightgray")
        ax.barh(i, b, left=a + n, color="tab:orange")
        ax.text(0.01, i, f"{p.a} {100 * a:.0f} %", va="center", fontsize=8, color="white")
        ax.text(0.99, i, f"{100 * b:.0f} % {p.b}", va="center", ha="right", fontsize=8)
    ax.set_yticks(range(len(prefs)), [f"{p.a} vs {p.b}" for p in prefs], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of trials (blue: prefer A, gray: no preference, orange: prefer B)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def write_results(spec: TestSpec, out) -> str:
    """Computes a test's results from its ratings file, writes them to ``out``; returns the
    markdown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, prefs, names = read_ratings(spec.ratings, spec.kind, spec.fingerprint)
    listeners = {r["listener"] for r in (prefs if spec.kind == "ab" else rows)}
    head = [
        f"# {spec.title}",
        "",
        f"{spec.kind.upper()} test, {len(listeners)} listeners, {len(spec.sentences)} "
        f"sentences, ratings from `{spec.ratings.name}`.",
        "",
    ]
    if not listeners:
        text = "\n".join([*head, "No answers yet."]) + "\n"
        (out / "results.md").write_text(text)
        return text
    if spec.kind == "ab":
        found, lines = preference_tables(prefs)
        _write_csv(out / "preferences.csv", found["preferences"])
        plot_preferences(out / "results.png", found["preferences"])
    else:
        found, lines = rating_tables(spec, rows, names)
        _write_csv(out / "systems.csv", found["systems"])
        _write_csv(out / "pairwise.csv", found["pairwise"])
        if found["systems"]:  # none when every listener was excluded
            plot_systems(out / "results.png", found["systems"], spec)
    plotted = spec.kind == "ab" or bool(found["systems"])
    plot = ["", "![results](results.png)"] if plotted else []
    text = "\n".join([*head, *lines, *plot, ""])
    (out / "results.md").write_text(text)
    return text
