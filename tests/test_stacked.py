"""The stacked trainer (tts_jax/train/stacked.py): a run inside a stack trains as it does
alone (loss curve and parameters), a diverging run fails alone, a restarted stack resumes,
each run's workdir opens and continues alone, and what a stack cannot hold is refused.

Tolerances (measured on CPU; vmap turns per-run convolution kernels into grouped
convolutions, which sum in another order): ClariNet's losses agree to 1e-7 relative and its
parameters to 7e-7 of each array's largest magnitude, after 4 steps. frame_lm's losses agree
to 6e-7 relative over 12 steps; its parameters are not compared: the convolution bias in
front of its batch norm has a gradient that is zero but for rounding, which Adam's
normalisation turns into updates of full size, so that bias differs between any two
summation orders (1 and 4 devices alike); its evaluation, which reads the batch norm's
running mean and so sees that bias, agrees to 1e-4 relative (measured 8e-5).
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax import workdir as WD
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.family import get_family
from tts_jax.train.loop import train_and_evaluate
from tts_jax.train.stacked import check_stack, common_step, stack_mesh, train_stack
from tts_jax.train.summary import read_metrics

FRAME_LM = str(REPO / "experiments" / "frame_lm.py") + ":tiny"
CLARINET = str(REPO / "experiments" / "clarinet_kl.py") + ":tiny"


def _config(spec, **overrides):
    return load_config(spec, [f"--config.{k}={v}" for k, v in overrides.items()])


def _losses(workdir):
    return np.array([r["loss"] for r in read_metrics(workdir, "train")])


def test_runs_differing_in_code_or_shapes_are_refused():
    family = get_family("frame_lm")
    a = _config(FRAME_LM, **{"data.seed": 0})
    ok = [a, _config(FRAME_LM, seed=3, **{"data.seed": 0, "optim.learning_rate": 1e-2})]
    check_stack(ok, ["a", "b"], family)
    wider = _config(FRAME_LM, **{"data.seed": 0, "model.channels": 32})
    with pytest.raises(UserError, match=r"differ in model\.channels \(16 vs 32\)"):
        check_stack([a, wider], ["a", "b"], family)
    with pytest.raises(UserError, match=r"differ in train\.batch_size"):
        check_stack(
            [a, _config(FRAME_LM, **{"data.seed": 0, "train.batch_size": 8})], ["a", "b"], family
        )
    # A seed also orders the data unless data.seed fixes it; a stack shares its batches.
    with pytest.raises(UserError, match="differ in seed, which also orders their training data"):
        check_stack([_config(FRAME_LM), _config(FRAME_LM, seed=1)], ["a", "b"], family)
    # ClariNet stacks objectives (numbers over its loss terms) but not another student size.
    clarinet = get_family("clarinet")
    c = _config(CLARINET, **{"data.seed": 0})
    check_stack(
        [c, _config(CLARINET, **{"data.seed": 0, "model.objective": "forward_reg"})],
        ["a", "b"],
        clarinet,
    )
    with pytest.raises(UserError, match=r"differ in model\.flows"):
        check_stack(
            [c, _config(CLARINET, **{"data.seed": 0, "model.flows": 3})], ["a", "b"], clarinet
        )
    # frame_lm has no loss weights: its model fields never stack.
    with pytest.raises(UserError, match=r"differ in model\.dropout"):
        check_stack(
            [a, _config(FRAME_LM, **{"data.seed": 0, "model.dropout": 0.2})], ["a", "b"], family
        )


def test_mesh_splits_the_run_axis_where_devices_allow():
    devices = [jax.devices()[0]] * 1
    assert dict(stack_mesh(5, 4, devices).shape) == {"run": 1, "data": 1}
    assert common_step([[2, 4, 6], [4, 6], [2, 4]]) == 4
    assert common_step([[2], []]) is None


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, corpus_dir):
    """A wavenet:tiny workdir holding a freshly initialised teacher (the stack's and the lone
    runs' students distil from the same one)."""
    path = tmp_path_factory.mktemp("teacher") / "teacher"
    config = _config(
        str(REPO / "experiments" / "wavenet.py") + ":tiny", **{"data.path": corpus_dir}
    )
    family = get_family("wavenet")
    state = family.init_state(config, jax.random.PRNGKey(0), family.example_batch(config))
    WD.write(path, config, state, 0)
    return path


@pytest.mark.slow
def test_clarinet_run_in_a_stack_of_objectives_trains_as_it_does_alone(
    tmp_path, corpus_dir, teacher
):
    def student(objective, stft, seed, **more):
        return _config(
            CLARINET,
            seed=seed,
            **{
                "data.path": corpus_dir,
                "data.seed": 0,
                "model.teacher_workdir": teacher,
                "model.objective": objective,
                "model.stft_weight": stft,
                **more,
            },
        )

    configs = [
        student("reverse", 0.0, 0),
        student("forward_reg", 1.0, 1, **{"optim.learning_rate": 3e-3}),
        student("reverse_mc", 1.0, 2),
    ]
    runs = [tmp_path / "stack" / name for name in ("reverse", "forward", "mc")]
    report = train_stack(configs, runs)
    assert report["layout"] == "3 runs in 1 program on 1 device"
    assert [r["step"] for r in report["runs"]] == [4, 4, 4]
    alone = tmp_path / "alone"
    train_and_evaluate(configs[1], alone)
    np.testing.assert_allclose(_losses(runs[1]), _losses(alone), rtol=1e-5)
    assert len(_losses(alone)) == 4 and np.ptp(_losses(alone)) > 1.0  # it trained
    a, b = WD.restore(alone, "clarinet"), WD.restore(runs[1], "clarinet")
    assert int(a.step) == int(b.step) == 4
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        scale = float(np.max(np.abs(x)))
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-5 * scale)
    # The stacked run's learning rate is its own.
    rates = [r["learning_rate"] for r in read_metrics(runs[1], "train")]
    np.testing.assert_allclose(rates, 3e-3, rtol=1e-6)
    # Its workdir continues alone, as the lone run does, to the same losses.
    longer = {"train.num_steps": 6}
    train_and_evaluate(
        student("forward_reg", 1.0, 1, **{"optim.learning_rate": 3e-3}, **longer), runs[1]
    )
    train_and_evaluate(
        student("forward_reg", 1.0, 1, **{"optim.learning_rate": 3e-3}, **longer), alone
    )
    assert [r["step"] for r in read_metrics(runs[1], "train")] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(_losses(runs[1]), _losses(alone), rtol=1e-5)


@pytest.mark.slow
def test_a_diverging_run_fails_alone_and_a_restarted_stack_resumes(tmp_path, corpus_dir):
    def run(seed, lr, steps):
        return _config(
            FRAME_LM,
            seed=seed,
            **{
                "data.path": corpus_dir,
                "data.seed": 0,
                "optim.learning_rate": lr,
                "train.num_steps": steps,
                "train.max_skipped_steps": 2,
            },
        )

    lrs = {"a": 2e-3, "wild": 1e30, "c": 5e-3}
    seeds = {"a": 0, "wild": 1, "c": 2}
    runs = {name: tmp_path / "stack" / name for name in lrs}
    first = train_stack([run(seeds[n], lrs[n], 8) for n in lrs], list(runs.values()))
    rows = {r["name"]: r for r in first["runs"]}
    assert rows["wild"]["failed"] and not rows["a"]["failed"] and rows["c"]["step"] == 8
    failed = json.loads((runs["wild"] / "failed.json").read_text())
    assert "non-finite" in failed["reason"]
    # Restarted to a longer budget: the healthy runs resume from their common step 8, the
    # failed one stays out (its folder untouched).
    before = sorted(p.name for p in (runs["wild"] / "checkpoints").iterdir())
    second = train_stack([run(seeds[n], lrs[n], 12) for n in lrs], list(runs.values()))
    assert [r["step"] for r in second["runs"]] == [12, failed["step"], 12]
    assert sorted(p.name for p in (runs["wild"] / "checkpoints").iterdir()) == before
    for name in ("a", "c"):
        alone = tmp_path / f"alone_{name}"
        train_and_evaluate(run(seeds[name], lrs[name], 12), alone)
        assert [r["step"] for r in read_metrics(runs[name], "train")] == list(range(1, 13))
        np.testing.assert_allclose(_losses(runs[name]), _losses(alone), rtol=1e-5)
        # Evaluated at 6 and 12 as alone, and at 8, where the first stack ended. Evaluation
        # reads the batch norm's running mean, which carries the conv bias noted above.
        stacked = {r["step"]: r["mse"] for r in read_metrics(runs[name], "eval")}
        lone = {r["step"]: r["mse"] for r in read_metrics(alone, "eval")}
        assert sorted(stacked) == [6, 8, 12] and sorted(lone) == [6, 12]
        np.testing.assert_allclose([stacked[6], stacked[12]], [lone[6], lone[12]], rtol=1e-4)
        assert int(WD.restore(runs[name], "frame_lm").step) == 12
