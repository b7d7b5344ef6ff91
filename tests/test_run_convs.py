"""The WaveNet / ClariNet convolutions that stay fast in a stack of runs: the polyphase
transposed upsampler and the causal convolution with a per-run-kernel vmap rule, against the
``lax`` convolutions they replace (alone: equal; vmapped over runs: equal to each run alone),
and the layout rule that decides where a stack's runs go."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tts_jax.models.wavenet import model as M
from tts_jax.nn.run_axis import stacked_layers
from tts_jax.train.layout import CPU_SHARED_MAX_STEPS, choose_layout, layout_mesh, stack_anyway

RNG = np.random.default_rng(0)


def _normal(*shape):
    return jnp.asarray(RNG.standard_normal(shape), jnp.float32)


@pytest.mark.parametrize("stride", [2, 4, 16])
def test_polyphase_upsampler_equals_the_zero_stuffed_correlation(stride):
    x, kernel = _normal(2, 5, 7), _normal(2 * stride, 3, 1, 1)
    old = lambda x, k: M._transposed_upsample_dilated(x[..., None], k, stride, stride // 2)[..., 0]  # noqa: E731
    new = lambda x, k: M.transposed_upsample(x, k[..., 0, 0], stride)  # noqa: E731
    assert new(x, kernel).shape == (2, 5 * stride, 7)
    np.testing.assert_allclose(new(x, kernel), old(x, kernel), rtol=0, atol=2e-6)
    # The gradients too (the layer is trained).
    loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))  # noqa: E731
    for a, b in zip(
        jax.grad(loss(new), (0, 1))(x, kernel), jax.grad(loss(old), (0, 1))(x, kernel), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def _lax(x, w, d):
    pad = d * (w.shape[0] - 1)
    return jax.lax.conv_general_dilated(
        x, w, (1,), [(pad, 0)], rhs_dilation=(d,), dimension_numbers=("NWC", "WIO", "NWC")
    )


@pytest.mark.parametrize("kernel_size, dilation", [(2, 1), (3, 4), (32, 1)])
def test_causal_conv_alone_is_the_lax_convolution_bit_for_bit(kernel_size, dilation):
    x, w = _normal(3, 40, 4), _normal(kernel_size, 4, 6)
    np.testing.assert_array_equal(M.causal_conv(x, w, dilation), _lax(x, w, dilation))
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w, dilation)))  # noqa: E731
    for a, b in zip(
        jax.grad(loss(M.causal_conv), (0, 1))(x, w), jax.grad(loss(_lax), (0, 1))(x, w), strict=True
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shared_input", [True, False])
def test_causal_conv_with_a_kernel_per_run_is_each_run_alone(shared_input):
    runs, d = 4, 2
    w = _normal(runs, 3, 4, 6)
    x = _normal(3, 40, 4) if shared_input else _normal(runs, 3, 40, 4)
    in_x = None if shared_input else 0

    def loss(x, w):
        return jnp.sum(jnp.tanh(M.causal_conv(x, w, d)) ** 2)

    def lone(x, w):
        return jnp.sum(jnp.tanh(_lax(x, w, d)) ** 2)

    grad = jax.jit(jax.vmap(jax.grad(loss, (0, 1)), in_axes=(in_x, 0)))
    # No grouped convolution is left in the stacked program: the rule made them matmuls.
    assert "conv_general_dilated" not in str(jax.make_jaxpr(grad)(x, w))
    gx, gw = grad(x, w)
    for k in range(runs):
        xk = x if shared_input else x[k]
        ex, ew = jax.grad(lone, (0, 1))(xk, w[k])
        np.testing.assert_allclose(gx[k], ex, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gw[k], ew, rtol=1e-5, atol=1e-5)
    out = jax.vmap(lambda x, w: M.causal_conv(x, w, d), in_axes=(in_x, 0))(x, w)
    for k in range(runs):
        expected = _lax(x if shared_input else x[k], w[k], d)
        np.testing.assert_allclose(out[k], expected, rtol=1e-5, atol=1e-5)


def test_forward_mode_still_differentiates_a_lone_wavenet():
    # Outside a stacked trace the layers keep the plain convolution, which jacfwd can go
    # through (the stacked form is reverse-mode only).
    model = M.WaveNet(2, 1, 4, 4, 4, 2, 4, (4, 4))
    mel, x = jnp.ones((1, 2, 80)), _normal(1, 32)
    params = model.init(jax.random.PRNGKey(0), x, mel)["params"]
    jac = jax.jacfwd(lambda x: model.apply({"params": params}, x, mel)[0])(x)
    assert jac.shape == (1, 32, 1, 32) and float(jnp.max(jnp.abs(jac))) > 0


@pytest.mark.slow
def test_wavenet_stacked_over_runs_matches_each_run_alone():
    model = M.WaveNet(4, 2, 8, 8, 8, 2, 4, (4, 4))
    mel = jax.random.uniform(jax.random.PRNGKey(0), (2, 5, 80))
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 80), minval=-0.5, maxval=0.5)
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    params = jax.vmap(lambda k: model.init(k, x, mel)["params"])(keys)

    def loss(p):
        mean, log_scale = model.apply({"params": p}, x, mel)
        return jnp.mean(mean**2 + log_scale**2)

    stacked = jax.jit(stacked_layers(jax.vmap(jax.value_and_grad(loss))))
    # Traced as a stacked trainer traces its step: no convolution is left (the causal ones
    # are matmuls, the upsampler is polyphase).
    assert "conv_general_dilated" not in str(jax.make_jaxpr(stacked)(params))
    losses, grads = stacked(params)
    for k in range(3):
        one = jax.tree.map(lambda a, k=k: a[k], params)
        value, grad = jax.value_and_grad(loss)(one)
        np.testing.assert_allclose(losses[k], value, rtol=1e-5)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grad), strict=True):
            np.testing.assert_allclose(a[k], b, rtol=1e-4, atol=1e-6 * float(jnp.max(jnp.abs(b))))


def test_layout_rule():
    def rule(runs, devices, steps=4, backend="cpu", batch=8):
        return choose_layout(runs, devices, batch, backend=backend, num_steps=steps)

    # Devices enough: one run per device group, the rest of each group splitting the batch.
    a = rule(5, 8)
    assert (a.mode, a.run_shards, a.data_shards) == ("stack", 5, 1)
    b = rule(2, 8)
    assert (b.mode, b.run_shards, b.data_shards) == ("stack", 2, 4)
    assert rule(4, 8, steps=10_000).mode == "stack"  # long runs too: none shares a device
    # Runs sharing a CPU device stack only while short.
    c = rule(10, 8, steps=CPU_SHARED_MAX_STEPS)
    assert (c.mode, c.run_shards, c.data_shards) == ("stack", 5, 1)
    d = rule(10, 8, steps=CPU_SHARED_MAX_STEPS + 1)
    assert (d.mode, d.data_shards) == ("sequential", 8)
    assert "one after another" in d.describe()
    assert rule(3, 1, steps=1000).mode == "sequential"
    assert rule(3, 1, steps=1000, backend="gpu").mode == "stack"
    # A batch that 3 devices do not divide: the data split falls back to one that does.
    e = rule(1, 3, batch=8)
    assert (e.run_shards, e.data_shards) == (1, 2)
    forced = stack_anyway(d)
    assert (forced.mode, forced.run_shards, forced.data_shards) == ("stack", 5, 1)
    mesh = layout_mesh(rule(1, 1))
    assert dict(mesh.shape) == {"run": 1, "data": 1}
    with pytest.raises(ValueError, match="runs 0"):
        rule(0, 1)
