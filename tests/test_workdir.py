"""The room for trained workdirs: checkpoints written before the restructure still restore,
and the model files stay below the command line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.conftest import REPO, tiny_spec
from tts_jax import workdir
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.family import ROLES, family_names, get_family

OLD = REPO / "tests" / "fixtures" / "workdirs_0d94c8d"


@pytest.fixture(scope="module")
def old_workdirs(tmp_path_factory):
    """The fixture workdirs copied (a restore must not write into the repository), with the
    ClariNet student's teacher pointed at the copied WaveNet."""
    root = tmp_path_factory.mktemp("old")
    for d in OLD.iterdir():
        if d.is_dir():
            shutil.copytree(d, root / d.name)
    config = root / "clarinet_kl" / "config.json"
    saved = json.loads(config.read_text())
    saved["model"]["teacher_workdir"] = str(root / "wavenet")
    config.write_text(json.dumps(saved))
    return root


@pytest.mark.parametrize("name", sorted(d.name for d in OLD.iterdir() if d.is_dir()))
def test_a_workdir_written_before_the_restructure_restores(old_workdirs, name):
    """Today's model builds the parameter tree the old checkpoint holds, name for name and
    shape for shape (restoring into it fails otherwise), and restores the same values that a
    model-free read of the checkpoint finds."""
    path = old_workdirs / name
    config = workdir.read_config(path)
    state = workdir.restore(path, config.model.family)
    assert int(state.step) == 2
    raw = workdir.restore_raw(path)
    named = lambda tree: {  # noqa: E731 - "a/b/c" -> array, for a dataclass or a dict tree
        "/".join(re.findall(r"[A-Za-z0-9_]+", jax.tree_util.keystr(p))): np.asarray(x)
        for p, x in jax.tree_util.tree_leaves_with_path(tree)
    }
    got, want = named(jax.device_get(state)), named(raw)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_old_workdirs_load_in_their_roles(old_workdirs):
    """Each family's after-training role loads an old workdir and runs on a short input."""
    mel = np.full((20, 80), -5.0, np.float32)
    synth = get_family("tacotron2").synthesizer(old_workdirs / "tacotron2")
    (out,) = synth(["A short sentence."])
    assert out["mel"].shape[1] == 80 and np.all(np.isfinite(out["mel"]))
    vocoder = get_family("hifigan").vocoder(old_workdirs / "hifigan")
    wav = vocoder(mel)
    assert vocoder.step == 2 and len(wav) == 20 * 256 and np.all(np.isfinite(wav))
    autoencoder = get_family("vqvae").autoencoder(old_workdirs / "vqvae")
    recon, _ = autoencoder(mel)
    assert autoencoder.step == 2 and recon.shape == mel.shape


def test_read_config_names_the_family_and_the_missing_file(old_workdirs, tmp_path):
    with pytest.raises(UserError, match="holds a 'hifigan' model, not tacotron2"):
        workdir.read_config(old_workdirs / "hifigan", "tacotron2")
    with pytest.raises(UserError, match="config.json is missing"):
        workdir.read_config(tmp_path)


def test_the_models_package_holds_the_families():
    """Every module under tts_jax.models is a family (the registry is the package)."""
    assert {"tacotron2", "hifigan", "wavenet", "clarinet", "vqvae", "conv_tasnet"} <= set(
        family_names()
    )


@pytest.mark.parametrize("name", family_names())
def test_every_family_keeps_the_contract(name, old_workdirs):
    """A family is named as its module; from its :tiny config alone (no data read) it builds
    the example batch a restore starts from and, on it, a state with a step (traced, nothing
    computed); any role or after-training entry it offers is callable."""
    family = get_family(name)
    assert family.name == name
    entries = (*ROLES, "evaluate", "export", "gta", "import_checkpoint", "param_count")
    assert all(callable(getattr(family, e)) for e in entries if getattr(family, e) is not None)
    config = load_config(str(REPO / tiny_spec(name)))
    if "teacher_workdir" in config.model:  # a student (ClariNet) starts from a trained teacher
        config.model.teacher_workdir = str(old_workdirs / "wavenet")
    batch = family.example_batch(config)
    assert batch and all(np.ndim(x) >= 1 for x in jax.tree.leaves(batch))
    state = jax.eval_shape(lambda: family.init_state(config, jax.random.key(0), batch))
    assert state.step.shape == ()


# Above every family: the command line and the vocoder registry (which reads every family).
ABOVE = ("tts_jax.cli", "tts_jax.vocoders", "tts_jax.pretrained", "tts_jax.listen")


@pytest.fixture(scope="module")
def imported_above():
    """family -> the modules of ABOVE that importing it (after the families before it, in one
    fresh process) brought in."""
    code = (
        "import importlib, json, sys\n"
        f"above, names = {ABOVE!r}, {family_names()!r}\n"
        "seen, out = set(), {}\n"
        "for name in names:\n"
        "    importlib.import_module('tts_jax.models.' + name)\n"
        "    now = {m for m in sys.modules if m.startswith(above)}\n"
        "    out[name], seen = sorted(now - seen), seen | now\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", family_names())
def test_model_files_import_nothing_above_them(name, imported_above):
    """Arrows point down: a family imports neither the command line nor the vocoder registry
    nor the packages built on both."""
    assert imported_above[name] == []


def test_no_package_file_exceeds_600_lines():
    """A file past 600 lines holds more than one thing: split it by what it holds."""
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for p in (REPO / "tts_jax").rglob("*.py")
    }
    assert {p: n for p, n in sizes.items() if n > 600} == {}
