"""Tacotron 2: parameter count, train/inference parity, masking, attention, stop loss,
reduction factors, zoneout and a small overfit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.conftest import REPO
from tts_jax.benchmarks import count_params
from tts_jax.config import load_config
from tts_jax.models import tacotron2 as T
from tts_jax.nn.zoneout import ZoneoutLSTMCell

CONFIG = str(REPO / "experiments" / "tacotron2.py")


def config(variant="tiny", **overrides):
    return load_config(f"{CONFIG}:{variant}", [f"--config.{k}={v}" for k, v in overrides.items()])


def random_batch(b=3, n=12, t=24, seed=0, n_mels=80):
    rng = np.random.default_rng(seed)
    id_lengths = np.array([n, n - 5, n - 2][:b], np.int32)
    mel_lengths = np.array([t, t - 7, t - 11][:b], np.int32)
    ids = rng.integers(2, 60, (b, n)).astype(np.int32)
    ids[np.arange(n)[None] >= id_lengths[:, None]] = 0
    mels = rng.normal(-5, 2, (b, t, n_mels)).astype(np.float32)
    mask = (np.arange(t)[None] < mel_lengths[:, None]).astype(np.float32)
    stop = (np.arange(t)[None] >= mel_lengths[:, None] - 1).astype(np.float32)
    return {
        "ids": ids,
        "id_lengths": id_lengths,
        "mels": mels,
        "mel_lengths": mel_lengths,
        "mel_mask": mask,
        "stop_targets": stop,
        "valid": np.ones(b, bool),
    }


def init(cfg, batch, seed=0):
    return T.FAMILY.init_state(cfg, jax.random.PRNGKey(seed), batch)


def test_paper_parameter_count():
    """26,043,457 with our 66-symbol character table. NVIDIA/tacotron2 has 28,193,153; the
    difference is accounted for exactly in test_parameter_difference_with_nvidia."""
    cfg = config("paper")
    shapes = jax.eval_shape(lambda: init(cfg, random_batch()))
    assert count_params(shapes.params) == 26_043_457


def test_parameter_difference_with_nvidia():
    """NVIDIA/tacotron2's 28,193,153 module by module against ours (26,043,457)."""
    cfg = config("paper")
    ours = count_params(jax.eval_shape(lambda: init(cfg, random_batch())).params)
    # NVIDIA's own count, rebuilt from its modules (this sum is exactly 28,193,153):
    nvidia = {
        "embedding": 148 * 512,
        "encoder_convs": 3 * (512 * 512 * 5 + 512 + 2 * 512),
        "encoder_lstm": 2 * (4 * 256 * (512 + 256) + 2 * 4 * 256),
        "prenet": 80 * 256 + 256 * 256,  # no biases
        "attention_rnn": 4 * 1024 * (256 + 512 + 1024) + 2 * 4 * 1024,
        "attention": 1024 * 128 + 512 * 128 + 128 + 2 * 32 * 31 + 32 * 128,
        "decoder_rnn": 4 * 1024 * (1024 + 512 + 1024) + 2 * 4 * 1024,
        "projections": (1536 * 80 + 80) + (1536 + 1),
        "postnet": (80 * 512 * 5 + 512 + 1024)
        + 3 * (512 * 512 * 5 + 512 + 1024)
        + (512 * 80 * 5 + 80 + 160),
    }
    assert sum(nvidia.values()) == 28_193_153
    differences = {
        # NVIDIA's 148-symbol table against our 66 characters.
        "embedding": (148 - 66) * 512,
        # NVIDIA's second decoder LSTM also reads the attention context (512 wide).
        "second_lstm_reads_context": 4 * 1024 * 512,
        # PyTorch LSTMs keep two bias vectors per gate (b_ih, b_hh); flax one.
        "lstm_double_biases": 2 * 4 * 1024 + 2 * 4 * 256,
        # NVIDIA's prenet has no biases.
        "prenet_biases": -2 * 256,
        # NVIDIA's location conv reads previous + cumulative weights without bias; ours reads
        # the cumulative weights (REFERENCE) with a bias.
        "location_conv": 2 * 32 * 31 - (32 * 31 + 32),
        # Our energy has the explicit bias b of the paper's formula; NVIDIA's has none.
        "attention_bias": -128,
    }
    assert ours + sum(differences.values()) == 28_193_153


@pytest.mark.slow
def test_teacher_forced_scan_equals_free_running_loop():
    """With dropout off, feeding the training path the frames the inference loop produced
    gives back exactly those frames, alignments and decoder states."""
    for r in (1, 3):
        cfg = config(**{"model.prenet_dropout": 0.0, "model.reduction": r})
        batch = random_batch()
        state = init(cfg, batch)
        model = T.build_model(cfg)
        variables = {"params": state.params, **state.model_state}
        steps = 8
        free = model.apply(
            variables,
            batch["ids"],
            batch["id_lengths"],
            method=T.Tacotron2.infer,
            max_decoder_steps=steps,
            stop_threshold=2.0,
            decoder_states=True,
        )  # never stops
        assert bool(jnp.all(free["reached_max"])) and int(free["decoder_steps"]) == steps
        frames = free["mel_before"]
        lengths = jnp.full((3,), steps * r, jnp.int32)
        tf = model.apply(variables, batch["ids"], batch["id_lengths"], frames, lengths, train=False)
        np.testing.assert_allclose(tf["mel_before"], frames, atol=1e-4)
        np.testing.assert_allclose(tf["mel_after"], free["mel_after"], atol=1e-4)
        np.testing.assert_allclose(tf["alignments"], free["alignments"], atol=1e-5)
        np.testing.assert_allclose(tf["decoder_states"], free["decoder_states"], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["rayhane", "nvidia"])
def test_deferred_lstm_kernel_gradients_equal_autodiffs(architecture):
    """The teacher-forced scan's custom backward pass (decoder LSTM kernel gradients formed
    after the scan) gives the loss and every gradient of the plain scan's autodiff, with
    zoneout (rayhane) or dropout (nvidia) drawing the same masks."""
    import dataclasses

    overrides = {"model.architecture": architecture}
    if architecture == "nvidia":
        overrides.update({"model.zoneout": 0.0, "model.reduction": 1})
    cfg = config(**overrides)
    batch = random_batch()
    state = init(cfg, batch)
    model = T.build_model(cfg)

    def loss(params, m):
        out, _ = T.train.apply_model(
            m,
            {"params": params, **state.model_state},
            batch,
            train=True,
            rng=jax.random.PRNGKey(3),
            mutable=["batch_stats"],
        )
        return T.losses(out, dict(batch, step=0), params, m.cfg, 22050, 0)[0]

    plain = dataclasses.replace(model, defer_lstm_kernel_grads=False)
    grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    l1, g1 = grad(state.params, model)
    l2, g2 = grad(state.params, plain)
    assert float(l1) == pytest.approx(float(l2), rel=1e-6)
    lstm = g1["decoder_step"]["lstm_0"]["lstm"]["ii"]["kernel"]
    assert float(jnp.abs(lstm).max()) > 1e-4  # the deferred gradient is really there
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(g1)[0], jax.tree.leaves(g2), strict=True
    ):
        scale = float(jnp.abs(b).max())
        np.testing.assert_allclose(a, b, atol=1e-5 * scale + 1e-7, err_msg=str(path))


@pytest.mark.slow
def test_padding_changes_neither_loss_nor_gradients():
    cfg = config()
    batch = random_batch()
    state = init(cfg, batch)
    step_loss = jax.jit(T.FAMILY.train_step(cfg))

    def loss_and_grads(b):
        # One step's metrics and the resulting parameters (which carry the gradients).
        new_state, metrics = step_loss(state, b)
        return metrics, new_state.params

    other = dict(batch)
    rng = np.random.default_rng(9)
    pad_ids = np.arange(batch["ids"].shape[1])[None] >= batch["id_lengths"][:, None]
    other["ids"] = np.where(pad_ids, rng.integers(2, 60, batch["ids"].shape), batch["ids"])
    pad_frames = batch["mel_mask"] == 0
    other["mels"] = np.where(
        pad_frames[..., None], rng.normal(3, 5, batch["mels"].shape), batch["mels"]
    ).astype(np.float32)
    m1, p1 = loss_and_grads(batch)
    m2, p2 = loss_and_grads(other)
    for k in ("before", "after", "stop", "loss"):
        assert float(m1[k]) == pytest.approx(float(m2[k]), rel=1e-5, abs=1e-6), k
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    # ... while changing a real frame does change the loss.
    real = dict(batch, mels=batch["mels"] + 1.0 * (1 - pad_frames[..., None]))
    assert float(loss_and_grads(real)[0]["before"]) != pytest.approx(float(m1["before"]))


def test_attention_sums_to_one_and_ignores_padding():
    cfg = config()
    batch = random_batch()
    state = init(cfg, batch)
    out = T.apply_model(
        T.build_model(cfg), {"params": state.params, **state.model_state}, batch, train=False
    )
    w = np.asarray(out["alignments"])  # [B, steps, N]
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    pad = np.arange(w.shape[-1])[None, None] >= batch["id_lengths"][:, None, None]
    assert np.all(w[np.broadcast_to(pad, w.shape)] == 0.0)


def test_stop_loss_honours_pos_weight():
    logits = jnp.array([[2.0, -1.0, 0.5, 3.0]])
    targets = jnp.array([[0.0, 0.0, 1.0, 1.0]])
    mask = jnp.array([[1.0, 1.0, 1.0, 0.0]])
    sig = jax.nn.sigmoid(logits)
    for w in (1.0, 4.0):
        manual = -(w * targets * jnp.log(sig) + (1 - targets) * jnp.log(1 - sig))
        expected = float(jnp.sum(manual * mask) / 3)
        assert float(T.weighted_stop_loss(logits, targets, mask, w)) == pytest.approx(
            expected, rel=1e-5
        )
    pos_only = T.weighted_stop_loss(logits, targets, mask * targets, 4.0)
    assert float(pos_only) == pytest.approx(
        4 * float(T.weighted_stop_loss(logits, targets, mask * targets, 1.0))
    )
    # pos_weight 1 is plain sigmoid cross-entropy.
    plain = optax.sigmoid_binary_cross_entropy(logits, targets)
    assert float(T.weighted_stop_loss(logits, targets, mask, 1.0)) == pytest.approx(
        float(jnp.sum(plain * mask) / 3), rel=1e-5
    )


@pytest.mark.parametrize("r", [2, 3])
def test_reduction_factor_feeds_the_last_frame_of_each_group(r):
    cfg = config(**{"model.reduction": r, "model.prenet_dropout": 0.0})
    t = 6 * r
    batch = random_batch(t=t)
    batch["mel_lengths"] = np.full(3, t, np.int32)
    state = init(cfg, batch)
    model = T.build_model(cfg)
    variables = {"params": state.params, **state.model_state}

    def before(mels):
        return np.asarray(
            model.apply(
                variables,
                batch["ids"],
                batch["id_lengths"],
                mels,
                batch["mel_lengths"],
                train=False,
            )["mel_before"]
        )

    base = before(batch["mels"])
    assert base.shape == (3, t, 80)
    k = 2  # perturb frames of group k
    fed = batch["mels"].copy()
    fed[:, k * r + r - 1] += 3.0  # the last frame of group k is fed to step k + 1
    changed = np.abs(before(fed) - base).max(axis=(0, 2)) > 1e-6
    assert not changed[: (k + 1) * r].any() and changed[(k + 1) * r :].all()
    unfed = batch["mels"].copy()
    unfed[:, k * r] += 3.0  # the first frame of a group (r > 1) is never fed back
    np.testing.assert_array_equal(before(unfed), base)


def test_zoneout_cell():
    cell = ZoneoutLSTMCell(64, zoneout=0.5, deterministic=False)
    carry = (jnp.ones((8, 64)), jnp.ones((8, 64)) * 2)
    x = jnp.ones((8, 16))
    params = cell.init(
        {"params": jax.random.PRNGKey(0), "zoneout": jax.random.PRNGKey(1)}, carry, x
    )
    (c, h), out = cell.apply(params, carry, x, rngs={"zoneout": jax.random.PRNGKey(2)})
    kept = np.asarray(h == 2.0)
    assert 0.4 < kept.mean() < 0.6 and np.array_equal(out, h)
    (c1, h1), _ = ZoneoutLSTMCell(64, 0.0).apply(params, carry, x)
    (ce, he), _ = ZoneoutLSTMCell(64, 0.5, deterministic=True).apply(params, carry, x)
    np.testing.assert_allclose(he, 0.5 * 2.0 + 0.5 * h1, rtol=1e-6)
    np.testing.assert_allclose(ce, 0.5 * 1.0 + 0.5 * c1, rtol=1e-6)


def test_inference_stops_per_utterance():
    cfg = config()
    batch = random_batch()
    state = init(cfg, batch)
    model = T.build_model(cfg)
    variables = {"params": state.params, **state.model_state}
    # An untrained stop projection hovers around probability 0.5: threshold 0 stops at once.
    out = model.apply(
        variables,
        batch["ids"],
        batch["id_lengths"],
        method=T.Tacotron2.infer,
        max_decoder_steps=10,
        stop_threshold=0.0,
        rngs={"dropout": jax.random.PRNGKey(0)},
    )
    assert np.all(np.asarray(out["lengths"]) == 1) and not np.any(out["reached_max"])
    assert int(out["decoder_steps"]) == 1


@pytest.mark.slow
def test_overfits_four_utterances(corpus):
    from tts_jax.data.pipeline import TextMelBatches

    # Prenet dropout off: with it the tiny decoder can only fit the mean spectrum in this
    # budget (it plateaus near 7x); without it the previous frame gets through.
    cfg = config(
        **{"optim.learning_rate": 1e-2, "model.prenet_dropout": 0.0, "model.decoder_lstm_units": 64}
    )
    batches = TextMelBatches(
        corpus.split("train"), 4, frames_multiple=cfg.model.reduction, shuffle=False, prefetch=0
    )
    batch = batches.batch_at(0, 0)
    state = init(cfg, batch)
    step = jax.jit(T.FAMILY.train_step(cfg))
    first = None
    for _ in range(350):
        state, metrics = step(state, batch)
        mel = float(metrics["before"] + metrics["after"])
        first = first or mel
    assert mel < first / 10, (first, mel)


@pytest.mark.slow
def test_synthesize_and_gta_from_a_trained_workdir(tmp_path, corpus_dir, corpus, capsys):
    import json

    import soundfile as sf

    from tts_jax.cli import main
    from tts_jax.train.loop import train_and_evaluate

    workdir = tmp_path / "w"
    train_and_evaluate(
        config(
            **{
                "data.path": str(corpus_dir),
                "train.num_steps": 1,  # a workdir with a checkpoint is all this test needs
                "train.checkpoint_every": 1,
                "train.eval_every": 1,
            }
        ),
        workdir,
    )
    texts = [
        "Hello there, Dr. Smith.",
        "A second sentence with 3 numbers, and $4.50!",
        "Short.",
        "Yet another one; it is longer than the others by a good margin.",
    ]
    args = ["synthesize", "--workdir", str(workdir), "--out", str(tmp_path / "s" / "out.wav")]
    for t in texts:
        args += ["--text", t]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "4 text(s), 1 compiled shape(s)" in printed  # one text bucket for all four
    for i in range(4):
        info = sf.info(str(tmp_path / "s" / f"out_{i:02d}.wav"))
        assert info.samplerate == 22050 and info.frames > 0
        assert (tmp_path / "s" / f"out_{i:02d}_alignment.png").stat().st_size > 1000
        assert (tmp_path / "s" / f"out_{i:02d}_mel.png").stat().st_size > 1000
    assert main(["synthesize", "--workdir", str(workdir), "--out", "x.wav", "--text", " "]) == 2
    assert "empty" in capsys.readouterr().err
    # --config.* on synthesize: the text front end's unknown-character handling, nothing else.
    args = ["synthesize", "--workdir", str(workdir), "--out", str(tmp_path / "o.wav")]
    assert main([*args, "--text", "Hi.", "--config.model.reduction=2"]) == 2
    assert "takes only --config.data.text.unknown" in capsys.readouterr().err
    assert main([*args, "--text", "Hi \U0001f600.", "--config.data.text.unknown=drop"]) == 0

    # evaluate --workdir: an untrained model's one-frame outputs are recorded as failures,
    # with the attention diagnostics of every sentence in the metadata.
    assert (
        main(
            [
                "evaluate",
                "--workdir",
                str(workdir),
                "--split",
                "train",
                "--limit",
                "2",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert ev["utterances"] == 2
    assert set(ev["meta"]["attention"]) == {
        "focus",
        "monotonicity",
        "coverage",
        "stopped_by_token",
        "seconds",
        "reference_seconds",
        "duration_ratio",
    }
    # An untrained model's clips are far too short: synthesize says so.
    assert "implausibly short" in printed

    # export: the variables as float32 synthesise exactly what the workdir does, as float16
    # nearly; the exported folder stands in for the workdir in synthesize and evaluate.
    from tts_jax.models.tacotron2 import Synthesizer

    ref = Synthesizer.from_workdir(workdir)(texts[:2])
    for dtype, atol in (("float32", 0.0), ("float16", 0.05)):
        out_dir = tmp_path / f"export_{dtype}"
        assert (
            main(["export", "--workdir", str(workdir), "--out", str(out_dir), "--dtype", dtype])
            == 0
        )
        got = Synthesizer.from_workdir(out_dir)(texts[:2])
        for a, b in zip(ref, got, strict=True):
            n = min(len(a["mel"]), len(b["mel"]), 6)
            np.testing.assert_allclose(a["mel"][:n], b["mel"][:n], atol=atol)
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("# a comment\nPhotosynthesis needs sunlight.\n\nJazz improvises.\n")
    ev_dir = tmp_path / "ev_sentences"
    args = ["evaluate", "--workdir", str(out_dir), "--sentences", str(sentences)]
    assert main([*args, "--out", str(ev_dir)]) == 0
    ev = json.loads((ev_dir / "eval.json").read_text())
    assert ev["utterances"] == 2 and ev["meta"]["attention"]["reference_seconds"] > 0.5
    blob = out_dir / "variables.msgpack"
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    assert main(["synthesize", "--workdir", str(out_dir), "--out", "x.wav", "--text", "Hi."]) == 2
    assert "damaged" in capsys.readouterr().err

    gta = tmp_path / "gta"
    assert main(["gta", "--workdir", str(workdir), "--out", str(gta), "--split", "train"]) == 0
    index = json.loads((gta / "index.json").read_text())
    split = corpus.split("train")
    assert sorted(u["id"] for u in index["utterances"]) == sorted(split.ids)
    for i, utt in enumerate(split.ids):
        mel = np.load(gta / f"{utt}.npy")
        assert mel.shape == (len(split.example(i)["audio"]) // 256, 80)
    # --free-running: the model's own synthesis of each text (distillation targets).
    free = tmp_path / "free"
    args = ["gta", "--workdir", str(workdir), "--out", str(free), "--split", "train"]
    assert main([*args, "--free-running"]) == 0
    index = json.loads((free / "index.json").read_text())
    assert index["kind"] == "free-running"
    results = Synthesizer.from_workdir(workdir)(split.texts)
    for utt, res in zip(index["utterances"], results, strict=True):
        np.testing.assert_array_equal(np.load(free / f"{utt['id']}.npy"), res["mel"])
        assert utt["frames"] == len(res["mel"]) and utt["stopped"] == res["stopped"]

    # The vocoder end of the pipeline: HiFi-GAN fine-tuned on these GTA mels, then used by
    # synthesize, vocode and evaluate.
    hg = tmp_path / "hifigan"
    hc = load_config(
        str(REPO / "experiments" / "hifigan.py:tiny"),
        [
            f"--config.data.path={corpus_dir}",
            f"--config.data.gta_dir={gta}",
            "--config.train.num_steps=2",
        ],
    )
    train_and_evaluate(hc, hg)
    out = tmp_path / "hg" / "out.wav"
    args = ["synthesize", "--workdir", str(workdir), "--out", str(out), "--text", texts[0]]
    assert main([*args, "--vocoder", f"hifigan:{hg}"]) == 0
    info = sf.info(str(out))
    assert info.samplerate == 22050 and info.frames % 256 == 0 and info.frames > 0
    utt = split.ids[0]
    voc = tmp_path / "voc.wav"
    assert (
        main(["vocode", "--mel", str(gta / f"{utt}.npy"), "--workdir", str(hg), "--out", str(voc)])
        == 0
    )
    assert sf.info(str(voc)).frames == np.load(gta / f"{utt}.npy").shape[0] * 256
    ev_dir = tmp_path / "ev_hg"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(corpus_dir),
                "--reference",
                f"hifigan:{hg}",
                "--split",
                "train",
                "--limit",
                "2",
                "--out",
                str(ev_dir),
            ]
        )
        == 0
    )
    assert json.loads((ev_dir / "eval.json").read_text())["utterances"] == 2
    assert (
        main(
            [
                "vocode",
                "--mel",
                str(gta / f"{utt}.npy"),
                "--vocoder",
                "hifigan:/nope",
                "--out",
                str(voc),
            ]
        )
        == 2
    )


def test_in_graph_alignment_scores_match_the_eval_toolkit():
    from tts_jax.eval import attention

    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(7), size=(2, 9))  # [B, steps, N]
    lengths = np.array([27, 15])  # frames at r = 3 -> 9 and 5 steps
    valid = np.array([True, True])
    f = float(T.alignment_focus(jnp.asarray(w), None, jnp.asarray(lengths), 3, valid))
    m = float(T.alignment_monotonicity(jnp.asarray(w), jnp.asarray(lengths), 3, valid))
    peaks = np.concatenate([w[0].max(-1), w[1, :5].max(-1)])
    assert f == pytest.approx(peaks.mean(), rel=1e-5)
    pairs = [np.diff(np.argmax(w[0], -1)) >= 0, np.diff(np.argmax(w[1, :5], -1)) >= 0]
    assert m == pytest.approx(np.concatenate(pairs).mean(), rel=1e-5)
    assert attention.focus(w[0]) == pytest.approx(w[0].max(-1).mean())


# --- fast alignment switches (issue 13) ---------------------------------------------------


def test_guided_attention_is_zero_on_the_diagonal():
    """An utterance whose step t attends symbol t (T = N) pays nothing, whatever the width."""
    a = jnp.eye(8)[None]
    for g in (0.05, 0.2, 0.4):
        assert float(T.guided_attention_loss(a, jnp.array([8]), jnp.array([8]), g)) == 0.0


def test_guided_attention_value_on_a_hand_built_alignment_ignores_padding():
    """N = 4 symbols, T = 2 steps: step 0 on symbol 3, step 1 on symbol 0. The loss is the mean
    over the 8 real cells of A * (1 - exp(-(n/N - t/T)^2 / 2g^2)); weight in padded cells
    (symbols 4-5, step 2) and in an invalid second utterance changes nothing."""
    import math

    g = 0.2
    a = np.zeros((2, 3, 6), np.float32)
    a[0, 0, 3] = a[0, 1, 0] = 1.0
    a[0, 2, :] = a[0, :, 4:] = 0.5  # padding
    a[1] = 0.3  # an invalid row
    w = lambda n, t: 1 - math.exp(-((n / 4 - t / 2) ** 2) / (2 * g * g))  # noqa: E731
    expected = (w(3, 0) + w(0, 1)) / 8
    got = T.guided_attention_loss(
        jnp.asarray(a), jnp.array([4, 6]), jnp.array([2, 3]), g, valid=jnp.array([True, False])
    )
    assert expected > 0.1
    np.testing.assert_allclose(float(got), expected, rtol=1e-6)


def test_guided_attention_term_counts_decoder_steps_and_decays():
    """In the training loss, with r = 3 a 9-frame utterance has T = 3 decoder steps: the
    diagonal over those steps costs 0, the anti-diagonal does not, and the term halves after
    ``guided_attention_half_life`` steps."""
    cfg = config(
        **{
            "model.reduction": 3,
            "model.guided_attention_weight": 2.0,
            "model.guided_attention_half_life": 100,
        }
    )
    batch = random_batch(b=1, n=3, t=9)
    outputs = {
        "mel_before": jnp.asarray(batch["mels"]),
        "mel_after": jnp.asarray(batch["mels"]),
        "stop_logits": jnp.zeros((1, 9)),
    }
    params = {"w": jnp.zeros(1)}
    term = lambda a, step: T.losses(  # noqa: E731
        dict(outputs, alignments=a),
        batch,
        params,
        T.Tacotron2Config.from_config(cfg.model),
        22050,
        step,
    )[1]["guided_attention"]
    assert float(term(jnp.eye(3)[None], 0)) == 0.0
    anti = jnp.eye(3)[::-1][None]
    np.testing.assert_allclose(float(term(anti, 100)), float(term(anti, 0)) / 2, rtol=1e-6)
    assert float(term(anti, 0)) > 0.1


@pytest.mark.slow
def test_forget_bias_matches_tensorflows_constant_offset():
    """add_forget_bias(params, 1) gives the cell TF's LSTMCell(forget_bias=1.0) computes: the
    forget gate's pre-activation shifted by 1, every other parameter untouched."""
    import flax.linen as nn

    from tts_jax.nn.zoneout import add_forget_bias

    cell = nn.OptimizedLSTMCell(5)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 3)), jnp.float32)
    c, h = (jnp.asarray(rng.normal(size=(2, 5)), jnp.float32) for _ in range(2))
    params = cell.init(jax.random.PRNGKey(0), (c, h), x)["params"]
    shifted = add_forget_bias(params, 1.0)
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), params, shifted)
    assert [k for k, v in changed.items() if any(jax.tree_util.tree_leaves(v))] == ["hf"]
    (new_c, _), _ = cell.apply({"params": shifted}, (c, h), x)

    def gate(name, extra=0.0):
        z = x @ params["i" + name]["kernel"] + h @ params["h" + name]["kernel"]
        return z + params["h" + name]["bias"] + extra

    sig = jax.nn.sigmoid
    expected = sig(gate("f", 1.0)) * c + sig(gate("i")) * jnp.tanh(gate("g"))
    np.testing.assert_allclose(new_c, expected, atol=1e-5)
    state = init(config(**{"model.lstm_forget_bias": 1.0}), random_batch())
    assert float(jnp.min(state.params["decoder_step"]["lstm_0"]["lstm"]["hf"]["bias"])) == 1.0
