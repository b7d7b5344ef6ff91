"""ClariNet Gaussian IAF student and its distillation from the Gaussian WaveNet teacher
(Ping, Peng & Chen 2018, section 3.3, Algorithm 1).

The student maps white noise z ~ N(0, I) ``[B, T]`` to audio in one parallel pass through
``flows`` inverse autoregressive flows. Flow i is a WaveNet over its input z^(i-1) (causal,
filter size 3) whose output at t depends only on z_<t; it emits (mu_t, log sigma_t) and maps
z_t -> z_t * sigma_t + mu_t. The composition is again Gaussian given z: Algorithm 1
accumulates mu_q <- mu_q * sigma + mu and log sigma_q <- log sigma_q + log sigma (in
log-scale), so q(x_t | z_<t) = N(mu_q, sigma_q^2) is known in closed form per sample.

Causality: a flow reads its input shifted right by one sample (a zero first), so its output
at t sees z_0..z_{t-1} and the conditioning. (ksw0306/ClariNet instead drops sample 0 and
re-zeros it after every flow; the shift keeps all T samples and the same dependence.)

Distillation objectives (``model.objective``), per sample t >= 1, averaged; the teacher's
distribution p(x_t | x_<t) is its output at t - 1 on the student's own sample x:

* ``reverse``      KL(q || p), closed form (tts_jax.distributions.gaussian_kl);
* ``reverse_reg``  KL(q || p) + lambda (log sigma_p - log sigma_q)^2;
* ``forward_reg``  KL(p || q) + the same regulariser;
* ``reverse_mc``   Monte-Carlo KL(q || p) from ``mc_samples`` draws of q per sample, the
                   parallel-WaveNet estimator the closed form replaces;

each plus ``stft_weight`` x the STFT-magnitude frame loss against the recorded audio.

Which gradients flow: the teacher's parameters are constants (``stop_gradient``); the
student's sample x is differentiated *through* the teacher (p depends on x_<t), as in the paper
and ksw0306 (reparameterisation). The conditioner (mel upsampler) is copied from the teacher
at initialisation; with ``model.freeze_conditioner`` its gradient is stopped too.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tts_jax import audio as audio_lib
from tts_jax import distributions as D
from tts_jax.config import ModelConfig
from tts_jax.errors import UserError
from tts_jax.models.wavenet.model import CausalConv, ConditionUpsampler, Dense, ResidualBlock

OBJECTIVES = ("reverse", "reverse_reg", "forward_reg", "reverse_mc")


@dataclasses.dataclass(frozen=True)
class ClariNetConfig(ModelConfig):
    """``config.model`` of a ClariNet distillation run; the defaults are the paper's student
    (6 flows x 10 layers, 128 channels, filter 3) and objective (KL(q || p) with the
    log-scale regulariser, plus the STFT frame loss)."""

    teacher_workdir: str = ""  # a trained wavenet run (experiments/wavenet.py)
    flows: int = 6
    student_layers: int = 10
    student_channels: int = 128  # residual, gate and skip channels alike
    student_kernel_size: int = 3
    student_front_kernel: int = 32
    objective: str = "reverse_reg"  # reverse | reverse_reg | forward_reg | reverse_mc
    reg_weight: float = 4.0  # lambda of the log-scale regulariser
    mc_samples: int = 1  # draws per sample for reverse_mc
    stft_weight: float = 1.0  # STFT frame loss against the recording (0 switches it off)
    log_scale_min: float = -7.0  # teacher's floor
    student_log_scale_min: float = -7.0
    freeze_conditioner: bool = True  # no gradient into the copied mel upsampler


class IAFFlow(nn.Module):
    """One Gaussian IAF: z ``[B, T]``, conditioning ``[B, T, M]`` -> (mu, log_scale) ``[B, T]``
    with (mu_t, log_scale_t) a function of z_<t only."""

    layers: int
    residual_channels: int
    gate_channels: int
    skip_channels: int
    kernel_size: int
    front_kernel: int

    @nn.compact
    def __call__(self, z, cond):
        shifted = jnp.pad(z, ((0, 0), (1, 0)))[:, :-1]  # input t holds z_{t-1}
        h = nn.relu(CausalConv(self.residual_channels, self.front_kernel)(shifted[..., None]))
        skip = 0.0
        for i in range(self.layers):
            block = ResidualBlock(
                self.residual_channels,
                self.gate_channels,
                self.skip_channels,
                self.kernel_size,
                2**i,
            )
            h, s = block(h, cond)
            skip = skip + s
        out = Dense(self.skip_channels)(nn.relu(skip))
        # Zero-initialised last layer: every flow starts as the identity (mu 0, sigma 1).
        out = nn.Dense(2, kernel_init=nn.initializers.zeros)(nn.relu(out))
        return out[..., 0], out[..., 1]


class Student(nn.Module):
    """z ``[B, T]``, normalised mel ``[B, T / hop, M]`` -> (x, mu_q, log_scale_q) ``[B, T]``.
    The fields are :class:`ClariNetConfig`'s ``flows`` and ``student_*``, but
    ``upsample_strides``: the teacher's (its conditioner is a copy of the teacher's)."""

    flows: int
    layers: int
    residual_channels: int
    gate_channels: int
    skip_channels: int
    kernel_size: int
    front_kernel: int
    upsample_strides: tuple[int, ...]

    def setup(self):
        self.upsampler = ConditionUpsampler(tuple(self.upsample_strides))
        self.iafs = [
            IAFFlow(
                self.layers,
                self.residual_channels,
                self.gate_channels,
                self.skip_channels,
                self.kernel_size,
                self.front_kernel,
            )
            for _ in range(self.flows)
        ]

    def __call__(self, z, mel):
        return self.transform(z, self.upsampler(mel))

    def upsample(self, mel):
        return self.upsampler(mel)

    def transform(self, z, cond):
        """Algorithm 1: returns x and the accumulated (mu_q, log_scale_q) of q(x_t | z_<t)."""
        mu_q, log_q = jnp.zeros_like(z), jnp.zeros_like(z)
        for flow in self.iafs:
            mu, log_s = flow(z, cond)
            z = z * jnp.exp(log_s) + mu
            mu_q = mu_q * jnp.exp(log_s) + mu
            log_q = log_q + log_s
        return z, mu_q, log_q

    def flow_maps(self, z, cond):
        """Every flow's (mu, log_scale) along the way (for tests of the composition)."""
        maps = []
        for flow in self.iafs:
            mu, log_s = flow(z, cond)
            maps.append((z, mu, log_s))
            z = z * jnp.exp(log_s) + mu
        return maps


def stft_config(sample_rate: int) -> audio_lib.MelConfig:
    """The frame loss's STFT: FFT 2048, 50 ms Hann window, 12.5 ms shift (paper, at 24 kHz),
    the window and shift scaled to ``sample_rate``."""
    return audio_lib.MelConfig(
        sample_rate=sample_rate,
        n_fft=2048,
        hop_length=round(0.0125 * sample_rate),
        win_length=round(0.05 * sample_rate),
        fmax=None,
    )


def stft_loss(x, y, cfg: audio_lib.MelConfig):
    """Mean squared difference of STFT magnitudes ``|STFT(x)| - |STFT(y)|``."""
    return jnp.mean(
        jnp.square(
            audio_lib.magnitude(audio_lib.stft(x, cfg))
            - audio_lib.magnitude(audio_lib.stft(y, cfg))
        )
    )


def distillation_terms(config, mu_q, log_q, mu_p, log_p, rng, monte_carlo: bool | None = None):
    """Per-batch means of every objective's ingredients; mu/log ``[B, T']`` aligned per sample.
    The Monte-Carlo KL (``kl_reverse_mc``) is drawn when ``monte_carlo``, by default when
    ``model.objective`` is ``reverse_mc`` (a stack whose runs mix objectives draws it for all)."""
    m = ClariNetConfig.from_config(config.model)
    fq, fp = m.student_log_scale_min, m.log_scale_min
    lq, lp = D.bound(log_q, fq), D.bound(log_p, fp)
    reverse = jnp.mean(D.gaussian_kl(mu_q, lq, mu_p, lp, min(fq, fp)))
    forward = jnp.mean(D.gaussian_kl(mu_p, lp, mu_q, lq, min(fq, fp)))
    reg = jnp.mean(D.log_scale_regularizer(lq, lp, min(fq, fp)))
    out = {"kl_reverse": reverse, "kl_forward": forward, "log_scale_reg": reg}
    if monte_carlo is None:
        monte_carlo = m.objective == "reverse_mc"
    if monte_carlo:
        out["kl_reverse_mc"] = jnp.mean(
            D.monte_carlo_kl(rng, mu_q, lq, mu_p, lp, m.mc_samples, min(fq, fp))
        )
    return out


# The terms a ClariNet loss weighs, in the order of objective_weights' vector: the four of
# distillation_terms, then the STFT frame loss.
TERMS = ("kl_reverse", "log_scale_reg", "kl_forward", "kl_reverse_mc", "stft")


def objective_weights(config) -> np.ndarray:
    """``model.objective`` and ``model.stft_weight`` as weights ``[len(TERMS)]`` over
    :data:`TERMS`: the loss is their weighted sum, so runs of different objectives are the
    same program with other numbers (a stacked sweep, tts_jax.train.stacked)."""
    m = ClariNetConfig.from_config(config.model)
    lam = m.reg_weight
    kl = {
        "reverse": (1.0, 0.0, 0.0, 0.0),
        "reverse_reg": (1.0, lam, 0.0, 0.0),
        "forward_reg": (0.0, lam, 1.0, 0.0),
        "reverse_mc": (0.0, 0.0, 0.0, 1.0),
    }.get(m.objective)
    if kl is None:
        raise UserError(f"model.objective must be one of {OBJECTIVES}, got {m.objective!r}")
    return np.asarray((*kl, m.stft_weight), np.float32)


def weighted_objective(weights, terms) -> tuple[jax.Array, jax.Array]:
    """``(distillation loss, total loss)`` for ``weights`` ``[len(TERMS)]`` over ``terms``
    (:func:`distillation_terms` plus ``"stft"``); a term absent from ``terms`` (the
    Monte-Carlo KL, when not drawn) must have weight 0 and is left out of the sum."""
    distill = sum(weights[i] * terms[k] for i, k in enumerate(TERMS[:-1]) if k in terms)
    return distill, distill + weights[-1] * terms["stft"]


def objective(config, terms) -> jax.Array:
    """``model.objective``'s distillation loss from :func:`distillation_terms` (the STFT
    term aside)."""
    weights = objective_weights(config)
    return weighted_objective(weights, dict(terms, stft=jnp.zeros(())))[0]
