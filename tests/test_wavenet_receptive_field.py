"""Tacotron 2's WaveNet receptive-field ablation (experiments/wavenet_receptive_field.py): the
receptive field's arithmetic against the paper's Table 4 and against the network itself,
variants that differ only in layers and cycles, and the runner end to end."""

from __future__ import annotations

import json
import os
import types

import jax
import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax import sweep as S
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.models.wavenet import WaveNet, WaveNetConfig, dilations, receptive_field
from tts_jax.models.wavenet.ablation import run_ablation, variant_config

SPEC = str(REPO / "experiments" / "wavenet_receptive_field.py")


def _flat(config, prefix=""):
    """A ConfigDict as ``{"a.b": value}``."""
    out = {}
    for key, value in config.items():
        if hasattr(value, "items"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_receptive_fields_are_the_papers():
    # Table 4: filter 3, dilations 1, 2, 4, ... restarting every layers / cycles layers.
    paper = {(30, 3): 6139, (24, 4): 505, (12, 2): 253, (30, 30): 61}
    for (layers, stacks), samples in paper.items():
        m = WaveNetConfig(layers=layers, stacks=stacks, kernel_size=3, front_kernel=1)
        assert receptive_field(m) == samples == 2 * sum(dilations(layers, stacks)) + 1
    assert dilations(30, 30) == [1] * 30
    assert dilations(24, 4) == [1, 2, 4, 8, 16, 32] * 4
    # The input convolution is counted: front_kernel - 1 more samples (ClariNet's teacher:
    # 20 layers, 2 cycles, filter 2, front kernel 32).
    assert receptive_field(WaveNetConfig()) == 31 + 2 * 1023 + 1
    with pytest.raises(UserError, match="not a multiple"):
        dilations(30, 4)


def _inputs_seen_by_output(m: WaveNetConfig, t: int) -> np.ndarray:
    """Indices of the input samples whose gradient reaches output ``t`` (a narrow network)."""
    kw = {f: getattr(m, f) for f in ("layers", "stacks", "kernel_size", "front_kernel")}
    model = WaveNet(
        **kw, residual_channels=4, gate_channels=4, skip_channels=4, upsample_strides=(4, 4)
    )
    x = jax.random.uniform(jax.random.PRNGKey(1), (1, t + 100), minval=-0.5, maxval=0.5)
    cond = jax.random.uniform(jax.random.PRNGKey(0), (1, t + 100, 8))
    params = model.init(jax.random.PRNGKey(2), x, cond, method=WaveNet.forward)

    def output_t(x):
        return model.apply(params, x, cond, method=WaveNet.forward)[0][0, t]

    return np.flatnonzero(np.asarray(jax.grad(output_t)(x)[0]))


@pytest.mark.slow
def test_receptive_field_is_what_the_network_sees():
    """The gradient of output t reaches inputs t - R + 1 .. t and nothing else."""
    t = 400
    for front_kernel in (1, 4):
        m = WaveNetConfig(layers=12, stacks=2, kernel_size=3, front_kernel=front_kernel)
        seen = _inputs_seen_by_output(m, t)
        assert (seen.min(), seen.max()) == (t - receptive_field(m) + 1, t)
        assert receptive_field(m) == 253 + front_kernel - 1


@pytest.mark.parametrize("variant", ["tiny", "cpu", "paper"])
def test_variants_differ_only_in_layers_and_cycles(variant):
    sweep = S.load_sweep(f"{SPEC}:{variant}")
    configs = {name: _flat(variant_config(sweep, name)) for name in sweep["variants"]}
    first = next(iter(configs.values()))
    for name, flat in configs.items():
        differ = {k for k in first if first[k] != flat[k]}
        assert differ <= {"model.layers", "model.stacks"}, (name, differ)
        m = (flat["model.layers"], flat["model.stacks"])
        assert (
            receptive_field(WaveNetConfig(*m, kernel_size=3, front_kernel=1))
            == (sweep["paper"][name][0])
        )
        assert (flat["model.kernel_size"], flat["model.front_kernel"]) == (3, 1)
    assert len(configs) == 4
    if variant == "cpu":  # segments hold the largest receptive field
        assert first["train.segment_length"] >= max(rf for rf, _ in sweep["paper"].values())


@pytest.mark.slow
def test_ablation_runs_end_to_end_resumes_and_reports(tmp_path, corpus_dir):
    """The runner on the :tiny config with four shallow variants (the paper's 30-layer ones
    take ~25 s each to compile on one core; the rest of the path is the same)."""
    spec = f"{SPEC}:tiny"
    sweep = dict(S.load_sweep(spec))
    sweep["variants"] = {
        "4x2": {"layers": 4, "stacks": 2},
        "4x1": {"layers": 4, "stacks": 1},
        "2x1": {"layers": 2, "stacks": 1},
        "4x4": {"layers": 4, "stacks": 4},
    }
    sweep["paper"] = {"4x2": (13, 4.5)}  # a paper column for one row; "–" for the others
    overrides = [f"teacher.data.path={corpus_dir}", "teacher.train.num_steps=2"]
    work = tmp_path / "rf"
    with pytest.raises(UserError, match="teacher.a.b=VALUE"):
        run_ablation(sweep, spec, work, ["student.train.num_steps=2"])

    rows = run_ablation(sweep, spec, work, overrides)["rows"]
    assert [r["variant"] for r in rows] == list(sweep["variants"])
    assert [r["rf_samples"] for r in rows] == [13, 31, 7, 9]
    report = (work / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| 4x") or "| 2x1" in line]
    assert len(table) == 4 and table[0].startswith("| 4x2 | 4 | 2 | 13 | 0.6 | 13 | 4.500 |")
    assert "| 4x1 | 4 | 1 | 31 | 1.4 | – | – |" in table[1]
    assert "so it adds 0 samples" in report and "toy run" in report
    csv_lines = (work / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("variant,layers,stacks,rf_samples")
    for png in ("curves.png", "receptive_field.png"):
        assert (work / png).stat().st_size > 1000
    for r in rows:
        assert all(np.isfinite(r[k]) for k in ("nll_final", "heldout_nll", "mr_stft", "mcd_db"))
        assert r["curve"][-1][0] == 2
    assert rows[0]["delta_nll"] == 0.0
    assert (work / "runs" / "4x2" / "samples" / "test0.wav").is_file()

    # A second call finds every run done, trains nothing and writes the same table.
    done = sorted((work / "runs").glob("*/done.json"))
    before = {p: os.stat(p).st_mtime_ns for p in done}
    again = run_ablation(sweep, spec, work, overrides)["rows"]
    assert {p: os.stat(p).st_mtime_ns for p in done} == before
    assert (work / "report.md").read_text() == report
    assert again[1]["heldout_nll"] == json.loads(done[1].read_text())["heldout_nll"]


def test_sweep_command_runs_the_runner_a_sweep_file_names(tmp_path, capsys):
    from tts_jax.cli import main

    sweep_file = tmp_path / "stub_sweep.py"
    sweep_file.write_text(
        "def run(sweep, spec, workdir, overrides, sequential):\n"
        "    (workdir / 'report.md').write_text(f'{sweep[\"word\"]} {spec} {overrides} "
        "{sequential}')\n"
        "    return {'rows': [1, 2]}\n\n\n"
        "def get_sweep(variant='a'):\n"
        "    return {'runner': run, 'word': variant}\n"
    )
    args = ["sweep", f"{sweep_file}:b", "--workdir", str(tmp_path / "w")]
    assert main([*args, "--set", "teacher.x=1"]) == 0
    out = capsys.readouterr().out
    assert f"b {sweep_file}:b ['teacher.x=1'] False" in out and "sweep: 2 runs" in out
    assert main([*args, "--sequential"]) == 0  # passed to the runner
    assert f"b {sweep_file}:b [] True" in capsys.readouterr().out


def test_a_run_stopped_early_is_not_recorded_as_done(tmp_path, monkeypatch):
    """A preempted run (SIGTERM, max_minutes) returns from the trainer before num_steps:
    the sweep must raise rather than write done.json, so that the next sweep resumes it."""
    config = load_config(f"{SPEC}:tiny")
    reached = {"step": 3}
    monkeypatch.setattr(
        S, "train_and_evaluate", lambda cfg, d: types.SimpleNamespace(step=reached["step"])
    )
    run_dir = tmp_path / "run"
    with pytest.raises(UserError, match=f"stopped at step 3 of {config.train.num_steps}"):
        S.resumable(run_dir, lambda: {"steps": int(S.train_to_end(config, run_dir).step)})
    assert not (run_dir / "done.json").exists()
    reached["step"] = config.train.num_steps
    row = S.resumable(run_dir, lambda: {"steps": int(S.train_to_end(config, run_dir).step)})
    assert row == {"steps": config.train.num_steps} and (run_dir / "done.json").is_file()
