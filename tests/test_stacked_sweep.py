"""Stacked sweeps end to end (tts_jax/sweep.py over tts_jax/train/stacked.py), on the tiny
sweep tests/fixtures/sweeps/frame_lm_stack.py: four frame_lm:tiny runs that differ in seed and
learning rate (one program) and one wider run (a group of its own).

- ``tts-jax sweep`` stacks by default, on 4 fake devices in a fresh process, and gives every
  run the losses it has when the same sweep runs ``--sequential`` in this process on one
  device; the report says how the runs were grouped;
- ``kill -9`` of the stacked sweep once a checkpoint is on disk, then the same command: every
  run's final parameters are bitwise those of the uninterrupted stacked sweep (same devices);
- two processes on localhost, 2 fake devices each, train the stack with its run axis across
  both: every run's loss curve is the one-process stack's.

Tolerances (measured on CPU): a stacked run's losses on 4 devices against the same run alone
on one device agree to 4e-7 relative over the first 12 steps (rtol 1e-5 asserted), and over
all 40 to 1.5e-5 (rtol 1e-4 asserted): frame_lm's convolution bias in front of its batch norm
has a gradient that is zero but for rounding, which Adam turns into updates of full size (see
tests/test_stacked.py), so two summation orders drift apart slowly, fastest at the highest
learning rate. The two-process stack's losses agree with the one-process stack's to 5e-7
relative over the 40 steps (rtol 1e-5 asserted): the run axis is split over the devices, one
run per device, so no sum crosses a host, but the two programs are compiled apart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tests.test_multihost import free_port
from tts_jax.sweep import Run, failed_row, layout_lines, run_sweep, stack_groups
from tts_jax.train.summary import read_metrics
from tts_jax.workdir import restore_raw

SWEEP = str(REPO / "tests" / "fixtures" / "sweeps" / "frame_lm_stack.py")
STACKED = ("a", "b", "c", "d")  # the runs that share a program; "wide" trains alone
RUNS = (*STACKED, "wide")


def _sweep_args(workdir, corpus_dir, *extra):
    return [
        "sweep",
        SWEEP,
        "--workdir",
        str(workdir),
        "--set",
        f"run.data.path={corpus_dir}",
        *extra,
    ]


def _losses(run_dir):
    return np.array([r["loss"] for r in read_metrics(run_dir, "train")])


def _leaves(run_dir):
    import jax

    return jax.tree_util.tree_leaves_with_path(restore_raw(run_dir)["params"])


def test_runs_are_grouped_by_what_a_stack_may_hold(tmp_path):
    """ClariNet objectives and learning rates share a group; another student size, or seeds
    whose data orders differ (no data.seed), start another; a sweep's groups keep its order."""
    from tts_jax.config import load_config

    spec = str(REPO / "experiments" / "clarinet_kl.py") + ":tiny"

    def run(name, **overrides):
        config = load_config(spec, [f"--config.{k}={v}" for k, v in overrides.items()])
        return Run(name, config, tmp_path / name)

    runs = [
        run("reverse"),
        run("forward", **{"model.objective": "forward_reg", "optim.learning_rate": 3e-3}),
        run("narrow", **{"model.flows": 1}),
        run("seed1", seed=1),
        run("seed1-shared-data", seed=1, **{"data.seed": 0}),
        run("seed0-shared-data", **{"data.seed": 0, "model.stft_weight": 0.0}),
    ]
    groups = [[r.name for r in g] for g in stack_groups(runs)]
    assert groups == [
        ["reverse", "forward"],
        ["narrow"],
        ["seed1"],
        ["seed1-shared-data", "seed0-shared-data"],
    ]


def test_a_run_failed_in_a_stack_is_named_in_the_report_with_its_reason(tmp_path):
    run_dir = tmp_path / "runs" / "wild"
    run_dir.mkdir(parents=True)
    assert failed_row(run_dir, {"variant": "wild", "seed": 1}) is None
    reason = "20 updates in a row had a non-finite loss or gradient and were skipped"
    (run_dir / "failed.json").write_text(json.dumps({"step": 21, "reason": reason}))
    row = failed_row(run_dir, {"variant": "wild", "seed": 1})
    assert row == {"variant": "wild", "seed": 1, "failed": True, "reason": reason, "failed_at": 21}
    lines = layout_lines(["a, wild: 2 runs in 1 program on 1 device"], [{"variant": "a"}, row])
    assert lines == [
        "**How the runs were trained.** a, wild: 2 runs in 1 program on 1 device.",
        f"- **wild (seed 1) failed** at step 21: {reason}",
    ]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, corpus_dir):
    """The sweep ``--sequential`` in this process (one device): today's way."""
    work = tmp_path_factory.mktemp("sequential") / "w"
    run_sweep(SWEEP, work, [f"run.data.path={corpus_dir}"], sequential=True)
    return work


@pytest.fixture(scope="module")
def stacked(tmp_path_factory, corpus_dir):
    """The sweep as typed, stacked by default, in a fresh process with 4 fake devices."""
    work = tmp_path_factory.mktemp("stacked") / "w"
    res = run_cli(_sweep_args(work, corpus_dir), devices=4)
    assert res.returncode == 0, res.stderr[-3000:]
    return work


@pytest.mark.slow
def test_a_stacked_sweep_gives_each_run_the_losses_it_has_alone(sequential, stacked):
    report = (stacked / "report.md").read_text()
    assert "5 runs in 2 groups, one group after another" in report
    assert "a, b, c, d: 4 runs in 1 program on 4 devices (mesh run=4 x data=1)" in report
    assert "wide: 1 run alone on 4 devices" in report
    assert (
        "5 runs one after another, each data-parallel over 1 device"
        in (sequential / "report.md").read_text()
    )
    for name in RUNS:
        stack, alone = _losses(stacked / "runs" / name), _losses(sequential / "runs" / name)
        assert len(stack) == len(alone) == 40
        np.testing.assert_allclose(stack[:12], alone[:12], rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(stack, alone, rtol=1e-4, err_msg=name)
    # The runs differ (seeds and rates reach their own slices) and they trained.
    finals = [_losses(stacked / "runs" / n)[-1] for n in STACKED]
    assert len(set(finals)) == 4
    assert all(_losses(stacked / "runs" / n)[-1] < _losses(stacked / "runs" / n)[0] for n in RUNS)
    # Each run's row is scored from its own workdir, as after a sequential sweep.
    for name in RUNS:
        row = json.loads((stacked / "runs" / name / "done.json").read_text())
        assert row["variant"] == name and row["curve"][-1][0] == 40


@pytest.mark.slow
def test_a_killed_stacked_sweep_resumes_to_the_uninterrupted_parameters(
    tmp_path, corpus_dir, stacked
):
    """SIGKILL once every stacked run has a checkpoint on disk (step 8 of 40), then the same
    command: the runs resume from their newest common step and end bitwise where the
    uninterrupted stacked sweep ended (the data order and its position are in the
    checkpoints; the same 4 devices compute the same sums)."""
    work = tmp_path / "w"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    cmd = [sys.executable, "-m", "tts_jax", *_sweep_args(work, corpus_dir)]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 240
        while not all((work / "runs" / n / "checkpoints" / "8").is_dir() for n in STACKED):
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = [len(read_metrics(work / "runs" / n, "train")) for n in STACKED]
    assert all(8 <= s < 40 for s in killed_at), killed_at
    assert not any((work / "runs" / n / "done.json").exists() for n in RUNS)

    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "stack resumed from step" in res.stderr + res.stdout
    for name in RUNS:
        assert [r["step"] for r in read_metrics(work / "runs" / name, "train")] == list(
            range(1, 41)
        )
        mine, ref = _leaves(work / "runs" / name), _leaves(stacked / "runs" / name)
        assert [p for p, _ in mine] == [p for p, _ in ref]
        for (path, x), (_, y) in zip(mine, ref, strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"{name} {path}")


DRIVER = """
import sys
from tts_jax.train import distributed
distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
sys.path.insert(0, sys.argv[4])
from frame_lm_stack import run_config
from tts_jax.train.stacked import train_stack
names = ["a", "b", "c", "d"]
configs = [run_config(n, ["run.data.path=" + sys.argv[5]]) for n in names]
report = train_stack(configs, [sys.argv[3] + "/" + n for n in names])
print("LAYOUT", report["layout"])
"""


@pytest.mark.slow
def test_two_processes_train_the_stack_as_one_process_does(tmp_path, corpus_dir, stacked):
    """2 processes x 2 fake devices: the run axis (4 runs) spread over both hosts."""
    port = free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    fixtures = str(REPO / "tests" / "fixtures" / "sweeps")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                DRIVER,
                f"127.0.0.1:{port}",
                str(i),
                str(tmp_path),
                fixtures,
                str(corpus_dir),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (0, 1)
    ]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[-3000:] for o in outs]
    assert "LAYOUT 4 runs in 1 program on 4 devices over 2 hosts (mesh run=4 x data=1)" in outs[0]
    for name in STACKED:
        two, one = _losses(tmp_path / name), _losses(stacked / "runs" / name)
        assert len(two) == 40
        np.testing.assert_allclose(two, one, rtol=1e-5, err_msg=name)
