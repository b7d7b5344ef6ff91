"""Conv-TasNet and the depthwise-separable convolution: SI-SNR by hand and its invariance,
PIT's choice, the receptive-field formula, parameter-count formulas, causality."""

from __future__ import annotations

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tts_jax.benchmarks import count_params
from tts_jax.models import conv_tasnet as CT
from tts_jax.nn.separable import (
    DepthwiseConv1d,
    DepthwiseSeparableConv1d,
    full_param_count,
    separable_param_count,
)


def test_si_snr_by_hand_and_scale_invariance():
    rng = np.random.default_rng(0)
    s = rng.normal(size=200)
    est = 0.7 * s + 0.2 * rng.normal(size=200) + 3.0  # offset: removed by the zero-mean step
    s0, e0 = s - s.mean(), est - est.mean()
    target = (e0 @ s0) / (s0 @ s0) * s0
    want = 10 * np.log10((target @ target) / ((e0 - target) @ (e0 - target)))
    got = float(CT.si_snr(jnp.asarray(est, jnp.float32), jnp.asarray(s, jnp.float32)))
    assert got == pytest.approx(want, abs=1e-3)
    for scale in (0.01, 5.0):
        scaled = float(
            CT.si_snr(jnp.asarray(scale * est, jnp.float32), jnp.asarray(s, jnp.float32))
        )
        assert scaled == pytest.approx(got, abs=1e-3)
    # And scaling the reference changes nothing either.
    assert float(CT.si_snr(jnp.asarray(est), jnp.asarray(9 * s))) == pytest.approx(got, abs=1e-3)


@pytest.mark.parametrize("c", [2, 3])
def test_pit_finds_the_permutation_of_swapped_sources(c):
    rng = np.random.default_rng(c)
    targets = jnp.asarray(rng.normal(size=(4, c, 300)), jnp.float32)
    perms = list(itertools.permutations(range(c)))
    chosen = [perms[i % len(perms)] for i in range(4)]
    estimates = jnp.stack(
        [targets[b, list(p)] + 0.1 * rng.normal(size=(c, 300)) for b, p in enumerate(chosen)]
    ).astype(jnp.float32)
    score, perm = CT.pit_si_snr(estimates, targets)
    # estimate perm[j] is matched with target j: estimate i holds target chosen[i].
    for b, p in enumerate(chosen):
        inverse = np.argsort(p)
        np.testing.assert_array_equal(perm[b], inverse)
    assert float(jnp.min(score)) > 15.0  # the right pairing scores high


def test_depthwise_separable_parameter_count_formula():
    k, m, n = 3, 64, 96
    block = DepthwiseSeparableConv1d(n, k)
    params = block.init(jax.random.PRNGKey(0), jnp.zeros((1, 10, m)))["params"]
    assert count_params(params) == separable_param_count(k, m, n) == k * m + m * n + m + n
    full = jax.eval_shape(
        lambda key: jax.nn.initializers.lecun_normal()(key, (k, m, n)), jax.random.PRNGKey(0)
    )
    assert int(np.prod(full.shape)) + n == full_param_count(k, m, n)
    assert separable_param_count(k, m, n) < full_param_count(k, m, n) / 2


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kernel_size,dilation", [(3, 1), (3, 4), (4, 2)])
def test_depthwise_conv_equals_grouped_lax_conv(causal, kernel_size, dilation):
    # The tap-sum implementation against lax's grouped convolution, same kernel.
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 37, 5)), jnp.float32)
    module = DepthwiseConv1d(kernel_size, dilation, causal)
    params = module.init(jax.random.PRNGKey(1), x)["params"]
    pad = dilation * (kernel_size - 1)
    left = pad if causal else pad // 2
    want = (
        jax.lax.conv_general_dilated(
            x,
            params["kernel"],
            (1,),
            [(left, pad - left)],
            rhs_dilation=(dilation,),
            dimension_numbers=("NWC", "WIO", "NWC"),
            feature_group_count=5,
        )
        + params["bias"]
    )
    np.testing.assert_allclose(module.apply({"params": params}, x), want, atol=1e-5)


def test_paper_parameter_count():
    # N=512, L=16, B=128, H=512, Sc=128, P=3, X=8, R=3, C=2: about 5.05 M (paper: 5.1 M).
    n, l_, b, h, sc, p, x, r, c = 512, 16, 128, 512, 128, 3, 8, 3, 2
    block = (b * h + h) + 1 + 2 * h + (p * h + h) + 1 + 2 * h + (h * (b + sc) + b + sc)
    want = n * l_ + n * l_ + 2 * n + (n * b + b) + r * x * block + 1 + (sc * c * n + c * n)
    params = jax.eval_shape(
        lambda key: CT.ConvTasNet(CT.ConvTasNetConfig()).init(key, jnp.zeros((1, 800))),
        jax.random.PRNGKey(0),
    )
    assert count_params(params) == want == 5_050_545


def _tiny(causal=False):
    return CT.ConvTasNet(
        CT.ConvTasNetConfig(
            num_sources=2,
            num_filters=8,
            filter_length=4,
            bottleneck=6,
            hidden=8,
            skip=6,
            kernel_size=3,
            blocks=3,
            repeats=2,
            causal=causal,
        )
    )


def _without_norms(fn):
    """Runs ``fn`` with every gLN / cLN replaced by the identity: the norms' statistics mix all
    frames, so the convolutions' reach can only be seen without them."""

    def skip_norms(next_fun, args, kwargs, context):
        if isinstance(context.module, (CT.GlobalLayerNorm, CT.CumulativeLayerNorm)):
            return args[0]
        return next_fun(*args, **kwargs)

    import flax.linen as nn

    with nn.intercept_methods(skip_norms):
        return fn()


@pytest.mark.slow
def test_separator_receptive_field_matches_its_formula():
    sep = CT.Separator(2, 6, 8, 6, 3, blocks=3, repeats=2, causal=False)
    rf = sep.receptive_field()
    assert rf == 1 + 2 * 2 * (2**3 - 1)
    w = jax.random.uniform(jax.random.PRNGKey(0), (1, 80, 8))
    params = sep.init(jax.random.PRNGKey(1), w)
    base = _without_norms(lambda: sep.apply(params, w))
    k, half = 40, (rf - 1) // 2
    edges = [(k + half, True), (k + half + 1, False), (k - half, True), (k - half - 1, False)]
    for pos, depends in edges:
        moved = _without_norms(lambda pos=pos: sep.apply(params, w.at[:, pos].add(1.0)))
        changed = bool(jnp.any(jnp.abs(moved[:, k] - base[:, k]) > 1e-7))
        assert changed == depends, pos


@pytest.mark.slow
def test_causal_model_output_does_not_depend_on_the_future():
    model = _tiny(causal=True)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 400))
    params = model.init(jax.random.PRNGKey(1), x)
    base = model.apply(params, x)
    moved = model.apply(params, x.at[:, 300].add(1.0))
    # Samples before the frame containing 300 (frames of 4 samples, hop 2) are untouched.
    np.testing.assert_array_equal(moved[..., :296], base[..., :296])
    assert not np.allclose(moved[..., 300:304], base[..., 300:304])


@pytest.mark.parametrize("t", [399, 400, 401])
def test_output_has_the_mixture_length(t):
    model = _tiny()
    x = jax.random.normal(jax.random.PRNGKey(0), (2, t))
    params = model.init(jax.random.PRNGKey(1), x)
    assert model.apply(params, x).shape == (2, 2, t)


@pytest.mark.slow
def test_two_voice_mixtures_train_and_separate(tmp_path, capsys):
    import soundfile as sf

    from tests.conftest import REPO
    from tts_jax.cli import main
    from tts_jax.config import load_config
    from tts_jax.data.corpus import build_corpus
    from tts_jax.data.mixtures import MixtureSegments, load_split
    from tts_jax.train.loop import train_and_evaluate

    corpus = tmp_path / "corpus"
    build_corpus(corpus, 30, seed=3, voices=("en-us", "en-us+f2"), workers=1)
    mixes = tmp_path / "mixtures"
    args = [
        "mixtures",
        "--corpus",
        str(corpus),
        "--out",
        str(mixes),
        "--fractions",
        "0.6",
        "0.2",
        "0.2",
    ]
    assert main(args) == 0
    items = load_split(mixes, "train")
    voices = dict(line.split("|") for line in (corpus / "speakers.csv").read_text().split())
    import csv

    with open(mixes / "train" / "index.csv") as f:
        for row in csv.DictReader(f):
            assert voices[row["s1"]] != voices[row["s2"]]  # two different voices
    for item in items:  # the mixture is the sum of the kept sources (to 16-bit rounding)
        np.testing.assert_allclose(item["mixture"], item["sources"].sum(0), atol=2e-4)
        assert item["sources"].shape[0] == 2
    a, b = MixtureSegments(items, 4, 2000, seed=1), MixtureSegments(items, 4, 2000, seed=1)
    next(a)
    state = a.get_state()
    b.set_state(state)
    np.testing.assert_array_equal(next(a)["sources"], next(b)["sources"])  # resumable

    config = load_config(
        str(REPO / "experiments" / "conv_tasnet.py:tiny"), [f"--config.data.mixtures={mixes}"]
    )
    train_and_evaluate(config, tmp_path / "w")
    mix = next((mixes / "test" / "mix").glob("*.wav"))
    out = tmp_path / "sep"
    assert (
        main(
            ["separate", "--workdir", str(tmp_path / "w"), "--mix", str(mix), "--out-dir", str(out)]
        )
        == 0
    )
    assert sf.info(str(out / "s1.wav")).frames == sf.info(str(mix)).frames
    assert (out / "s2.wav").is_file()

    # Scoring a split: one row per test mixture; the mixture's own SI-SNR is recovered
    # from SI-SNR - SI-SNRi, and must match a direct computation on the first one.
    ev = tmp_path / "ev"
    assert (
        main(
            ["separate", "--workdir", str(tmp_path / "w"), "--split", "test", "--out-dir", str(ev)]
        )
        == 0
    )
    summary = json.loads((ev / "summary.json").read_text())
    test_items = load_split(mixes, "test")
    assert (
        summary["mixtures"]
        == len(test_items)
        == len((ev / "si_snr.csv").read_text().splitlines()[1:])
    )
    by_voices = summary["si_snri_by_voices"]  # both voices of the toy corpus in every mixture
    assert list(by_voices) == ["en-us / en-us+f2"]
    assert by_voices["en-us / en-us+f2"]["n"] == summary["mixtures"]
    first = next(csv.DictReader(open(ev / "si_snr.csv")))
    assert first["voices"] == "en-us / en-us+f2"
    item = next(i for i in test_items if i["id"] == first["id"])
    own = float(jnp.mean(CT.si_snr(item["mixture"][None], item["sources"])))
    np.testing.assert_allclose(float(first["si_snr"]) - float(first["si_snri"]), own, atol=2e-3)

    # Bad input on the trained run: an unknown split, and a mixture too short to separate.
    def error_of(argv):
        assert main(argv) == 2
        return capsys.readouterr().err

    base = ["separate", "--workdir", str(tmp_path / "w"), "--out-dir", str(tmp_path / "bad")]
    err = error_of([*base, "--split", "bogus"])
    assert "no mixtures of split 'bogus'; its splits: test, train, validation" in err
    short = tmp_path / "short.wav"
    sf.write(str(short), np.full(1, 0.1, np.float32), 8000)
    err = error_of([*base, "--mix", str(short)])
    assert "a mixture of 1 sample(s) is shorter than the encoder's window" in err
    assert not (tmp_path / "bad" / "s1.wav").exists()
