"""Single-Gaussian densities and divergences of the Gaussian WaveNet teacher and the ClariNet
student (Ping, Peng & Chen 2018). Everything is elementwise over ``[B, T]`` (or any shape);
callers average. Log-scales are lower-bounded (``log_scale_min``, -7 by default, as the paper)
before use, so a collapsing sigma cannot produce an unbounded loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

LOG_SCALE_MIN = -7.0
_HALF_LOG_2PI = 0.5 * float(np.log(2 * np.pi))


def bound(log_scale, log_scale_min: float = LOG_SCALE_MIN):
    return jnp.maximum(log_scale, log_scale_min)


def gaussian_nll(x, mean, log_scale, log_scale_min: float = LOG_SCALE_MIN):
    """-log N(x; mean, exp(log_scale)^2), the teacher's training loss per sample."""
    log_scale = bound(log_scale, log_scale_min)
    z = (x - mean) * jnp.exp(-log_scale)
    return _HALF_LOG_2PI + log_scale + 0.5 * jnp.square(z)


def gaussian_kl(mu_q, log_scale_q, mu_p, log_scale_p, log_scale_min: float = LOG_SCALE_MIN):
    """Closed-form KL(q || p) of two Gaussians (ClariNet eq. 5):

        log(sigma_p / sigma_q) + (sigma_q^2 - sigma_p^2 + (mu_p - mu_q)^2) / (2 sigma_p^2)

    written with ratios of exponentials of log-scale differences, which stay finite for
    bounded log-scales."""
    lq, lp = bound(log_scale_q, log_scale_min), bound(log_scale_p, log_scale_min)
    ratio = jnp.exp(2.0 * (lq - lp))  # sigma_q^2 / sigma_p^2
    mean_term = jnp.square((mu_p - mu_q) * jnp.exp(-lp))
    return lp - lq + 0.5 * (ratio - 1.0 + mean_term)


def log_scale_regularizer(log_scale_q, log_scale_p, log_scale_min: float = LOG_SCALE_MIN):
    """(log sigma_p - log sigma_q)^2, ClariNet's regulariser (weighted by lambda = 4)."""
    return jnp.square(bound(log_scale_p, log_scale_min) - bound(log_scale_q, log_scale_min))


def monte_carlo_kl(
    rng, mu_q, log_scale_q, mu_p, log_scale_p, num_samples: int, log_scale_min=LOG_SCALE_MIN
):
    """Estimate of KL(q || p) from ``num_samples`` draws x ~ q per element: the mean of
    log q(x) - log p(x) (parallel WaveNet's estimator; unbiased, with variance)."""
    lq = bound(log_scale_q, log_scale_min)
    eps = jax.random.normal(rng, (num_samples, *jnp.shape(mu_q)))
    x = mu_q + jnp.exp(lq) * eps
    log_q = -gaussian_nll(x, mu_q, lq, log_scale_min)
    log_p = -gaussian_nll(x, mu_p, log_scale_p, log_scale_min)
    return jnp.mean(log_q - log_p, axis=0)
