"""Training that survives: damaged checkpoints, non-finite steps, one writer per workdir, a
wrong workdir left untouched, and every step logged once across resumes.

The guarantees are tested with relative workdirs typed from a directory other than the
repository, as users type them (``chdir``: the ``elsewhere`` fixture); the other trainer tests
use absolute ones."""

import json
import logging
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from tests.test_trainer import final_params, tiny_config
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.train.loop import train_and_evaluate
from tts_jax.train.summary import read_metrics


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The current directory is a fresh one outside the repository: workdirs are given
    relative to it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def snapshot(workdir):
    files = sorted(p for p in workdir.rglob("*") if p.is_file())
    return {str(p.relative_to(workdir)): p.read_bytes() for p in files}


def test_a_nonfinite_step_changes_nothing_but_the_step():
    """make_train_step on a NaN batch: parameters, optimiser and model state bitwise as before,
    step advanced, counted as skipped; on a finite batch the update goes through."""
    import optax

    from tts_jax.train.state import TrainState, make_train_step

    def loss_fn(params, model_state, batch, rng):
        return jnp.sum((params["w"] * batch["x"]) ** 2), ({}, model_state)

    state = TrainState.create({"w": jnp.ones(3)}, optax.adam(0.1), jax.random.PRNGKey(0))
    step = jax.jit(make_train_step(loss_fn))
    bad, metrics = step(state, {"x": jnp.array([1.0, np.nan, 2.0])})
    assert int(bad.step) == 1 and float(metrics["skipped"]) == 1.0
    for a, b in zip(jax.tree.leaves(bad.opt_state), jax.tree.leaves(state.opt_state), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(bad.params["w"], state.params["w"])
    good, metrics = step(bad, {"x": jnp.ones(3)})
    assert float(metrics["skipped"]) == 0.0 and float(jnp.max(good.params["w"])) < 1.0


@pytest.mark.slow
def test_a_diverging_run_stops_with_an_error_and_saves_nothing_nonfinite(tmp_path, corpus_dir):
    config = tiny_config(
        corpus_dir,
        **{
            "optim.learning_rate": 1e30,
            "optim.grad_clip_norm": 0.0,
            "train.max_skipped_steps": 3,
            "train.checkpoint_every": 1,
            "train.keep_checkpoints": 50,
        },
    )
    with pytest.raises(UserError, match="3 updates in a row had a non-finite loss"):
        train_and_evaluate(config, tmp_path)
    skipped = [r["skipped"] for r in read_metrics(tmp_path, "train")]
    assert skipped[-3:] == [1.0, 1.0, 1.0]
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and max(steps) < len(skipped)  # the skipped steps were not saved
    state, _ = final_params(tmp_path, config)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.params))
    assert not (tmp_path / "train.lock").exists()


def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_previous_one_resumes(
    elsewhere, corpus_dir, caplog
):
    """Truncated array data in checkpoint 12: the rerun says so, moves it to
    damaged_checkpoints/ and resumes from 8, ending where an undisturbed run ends."""
    straight, damaged = elsewhere / "straight", elsewhere / "damaged"
    config = tiny_config(corpus_dir)
    train_and_evaluate(config, "straight")
    train_and_evaluate(config, "./damaged")
    files = [p for p in (damaged / "checkpoints" / "12" / "state").rglob("*") if p.is_file()]
    biggest = max(files, key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 3])
    with caplog.at_level(logging.WARNING):
        train_and_evaluate(config, "damaged")
    assert "checkpoint 12 cannot be restored" in caplog.text
    assert [p.name.split(".")[0] for p in (damaged / "damaged_checkpoints").iterdir()] == ["12"]
    a, _ = final_params(straight, config)
    b, _ = final_params(damaged, config)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(x, y)
    # Every step logged once, though steps 9-12 ran twice.
    assert [r["step"] for r in read_metrics(damaged, "train")] == list(range(1, 13))


def test_no_restorable_checkpoint_is_a_clear_error(tmp_path, corpus_dir):
    config = tiny_config(corpus_dir, **{"train.num_steps": 4})
    train_and_evaluate(config, tmp_path)
    for p in (tmp_path / "checkpoints" / "4" / "state").rglob("*"):
        if p.is_file():
            p.write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"no checkpoint .* can be restored.*step 4"):
        train_and_evaluate(config, tmp_path)


def test_a_second_trainer_is_refused_and_a_stale_lock_taken_over(elsewhere, corpus_dir):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (elsewhere / "w").mkdir()
    lock = elsewhere / "w" / "train.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid, "since": 0}))
    config = tiny_config(corpus_dir, **{"train.num_steps": 2})
    try:
        with pytest.raises(UserError, match=f"being trained by pid {holder.pid}"):
            train_and_evaluate(config, "w")
        assert not (elsewhere / "w" / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    state = train_and_evaluate(config, "w")  # the holder is gone: its lock is stale
    assert int(state.step) == 2 and not lock.exists()


def test_a_wrong_workdir_is_refused_before_anything_is_written(elsewhere, corpus_dir):
    config = tiny_config(corpus_dir, **{"train.num_steps": 4})
    train_and_evaluate(config, "run")
    before = snapshot(elsewhere / "run")
    bigger = tiny_config(corpus_dir, **{"train.num_steps": 8, "model.channels": 24})
    with pytest.raises(UserError, match=r"does not fit the model.*model fields changed: channels"):
        train_and_evaluate(bigger, "run")
    other = load_config(
        str(REPO / "experiments" / "tacotron2.py") + ":tiny", [f"--config.data.path={corpus_dir}"]
    )
    with pytest.raises(UserError, match="holds a 'frame_lm' run"):
        train_and_evaluate(other, "run")
    assert snapshot(elsewhere / "run") == before


def test_a_changed_model_whose_metadata_cannot_be_read_is_refused_not_moved_aside(
    tmp_path, corpus_dir, caplog
):
    """Orbax's metadata of the newest checkpoint gone: the shape check cannot decide, the
    restore is tried, and since the model section changed, its failure is the changed model:
    refused by name, every checkpoint left where it was."""
    config = tiny_config(corpus_dir, **{"train.num_steps": 4, "train.checkpoint_every": 2})
    train_and_evaluate(config, tmp_path)
    (tmp_path / "checkpoints" / "4" / "state" / "_METADATA").unlink()
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    bigger = tiny_config(corpus_dir, **{"train.num_steps": 8, "model.channels": 24})
    with caplog.at_level(logging.WARNING):
        with pytest.raises(UserError, match=r"checkpoint 4 does not fit.*changed: channels"):
            train_and_evaluate(bigger, tmp_path)
    assert "metadata unreadable" in caplog.text
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert not (tmp_path / "damaged_checkpoints").exists()


def test_metrics_torn_line_is_skipped_with_a_warning(tmp_path, caplog):
    rows = [{"step": 1, "split": "train", "loss": 1.0}, {"step": 2, "split": "train", "loss": 0.5}]
    text = "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "spl'
    (tmp_path / "metrics.jsonl").write_text(text)
    with caplog.at_level(logging.WARNING):
        assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    assert "line 3 is torn" in caplog.text


def test_workdir_that_is_a_file_is_a_clear_error(tmp_path, corpus_dir):
    path = tmp_path / "afile"
    path.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        train_and_evaluate(tiny_config(corpus_dir), path)
    assert path.read_text() == "x" and os.path.isfile(path)
