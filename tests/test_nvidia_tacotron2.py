"""NVIDIA/tacotron2 checkpoints: parity of the imported model, its text and mel front ends
with the reference's own outputs (fixtures written by tools/nvidia_tacotron2_fixtures.py, no
torch needed here), the import command, and the :nvidia variant's architecture."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_tacotron2 import config, init, random_batch
from tools.nvidia_tacotron2_parity import parity
from tts_jax import audio, torch_checkpoint
from tts_jax.benchmarks import count_params
from tts_jax.cli import main
from tts_jax.models import tacotron2 as T
from tts_jax.models.tacotron2 import nvidia
from tts_jax.text import TextConfig, ids_to_text, text_to_ids
from tts_jax.text.symbols import NVIDIA
from tts_jax.workdir import read_config, restore

FIXTURES = REPO / "tests" / "fixtures" / "nvidia_tacotron2"
NV_TEXT = TextConfig(frontend="nvidia", cleaners="nvidia", unknown="drop")


@pytest.mark.slow
def test_outputs_equal_the_reference():
    """Teacher-forced mels before and after the postnet, gate logits and alignments (two
    utterances in one padded batch), 20 free-running steps and the log-mel front end, each
    within 1e-4 of NVIDIA's code; every text encoded to NVIDIA's ids."""
    with pytest.warns(UserWarning, match="dropping"):  # '"' and '[]' are not in its table
        worst = parity(FIXTURES)
    assert len(worst) == 9
    assert worst.pop("text ids differing") == 0
    for name, value in worst.items():
        assert value <= 1e-4, name


def test_symbol_table_and_text_round_trip():
    meta = json.loads((FIXTURES / "reference.json").read_text())
    assert list(NVIDIA.symbols) == meta["symbols"] and len(NVIDIA) == 148
    ids = text_to_ids("Turn left on {HH AW1 S S T AH0 N} Street.", NV_TEXT)
    assert NVIDIA.index["@AW1"] in ids and NVIDIA.eos_id is None
    assert ids_to_text(ids, NV_TEXT) == "turn left on {HH AW1 S S T AH0 N} street."
    # NVIDIA's readings, not ours: commas in large numbers, "misess", dates as cardinals.
    assert ids_to_text(text_to_ids("Mrs. Lee, March 3, 1,250,000 men", NV_TEXT), NV_TEXT) == (
        "misess lee, march three, one million, two hundred fifty thousand men"
    )


def test_nvidia_framing_has_one_frame_more():
    clip = np.load(FIXTURES / "outputs.npz")["clip"]
    ours = audio.log_mel_np(clip, audio.MelConfig())
    nv = audio.log_mel_np(clip, audio.MelConfig(framing="nvidia"))
    assert len(clip) // 256 == len(ours) == len(nv) - 1
    np.testing.assert_allclose(nv[:-1], ours, atol=1e-4)  # the same frames, plus the last
    jax_nv = audio.log_mel(jnp.asarray(clip), audio.MelConfig(framing="nvidia"))
    np.testing.assert_allclose(jax_nv, nv, atol=1e-4)


def test_import_writes_a_workdir_that_restores_to_the_reference(tmp_path, capsys):
    out = tmp_path / "nvidia"
    ckpt = str(FIXTURES / "checkpoint")
    assert main(["import", "tacotron2", "--checkpoint", ckpt, "--out", str(out)]) == 0
    cfg = read_config(out, "tacotron2")
    assert cfg.model.architecture == "nvidia" and cfg.data.framing == "nvidia"
    assert cfg.model.decoder_lstm_units == 16 and list(cfg.model.prenet_units) == [16, 16]
    state = restore(out, "tacotron2")
    sd = nvidia.state_dict(torch_checkpoint.load(ckpt))
    want = nvidia.variables(sd)
    got = {"params": state.params, "batch_stats": state.model_state["batch_stats"]}
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    # The LSTM's two torch bias vectors are summed into flax's one.
    hf = state.params["decoder_step"]["lstm_1"]["lstm"]["hf"]["bias"]
    np.testing.assert_allclose(
        hf, sd["decoder.decoder_rnn.bias_ih"][16:32] + sd["decoder.decoder_rnn.bias_hh"][16:32]
    )
    bad = [
        (["--checkpoint", ckpt, "--config", ckpt], "drop --config"),
        (["--checkpoint", str(REPO / "tests/fixtures/jik876/g_v2")], "not an NVIDIA/tacotron2"),
    ]
    for args, message in bad:
        assert main(["import", "tacotron2", *args, "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_nvidia_variant_is_nvidias_parameter_count():
    """NVIDIA/tacotron2 has 28,193,153 parameters; ours at :nvidia differs only by the second
    bias vector of each PyTorch LSTM gate, which flax does not keep (summed on import)."""
    cfg = config("nvidia")
    ours = count_params(jax.eval_shape(lambda: init(cfg, random_batch())).params)
    torch_second_biases = 2 * 4 * 1024 + 2 * 4 * 256  # two decoder LSTMs, the encoder's two
    assert ours + torch_second_biases == 28_193_153


@pytest.mark.slow
def test_nvidia_training_path_equals_its_inference_path():
    """NVIDIA's decode order in the teacher-forced scan and in the free-running loop: fed the
    frames the loop produced, the scan gives them back (dropout off)."""
    overrides = {"model.architecture": "nvidia", "model.zoneout": 0.0, "model.reduction": 1}
    cfg = config(**overrides, **{"model.prenet_dropout": 0.0, "model.decoder_dropout": 0.1})
    batch = random_batch()
    state = init(cfg, batch)
    model = T.build_model(cfg)
    variables = {"params": state.params, **state.model_state}
    ids, id_lengths = batch["ids"], batch["id_lengths"]
    free = model.apply(
        variables, ids, id_lengths, method=T.Tacotron2.infer, max_decoder_steps=8,
        stop_threshold=2.0,
    )  # fmt: skip
    lengths = jnp.full((3,), 8, jnp.int32)
    tf = model.apply(variables, ids, id_lengths, free["mel_before"], lengths, train=False)
    np.testing.assert_allclose(tf["mel_before"], free["mel_before"], atol=1e-4)
    np.testing.assert_allclose(tf["alignments"], free["alignments"], atol=1e-5)
