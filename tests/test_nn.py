"""Shared layers (tts_jax/nn/conv.py): the transposed convolution's polyphase and dilated
forms against a direct loop, and the split / space-to-depth grouped convolution against XLA's,
values and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tts_jax.nn import conv as C


def _transposed_loop(x, w, u, p):
    """y[i * u + m - p] += x[i] @ w[m], literally (PyTorch's conv_transpose1d)."""
    b, t, _ = x.shape
    k, _, c_out = w.shape
    length = (t - 1) * u - 2 * p + k
    y = np.zeros((b, length, c_out))
    for i in range(t):
        for m in range(k):
            j = i * u + m - p
            if 0 <= j < length:
                y[:, j] += x[:, i] @ w[m]
    return y


@pytest.mark.parametrize("k, u, p", [(16, 8, 4), (4, 2, 1), (8, 4, 2), (5, 3, 0), (7, 2, 3)])
def test_transposed_conv_polyphase_and_dilated_equal_the_definition(k, u, p):
    rng = np.random.default_rng(k * 100 + u)
    x = rng.normal(size=(2, 9, 3)).astype(np.float32)
    w = rng.normal(size=(k, 3, 4)).astype(np.float32)
    want = _transposed_loop(x, w, u, p)
    for method in ("polyphase", "dilated"):
        got = C.conv_transpose_1d(jnp.asarray(x), jnp.asarray(w), u, p, method)
        np.testing.assert_allclose(got, want, atol=1e-4, err_msg=method)


@pytest.mark.parametrize(
    "c_in, c_out, k, stride, groups, dilation, length",
    [
        (8, 16, 41, 4, 4, 1, 101),
        (4, 8, 15, 2, 1, 1, 101),
        (32, 64, 5, 3, 1, 1, 101),
        (8, 8, 3, 1, 2, 3, 101),
        (16, 8, 5, 1, 1, 1, 3),  # shorter than the kernel: the taps form
        (16, 8, 5, 3, 1, 1, 4),
        (8, 8, 3, 1, 2, 3, 5),
    ],
)
def test_conv1d_split_and_space_to_depth_equal_xla_grouped_conv(
    c_in, c_out, k, stride, groups, dilation, length
):
    rng = np.random.default_rng(c_in + k)
    x = jnp.asarray(rng.normal(size=(2, length, c_in)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(k, c_in // groups, c_out)).astype(np.float32))
    pad = (k - 1) // 2 * dilation

    def ref(x, w):
        return lax.conv_general_dilated(
            x, w, (stride,), [(pad, pad)], rhs_dilation=(dilation,),
            dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=groups,
        )  # fmt: skip

    def ours(x, w):
        return C.conv1d(x, w, stride, dilation, groups, pad)

    np.testing.assert_allclose(ours(x, w), ref(x, w), atol=1e-4)
    # Same gradients too (the training step differentiates through both inputs).
    g_ref = jax.grad(lambda x, w: jnp.sum(jnp.sin(ref(x, w))), argnums=(0, 1))(x, w)
    g_ours = jax.grad(lambda x, w: jnp.sum(jnp.sin(ours(x, w))), argnums=(0, 1))(x, w)
    for a, b in zip(g_ours, g_ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)


def test_materialize_is_the_identity_in_value_and_in_both_autodiff_modes():
    from tts_jax.nn.materialize import materialize

    rng = np.random.default_rng(0)
    ws = [jnp.asarray(rng.normal(size=(6, 6)) * 0.3, jnp.float32) for _ in range(4)]
    x = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)

    def stack(x, keep):  # a residual stream, as in WaveNet's blocks
        for w in ws:
            x = (x + jnp.tanh(x @ w)) * 0.5**0.5
            x = materialize(x) if keep else x
        return x

    kept, plain = jax.jit(lambda x: stack(x, True))(x), stack(x, False)
    np.testing.assert_array_equal(np.asarray(kept), np.asarray(plain))
    loss = lambda x, keep: jnp.sum(jnp.sin(stack(x, keep)))  # noqa: E731
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    np.testing.assert_allclose(grad(x, True), grad(x, False), rtol=1e-5, atol=1e-6)
    jac = jax.jacfwd(lambda x: stack(x, True))(x[:1, :2])
    np.testing.assert_allclose(
        jac, jax.jacfwd(lambda x: stack(x, False))(x[:1, :2]), rtol=1e-5, atol=1e-6
    )
    assert float(jnp.max(jnp.abs(jac))) > 0.1  # the derivatives are not lost
