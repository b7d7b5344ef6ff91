"""VQ-VAE (van den Oord et al. 2017) and VQ-VAE-2 (Razavi et al. 2019) on log-mel frames.

An encoder maps a log-mel ``[B, T, n_mels]`` to ``[B, T / 2^d, D]``; each vector is replaced
by its nearest codebook entry (K x D); a decoder reconstructs the mel. The quantiser passes
gradients straight through (z_q = z_e + sg(e - z_e)); the loss is

    reconstruction + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2        (beta = 0.25)

or, with the EMA codebook (``ema=True``), reconstruction + beta x commitment, the codebook
following exponential moving averages of its assigned vectors (decay 0.99). Under data
parallelism the EMA statistics are sums over the *global* batch: inside ``jax.jit`` with the
batch sharded over the mesh, the sum is an all-reduce, so every device holds the same
codebook (tests/test_vqvae.py checks 4 devices against 1).

VQ-VAE-2 adds a top level: the bottom encoder's output is encoded again (x2 coarser) and
quantised; the top code, decoded back to the bottom resolution, conditions the bottom
quantiser's input; the decoder reads both levels. Audio comes back through any vocoder of
the project (the ``evaluate`` entry is given one).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tts_jax import audio
from tts_jax.config import ModelConfig
from tts_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class VQVAEConfig(ModelConfig):
    """``config.model`` of a VQ-VAE run: van den Oord et al.'s sizes on mels, the one place
    they are written; experiments/vqvae.py changes what its variants need."""

    levels: int = 1  # 1: VQ-VAE, 2: VQ-VAE-2
    hidden: int = 256
    num_codes: int = 512  # K
    code_dim: int = 64  # D
    downsample: int = 2  # frames per code: 2^downsample
    ema: bool = False  # codebook by exponential moving averages instead of its loss
    beta: float = 0.25  # commitment weight
    mel_max: float = 3.0  # log-mel value mapped to 1 (the log floor maps to 0): the model's input

    @property
    def frames_multiple(self) -> int:
        """Frames per code of the coarsest level (VQ-VAE-2's top level halves the rate once
        more): mel lengths are padded to a multiple of it."""
        return 2 ** (self.downsample + self.levels - 1)


class VectorQuantizer(nn.Module):
    """``z_e [..., D] -> (z_q [..., D], info)``; info has ``indices``, ``codebook_loss``,
    ``commitment_loss``, ``counts`` (codes' uses, ``[K]``) and ``perplexity`` (exp of the
    entropy of the code histogram). ``mask`` ``[...]`` (1 = a real frame) keeps padding out
    of the losses, the histogram and the EMA statistics: a batch padded to a bucket would
    otherwise spend a code on silence-padding frames and count it in the perplexity."""

    num_codes: int
    code_dim: int
    ema: bool
    decay: float = 0.99
    eps: float = 1e-5

    @nn.compact
    def __call__(self, z_e, mask=None, *, train: bool = False):
        k, d = self.num_codes, self.code_dim
        if z_e.shape[-1] != d:
            raise ValueError(f"z_e has {z_e.shape[-1]} channels; the codebook has {d}")
        init = nn.initializers.uniform(scale=2.0 / k)  # U(0, 2/K) shifted below: U(-1/K, 1/K)
        if self.ema:
            codebook = self.variable(
                "vq_stats", "codebook", lambda: init(self.make_rng("params"), (k, d)) - 1.0 / k
            )
            cluster_size = self.variable("vq_stats", "cluster_size", jnp.zeros, (k,))
            ema_sum = self.variable("vq_stats", "ema_sum", lambda: codebook.value)
            embedding = codebook.value
        else:
            embedding = self.param("codebook", lambda key, s: init(key, s) - 1.0 / k, (k, d))

        flat = z_e.reshape(-1, d)
        w = jnp.ones(flat.shape[:1], flat.dtype) if mask is None else mask.reshape(-1)
        w = w.astype(flat.dtype)
        total = jnp.maximum(jnp.sum(w), 1.0)
        indices = nearest_code(flat, embedding)
        onehot = jax.nn.one_hot(indices, k, dtype=flat.dtype) * w[:, None]
        quantized = embedding[indices]

        def masked_mse(a, b):
            return jnp.sum(jnp.sum(jnp.square(a - b), axis=1) * w) / (total * d)

        commitment = masked_mse(flat, jax.lax.stop_gradient(quantized))
        counts = jnp.sum(onehot, axis=0)  # global over the batch, even when sharded
        if self.ema:
            codebook_loss = jnp.zeros((), flat.dtype)  # the codebook is not trained by gradient
            if train and not self.is_initializing():
                sums = onehot.T @ jax.lax.stop_gradient(flat)
                new = ema_update(
                    cluster_size.value, ema_sum.value, counts, sums, self.decay, self.eps
                )
                cluster_size.value, ema_sum.value, codebook.value = new
        else:
            codebook_loss = masked_mse(jax.lax.stop_gradient(flat), quantized)

        z_q = flat + jax.lax.stop_gradient(quantized - flat)  # straight-through estimator
        probs = counts / total
        perplexity = jnp.exp(-jnp.sum(probs * jnp.log(probs + 1e-10)))
        info = {
            "indices": indices.reshape(z_e.shape[:-1]),
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment,
            "counts": counts,
            "perplexity": perplexity,
        }
        return z_q.reshape(z_e.shape), info


def nearest_code(flat, embedding):
    """argmin_k ||a - e_k||^2 through ||a||^2 - 2 a.e_k + ||e_k||^2 (one matrix product).
    ``flat [N, D]``, ``embedding [K, D]`` -> ``[N]``."""
    distances = (
        jnp.sum(jnp.square(flat), axis=1, keepdims=True)
        - 2.0 * flat @ embedding.T
        + jnp.sum(jnp.square(embedding), axis=1)[None, :]
    )
    return jnp.argmin(distances, axis=1)


def ema_update(cluster_size, ema_sum, counts, sums, decay: float, eps: float):
    """One EMA step of the codebook (VQ-VAE appendix): N_k <- d N_k + (1 - d) n_k,
    m_k <- d m_k + (1 - d) sum of the vectors assigned to k, e_k = m_k / N_k with N_k
    Laplace-smoothed so that an unused code never divides by zero."""
    cluster_size = decay * cluster_size + (1.0 - decay) * counts
    ema_sum = decay * ema_sum + (1.0 - decay) * sums
    n = jnp.sum(cluster_size)
    smoothed = (cluster_size + eps) / (n + cluster_size.shape[0] * eps) * n
    return cluster_size, ema_sum, ema_sum / smoothed[:, None]


# ------------------------------------------------------------------------- encoder/decoder


class ResidualStack(nn.Module):
    """``layers`` x [ReLU, conv3 (hidden // 2), ReLU, conv1 (hidden)] with identity skips."""

    hidden: int
    layers: int = 2

    @nn.compact
    def __call__(self, x):
        for _ in range(self.layers):
            y = nn.Conv(self.hidden // 2, (3,))(nn.relu(x))
            x = x + nn.Conv(self.hidden, (1,))(nn.relu(y))
        return nn.relu(x)


class Encoder(nn.Module):
    """``[B, T, C] -> [B, T / 2^downsample, out]``: strided convs (kernel 4, stride 2), a
    conv 3, residual stack, 1x1 projection."""

    hidden: int
    out: int
    downsample: int

    @nn.compact
    def __call__(self, x):
        for _ in range(self.downsample):
            x = nn.relu(nn.Conv(self.hidden, (4,), strides=(2,), padding=[(1, 1)])(x))
        x = nn.Conv(self.hidden, (3,))(x)
        return nn.Conv(self.out, (1,))(ResidualStack(self.hidden)(x))


class Decoder(nn.Module):
    """``[B, T', C] -> [B, T' 2^upsample, out]``: conv 3, residual stack, transposed convs
    (kernel 4, stride 2) back to the frame rate."""

    hidden: int
    out: int
    upsample: int

    @nn.compact
    def __call__(self, x):
        x = ResidualStack(self.hidden)(nn.Conv(self.hidden, (3,))(x))
        for i in range(self.upsample):
            features = self.out if i == self.upsample - 1 else self.hidden
            x = nn.ConvTranspose(features, (4,), strides=(2,), padding="SAME")(x)
            if i < self.upsample - 1:
                x = nn.relu(x)
        if self.upsample == 0:
            x = nn.Conv(self.out, (3,))(x)
        return x


class VQVAE(nn.Module):
    """Log-mel ``[B, T, n_mels]`` (T a multiple of 2^downsample) -> (reconstruction, info)."""

    n_mels: int
    hidden: int
    num_codes: int
    code_dim: int
    downsample: int
    ema: bool

    @nn.compact
    def __call__(self, mels, mask=None, *, train: bool = False):
        """``mask`` ``[B, T]``: real frames (padding is kept out of the quantiser)."""
        z_e = Encoder(self.hidden, self.code_dim, self.downsample)(mels)
        code_mask = None if mask is None else mask[:, :: 2**self.downsample]
        z_q, info = VectorQuantizer(self.num_codes, self.code_dim, self.ema)(
            z_e, code_mask, train=train
        )
        recon = Decoder(self.hidden, self.n_mels, self.downsample)(z_q)
        info = {k: v for k, v in info.items()}
        info["losses"] = {
            "codebook": info.pop("codebook_loss"),
            "commit": info.pop("commitment_loss"),
        }
        return recon, info


class VQVAE2(nn.Module):
    """Two levels: bottom codes at T / 2^downsample, top codes at half that rate."""

    n_mels: int
    hidden: int
    num_codes: int
    code_dim: int
    downsample: int
    ema: bool

    @nn.compact
    def __call__(self, mels, mask=None, *, train: bool = False):
        """``mask`` ``[B, T]``: real frames (padding is kept out of the quantisers)."""
        d = self.downsample
        masks = (None, None) if mask is None else (mask[:, :: 2 ** (d + 1)], mask[:, :: 2**d])
        h_bottom = Encoder(self.hidden, self.hidden, self.downsample, name="enc_bottom")(mels)
        z_top = Encoder(self.hidden, self.code_dim, 1, name="enc_top")(h_bottom)
        q_top, info_top = VectorQuantizer(self.num_codes, self.code_dim, self.ema, name="vq_top")(
            z_top, masks[0], train=train
        )
        top_up = Decoder(self.hidden, self.code_dim, 1, name="dec_top")(q_top)
        z_bottom = nn.Conv(self.code_dim, (1,), name="pre_bottom")(
            jnp.concatenate([h_bottom, top_up], axis=-1)
        )
        q_bottom, info_bottom = VectorQuantizer(
            self.num_codes, self.code_dim, self.ema, name="vq_bottom"
        )(z_bottom, masks[1], train=train)
        top_for_dec = nn.ConvTranspose(
            self.code_dim, (4,), strides=(2,), padding="SAME", name="up_top"
        )(q_top)
        recon = Decoder(self.hidden, self.n_mels, self.downsample, name="dec")(
            jnp.concatenate([q_bottom, top_for_dec], axis=-1)
        )
        info = {
            "indices": {"top": info_top["indices"], "bottom": info_bottom["indices"]},
            "perplexity": info_bottom["perplexity"],
            "counts": info_bottom["counts"],
            "counts_top": info_top["counts"],
            "perplexity_top": info_top["perplexity"],
            "losses": {
                "codebook": info_top["codebook_loss"] + info_bottom["codebook_loss"],
                "commit": info_top["commitment_loss"] + info_bottom["commitment_loss"],
            },
        }
        return recon, info


def build_model(config) -> VQVAE | VQVAE2:
    """The model of a run's config: ``model.levels`` 1 is VQ-VAE, 2 VQ-VAE-2."""
    cfg = VQVAEConfig.from_config(config.model)
    cls = {1: VQVAE, 2: VQVAE2}.get(cfg.levels)
    if cls is None:
        raise UserError(f"model.levels must be 1 (VQ-VAE) or 2 (VQ-VAE-2), got {cfg.levels}")
    return cls(
        n_mels=config.data.n_mels,
        hidden=cfg.hidden,
        num_codes=cfg.num_codes,
        code_dim=cfg.code_dim,
        downsample=cfg.downsample,
        ema=cfg.ema,
    )


# ------------------------------------------------------------------------ features, loss


def mel_scale(config) -> tuple[float, float]:
    """(offset, span) of the affine map from natural-log mel to the model's features: the log
    floor goes to 0 and ``model.mel_max`` to 1. Unclipped, so it inverts exactly. Raw log-mels
    (about -11.5 to 2) put the encoder's outputs far from the codebook's U(-1/K, 1/K)
    initialisation, and training collapsed onto one code (perplexity 1.0 by step 50)."""
    lo = float(np.log(audio.MelConfig.from_config(config.data).log_floor))
    return lo, VQVAEConfig.from_config(config.model).mel_max - lo


def normalize(mel, config):
    """Natural-log mel ``[..., n_mels]`` -> the model's features (:func:`mel_scale`)."""
    lo, span = mel_scale(config)
    return (mel - lo) / span


def denormalize(x, config):
    """The model's features ``[..., n_mels]`` -> natural-log mel (:func:`mel_scale`)."""
    lo, span = mel_scale(config)
    return x * span + lo


def vq_loss(recon, target, mask, info, beta: float = VQVAEConfig.beta):
    """Masked MSE reconstruction + codebook + beta x commitment; ``recon``, ``target``
    ``[B, T, n_mels]``, ``mask`` ``[B, T]``. Returns (total, reconstruction)."""
    err = jnp.sum(jnp.square(recon - target), axis=-1) * mask
    reconstruction = jnp.sum(err) / (jnp.maximum(jnp.sum(mask), 1.0) * target.shape[-1])
    total = reconstruction + info["losses"]["codebook"] + beta * info["losses"]["commit"]
    return total, reconstruction
