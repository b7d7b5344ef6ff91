"""Where a path becomes a path (tts_jax/paths.py): resolved once, as it enters."""

import os

import pytest

from tests.conftest import REPO
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.paths import local_path, run_path


def test_local_paths_become_absolute_and_bucket_urls_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert os.fspath(run_path("runs/a")) == str(tmp_path / "runs" / "a")
    assert os.fspath(run_path("./a/../b")) == str(tmp_path / "b")
    assert os.fspath(run_path("gs://bucket/runs/a")) == "gs://bucket/runs/a"
    with pytest.raises(UserError, match="s3:// workdirs are not supported"):
        run_path("s3://bucket/a")
    with pytest.raises(UserError, match="must be a local path"):
        local_path("gs://bucket/corpus", "--data")
    with pytest.raises(UserError, match="an empty path"):
        run_path("")


def test_a_config_s_path_fields_are_resolved_as_it_is_loaded(tmp_path, monkeypatch):
    """``--config.model.teacher_workdir=T`` and ``--config.data.path=C`` typed relative mean
    the directory they were typed in; a TFDS name and unset placeholders stay as they are."""
    monkeypatch.chdir(tmp_path)
    spec = str(REPO / "experiments" / "clarinet_kl.py:tiny")
    config = load_config(spec, ["--config.model.teacher_workdir=t", "--config.data.path=c"])
    assert config.model.teacher_workdir == str(tmp_path / "t")
    assert config.data.path == str(tmp_path / "c")
    assert config.data.mel_dir is None
    assert load_config(spec, ["--config.data.path=tfds:ljspeech"]).data.path == "tfds:ljspeech"
    remote = load_config(spec, ["--config.model.teacher_workdir=gs://b/teacher"])
    assert remote.model.teacher_workdir == "gs://b/teacher"
