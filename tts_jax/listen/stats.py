"""Statistics of listening-test ratings: pure functions of arrays and rows, no I/O.

* Per system (MUSHRA, MOS): the mean with a 95 % Student-t interval over all its ratings, and
  a two-way bootstrap that resamples listeners and sentences (both with replacement, crossed)
  so the interval also carries the variation between sentences and between listeners, which
  the t-interval over pooled ratings treats as independent.
* Between systems: the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) on the ratings
  paired by (listener, sentence), Holm's step-down correction over all pairs.
* A/B: each pair's shares (prefers A, prefers B, no preference) with Wilson score intervals
  (``scipy.stats.binomtest``), and a two-sided sign test of A against B on the trials with a
  preference.
* ITU-R BS.1534-3 post-screening: a listener who rates the hidden reference below 90 on more
  than 15 % of their MUSHRA trials is excluded.

A rating row is a dict with ``listener``, ``sentence``, ``system`` and ``score``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import scipy.stats

from tts_jax.eval.metrics import summarize

HIDDEN_REFERENCE = "reference"
ANCHOR = "anchor"
# ITU-R BS.1534-3, post-screening of assessors.
SCREEN_SCORE = 90.0
SCREEN_FRACTION = 0.15


def t_interval(scores) -> tuple[float, float, float]:
    """``(mean, low, high)``: the 95 % Student-t interval of the mean of ``scores`` ``[N]``, as
    :func:`tts_jax.eval.metrics.summarize` gives it for the objective metrics (NaN bounds when
    N < 2)."""
    s = summarize(scores)
    return s["mean"], s["mean"] - s["ci95"], s["mean"] + s["ci95"]


def cell_matrix(rows: list[dict], listeners: list, sentences: list) -> tuple[np.ndarray, ...]:
    """``(sums, counts)`` ``[L, S]``: the sum and number of the rows' scores per (listener,
    sentence) cell."""
    li = {k: i for i, k in enumerate(listeners)}
    si = {k: i for i, k in enumerate(sentences)}
    sums = np.zeros((len(listeners), len(sentences)))
    counts = np.zeros_like(sums)
    for r in rows:
        sums[li[r["listener"]], si[r["sentence"]]] += r["score"]
        counts[li[r["listener"]], si[r["sentence"]]] += 1
    return sums, counts


def crossed_means(
    sums: np.ndarray, counts: np.ndarray, wl: np.ndarray, ws: np.ndarray
) -> np.ndarray:
    """The mean rating of each bootstrap replicate ``[B]``: replicate b draws listener l
    ``wl[b, l]`` times and sentence s ``ws[b, s]`` times, so the ratings of cell (l, s) count
    ``wl[b, l] * ws[b, s]`` times. NaN where the drawn cells hold no rating.

    ``sums``, ``counts``: ``[L, S]`` (:func:`cell_matrix`); ``wl`` ``[B, L]``, ``ws`` ``[B, S]``.
    """
    num = np.einsum("bl,ls,bs->b", wl, sums, ws)
    den = np.einsum("bl,ls,bs->b", wl, counts, ws)
    return np.divide(num, den, out=np.full(len(num), np.nan), where=den > 0)


def two_way_bootstrap(
    sums: np.ndarray, counts: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, np.ndarray]:
    """Percentile interval of the mean rating when listeners (rows) and sentences (columns)
    are resampled with replacement, independently of each other (crossed; Owen 2007, "The
    pigeonhole bootstrap"): each replicate draws L listeners and S sentences and takes the
    mean of every rating in the drawn cells (:func:`crossed_means`).

    ``sums``, ``counts``: ``[L, S]`` (:func:`cell_matrix`). Returns ``(low, high, means
    [n_boot'])``; replicates whose cells hold no rating are dropped.
    """
    rng = np.random.default_rng(seed)
    n_l, n_s = sums.shape
    # How often each listener / sentence is drawn in each replicate: [B, L] and [B, S].
    wl = np.stack([np.bincount(rng.integers(0, n_l, n_l), minlength=n_l) for _ in range(n_boot)])
    ws = np.stack([np.bincount(rng.integers(0, n_s, n_s), minlength=n_s) for _ in range(n_boot)])
    means = crossed_means(sums, counts, wl, ws)
    means = means[np.isfinite(means)]
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high), means


@dataclasses.dataclass(frozen=True)
class SystemSummary:
    system: str
    n: int  # ratings
    listeners: int
    mean: float
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float


def summarize_systems(rows: list[dict], n_boot: int = 2000, seed: int = 0) -> list[SystemSummary]:
    """Per system (in order of first appearance): mean, t-interval, two-way bootstrap.

    The bootstrap's rows are the listeners in the order they first appear in ``rows`` (for a
    ratings file, the order they answered in), not by their random session ids, so that one
    seed gives one interval for the same answers."""
    listeners = list(dict.fromkeys(r["listener"] for r in rows))
    sentences = sorted({r["sentence"] for r in rows})
    out = []
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        mean, t_low, t_high = t_interval([r["score"] for r in mine])
        sums, counts = cell_matrix(mine, listeners, sentences)
        b_low, b_high, _ = two_way_bootstrap(sums, counts, n_boot, seed=seed)
        n_listeners = len({r["listener"] for r in mine})
        out.append(
            SystemSummary(system, len(mine), n_listeners, mean, t_low, t_high, b_low, b_high)
        )
    return out


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values ``[M]`` (same order as given): the k-th smallest
    p is multiplied by M - k + 1, then made non-decreasing in that order and capped at 1."""
    p = np.asarray(p_values, np.float64)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def paired_scores(rows: list[dict], a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """Systems ``a`` and ``b``'s scores ``[N]`` on the (listener, sentence) cells both were
    rated in (a cell rated more than once counts its mean)."""

    def cells(system):
        acc: dict = {}
        for r in rows:
            if r["system"] == system:
                acc.setdefault((r["listener"], r["sentence"]), []).append(r["score"])
        return {k: float(np.mean(v)) for k, v in acc.items()}

    ca, cb = cells(a), cells(b)
    common = sorted(set(ca) & set(cb), key=str)
    return np.array([ca[k] for k in common]), np.array([cb[k] for k in common])


@dataclasses.dataclass(frozen=True)
class PairTest:
    a: str
    b: str
    n: int  # paired cells
    median_difference: float  # median of a - b
    statistic: float
    p: float
    p_holm: float


def pairwise_wilcoxon(rows: list[dict], systems: list[str]) -> list[PairTest]:
    """Two-sided Wilcoxon signed-rank test of every pair of ``systems`` on their paired
    scores, Holm-corrected over the pairs. Pairs without a nonzero difference get p = 1."""
    tests = []
    for a, b in itertools.combinations(systems, 2):
        x, y = paired_scores(rows, a, b)
        if np.any(x != y):
            res = scipy.stats.wilcoxon(x, y)
            stat, p = float(res.statistic), float(res.pvalue)
        else:
            stat, p = math.nan, 1.0
        median = float(np.median(x - y)) if len(x) else math.nan
        tests.append((a, b, len(x), median, stat, p))
    adjusted = holm([t[-1] for t in tests]) if tests else []
    return [PairTest(*t, float(q)) for t, q in zip(tests, adjusted, strict=True)]


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k / n."""
    if n == 0:
        return math.nan, math.nan
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


@dataclasses.dataclass(frozen=True)
class Preference:
    a: str
    b: str
    n: int
    prefer_a: int
    prefer_b: int
    no_preference: int
    share_a: tuple[float, float, float]  # share, Wilson low, high
    share_b: tuple[float, float, float]
    share_none: tuple[float, float, float]
    p: float  # sign test of prefer_a against prefer_b (no preference left out)
    p_holm: float


def preferences(rows: list[dict]) -> list[Preference]:
    """Rows ``{listener, sentence, system_a, system_b, choice}`` (choice: a system's name or
    ``"none"``) -> per pair, the three shares with Wilson intervals and a Holm-corrected sign
    test."""
    pairs = list(dict.fromkeys((r["system_a"], r["system_b"]) for r in rows))
    found = []
    for a, b in pairs:
        mine = [r for r in rows if (r["system_a"], r["system_b"]) == (a, b)]
        n = len(mine)
        ka = sum(r["choice"] == a for r in mine)
        kb = sum(r["choice"] == b for r in mine)
        kn = n - ka - kb
        p = float(scipy.stats.binomtest(ka, ka + kb).pvalue) if ka + kb else 1.0
        shares = [(k / n, *wilson(k, n)) for k in (ka, kb, kn)]
        found.append((a, b, n, ka, kb, kn, *shares, p))
    adjusted = holm([f[-1] for f in found]) if found else []
    return [Preference(*f, float(q)) for f, q in zip(found, adjusted, strict=True)]


@dataclasses.dataclass(frozen=True)
class Screening:
    listener: str
    trials: int
    below: int  # trials whose hidden reference was rated < SCREEN_SCORE
    excluded: bool

    @property
    def reason(self) -> str:
        share = self.below / self.trials if self.trials else 0.0
        return (
            f"rated the hidden reference below {SCREEN_SCORE:.0f} in {self.below} of "
            f"{self.trials} trials ({100 * share:.0f} % > {100 * SCREEN_FRACTION:.0f} %)"
        )


def post_screen(rows: list[dict]) -> list[Screening]:
    """BS.1534-3 post-screening of every listener from their hidden-reference ratings."""
    out = []
    for listener in sorted({r["listener"] for r in rows}):
        ref = [
            r["score"]
            for r in rows
            if r["listener"] == listener and r["system"] == HIDDEN_REFERENCE
        ]
        below = sum(s < SCREEN_SCORE for s in ref)
        excluded = bool(ref) and below > SCREEN_FRACTION * len(ref)
        out.append(Screening(listener, len(ref), below, excluded))
    return out
