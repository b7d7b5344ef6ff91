"""Workdirs in a bucket: every run file through one path type, tested against a real
GCS-compatible server on localhost (fake-gcs-server, tests/conftest.py), no cloud needed.

What the server cannot show is tested beside it: fake-gcs-server does not enforce
``ifGenerationMatch``, so the lock's create-only logic also runs against an in-memory store that
does (the one stand-in in this file, for a store's atomic create-only write)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import gcsfs
import jax
import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tests.test_multihost import free_port
from tests.test_trainer import tiny_config
from tts_jax.cli import main
from tts_jax.errors import UserError
from tts_jax.paths import run_path
from tts_jax.train.lock import WorkdirLock
from tts_jax.train.loop import train_and_evaluate
from tts_jax.train.summary import read_metrics
from tts_jax.workdir import restore

FRAME_LM = str(REPO / "experiments" / "frame_lm.py") + ":tiny"


def objects(url: str) -> list[str]:
    """Every object under ``url`` (``gs://bucket/prefix``), as ``bucket/key``."""
    return sorted(gcsfs.GCSFileSystem().find(url))


def assert_same_params(a_dir, b_dir, config):
    a = restore(a_dir, config.model.family, config=config)
    b = restore(b_dir, config.model.family, config=config)
    assert int(a.step) == int(b.step)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_a_run_in_a_bucket_resumes_exactly_as_on_a_local_disk(bucket, corpus_dir, tmp_path):
    """Trained to step 6 in the bucket, resumed to 12: bitwise the uninterrupted local run;
    config, metrics (every step once) and TensorBoard events are in the bucket, the lock gone."""
    config = tiny_config(corpus_dir)
    train_and_evaluate(config, tmp_path / "local")
    run = f"{bucket}/runs/lm"
    train_and_evaluate(tiny_config(corpus_dir, **{"train.num_steps": 6}), run)
    train_and_evaluate(config, run)
    assert_same_params(tmp_path / "local", run, config)
    assert [r["step"] for r in read_metrics(run, "train")] == list(range(1, 13))
    local_losses = [r["loss"] for r in read_metrics(tmp_path / "local", "train")]
    assert [r["loss"] for r in read_metrics(run, "train")] == local_losses
    names = objects(run)
    key = run.removeprefix("gs://")
    assert f"{key}/config.json" in names and f"{key}/metrics.jsonl" in names
    assert any(n.startswith(f"{key}/tensorboard/events.out.tfevents.") for n in names)
    assert f"{key}/train.lock" not in names


@pytest.mark.slow
def test_a_damaged_checkpoint_in_a_bucket_is_moved_aside_and_the_run_resumes(
    bucket, corpus_dir, tmp_path
):
    config = tiny_config(corpus_dir)
    train_and_evaluate(config, tmp_path / "local")
    run = f"{bucket}/lm"
    train_and_evaluate(config, run)
    fs = gcsfs.GCSFileSystem()
    data = [n for n in objects(f"{run}/checkpoints/12/state") if "/d/" in n]
    biggest = max(data, key=fs.size)
    fs.pipe_file(biggest, fs.cat_file(biggest)[:100])
    train_and_evaluate(config, run)
    aside = [n for n in objects(f"{run}/damaged_checkpoints") if n.endswith("commit_success.txt")]
    assert aside and all("/damaged_checkpoints/12." in n for n in aside)
    assert_same_params(tmp_path / "local", run, config)


@pytest.mark.slow
def test_synthesis_and_export_read_and_write_a_bucket(bucket, corpus_dir, tmp_path, capsys):
    """A Tacotron 2 trained into the bucket synthesizes from it and exports into it (an export
    whose variables match the sha256 it records): the after-training readers and writers take
    gs:// workdirs."""
    from tts_jax import exported

    spec = str(REPO / "experiments" / "tacotron2.py:tiny")
    run, export = f"{bucket}/t2", f"{bucket}/t2_export"
    args = ["--config", spec, "--workdir", run, f"--config.data.path={corpus_dir}"]
    assert main(["train", *args, "--config.train.num_steps=1"]) == 0
    out = tmp_path / "t2.wav"
    assert main(["synthesize", "--workdir", run, "--text", "a cat.", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and "model at step 1" in capsys.readouterr().out
    assert main(["export", "--workdir", run, "--out", export]) == 0
    meta = json.loads(run_path(f"{export}/model.json").read_text())
    assert (
        exported.is_exported(export)
        and exported.sha256(f"{export}/variables.msgpack") == (meta["sha256"])
    )


@pytest.mark.slow
def test_a_sweep_writes_its_runs_and_report_to_a_bucket(bucket, corpus_dir):
    """The WaveNet receptive-field ablation (two toy variants) with its workdir in the bucket:
    runs, samples, report, CSV and plots are objects there, and a second call trains nothing."""
    from tts_jax import sweep as S
    from tts_jax.models.wavenet.ablation import run_ablation

    spec = str(REPO / "experiments" / "wavenet_receptive_field.py:tiny")
    sweep = dict(S.load_sweep(spec))
    sweep["variants"] = {"2x1": {"layers": 2, "stacks": 1}, "4x1": {"layers": 4, "stacks": 1}}
    overrides = [f"teacher.data.path={corpus_dir}", "teacher.train.num_steps=2"]
    work = run_path(f"{bucket}/rf")
    rows = run_ablation(sweep, spec, work, overrides)["rows"]
    assert [r["variant"] for r in rows] == ["2x1", "4x1"]
    key = f"{bucket}/rf".removeprefix("gs://")
    names = objects(f"{bucket}/rf")
    for name in ("report.md", "results.csv", "curves.png", "receptive_field.png"):
        assert f"{key}/{name}" in names
    assert f"{key}/runs/2x1/done.json" in names and f"{key}/runs/2x1/samples/test0.wav" in names
    done = gcsfs.GCSFileSystem().info(f"{key}/runs/4x1/done.json")["generation"]
    again = run_ablation(sweep, spec, work, overrides)["rows"][1]
    assert json.dumps(again, sort_keys=True) == json.dumps(rows[1], sort_keys=True)  # NaN too
    assert gcsfs.GCSFileSystem().info(f"{key}/runs/4x1/done.json")["generation"] == done


def test_a_bucket_that_does_not_exist_is_one_clear_error(gcs_server, capsys):
    argv = ["train", "--config", FRAME_LM, "--workdir", "gs://no-such-bucket-x/run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bucket gs://no-such-bucket-x of gs://no-such-bucket-x/run does not exist" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_live_lock_in_the_bucket_refuses_a_second_trainer(bucket, corpus_dir):
    """A holder on another host whose heartbeat is fresh: refused, nothing written; the same
    holder silent for longer than the stale limit: taken over."""
    run = run_path(f"{bucket}/lm")
    holder = {"host": "tpu-worker-7", "pid": 1234, "since": time.time(), "heartbeat": time.time()}
    (run / "train.lock").write_text(json.dumps(holder))
    config = tiny_config(corpus_dir, **{"train.num_steps": 2})
    with pytest.raises(UserError, match="being trained by pid 1234 on tpu-worker-7"):
        train_and_evaluate(config, run)
    assert objects(str(run)) == [f"{os.fspath(run).removeprefix('gs://')}/train.lock"]
    holder["heartbeat"] -= 3600
    (run / "train.lock").write_text(json.dumps(holder))
    assert int(train_and_evaluate(config, run).step) == 2


class MemoryStore:
    """An object store in a dict whose create-only write is atomic, as GCS's
    ``ifGenerationMatch=0`` is (fake-gcs-server does not enforce it)."""

    def __init__(self):
        self.objects, self.guard = {}, threading.Lock()

    def create(self, path, data):
        with self.guard:
            if str(path) in self.objects:
                return False
            self.objects[str(path)] = data
            return True

    def read(self, path):
        return self.objects.get(str(path))

    def write(self, path, data):
        self.objects[str(path)] = data

    def delete(self, path):
        self.objects.pop(str(path), None)

    def age_s(self, path):
        return 0.0


def test_the_lock_is_create_only_with_a_heartbeat():
    """Two hosts, one workdir: the second is refused while the first beats; the first's
    heartbeat advances; once it is silent past the stale limit, exactly one of two racing
    takers gets the lock."""
    store, where = MemoryStore(), run_path("gs://bucket/run")
    first = WorkdirLock(where, store, host="host-a", pid=1, heartbeat_s=0.05, stale_s=30)
    with first:
        since = json.loads(store.read(first.path))["heartbeat"]
        with pytest.raises(UserError, match="being trained by pid 1 on host-a"):
            with WorkdirLock(where, store, host="host-b", pid=2, stale_s=30):
                pass
        time.sleep(0.3)
        assert json.loads(store.read(first.path))["heartbeat"] > since
    assert store.read(first.path) is None  # released

    silent = {"host": "host-a", "pid": 1, "since": 0.0, "heartbeat": time.time() - 60}
    store.write(first.path, json.dumps(silent).encode())
    takers = [WorkdirLock(where, store, host=f"host-{c}", pid=3, stale_s=30) for c in "bc"]
    results, barrier = {}, threading.Barrier(2)

    def take(lock):
        barrier.wait()
        try:
            lock.__enter__()
            results[lock.host] = "held"
        except UserError as e:
            results[lock.host] = str(e)

    threads = [threading.Thread(target=take, args=(t,)) for t in takers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v == "held" for v in results.values()) == [False, True], results
    winner = next(t for t in takers if results[t.host] == "held")
    assert json.loads(store.read(winner.path))["host"] == winner.host
    loser = next(t for t in takers if t is not winner)
    assert f"on {winner.host}" in results[loser.host]
    winner.__exit__(None, None, None)


def _train_subprocess(workdir, corpus_dir, *extra, env=None):
    full = dict(os.environ, JAX_PLATFORMS="cpu", **(env or {}))
    cmd = [sys.executable, "-m", "tts_jax", "train", "--config", FRAME_LM, "--workdir"]
    cmd += [str(workdir), f"--config.data.path={corpus_dir}", *extra]
    return subprocess.Popen(
        cmd, cwd=REPO, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for_checkpoint(url: str, step: int, proc, timeout: float = 240) -> None:
    fs, key = gcsfs.GCSFileSystem(), url.removeprefix("gs://")
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        fs.invalidate_cache()
        if fs.exists(f"{key}/checkpoints/{step}/commit_success.txt"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint {step} in {url}: {proc.communicate()[0][-2000:]}")


@pytest.mark.slow
def test_kill_9_while_saving_to_a_bucket_then_resume_is_exact(bucket, corpus_dir, tmp_path):
    """A checkpoint every step, so that the kill lands among saves in flight; the same command
    then resumes from the newest complete checkpoint and ends bitwise where an uninterrupted
    run ends."""
    config = tiny_config(corpus_dir, **{"train.num_steps": 16})
    train_and_evaluate(config, tmp_path / "local")
    run = f"{bucket}/lm"
    extra = ["--config.train.num_steps=16", "--config.train.checkpoint_every=1"]
    proc = _train_subprocess(run, corpus_dir, *extra)
    _wait_for_checkpoint(run, 5, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = _train_subprocess(run, corpus_dir, *extra)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    assert "resumed from step" in out and "taking over the stale lock" in out
    assert_same_params(tmp_path / "local", run, config)
    assert [r["step"] for r in read_metrics(run, "train")] == list(range(1, 17))


@pytest.mark.slow
def test_the_bucket_going_away_mid_run_damages_no_checkpoint(
    gcs_server, bucket, corpus_dir, tmp_path
):
    """The server stopped for a few seconds mid-run and started again (its objects kept, its
    upload sessions lost): the run ends with one clear error naming the bucket or goes on,
    and the same command then ends bitwise where an uninterrupted run ends."""
    run = f"{bucket}/lm"
    steps = ["--config.train.num_steps=48", "--config.train.checkpoint_every=4"]
    proc = _train_subprocess(run, corpus_dir, *steps)
    _wait_for_checkpoint(run, 8, proc)
    gcs_server.stop()
    time.sleep(3)
    gcs_server.start()
    out = proc.communicate(timeout=300)[0]
    if proc.returncode != 0:  # the client gave up within the outage
        assert proc.returncode == 2, out
        assert f"error: the bucket of {run} failed while training" in out, out
        assert "Traceback" not in out
    again = _train_subprocess(run, corpus_dir, *steps)
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out
    config = tiny_config(corpus_dir, **{"train.num_steps": 48})
    train_and_evaluate(config, tmp_path / "local")
    assert_same_params(tmp_path / "local", run, config)


@pytest.mark.slow
def test_two_hosts_sharing_only_a_bucket_train_like_one_process(bucket, corpus_dir, tmp_path):
    """Two processes, each with its own current directory, temporary folder, compilation cache
    and copy of the corpus, nothing shared but the bucket: the loss curve of one process with
    4 devices; one metrics log and one TensorBoard file, from process 0."""
    run = f"{bucket}/two"
    port, procs = free_port(), []
    for i in (0, 1):
        own = tmp_path / f"host{i}"
        shutil.copytree(corpus_dir, own / "corpus")
        (own / "tmp").mkdir()
        env = {
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "TMPDIR": str(own / "tmp"),
            "JAX_COMPILATION_CACHE_DIR": str(own / "jax_cache"),
        }
        extra = ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
        extra += ["--process-id", str(i), "--config.train.num_steps=8"]
        full = dict(os.environ, JAX_PLATFORMS="cpu", **env)
        cmd = [sys.executable, "-m", "tts_jax", "train", "--config", FRAME_LM, "--workdir", run]
        cmd += ["--config.data.path=corpus", *extra]
        procs.append(
            subprocess.Popen(
                cmd, cwd=own, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    one = run_cli(
        ["train", "--config", FRAME_LM, "--workdir", str(tmp_path / "one")]
        + [f"--config.data.path={corpus_dir}", "--config.train.num_steps=8"],
        devices=4,
    )
    assert one.returncode == 0, one.stderr
    two = [r["loss"] for r in read_metrics(run, "train")]
    ref = [r["loss"] for r in read_metrics(tmp_path / "one", "train")]
    assert len(two) == 8
    np.testing.assert_allclose(two, ref, rtol=1e-4)
    names = objects(run)
    assert len([n for n in names if "/tensorboard/" in n]) == 1
    assert not any((tmp_path / f"host{i}" / "two").exists() for i in (0, 1))
