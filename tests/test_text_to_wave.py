"""ClariNet text-to-wave on Tacotron 2: the bridge-net's shapes and its exact frame-to-sample
alignment (Jacobian supports), the training window against the inference path, a tiny overfit,
text -> waveform synthesis, and the warm start from a trained Tacotron 2 (loaded exactly, held
frozen, refused when it does not fit)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax import audio, workdir
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.family import get_family
from tts_jax.models import text_to_wave as TW
from tts_jax.models import wavenet as W
from tts_jax.pretrained import TTS
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState

CONFIG = str(REPO / "experiments" / "clarinet_text_to_wave.py")


def config(variant="tiny", **overrides):
    return load_config(f"{CONFIG}:{variant}", [f"--config.{k}={v}" for k, v in overrides.items()])


@pytest.fixture(scope="module")
def tiny():
    """The :tiny config (at most 6 decoder steps) and its initial train state, jitted as the
    trainer runs it (compiling Tacotron 2 is most of this file's time: done once)."""
    cfg = config(**{"model.tacotron2.max_decoder_steps": 6})
    family = get_family("text_to_wave")
    init = jax.jit(lambda rng, b: family.init_state(cfg, rng, b))
    return cfg, init(jax.random.PRNGKey(0), family.example_batch(cfg))


def bridge(**kw):
    fields = dict(
        channels=4, reduction=2, blocks=1, kernel_size=1, dropout=0.0,
        upsample_strides=(2, 4), kernel_multiple=1,
    )  # fmt: skip
    fields.update(kw)
    return TW.BridgeNet(**fields)


def support(jacobian):
    """Output rows (axis 0) that depend on the perturbed input at all."""
    moved = jnp.abs(jacobian).reshape(jacobian.shape[0], -1).max(axis=1)
    return np.flatnonzero(np.asarray(moved) > 0)


def test_bridge_net_shapes_and_exact_frame_to_sample_alignment():
    """With filters as long as their strides and 1-wide convolution blocks, conditioning sample
    n draws on frame n // hop alone and on decoder step n // (r * hop) alone; padded frames
    give zeros."""
    net = bridge()
    r, hop, steps, d = 2, 8, 5, 6
    states = jax.random.normal(jax.random.PRNGKey(0), (2, steps, d))
    lengths = jnp.array([steps * r, 7])
    variables = net.init(jax.random.PRNGKey(1), states, lengths)
    cond = net.apply(variables, states, lengths)
    frames = net.apply(variables, states, lengths, method=TW.BridgeNet.frames, train=False)
    assert cond.shape == (2, steps * r * hop, 4) and frames.shape == (2, steps * r, 4)
    assert net.reach_samples() == 0 and net.halo_frames() == 0
    assert not np.any(cond[1, 7 * hop :]) and np.all(np.any(cond[1, : 7 * hop] != 0, axis=-1))

    def from_states(x):
        return net.apply(variables, x[None], lengths[:1])[0]

    jac = jax.jit(jax.jacfwd(from_states))(states[0])  # [samples, C, steps, D]
    for i in range(steps):
        np.testing.assert_array_equal(
            support(jac[:, :, i]), np.arange(i * r * hop, (i + 1) * r * hop)
        )

    def from_frames(h):
        valid = jnp.ones((1, h.shape[0]), bool)
        return net.apply(variables, h[None], valid, method=TW.BridgeNet.upsample)[0]

    jac = jax.jit(jax.jacfwd(from_frames))(frames[0])  # [samples, C, frames, C]
    for f in range(steps * r):
        np.testing.assert_array_equal(support(jac[:, :, f]), np.arange(f * hop, (f + 1) * hop))


def test_paper_filters_reach_neighbours_symmetrically_and_no_further():
    """Filters of 2 x stride (the paper's) and 3-wide blocks: frame f reaches exactly
    ``reach_samples`` beyond its own hop samples on either side, and step i the frames the
    blocks mix in besides."""
    net = bridge(kernel_size=3, blocks=2, kernel_multiple=2)
    r, hop, steps, d = 2, 8, 7, 6
    reach = 1 * 4 + 2  # p = s / 2 of each layer, counted in output samples
    assert net.reach_samples() == reach and net.halo_frames() == 1
    states = jax.random.normal(jax.random.PRNGKey(0), (1, steps, d))
    lengths = jnp.array([steps * r])
    variables = net.init(jax.random.PRNGKey(1), states, lengths)
    frames = net.apply(variables, states, lengths, method=TW.BridgeNet.frames, train=False)

    def from_frames(h):
        valid = jnp.ones((1, h.shape[0]), bool)
        return net.apply(variables, h[None], valid, method=TW.BridgeNet.upsample)[0]

    jac = jax.jit(jax.jacfwd(from_frames))(frames[0])
    for f in (3, 6, 9):
        expected = np.arange(f * hop - reach, (f + 1) * hop + reach)
        np.testing.assert_array_equal(support(jac[:, :, f]), expected)

    jac = jax.jit(jax.jacfwd(lambda x: net.apply(variables, x[None], lengths)[0]))(states[0])
    blocks_reach = 2 * (3 - 1) // 2  # frames
    for i in (2, 3, 4):
        lo, hi = (i * r - blocks_reach) * hop - reach, ((i + 1) * r + blocks_reach) * hop + reach
        np.testing.assert_array_equal(support(jac[:, :, i]), np.arange(lo, hi))


def random_batch(cfg, b=3, t=24, n=14, seed=0):
    """Text-mel-audio batch of the data pipeline's layout: each row's mel is its audio's."""
    rng = np.random.default_rng(seed)
    mel_cfg = audio.MelConfig.from_config(cfg.data)
    hop = mel_cfg.hop_length
    mel_lengths = np.array([t, t - 7, t - 11][:b], np.int32)
    id_lengths = np.array([n, n - 5, n - 2][:b], np.int32)
    ids = rng.integers(2, 40, (b, n)).astype(np.int32)
    ids[np.arange(n)[None] >= id_lengths[:, None]] = 0
    batch = {
        "ids": ids,
        "id_lengths": id_lengths,
        "mels": np.full((b, t, mel_cfg.n_mels), np.log(mel_cfg.log_floor), np.float32),
        "mel_lengths": mel_lengths,
        "mel_mask": (np.arange(t)[None] < mel_lengths[:, None]).astype(np.float32),
        "stop_targets": (np.arange(t)[None] >= mel_lengths[:, None] - 1).astype(np.float32),
        "valid": np.ones(b, bool),
        "audio": np.zeros((b, t * hop), np.float32),
        "linears": np.full((b, t, mel_cfg.num_freq), np.log(mel_cfg.log_floor), np.float32),
    }
    time = np.arange(t * hop) / mel_cfg.sample_rate
    for j, frames in enumerate(mel_lengths):
        wav = 0.5 * np.sin(2 * np.pi * (150 + 90 * j) * time[: frames * hop])
        wav = (wav * np.hanning(len(wav))).astype(np.float32)
        batch["audio"][j, : len(wav)] = wav
        batch["mels"][j, :frames] = audio.log_mel_np(wav, mel_cfg)
        batch["linears"][j, :frames] = audio.log_linear_np(wav, mel_cfg)
    return batch


def test_training_window_is_the_inference_path_cut(tiny):
    """The training pass's windowed conditioning equals the whole utterance's inference
    conditioning on the same samples, wherever the window lies (start, middle, past the end
    of a short utterance), and the cached sampler forced along the window gives the training
    pass's Gaussians."""
    cfg, state = tiny
    model = TW.build_model(cfg)
    batch = random_batch(cfg)
    variables = {"params": state.params, **state.model_state}
    r, hop, size = 3, cfg.data.hop_length, model.window_samples
    starts = jnp.array([0, 3, 4])  # row 1: its last full window; row 2: past its 13 frames

    @jax.jit
    def run(variables, batch, starts):
        out = TW.train.apply_model(model, variables, batch, starts, train=False)
        full = model.apply(variables, out["frames"], batch["mel_lengths"], method="conditioning")
        return out, full

    out, full = run(variables, batch, starts)
    assert out["conditioning"].shape == (3, size, cfg.model.bridge_channels)
    for j, s in enumerate(np.asarray(starts)):
        lo = s * r * hop
        expected = np.zeros((size, cfg.model.bridge_channels), np.float32)
        inside = full[j, lo : lo + size]
        expected[: len(inside)] = inside
        np.testing.assert_allclose(out["conditioning"][j], expected, atol=1e-6)
        np.testing.assert_array_equal(
            out["window_audio"][j, : len(inside)], batch["audio"][j, lo : lo + size]
        )
    real = np.asarray(out["window_mask"]).sum(axis=1)
    assert list(real) == [size, size, (13 - 4 * r) * hop]
    assert float(jnp.abs(out["conditioning"]).max()) > 0

    params = state.params["wavenet"]
    mean, log_scale = jax.jit(
        lambda c, x: W.generate(model.wavenet, params, c, jax.random.PRNGKey(0), forced=x)
    )(out["conditioning"][:1], out["window_audio"][:1])
    np.testing.assert_allclose(mean, out["mean"][:1], atol=1e-5)
    np.testing.assert_allclose(log_scale, out["log_scale"][:1], atol=1e-5)


@pytest.mark.slow
def test_tiny_overfit_lowers_the_nll_and_the_mel_loss(tiny):
    """A hundred steps on one batch of three windowed sinusoids: the NLL, the mel loss and
    the bridge's spectrogram loss fall, in training and in the eval step."""
    cfg, state = tiny
    family = get_family("text_to_wave")
    batch = random_batch(cfg)
    step, evaluate = jax.jit(family.train_step(cfg)), jax.jit(family.eval_step(cfg))
    before = evaluate(state, batch)
    history = []
    for _ in range(100):
        state, metrics = step(state, batch)
        history.append(jax.device_get(metrics))
    first, last = history[0], history[-1]
    assert last["nll"] < first["nll"] - 1.0, (first["nll"], last["nll"])
    assert last["after"] < 0.5 * first["after"], (first["after"], last["after"])
    assert last["bridge_linear"] < first["bridge_linear"] and last["loss"] < first["loss"]
    assert all(np.isfinite(h["loss"]) and h["skipped"] == 0 for h in history)
    after = evaluate(state, batch)
    for k in ("loss", "nll", "after", "bridge_linear"):
        assert after[k] < before[k], k
    assert after["weight"] == 3


def test_synthesizer_turns_text_into_a_waveform(tiny):
    cfg, state = tiny
    synth = TW.Synthesizer(cfg, {"params": state.params, **state.model_state}, 0)
    out = synth(["Hello there.", "A second, longer sentence."], batch_size=2)
    hop = cfg.data.hop_length
    for res in out:
        frames = len(res["mel"])
        assert 0 < frames <= 6 * 3 and res["audio"].shape == (frames * hop,)
        assert res["alignment"].shape[0] == -(-frames // 3) and isinstance(res["stopped"], bool)
        assert np.all(np.abs(res["audio"]) <= 1.0) and np.std(res["audio"]) > 0
    assert synth.shapes == {(2, 32)}
    # `tts-jax synthesize` (TTS) plays the model's own waveform unless a vocoder is asked for.
    texts = ["Hello there."]
    own = TTS(synth).synthesize(texts)[0].audio
    np.testing.assert_array_equal(own, synth(texts)[0]["audio"])
    assert not np.allclose(TTS(synth, "griffin-lim").synthesize(texts)[0].audio, own)


def test_configs_compose_each_part_from_its_own_recipe():
    """:cpu's Tacotron 2 and WaveNet are those files' :cpu models, r included; the strides
    must multiply to the hop."""
    cpu = config("cpu")
    tacotron2 = load_config(str(REPO / "experiments" / "tacotron2.py:cpu"))
    wavenet = load_config(str(REPO / "experiments" / "wavenet.py:cpu"))
    assert cpu.model.tacotron2.to_dict() == tacotron2.model.to_dict()
    assert cpu.model.wavenet.to_dict() == wavenet.model.to_dict()
    assert cpu.model.tacotron2.reduction == 3 and cpu.optim.to_dict() == tacotron2.optim.to_dict()
    with pytest.raises(Exception, match="multiply to 128, not data.hop_length 256"):
        TW.build_model(config(**{"model.upsample_strides": "(8, 16)"}))


# ------------------------------------------------------------------------------ warm start

SHIPPED = REPO / "data" / "tacotron2_espeak"
# :warm_cpu with a small WaveNet and bridge: the Tacotron 2 part stays the shipped model's size.
SMALL_REST = {
    "model.wavenet.layers": 2,
    "model.wavenet.residual_channels": 8,
    "model.wavenet.gate_channels": 8,
    "model.wavenet.skip_channels": 8,
    "model.bridge_channels": 8,
    "model.bridge_blocks": 1,
}


def warm_state_shapes(**overrides):
    """The :warm_cpu train state's shapes (init traced, so the warm start's checks run)."""
    cfg = config("warm_cpu", **{**SMALL_REST, **overrides})
    family = get_family("text_to_wave")
    batch = family.example_batch(cfg)
    return jax.eval_shape(lambda: family.init_state(cfg, jax.random.PRNGKey(0), batch))


def test_warm_cpu_is_the_shipped_tacotron2_recipe():
    """:warm_cpu's Tacotron 2 part has the shipped model's settings (its sizes among them)
    and features, and starts from it."""
    cpu = config("warm_cpu")
    shipped = workdir.read_config(SHIPPED, "tacotron2")
    assert TW.train.tacotron2_settings(cpu) == TW.train.tacotron2_settings(shipped)
    assert TW.train._features(cpu) == TW.train._features(shipped)
    assert cpu.model.warm_start_dir == str(SHIPPED)
    assert 0 < cpu.model.tacotron2_frozen_steps < cpu.train.num_steps


def test_warm_start_loads_the_shipped_tacotron2_exactly():
    """After init, the Tacotron 2 part's parameters and batch statistics are the shipped
    model's stored values (float16 in the file, float32 here), bitwise."""
    cfg = config("warm_cpu", **SMALL_REST)
    family = get_family("text_to_wave")
    state = jax.jit(lambda rng, b: family.init_state(cfg, rng, b))(
        jax.random.PRNGKey(0), family.example_batch(cfg)
    )
    _, shipped, _ = workdir.load_variables(SHIPPED, "tacotron2")
    ours = {
        "params": state.params["tacotron2"],
        "batch_stats": state.model_state["batch_stats"]["tacotron2"],
    }
    same = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), b), ours, shipped)
    assert all(jax.tree.leaves(same)) and len(jax.tree.leaves(same)) > 30


@pytest.mark.slow
def test_tacotron2_stays_frozen_then_adam_starts_on_it_afresh(tiny, tmp_path):
    """Warm-started from a tacotron2 training workdir and frozen for 2 steps: during them the
    Tacotron 2 part's parameters and batch statistics stay bitwise as loaded while every other
    part moves; at step 3 it moves by Adam's first step, lr x sign(g) (an Adam whose bias
    correction had counted the frozen steps would move it 0.64 lr here, up to 3.2 lr after
    many frozen steps)."""
    cfg, state = tiny
    # A trained Tacotron 2 stand-in: the tiny part's own init, shifted so it is recognisable.
    source = jax.tree.map(lambda x: x + 0.01, state.params["tacotron2"])
    stats = jax.tree.map(lambda x: x + 0.5, state.model_state["batch_stats"]["tacotron2"])
    t2_config = TW.part_config(cfg, "tacotron2")
    tx, _ = make_optimizer(t2_config.optim)
    t2_state = TrainState.create(source, tx, state.rng, model_state={"batch_stats": stats})
    workdir.write(tmp_path / "tacotron2", t2_config, t2_state, step=7)

    warm = config(
        **{
            "model.tacotron2.max_decoder_steps": 6,
            "model.warm_start_dir": str(tmp_path / "tacotron2"),
            "model.tacotron2_frozen_steps": 2,
        }
    )
    family = get_family("text_to_wave")
    s = jax.jit(lambda rng, b: family.init_state(warm, rng, b))(
        jax.random.PRNGKey(0), family.example_batch(warm)
    )
    equal = lambda a, b: all(jax.tree.leaves(jax.tree.map(np.array_equal, a, b)))  # noqa: E731
    assert equal(s.params["tacotron2"], source)
    assert equal(s.model_state["batch_stats"]["tacotron2"], stats)

    step = jax.jit(family.train_step(warm))
    batch = random_batch(warm)
    history = [jax.device_get(s)]
    for _ in range(3):
        s, metrics = step(s, batch)
        assert metrics["skipped"] == 0
        history.append(jax.device_get(s))
    for frozen in history[1:3]:
        assert equal(frozen.params["tacotron2"], source)
        assert equal(frozen.model_state["batch_stats"]["tacotron2"], stats)
    for part in ("bridge", "linear_head", "wavenet"):
        assert not equal(history[1].params[part], history[0].params[part]), part
        assert not equal(history[2].params[part], history[1].params[part]), part

    lr = warm.optim.learning_rate
    moved = np.concatenate(
        [
            np.abs(np.ravel(a - b))
            for a, b in zip(
                jax.tree.leaves(history[3].params["tacotron2"]),
                jax.tree.leaves(history[2].params["tacotron2"]),
                strict=True,
            )
        ]
    )
    assert moved.max() <= lr * 1.001, moved.max() / lr
    assert np.mean(moved > 0.9 * lr) > 0.5, np.mean(moved > 0.9 * lr)
    assert not equal(history[3].model_state["batch_stats"]["tacotron2"], stats)


def test_warm_start_that_does_not_fit_is_refused_by_name(tmp_path):
    with pytest.raises(UserError, match=r"other sizes than config.model.tacotron2: .*decoder") as e:
        warm_state_shapes(**{"model.tacotron2.decoder_lstm_units": 128})
    kernel = "params/decoder_step/attention/query_layer/kernel (256, 64) there, (128, 64) here"
    assert kernel in str(e.value)
    assert "model.tacotron2.decoder_lstm_units" in str(e.value)
    with pytest.raises(UserError, match="data.text.frontend 'ipa' there, 'chars' here"):
        warm_state_shapes(**{"data.text.frontend": "chars"})
    with pytest.raises(UserError, match="data.n_mels 80 there, 64 here"):
        warm_state_shapes(**{"data.n_mels": 64})
    with pytest.raises(UserError, match="does not exist"):
        warm_state_shapes(**{"model.warm_start_dir": str(tmp_path / "nothing")})
    with pytest.raises(UserError, match="model.warm_start_dir is empty"):
        warm_state_shapes(**{"model.warm_start_dir": ""})
    with pytest.raises(UserError, match="tacotron2_frozen_steps must be >= 0"):
        warm_state_shapes(**{"model.tacotron2_frozen_steps": -1})


@pytest.mark.slow
def test_evaluate_scores_the_wavenets_own_waveform_with_the_alignment(corpus_dir, tmp_path):
    """``tts-jax evaluate --workdir`` of a text-to-wave run: the WaveNet's waveform (what
    ``--save-audio`` keeps is the synthesizer's audio) and the attention statistics."""
    import json

    from tts_jax import audio
    from tts_jax.cli import main
    from tts_jax.data.ljspeech import open_corpus
    from tts_jax.train.loop import train_and_evaluate

    cfg = config(
        **{
            "model.tacotron2.max_decoder_steps": 6,
            "data.path": corpus_dir,
            "train.num_steps": 1,
        }
    )
    work = tmp_path / "w"
    train_and_evaluate(cfg, work)
    own = tmp_path / "own"
    common = ["evaluate", "--workdir", str(work), "--limit", "1", "--recognizer", "none"]
    assert main([*common, "--save-audio", "1", "--out", str(own)]) == 0
    result = json.loads((own / "eval.json").read_text())
    assert "own WaveNet waveform" in result["title"] and result["utterances"] == 1
    stats = result["meta"]["attention"]
    assert 0.0 < stats["focus"] <= 1.0 and 0.0 <= stats["stopped_by_token"] <= 1.0

    split = open_corpus(corpus_dir).split("test")
    synth = TW.Synthesizer.from_workdir(work)
    expected = synth([split.texts[0]])[0]["audio"]
    saved = audio.load_wav(own / "audio" / f"{split.ids[0]}.wav", cfg.data.sample_rate)
    np.testing.assert_allclose(saved, expected, atol=2 / 32768)
