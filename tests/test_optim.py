import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from tts_jax.config import base_config
from tts_jax.errors import UserError
from tts_jax.train.optim import (
    TACOTRON2_SCHEDULE,
    make_optimizer,
    make_schedule,
    tacotron2_schedule,
)


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 1e-3),
        (50_000, 1e-3),
        (90_000, 5e-4),  # one decay period of 40k after step 50k
        (130_000, 2.5e-4),
        (310_000, 1e-3 * 0.5**6.5),  # 1.105e-5, just above the floor: "near step 310k"
        (400_000, 1e-5),  # clipped at the final learning rate
    ],
)
def test_tacotron2_schedule(step, expected):
    assert float(tacotron2_schedule()(step)) == pytest.approx(expected, rel=1e-5)
    optim = base_config().optim
    optim.update(TACOTRON2_SCHEDULE)
    assert float(make_schedule(optim)(step)) == pytest.approx(expected, rel=1e-5)


def test_schedule_is_monotone_and_bounded():
    s = tacotron2_schedule()
    values = np.array([float(s(i)) for i in range(0, 500_000, 5_000)])
    assert np.all(np.diff(values) <= 0)
    assert values.max() == pytest.approx(1e-3) and values.min() == pytest.approx(1e-5)


def test_staircase_halving():
    optim = ConfigDict(dict(base_config().optim))
    optim.update(schedule="exponential", decay_steps=200_000, decay_rate=0.5, staircase=True)
    s = make_schedule(optim)
    assert float(s(199_999)) == pytest.approx(1e-3)
    assert float(s(200_000)) == pytest.approx(5e-4)
    assert float(s(450_000)) == pytest.approx(2.5e-4)


def test_warmup_ramps_linearly_then_starts_the_schedule():
    optim = ConfigDict(dict(base_config().optim))
    optim.update(schedule="exponential", decay_steps=1000, decay_rate=0.5, warmup_steps=100)
    s = make_schedule(optim)
    assert float(s(0)) == 0.0
    assert float(s(50)) == pytest.approx(5e-4)
    assert float(s(100)) == pytest.approx(1e-3)  # the ramp's end is the schedule's start
    assert float(s(1100)) == pytest.approx(5e-4)  # one decay period after the warmup
    del optim["warmup_steps"]  # a config saved before the field existed: no warmup
    assert float(make_schedule(optim)(0)) == pytest.approx(1e-3)
    optim.warmup_steps = -1
    with pytest.raises(UserError, match="warmup_steps"):
        make_schedule(optim)


def test_gradient_clipping_in_optimizer():
    optim = base_config().optim
    optim.update(name="adam", grad_clip_norm=1.0, learning_rate=1.0)
    tx, _ = make_optimizer(optim)
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([300.0, 400.0, 0.0])}
    clipped, _ = optax.clip_by_global_norm(1.0).update(grads, None)
    assert float(optax.tree.norm(clipped)) == pytest.approx(1.0)
    updates, _ = tx.update(grads, tx.init(params), params)
    # Adam's first step moves each coordinate by -lr * sign(g) whatever the scale.
    np.testing.assert_allclose(np.asarray(updates["w"])[:2], [-1.0, -1.0], rtol=1e-4)


def test_bad_optimizer_names():
    optim = base_config().optim
    optim.name = "sgdx"
    with pytest.raises(UserError, match="optim.name"):
        make_optimizer(optim)
    optim.name, optim.schedule = "adam", "cosine?"
    with pytest.raises(UserError, match="optim.schedule"):
        make_optimizer(optim)


def test_frozen_parameters_stay_and_then_start_as_new():
    """``a`` frozen for 2 updates: unchanged during them, and its huge gradient does not reach
    the global-norm clip (``b`` still moves by Adam's lr per step, as it would alone); at the
    third update ``a`` moves by Adam's first step, lr x sign(g), its bias correction fresh."""
    optim = base_config().optim
    optim.update(name="adam", grad_clip_norm=1.0, learning_rate=0.1)
    tx, _ = make_optimizer(optim, frozen=lambda p: {"a": True, "b": False}, frozen_steps=2)
    params = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    state = tx.init(params)
    grads = [
        {"a": jnp.array([1000.0, -1000.0]), "b": jnp.array([0.3, 0.4])},
        {"a": jnp.array([0.0, 0.0]), "b": jnp.array([0.3, 0.4])},
        {"a": jnp.array([0.6, -0.8]), "b": jnp.array([0.0, 0.0])},
    ]
    history = [params]
    for g in grads:
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        history.append(params)
    np.testing.assert_array_equal(history[1]["a"], 0.0)
    np.testing.assert_array_equal(history[2]["a"], 0.0)
    # b's gradient is the same twice, within the clip: Adam moves it by -lr per step exactly
    # when a's 1000s are kept out of the clip's norm (in it, the second step would be 0.74 lr).
    np.testing.assert_allclose(history[1]["b"], [-0.1, -0.1], rtol=1e-5)
    np.testing.assert_allclose(history[2]["b"], [-0.2, -0.2], rtol=1e-5)
    np.testing.assert_allclose(history[3]["a"], [-0.1, 0.1], rtol=1e-5)
    with pytest.raises(UserError, match="frozen steps must be >= 0"):
        make_optimizer(optim, frozen=lambda p: {"a": True, "b": False}, frozen_steps=-1)
