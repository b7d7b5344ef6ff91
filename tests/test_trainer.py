"""The shared trainer on the frame_lm smoke family: learning, exact resume, SIGTERM,
1 vs 4 devices, and user errors from the CLI."""

import json
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tts_jax.cli import main
from tts_jax.config import load_config
from tts_jax.train.loop import train_and_evaluate
from tts_jax.train.summary import read_metrics
from tts_jax.workdir import checkpoint_manager, restore_state

TINY = str(REPO / "experiments" / "frame_lm.py") + ":tiny"


def tiny_config(corpus_dir, **overrides):
    args = [f"--config.data.path={corpus_dir}"]
    args += [f"--config.{k}={v}" for k, v in overrides.items()]
    return load_config(TINY, args)


def final_params(workdir, config):
    from tts_jax.family import get_family

    family = get_family(config.model.family)
    data = family.make_data(config, 0, 1)
    target = family.init_state(config, jax.random.PRNGKey(0), next(data.train))
    mgr = checkpoint_manager(workdir, 3)
    state, position = restore_state(mgr, target)
    mgr.close()
    return state, position


def test_loss_falls_and_run_is_recorded(tmp_path, corpus_dir):
    config = tiny_config(corpus_dir)
    state = train_and_evaluate(config, tmp_path)
    assert int(state.step) == 12
    evals = read_metrics(tmp_path, "eval")
    assert [r["step"] for r in evals] == [6, 12]
    assert evals[1]["mse"] < 0.8 * evals[0]["mse"]
    train = read_metrics(tmp_path, "train")
    assert len(train) == 12 and np.mean([r["loss"] for r in train[-3:]]) < train[0]["loss"]
    assert json.loads((tmp_path / "config.json").read_text())["model"]["family"] == "frame_lm"
    assert any((tmp_path / "tensorboard").iterdir())
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [4, 8, 12]


def test_resume_is_exact(tmp_path, corpus_dir):
    straight = tmp_path / "straight"
    train_and_evaluate(tiny_config(corpus_dir, **{"train.num_steps": 10}), straight)
    resumed = tmp_path / "resumed"
    # Stop mid-epoch, then continue to 10 in a second run.
    train_and_evaluate(tiny_config(corpus_dir, **{"train.num_steps": 7}), resumed)
    _, position = final_params(resumed, tiny_config(corpus_dir))
    from tts_jax.models.frame_lm import make_data

    per_epoch = len(make_data(tiny_config(corpus_dir), 0, 1).train)
    assert position == {"epoch": 7 // per_epoch, "index": 7 % per_epoch}
    assert position["index"] != 0
    train_and_evaluate(tiny_config(corpus_dir, **{"train.num_steps": 10}), resumed)

    config = tiny_config(corpus_dir)
    a, pos_a = final_params(straight, config)
    b, pos_b = final_params(resumed, config)
    assert int(a.step) == int(b.step) == 10 and pos_a == pos_b
    for x, y in zip(
        jax.tree.leaves((a.params, a.opt_state, a.model_state)),
        jax.tree.leaves((b.params, b.opt_state, b.model_state)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    loss_a = [r["loss"] for r in read_metrics(straight, "train")][7:]
    loss_b = [r["loss"] for r in read_metrics(resumed, "train")][7:]
    assert loss_a == loss_b


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, corpus_dir):
    workdir = tmp_path / "w"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tts_jax",
            "train",
            "--config",
            TINY,
            "--workdir",
            str(workdir),
            f"--config.data.path={corpus_dir}",
            "--config.train.num_steps=100000",
            "--config.train.checkpoint_every=100000",
            "--config.train.eval_every=100000",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    while len(read_metrics(workdir, "train")) < 3:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "training did not start"
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "SIGTERM: saved checkpoint" in out
    last = read_metrics(workdir, "train")[-1]["step"]
    steps = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
    assert steps == [last]
    assert not [p for p in (workdir / "checkpoints").iterdir() if "tmp" in p.name]


@pytest.mark.slow
def test_one_and_four_devices_give_the_same_loss_curve(tmp_path, corpus_dir):
    curves = {}
    for devices in (1, 4):
        workdir = tmp_path / f"d{devices}"
        res = run_cli(
            [
                "train",
                "--config",
                TINY,
                "--workdir",
                str(workdir),
                f"--config.data.path={corpus_dir}",
                "--config.train.num_steps=8",
                "--config.train.progress=True",
            ],
            devices=devices,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"devices: {devices} x cpu" in res.stdout + res.stderr
        # Not a terminal: a plain line per logged step, with an ETA once compilation is past.
        out = (res.stdout + res.stderr).splitlines()
        lines = [x for x in out if x.startswith("step ") and "eval:" not in x]
        assert lines[0].startswith("step 1/8  loss ") and "ETA" not in lines[0]
        assert lines[-1].startswith("step 8/8  loss ") and "ETA 0h00m00s" in lines[-1]
        assert "\r" not in res.stdout + res.stderr
        curves[devices] = [r["loss"] for r in read_metrics(workdir, "train")]
    assert len(curves[1]) == 8
    np.testing.assert_allclose(curves[4], curves[1], rtol=1e-4)


def test_batch_not_divisible_by_devices_is_a_clear_error(tmp_path, corpus_dir):
    res = run_cli(
        [
            "train",
            "--config",
            TINY,
            "--workdir",
            str(tmp_path),
            f"--config.data.path={corpus_dir}",
            "--config.train.batch_size=6",
        ],
        devices=4,
    )
    assert res.returncode == 2
    assert "must be a multiple of the number of devices (4)" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--config", "experiments/nope.py", "--workdir", "w"], "config file not found"),
        (
            ["train", "--config", TINY, "--workdir", "w", "--config.train.num_stepz=3"],
            "bad config or override",
        ),
        (
            ["train", "--config", TINY, "--workdir", "w", "--config.train.num_steps=abc"],
            "bad config or override",
        ),
        (["prepare", "--data", "/nonexistent/corpus"], "metadata.csv is missing"),
        (["vocode", "--mel", "/nonexistent.npy", "--out", "x.wav"], "mel file not found"),
    ],
)
def test_cli_user_errors(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_family_is_named(tmp_path, corpus_dir, capsys):
    code = main(
        [
            "train",
            "--config",
            TINY,
            "--workdir",
            str(tmp_path),
            f"--config.data.path={corpus_dir}",
            "--config.model.family=tacotron9",
        ]
    )
    assert code == 2
    assert "unknown model family 'tacotron9'" in capsys.readouterr().err


@pytest.mark.slow
def test_train_runs_from_another_directory(tmp_path, corpus_dir):
    """`--config experiments/...` is found from any directory (relative to the project)."""
    import os

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "tts_jax",
            "train",
            "--config",
            "experiments/frame_lm.py:tiny",
            "--workdir",
            "w",
            f"--config.data.path={corpus_dir}",
            "--config.train.num_steps=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "w" / "checkpoints" / "2").is_dir()


@pytest.mark.slow
def test_configs_lists_every_variant_with_its_parameter_count(capsys):
    """`tts-jax configs`: one line per variant of every config file, with the parameter
    counts the papers publish where they do (HiFi-GAN Table 1: V1 13.92 M, V2 0.92 M,
    V3 1.46 M; Conv-TasNet's best non-causal model: 5.05 M)."""
    assert main(["configs"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[:-1]}
    files = [p for p in (REPO / "experiments").glob("*.py") if "INTENDED_USE" in p.read_text()]
    expected = {f"experiments/{p.name}:{v}" for p in files for v in _uses(p)}
    assert set(lines) == expected and len(files) >= 7
    published = {"hifigan.py:v1": 13.92, "hifigan.py:v2": 0.92, "hifigan.py:v3": 1.46}
    published["conv_tasnet.py:paper"] = 5.05
    for spec, millions in published.items():
        shown = float(lines[f"experiments/{spec}"].replace(" * ", " ").split()[2])
        assert abs(shown - millions) < 0.011, (spec, shown)  # 2-decimal rounding
    assert lines["experiments/tacotron2.py:paper"].split()[1] == "*"  # the default variant
    with pytest.raises(
        Exception, match="expected one of paper, cpu, shipped, student, nvidia, tiny"
    ):
        load_config("experiments/tacotron2.py:huge")


def _uses(path):
    import ast

    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "INTENDED_USE":
            return [k.value for k in node.value.keys]
    raise AssertionError(path)
