"""The listening-test statistics against scipy.stats and closed forms, on synthetic ratings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from tts_jax.listen import stats


def _rows(system, scores):
    """Rows of a full listener x sentence design ``scores [L, S]``."""
    return [
        {"listener": f"l{i}", "sentence": f"s{j}", "system": system, "score": float(v)}
        for (i, j), v in np.ndenumerate(np.asarray(scores))
    ]


def test_t_interval_is_scipys_one_sample_t_confidence_interval():
    x = np.random.default_rng(0).normal(60, 12, size=37)
    mean, low, high = stats.t_interval(x)
    ci = scipy.stats.ttest_1samp(x, 0).confidence_interval(0.95)
    assert mean == pytest.approx(x.mean())
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert all(math.isnan(v) for v in stats.t_interval([3.0])[1:])


def test_two_way_bootstrap_spread_matches_the_closed_form_for_additive_effects():
    # x[l, s] = a_l + b_s: the crossed bootstrap mean is mean(a*) + mean(b*), whose variance
    # is var(a) / L + var(b) / S (population variances of the drawn-from sets).
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 8, 12), rng.normal(0, 5, 9)
    x = 50 + a[:, None] + b[None, :]
    sums, counts = stats.cell_matrix(_rows("s", x), [f"l{i}" for i in range(12)],
                                     [f"s{j}" for j in range(9)])  # fmt: skip
    low, high, means = stats.two_way_bootstrap(sums, counts, n_boot=6000, seed=3)
    want_sd = math.sqrt(a.var() / len(a) + b.var() / len(b))
    assert means.std() == pytest.approx(want_sd, rel=0.05)
    assert means.mean() == pytest.approx(x.mean(), abs=0.1 * want_sd)
    assert low < x.mean() < high
    # About +-1.96 sd wide (the bootstrap distribution of a sum of two means is near normal).
    assert (high - low) / 2 == pytest.approx(1.96 * want_sd, rel=0.1)


def test_crossed_means_is_the_mean_of_the_drawn_ratings_by_brute_force():
    # Cells rated once, twice or not at all; each replicate's listeners and sentences are drawn
    # explicitly, its ratings listed one by one (a cell drawn via k listener copies and m
    # sentence copies is listed k * m times) and averaged.
    rng = np.random.default_rng(5)
    n_l, n_s = 4, 3
    rows = [
        {"listener": f"l{i}", "sentence": f"s{j}", "system": "x", "score": float(v)}
        for i in range(n_l)
        for j in range(n_s)
        for v in rng.integers(0, 101, rng.integers(0, 3))
    ]
    listeners, sentences = [f"l{i}" for i in range(n_l)], [f"s{j}" for j in range(n_s)]
    sums, counts = stats.cell_matrix(rows, listeners, sentences)
    draws_l = rng.integers(0, n_l, (50, n_l))
    draws_s = rng.integers(0, n_s, (50, n_s))
    wl = np.stack([np.bincount(d, minlength=n_l) for d in draws_l])
    ws = np.stack([np.bincount(d, minlength=n_s) for d in draws_s])
    got = stats.crossed_means(sums, counts, wl, ws)
    for b in range(50):
        drawn = [
            r["score"]
            for i in draws_l[b]
            for j in draws_s[b]
            for r in rows
            if (r["listener"], r["sentence"]) == (listeners[i], sentences[j])
        ]
        if drawn:
            assert got[b] == pytest.approx(np.mean(drawn), rel=1e-12)
        else:
            assert math.isnan(got[b])
    # With every weight 1 it is the plain mean of all ratings, not a mean of cell means.
    ones = stats.crossed_means(sums, counts, np.ones((1, n_l)), np.ones((1, n_s)))
    assert ones[0] == pytest.approx(np.mean([r["score"] for r in rows]))


def test_holm_on_a_hand_computed_example():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])


def test_pairwise_wilcoxon_is_scipys_on_the_paired_cells_and_holm_corrected():
    rng = np.random.default_rng(2)
    base = rng.normal(50, 10, (6, 5))
    rows = (
        _rows("a", base)
        # every difference a - b negative and distinct: exact two-sided p = 2 / 2^30
        + _rows("b", base + 10 + 0.01 * np.arange(30).reshape(6, 5))
        + _rows("c", base + rng.normal(0, 5, base.shape))
    )
    tests = {(t.a, t.b): t for t in stats.pairwise_wilcoxon(rows, ["a", "b", "c"])}
    ab = tests["a", "b"]
    assert ab.n == 30 and ab.median_difference == pytest.approx(-10.145)
    assert ab.p == pytest.approx(2 / 2**30, rel=1e-6)
    x, y = stats.paired_scores(rows, "a", "c")
    want = scipy.stats.wilcoxon(x, y)
    assert tests["a", "c"].p == pytest.approx(want.pvalue)
    assert tests["a", "c"].statistic == pytest.approx(want.statistic)
    raw = [t.p for t in tests.values()]
    np.testing.assert_allclose([t.p_holm for t in tests.values()], stats.holm(raw))


def test_paired_scores_pair_by_listener_and_sentence_only():
    rows = _rows("a", [[1.0, 2.0]]) + [
        {"listener": "l0", "sentence": "s1", "system": "b", "score": 5.0},
        {"listener": "l9", "sentence": "s0", "system": "b", "score": 7.0},
    ]
    x, y = stats.paired_scores(rows, "a", "b")
    assert list(x) == [2.0] and list(y) == [5.0]


def test_wilson_interval_closed_form():
    k, n, z = 7, 20, scipy.stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert stats.wilson(k, n) == pytest.approx((centre - half, centre + half), rel=1e-9)


def test_preference_shares_counts_and_sign_test():
    rows = [
        {"listener": "l", "sentence": f"s{i}", "system_a": "x", "system_b": "y", "choice": c}
        for i, c in enumerate(["x"] * 9 + ["y"] * 1 + ["none"] * 2)
    ]
    (p,) = stats.preferences(rows)
    assert (p.n, p.prefer_a, p.prefer_b, p.no_preference) == (12, 9, 1, 2)
    assert p.share_a[0] == pytest.approx(9 / 12)
    assert p.share_a[1:] == pytest.approx(stats.wilson(9, 12))
    # Sign test on the 10 trials with a preference: P(|X - 5| >= 4) = 2 * 11 / 1024.
    assert p.p == pytest.approx(22 / 1024)
    assert p.p_holm == pytest.approx(p.p)


def test_post_screening_excludes_over_15_percent_of_hidden_reference_below_90():
    def listener(name, ref_scores):
        return [
            {"listener": name, "sentence": f"s{i}", "system": stats.HIDDEN_REFERENCE, "score": v}
            for i, v in enumerate(ref_scores)
        ]

    rows = (
        listener("good", [100] * 7 + [80])  # 1 of 8 = 12.5 %: kept
        + listener("bad", [100] * 6 + [70, 89])  # 2 of 8 = 25 %: excluded
        + listener("edge", [90] * 8)  # 90 is not below 90
    )
    found = {s.listener: s for s in stats.post_screen(rows)}
    assert not found["good"].excluded and found["good"].below == 1
    assert found["bad"].excluded and found["bad"].below == 2 and found["bad"].trials == 8
    assert not found["edge"].excluded
    assert "2 of 8 trials (25 % > 15 %)" in found["bad"].reason


def test_summarize_systems_per_system_means_and_intervals():
    rng = np.random.default_rng(4)
    rows = _rows("good", rng.normal(80, 5, (5, 4))) + _rows("bad", rng.normal(30, 5, (5, 4)))
    found = {s.system: s for s in stats.summarize_systems(rows, n_boot=500)}
    for name in ("good", "bad"):
        scores = [r["score"] for r in rows if r["system"] == name]
        mean, low, high = stats.t_interval(scores)
        s = found[name]
        assert (s.n, s.listeners) == (20, 5)
        assert (s.mean, s.t_low, s.t_high) == pytest.approx((mean, low, high))
        assert s.boot_low < s.mean < s.boot_high


def test_summaries_do_not_depend_on_the_listeners_session_ids():
    # The same answers in the same order under other (random) session ids: the same intervals.
    rng = np.random.default_rng(6)
    rows = _rows("a", rng.normal(60, 10, (6, 4)))
    renamed = {f"l{i}": name for i, name in enumerate(["zz", "b7", "q", "a1", "m", "c"])}
    other = [{**r, "listener": renamed[r["listener"]]} for r in rows]
    assert stats.summarize_systems(rows, n_boot=300) == stats.summarize_systems(other, n_boot=300)
