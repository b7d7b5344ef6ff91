"""Gaussian NLL and KL of the WaveNet teacher / ClariNet student: closed forms against
Monte-Carlo, hand-derived gradients and properties that must hold for every input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_jax import distributions as D


def test_nll_is_the_gaussian_log_density_and_honours_the_floor():
    x, mu, log_s = 0.3, -0.2, np.log(0.5)
    want = 0.5 * np.log(2 * np.pi) + log_s + 0.5 * ((x - mu) / 0.5) ** 2
    assert float(D.gaussian_nll(x, mu, log_s)) == pytest.approx(want, rel=1e-6)
    # Below the floor the scale is the floor's.
    assert float(D.gaussian_nll(0.0, 0.0, -20.0)) == pytest.approx(
        float(D.gaussian_nll(0.0, 0.0, -7.0))
    )
    assert float(D.gaussian_nll(0.0, 0.0, -20.0, log_scale_min=-9.0)) == pytest.approx(
        0.5 * np.log(2 * np.pi) - 9.0
    )


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_kl_equals_monte_carlo_within_its_standard_error(seed):
    rng = np.random.default_rng(seed)
    mu_q, mu_p = rng.normal(size=2)
    lq, lp = rng.uniform(-2, 1, size=2)
    n = 400_000
    x = mu_q + np.exp(lq) * rng.normal(size=n)
    log_q = -np.asarray(D.gaussian_nll(x, mu_q, lq))
    log_p = -np.asarray(D.gaussian_nll(x, mu_p, lp))
    terms = log_q - log_p
    se = terms.std() / np.sqrt(n)
    closed = float(D.gaussian_kl(mu_q, lq, mu_p, lp))
    assert abs(closed - terms.mean()) < 4 * se, (closed, terms.mean(), se)
    # The library's own estimator agrees too.
    mc = D.monte_carlo_kl(jax.random.PRNGKey(seed), mu_q, lq, mu_p, lp, 200_000)
    assert abs(float(mc) - closed) < 4 * terms.std() / np.sqrt(200_000)


_floats = st.floats(-5.0, 5.0, allow_nan=False, width=32)
_logs = st.floats(-6.5, 3.0, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(_floats, _logs, _floats, _logs)
def test_kl_and_regulariser_are_non_negative(mu_q, lq, mu_p, lp):
    kl = float(D.gaussian_kl(mu_q, lq, mu_p, lp))
    reg = float(D.log_scale_regularizer(lq, lp))
    assert kl >= -1e-6
    assert reg >= 0.0
    assert kl + 4.0 * reg >= -1e-6  # KL_reg


@settings(max_examples=100, deadline=None)
@given(_floats, _logs)
def test_kl_and_regulariser_are_exactly_zero_for_equal_distributions(mu, log_s):
    assert float(D.gaussian_kl(mu, log_s, mu, log_s)) == 0.0
    assert float(D.log_scale_regularizer(log_s, log_s)) == 0.0


@settings(max_examples=50, deadline=None)
@given(_floats, _logs, _floats, _logs)
def test_kl_is_positive_when_distributions_differ(mu_q, lq, mu_p, lp):
    if abs(mu_q - mu_p) > 1e-2 or abs(lq - lp) > 1e-2:
        assert float(D.gaussian_kl(mu_q, lq, mu_p, lp)) > 0.0


def _kl_textbook(mu_q, lq, mu_p, lp):
    """REFERENCE's formula, literally: log(sp/sq) + (sq^2 - sp^2 + (mp - mq)^2) / (2 sp^2)."""
    sq, sp = jnp.exp(lq), jnp.exp(lp)
    return jnp.log(sp / sq) + (sq**2 - sp**2 + (mu_p - mu_q) ** 2) / (2 * sp**2)


def test_kl_gradient_matches_the_textbook_formula_and_its_derivation():
    rng = np.random.default_rng(0)
    args = [jnp.asarray(v, jnp.float32) for v in (rng.normal(), -0.7, rng.normal(), 0.4)]
    ours = jax.grad(D.gaussian_kl, argnums=(0, 1, 2, 3))(*args)
    textbook = jax.grad(_kl_textbook, argnums=(0, 1, 2, 3))(*args)
    np.testing.assert_allclose(ours, textbook, rtol=1e-5)
    # By hand: with r = sq^2/sp^2 and d = (mp - mq)/sp,
    # dKL/dmq = -d/sp, dKL/dlq = r - 1, dKL/dmp = d/sp, dKL/dlp = 1 - r - d^2.
    mq, lq, mp, lp = (float(a) for a in args)
    sp = np.exp(lp)
    r, d = np.exp(2 * (lq - lp)), (mp - mq) / sp
    np.testing.assert_allclose(ours, [-d / sp, r - 1, d / sp, 1 - r - d**2], rtol=1e-5)


def test_floors_bound_the_kl_of_a_collapsed_student():
    # A student log-scale of -50 is read as -7: the KL stays finite and its gradient with
    # respect to the collapsed log-scale is zero (the floor is a clamp, as in the paper).
    kl, g = jax.value_and_grad(D.gaussian_kl, argnums=1)(0.0, -50.0, 0.0, 0.0)
    assert np.isfinite(float(kl)) and float(kl) == pytest.approx(
        float(D.gaussian_kl(0.0, -7.0, 0.0, 0.0))
    )
    assert float(g) == 0.0
