"""Parity with jik876/hifi-gan: its checkpoints import, and our code computes its numbers.

The fixtures (tests/fixtures/jik876/, 1.8 MB) were written by tools/jik876_fixtures.py with
the reference's own code and PyTorch 2.13: random-weight checkpoints in its format (reduced
widths, every kernel, stride, dilation and group as the reference) and its outputs on fixed
inputs. No torch here: the checkpoints are read by tts_jax.torch_checkpoint.
"""

from __future__ import annotations

import json
import pickle

import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax import audio, torch_checkpoint, workdir
from tts_jax.cli import main
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.models import hifigan as H
from tts_jax.models.hifigan import jik876
from tts_jax.models.hifigan.train import _discriminate

FIXTURES = REPO / "tests" / "fixtures" / "jik876"
OUTPUTS = json.loads((FIXTURES / "outputs.json").read_text())
TOLERANCE = 1e-4


def _import(tmp_path, version: str):
    """g_VERSION with the (reduced) discriminators of do_small, which fit every version."""
    files = [FIXTURES / f"g_{version}", FIXTURES / "do_small"]
    out = tmp_path / f"imported_{version}"
    jik876.import_checkpoint(files, FIXTURES / f"config_{version}.json", out)
    return out


@pytest.fixture
def small_fresh_discriminators(monkeypatch):
    """A generator imported alone gets fresh paper-size discriminators (70 M weights, a
    gigabyte of checkpoint with Adam's moments): tests shrink them to keep CI fast."""
    small = [
        "--config.model.mpd_channels=(4,8,16,16,16)",
        "--config.model.msd_layers=((8,15,1,1),(8,41,2,4),(8,41,4,4),(8,5,1,1))",
    ]
    monkeypatch.setattr(jik876, "load_config", lambda spec: load_config(spec, small))


def _small_config(version: str):
    """Our config for the fixture's reduced reference config_VERSION.json."""
    return jik876.our_config(jik876.read_config(FIXTURES / f"config_{version}.json"))


def _generator_matches(config, params, version: str) -> None:
    mel = np.load(FIXTURES / "mel.npy")[None]  # the reference Generator (weight norm on)
    wav = H.build_generator(config).apply({"params": params}, jnp.asarray(mel))
    reference = np.load(FIXTURES / f"wav_{version}.npy")
    assert wav.shape[1] == reference.shape[0] == 12 * 256
    assert np.abs(np.asarray(wav[0]) - reference).max() <= TOLERANCE


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_converted_generator_computes_the_reference_waveform(version):
    config = _small_config(version)
    sd = torch_checkpoint.load(FIXTURES / f"g_{version}")["generator"]
    model = H.HiFiGANConfig.from_config(config.model)
    _generator_matches(config, jik876.generator_params(sd, model), version)


@pytest.mark.slow
def test_imported_workdir_computes_the_reference_generator_and_discriminators(tmp_path):
    """g_v1 + do_small through `import` and a restore: the V1 generator's waveform, and the
    MPD and MSD (spectral norm in the reference's eval state) on a real and a fake clip:
    logits flattened in the same order, feature maps equal up to channels-last."""
    out = _import(tmp_path, "v1")
    config = workdir.read_config(out, "hifigan")
    assert config.data.framing == "jik876"
    state = workdir.restore(out, "hifigan")
    assert int(state.step) == 1234  # the reference's "steps"
    _generator_matches(config, state.gen_params, "v1")
    mpd, msd = H.build_discriminators(config)
    clips = jnp.asarray(np.stack([np.load(FIXTURES / "y.npy"), np.load(FIXTURES / "y_hat.npy")]))
    logits, fmaps, _ = _discriminate(mpd, msd, state.disc_params, state.disc_stats, clips, False)
    for d, name in enumerate(("mpd", "msd")):
        reference = np.load(FIXTURES / f"{name}.npz")
        for i, sub_logits in enumerate(logits[d]):
            for row, key in ((0, "r"), (1, "g")):
                got, want = np.asarray(sub_logits[row]), reference[f"{key}_{i}"][0]
                assert got.shape == want.shape
                assert np.abs(got - want).max() <= TOLERANCE, (name, i, key)
            for j, fmap in enumerate(fmaps[d][i]):
                want = reference[f"fr_{i}_{j}"][0]  # [C, T, p] or [C, T]
                want = np.moveaxis(want, 0, -1)  # channels last, as ours
                assert np.abs(np.asarray(fmap[0]) - want).max() <= TOLERANCE, (name, i, j)


def test_jik876_front_end_and_mel_loss_match_the_reference():
    """framing="jik876": the reference's log-mel frame for frame (numpy and JAX paths), and
    its training mel loss (fmax None) on a segment; the centred framing differs."""
    clip = np.load(FIXTURES / "y_long_hat.npy")
    reference = np.load(FIXTURES / "mel_y_long_hat.npy")
    cfg = audio.MelConfig(framing="jik876")
    assert np.abs(audio.log_mel_np(clip, cfg) - reference).max() <= TOLERANCE
    assert np.abs(np.asarray(audio.log_mel(jnp.asarray(clip), cfg)) - reference).max() <= TOLERANCE
    assert np.abs(audio.log_mel_np(clip, audio.MelConfig()) - reference).max() > 0.1
    y, y_hat = (jnp.asarray(np.load(FIXTURES / f"{n}.npy"))[None] for n in ("y_long", "y_long_hat"))
    loss = float(H.mel_loss(y, y_hat, audio.MelConfig(framing="jik876", fmax=None)))
    assert loss == pytest.approx(OUTPUTS["losses"]["mel_l1"], rel=1e-5)


@pytest.mark.slow
def test_import_command_writes_a_workdir_the_vocoder_commands_take(
    tmp_path, capsys, small_fresh_discriminators
):
    """A generator alone: step 0, fresh discriminators, and the workdir vocodes."""
    out = tmp_path / "w"
    args = ["import", "hifigan", "--checkpoint", str(FIXTURES / "g_v3")]
    assert main([*args, "--config", str(FIXTURES / "config_v3.json"), "--out", str(out)]) == 0
    assert "at step 0" in capsys.readouterr().out
    wav = tmp_path / "x.wav"
    assert (
        main(
            ["vocode", "--mel", str(FIXTURES / "mel.npy"), "--workdir", str(out), "--out", str(wav)]
        )
        == 0
    )
    # Importing again over the workdir is refused rather than mixing two runs.
    assert main([*args, "--config", str(FIXTURES / "config_v3.json"), "--out", str(out)]) == 2
    assert "already holds a training run" in capsys.readouterr().err


def test_import_refuses_mismatched_files(tmp_path):
    with pytest.raises(UserError, match="lacks resblocks|does not match its config"):
        jik876.import_checkpoint([FIXTURES / "g_v1"], FIXTURES / "config_v3.json", tmp_path / "a")
    with pytest.raises(UserError, match="one generator checkpoint"):
        jik876.import_checkpoint(
            [FIXTURES / "do_small"], FIXTURES / "config_v1.json", tmp_path / "b"
        )
    assert not (tmp_path / "a" / "config.json").exists()


def test_torch_checkpoint_reader_refuses_code_and_foreign_files(tmp_path):
    """Reading never runs what a pickle names: a checkpoint naming any other callable is
    refused with its name (os.system here), before anything is called."""

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo should-not-run",))

    bad = tmp_path / "bad.pt"
    with open(bad, "wb") as f:
        for part in (torch_checkpoint.LEGACY_MAGIC, torch_checkpoint.LEGACY_PROTOCOL, {}):
            pickle.dump(part, f)
        pickle.dump(Evil(), f)
    with pytest.raises(UserError, match=r"holds a (posix|os)\.system object"):
        torch_checkpoint.load(bad)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(UserError, match="is not a PyTorch checkpoint"):
        torch_checkpoint.load(text)


def test_both_torch_save_formats_read():
    """g_* were saved as zip archives, do_small in the legacy stream (as the published files)."""
    import zipfile

    assert zipfile.is_zipfile(FIXTURES / "g_v1") and not zipfile.is_zipfile(FIXTURES / "do_small")
    g = torch_checkpoint.load(FIXTURES / "g_v1")["generator"]
    d = torch_checkpoint.load(FIXTURES / "do_small")
    assert (
        g["conv_pre.weight_v"].shape == (32, 80, 7) and g["conv_pre.weight_v"].dtype == np.float32
    )
    assert d["steps"] == 1234 and d["msd"]["discriminators.0.convs.0.weight_orig"].ndim == 3
