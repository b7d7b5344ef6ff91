"""Gaussian WaveNet teacher: the cached autoregressive loop against the parallel pass,
causality and receptive field by perturbation, the conditioning upsampler's length."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tts_jax.models.wavenet import WaveNet, generate


def _tiny(**kw):
    cfg = dict(
        layers=6, stacks=2, residual_channels=8, gate_channels=8, skip_channels=8,
        kernel_size=2, front_kernel=4, upsample_strides=(4, 4),
    )  # fmt: skip
    cfg.update(kw)
    model = WaveNet(**cfg)
    b, frames = 2, 5
    mel = jax.random.uniform(jax.random.PRNGKey(0), (b, frames, 80))
    x = jax.random.uniform(jax.random.PRNGKey(1), (b, frames * 16), minval=-0.5, maxval=0.5)
    variables = model.init(jax.random.PRNGKey(2), x, mel)
    return model, variables, mel, x


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_cached_sampling_reproduces_the_parallel_forward_pass(kernel_size):
    model, variables, mel, x = _tiny(kernel_size=kernel_size)
    mean, log_scale = model.apply(variables, x, mel)
    cond = model.apply(variables, mel, method=WaveNet.upsample)
    mean_c, log_scale_c = jax.jit(
        lambda c, f: generate(model, variables["params"], c, jax.random.PRNGKey(0), forced=f)
    )(cond, x)
    np.testing.assert_allclose(mean_c, mean, atol=1e-5)
    np.testing.assert_allclose(log_scale_c, log_scale, atol=1e-5)
    assert float(jnp.std(mean)) > 1e-3


def test_free_sampling_is_bounded_and_seeded():
    model, variables, mel, _ = _tiny()
    cond = model.apply(variables, mel, method=WaveNet.upsample)
    run = jax.jit(lambda c, r: generate(model, variables["params"], c, r))
    a, b = run(cond, jax.random.PRNGKey(5)), run(cond, jax.random.PRNGKey(5))
    assert a.shape == (2, 80)
    np.testing.assert_array_equal(a, b)
    assert float(jnp.max(jnp.abs(a))) <= 1.0
    assert not np.array_equal(a, run(cond, jax.random.PRNGKey(6)))


def test_output_is_causal_and_receptive_field_matches_its_formula():
    model, variables, mel, x = _tiny()
    rf = model.receptive_field()
    assert rf == 4 + (1 + 2 + 4) * 2  # front kernel + (k - 1) * sum of dilations
    cond = model.apply(variables, mel, method=WaveNet.upsample)

    def out(x):
        return model.apply(variables, x, cond, method=WaveNet.forward)[0]

    t = 60
    base = out(x)
    # Output t depends on inputs t - rf + 1 .. t and on nothing later or earlier.
    for pos, depends in [(t + 1, False), (t, True), (t - rf + 1, True), (t - rf, False)]:
        moved = out(x.at[:, pos].add(0.3))
        changed = bool(jnp.any(jnp.abs(moved[:, t] - base[:, t]) > 1e-7))
        assert changed == depends, pos


def test_upsampler_gives_hop_samples_per_frame():
    model, variables, mel, _ = _tiny()
    for frames in (1, 3, 7):
        cond = model.apply(variables, mel[:, :1].repeat(frames, 1), method=WaveNet.upsample)
        assert cond.shape == (2, frames * 16, 80)
