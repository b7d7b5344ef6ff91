"""HiFi-GAN: parameter counts against the reference, weight-norm folding, MPD padding, losses
by hand, and learning on one batch (the convolution forms: tests/test_nn.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tts_jax import audio
from tts_jax.benchmarks import count_params
from tts_jax.inference import frame_bucket
from tts_jax.models import hifigan as H
from tts_jax.nn import conv as C

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments.hifigan import get_config  # noqa: E402


def _shapes_count(fn, *args) -> int:
    return count_params(jax.eval_shape(fn, *args))


# ------------------------------------------------------------------------ parameter counts


@pytest.mark.parametrize(
    "variant, folded_count", [("v1", 13_926_017), ("v2", 925_985), ("v3", 1_462_273)]
)
def test_generator_parameter_counts_match_reference_after_folding(variant, folded_count):
    gen = H.build_generator(get_config(variant))
    mels = jnp.zeros((1, 8, 80))

    def folded(key):
        return C.fold_weight_norm(gen.init(key, mels)["params"])

    assert _shapes_count(folded, jax.random.PRNGKey(0)) == folded_count
    # Before folding there is one gain per output channel of every conv on top.
    normed = _shapes_count(lambda k: gen.init(k, mels)["params"], jax.random.PRNGKey(0))
    assert normed > folded_count


def test_discriminator_parameter_counts_match_reference():
    mpd, msd = H.build_discriminators(get_config("v1"))
    x = jnp.zeros((1, 8192))
    key = jax.random.PRNGKey(0)
    assert _shapes_count(lambda k: mpd.init(k, x)["params"], key) == 41_105_770
    # Spectral norm adds no parameters (u and sigma are state, not trained).
    assert _shapes_count(lambda k: msd.init(k, x)["params"], key) == 29_618_821


@pytest.mark.parametrize("variant", ["v1", "v3"])
def test_generator_output_is_frames_times_hop(variant):
    gen = H.build_generator(get_config(variant))
    for frames in (1, 7, 32):
        mels = jnp.zeros((2, frames, 80))
        out = jax.eval_shape(lambda m: gen.init_with_output(jax.random.PRNGKey(0), m)[0], mels)
        assert out.shape == (2, frames * 256)


# ---------------------------------------------------------------------------- weight norm


def _tiny_generator_params(seed=0):
    config = get_config("tiny")
    gen = H.build_generator(config)
    mels = jax.random.normal(jax.random.PRNGKey(seed), (2, 12, 80)) - 4.0
    params = gen.init(jax.random.PRNGKey(seed), mels)["params"]
    return config, gen, mels, params


@pytest.mark.slow
def test_weight_norm_fold_leaves_output_unchanged():
    config, gen, mels, params = _tiny_generator_params()

    # Gains away from their initial value, so the fold has something to fold.
    def perturb(path, x):
        return x * 0.6 + 0.05 if "scale" in jax.tree_util.keystr(path) else x

    params = jax.tree_util.tree_map_with_path(perturb, params)
    folded = C.fold_weight_norm(params)
    assert not any("weight_norm" in jax.tree_util.keystr(p) for p, _ in _leaves(folded))
    y_normed = gen.apply({"params": params}, mels)
    y_folded = H.build_generator(config, folded=True).apply({"params": folded}, mels)
    np.testing.assert_allclose(y_folded, y_normed, atol=1e-5)  # float rounding
    assert float(jnp.std(y_normed)) > 1e-4  # the comparison is not between two zeros


@pytest.mark.slow
def test_torch_weight_norm_init_makes_normed_layer_compute_raw_kernel():
    """At creation every normed layer computes exactly the kernel its init drew: the normed
    generator's output is the plain twin's (norm=None, same key) output."""
    config, gen, mels, params = _tiny_generator_params(1)
    plain = H.build_generator(config, folded=True).init(jax.random.PRNGKey(1), mels)["params"]
    params = C.torch_weight_norm_init(params, plain)
    y_normed = gen.apply({"params": params}, mels)
    y_raw = H.build_generator(config, folded=True).apply({"params": plain}, mels)
    np.testing.assert_allclose(y_normed, y_raw, atol=1e-6)


@pytest.mark.slow
def test_initial_weights_have_the_reference_scale():
    """jik876 draws ups, resblocks and conv_post from N(0, 0.01) and leaves conv_pre and the
    discriminators at PyTorch's default U(+-1/sqrt(fan_in)), std 1/sqrt(3 fan_in); flax's
    WeightNorm alone would give every filter norm 1 (std 1/sqrt(fan_in), 0.036 for a V1
    resblock of 256 channels). Measured on the V1 generator and MPD as initialised."""
    config = get_config("v1")
    with config.unlocked():  # the MSD at a tenth of its width: it is not measured here
        config.model.msd_layers = ((16, 15, 1, 1), (16, 41, 2, 4), (16, 5, 1, 1))
        config.model.mpd_channels = (32, 128, 128, 128, 128)  # the first two as the paper's
    state = H.FAMILY.init_state(config, jax.random.PRNGKey(0), H.FAMILY.example_batch(config))
    gen = C.fold_weight_norm(jax.device_get(state.gen_params))

    def close(tree, expected: float) -> bool:
        """The sample std of the tree's kernels is within 4 of its standard errors."""
        kernels = [x for p, x in _leaves(tree) if "kernel" in jax.tree_util.keystr(p)]
        values = np.concatenate([np.ravel(k) for k in kernels])
        return abs(np.std(values) / expected - 1) < 4 / np.sqrt(2 * values.size)

    for name in ("ups_0", "mrf_0", "mrf_3", "conv_post"):
        assert close(gen[name], 0.01), name
    assert close(gen["conv_pre"], 1 / np.sqrt(3 * 80 * 7))
    mpd = C.fold_weight_norm(jax.device_get(state.disc_params["mpd"]))
    assert close(mpd["DiscriminatorP_0"]["Conv1d_1"], 1 / np.sqrt(3 * 32 * 5))  # 32 -> 128
    assert not close(gen["mrf_3"], 1 / np.sqrt(32 * 3))  # flax's unit-norm filters
    scale = state.gen_params["mrf_0"]["ResBlock1_0"]["Conv1d_0"]["weight_norm"]
    assert not np.allclose(scale["conv/kernel/scale"], 1.0)  # g = ||v||, not flax's 1


def _leaves(tree):
    return jax.tree_util.tree_flatten_with_path(tree)[0]


def _weight_norm_nodes(tree):
    out = []
    C._weight_norm_sites(tree, lambda node, path: out.append(node))
    return out


# ---------------------------------------------------------------------------- MPD padding


def test_period_discriminator_reflect_pads_to_a_multiple_of_the_period():
    disc = H.DiscriminatorP(3, channels=(4, 8), conv_impl="auto")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 31))  # 31 = 3 * 10 + 1: pad 2
    params = disc.init(jax.random.PRNGKey(1), x)
    logits, fmaps = disc.apply(params, x)
    padded = jnp.concatenate([x, x[:, -2:-4:-1]], axis=1)  # reflect: x[29], x[28]
    assert padded.shape[1] == 33
    logits_ref, fmaps_ref = disc.apply(params, padded)
    np.testing.assert_allclose(logits, logits_ref, atol=1e-6)
    # [B, T/p, p, C]: 11 rows of the 3 columns enter the first conv (stride 3 -> 4 rows).
    assert fmaps[0].shape == (2, 4, 3, 4)
    # Zero padding would give something else: the padding really is reflect.
    zero = jnp.pad(x, ((0, 0), (0, 2)))
    assert not np.allclose(disc.apply(params, zero)[0], logits)


def test_period_discriminator_of_a_divisible_length_does_not_pad():
    disc = H.DiscriminatorP(5, channels=(4,), conv_impl="auto")
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 40))
    params = disc.init(jax.random.PRNGKey(1), x)
    _, fmaps = disc.apply(params, x)
    # 40 / 5 = 8 rows, no padding row; a lone conv is the last one, so stride 1.
    assert fmaps[-1].shape[:3] == (1, 8, 5)


# --------------------------------------------------------------------------------- losses


def test_discriminator_and_generator_losses_by_hand():
    real = [jnp.array([[1.0, 0.5]]), jnp.array([[0.0]])]
    fake = [jnp.array([[0.0, 1.0]]), jnp.array([[2.0]])]
    total, r, g = H.discriminator_loss(real, fake)
    # D1: mean((1-1)^2, (1-0.5)^2) = 0.125; mean(0, 1) = 0.5. D2: (1-0)^2 = 1; 2^2 = 4.
    np.testing.assert_allclose([float(v) for v in r], [0.125, 1.0])
    np.testing.assert_allclose([float(v) for v in g], [0.5, 4.0])
    assert float(total) == pytest.approx(5.625)
    g_total, terms = H.generator_loss(fake)
    # mean((1-0)^2, (1-1)^2) = 0.5; (1-2)^2 = 1.
    np.testing.assert_allclose([float(v) for v in terms], [0.5, 1.0])
    assert float(g_total) == pytest.approx(1.5)


def test_feature_loss_by_hand():
    real = [[jnp.array([1.0, 2.0]), jnp.array([[0.0, 0.0], [0.0, 4.0]])], [jnp.array([3.0])]]
    fake = [[jnp.array([2.0, 0.0]), jnp.array([[1.0, 0.0], [0.0, 0.0]])], [jnp.array([3.5])]]
    # layer means: |(-1, 2)| -> 1.5; |(-1, 0, 0, 4)| -> 1.25; 0.5. Sum 3.25, times 2.
    assert float(H.feature_loss(real, fake)) == pytest.approx(6.5)


def test_mel_loss_is_the_mean_absolute_log_mel_difference():
    cfg = audio.MelConfig(fmax=None)
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.5, 0.5, (1, 4096)).astype(np.float32)
    b = (0.5 * a + rng.normal(0, 0.01, a.shape)).astype(np.float32)
    want = np.mean(np.abs(audio.log_mel_np(a[0], cfg) - audio.log_mel_np(b[0], cfg)))
    assert float(H.mel_loss(jnp.asarray(a), jnp.asarray(b), cfg)) == pytest.approx(want, rel=1e-3)
    assert float(H.mel_loss(jnp.asarray(a), jnp.asarray(a), cfg)) == 0.0


def test_loss_mel_is_full_band_when_asked():
    config = get_config("tiny")
    assert H.loss_mel_config(config).fmax == config.data.sample_rate / 2
    config.model.loss_mel_full_band = False
    assert H.loss_mel_config(config).fmax == config.data.fmax


# ------------------------------------------------------------------------- training step


def _fixed_batch(config, corpus):
    split = corpus.split("train")
    seg = config.train.segment_length
    hop = config.data.hop_length
    audios, mels = [], []
    for i in range(config.train.batch_size):
        ex = split.example(i)
        audios.append(np.pad(ex["audio"], (0, seg))[:seg])
        mel = np.full((seg // hop, 80), np.log(1e-5), np.float32)
        n = min(len(ex["mel"]), seg // hop)
        mel[:n] = ex["mel"][:n]
        mels.append(mel)
    return {"audio": np.stack(audios), "mels": np.stack(mels)}


@pytest.mark.slow
def test_a_few_steps_on_one_batch_lower_the_mel_loss(corpus_dir, corpus):
    config = get_config("tiny")
    config.data.path = str(corpus_dir)
    config.optim.decay_steps = 1000
    batch = _fixed_batch(config, corpus)
    state = H.FAMILY.init_state(config, jax.random.PRNGKey(0), batch)
    stats0 = state.disc_stats
    step = jax.jit(H.FAMILY.train_step(config))
    losses = []
    for _ in range(12):
        state, metrics = step(state, batch)
        losses.append(float(metrics["gen/mel_l1"]))
        assert all(np.isfinite(float(v)) for v in metrics.values())
    assert int(state.step) == 12
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    # Spectral norm's power-iteration vectors are carried in the state and advance.
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), stats0, state.disc_stats)
    assert all(jax.tree.leaves(changed))


def test_epoch_decay_resolves_to_steps_per_epoch(corpus_dir):
    config = get_config("tiny")
    config.data.path = str(corpus_dir)
    _, schedule = H.optimizer(config)
    per_epoch = H.steps_per_epoch(config)
    lr = config.optim.learning_rate
    assert float(schedule(per_epoch - 1)) == pytest.approx(lr)  # staircase: whole epochs
    assert float(schedule(per_epoch)) == pytest.approx(lr * 0.999)
    config.optim.staircase = False  # the per-step equivalent
    _, schedule = H.optimizer(config)
    half = per_epoch // 2
    assert float(schedule(half)) == pytest.approx(lr * 0.999 ** (half / per_epoch), rel=1e-6)


def test_config_hop_mismatch_is_a_clear_error():
    from tts_jax.errors import UserError

    config = get_config("tiny")
    config.data.hop_length = 200
    with pytest.raises(UserError, match="multiply to 256"):
        H.check_config(config)


# ---------------------------------------------------------------------------- inference


def test_frame_buckets_bound_padding_and_compilations():
    lengths = range(1, 3000)
    buckets = {frame_bucket(n) for n in lengths}
    assert all(frame_bucket(n) >= n for n in lengths)
    assert all(frame_bucket(n) <= max(2 * n, 32) for n in lengths if n <= 1024)
    assert len(buckets) <= 9


@pytest.mark.slow
def test_vocoder_trims_to_frames_times_hop_and_ignores_padding():
    config, gen, mels, params = _tiny_generator_params(2)
    state = H.GANState(
        step=jnp.zeros((), jnp.int32), gen_params=params, gen_opt_state=None,
        disc_params=None, disc_opt_state=None, disc_stats=None, rng=None,
    )  # fmt: skip
    vocoder = H.Vocoder("unused", config=config, state=state)
    mel = np.asarray(mels[0, :12])
    wav = vocoder(mel)
    assert wav.shape == (12 * 256,)
    # Away from the end (beyond the receptive field of the padding) it is the unpadded output.
    direct = np.asarray(gen.apply({"params": params}, mels[:1, :12]))[0]
    np.testing.assert_allclose(wav[: 4 * 256], direct[: 4 * 256], atol=1e-5)


# ------------------------------------------------------------------------- GTA fine-tuning


def test_audio_segments_read_gta_mels_from_mel_dir(tmp_path, corpus):
    from tts_jax.data.pipeline import AudioSegments
    from tts_jax.errors import UserError

    split = corpus.split("train")
    for i, utt in enumerate(split.ids):  # a stand-in for `tts-jax gta`: ground truth + 1
        np.save(tmp_path / f"{utt}.npy", split.example(i)["mel"] + 1.0)
    plain = AudioSegments(split, 4, 2048, seed=3)
    gta = AudioSegments(split, 4, 2048, seed=3, mel_dir=tmp_path)
    a, b = next(plain), next(gta)
    np.testing.assert_array_equal(a["audio"], b["audio"])  # same segments
    real = a["mels"] > np.log(1e-5) + 1e-3  # frames that are not padding
    np.testing.assert_allclose(b["mels"][real], a["mels"][real] + 1.0, atol=1e-5)

    np.save(tmp_path / f"{split.ids[0]}.npy", np.zeros((3, 80), np.float32))
    bad = AudioSegments(split, len(split), 2048, seed=3, mel_dir=tmp_path, shuffle=False)
    with pytest.raises(UserError, match="ground-truth frames"):
        next(bad)
    (tmp_path / f"{split.ids[1]}.npy").unlink()
    with pytest.raises(UserError, match="tts-jax gta"):
        AudioSegments(split, 4, 2048, mel_dir=tmp_path)
