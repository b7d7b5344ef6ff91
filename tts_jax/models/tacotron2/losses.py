"""Tacotron 2's losses: masked mel MSEs, the weighted stop-token loss and L2 regularisation
(as Rayhane-mamah/Tacotron-2 has them), Tacotron 1's linear-spectrogram L1, and Tachibana et
al. 2017's guided attention, an optional prior towards a diagonal alignment."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tts_jax.models.tacotron2.model import Tacotron2Config
from tts_jax.models.tacotron2.modules import sequence_mask


def masked_mse(pred, target, mask):
    """Mean squared error over real frames (``mask`` [B, T]) and all bins."""
    err = jnp.sum(jnp.square(pred - target), axis=-1) * mask
    return jnp.sum(err) / (jnp.maximum(jnp.sum(mask), 1.0) * pred.shape[-1])


def weighted_stop_loss(logits, targets, mask, pos_weight: float = 1.0):
    """Sigmoid cross-entropy with positives weighted by ``pos_weight``, averaged over ``mask``
    (as tf.nn.weighted_cross_entropy_with_logits)."""
    log_p = jax.nn.log_sigmoid(logits)
    log_not_p = jax.nn.log_sigmoid(-logits)
    losses = -(pos_weight * targets * log_p + (1.0 - targets) * log_not_p)
    return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def l2_regularization(params, weight: float):
    """``weight * sum(w^2) / 2`` over every parameter except biases (tf.nn.l2_loss, as
    Rayhane-mamah/Tacotron-2). Included: embedding, LSTM and dense kernels, and batch-norm
    scales (its TF code also regularises BN gammas: only names containing 'bias' are excluded)."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    total = sum(
        jnp.sum(jnp.square(x))
        for path, x in leaves
        if "bias" not in jax.tree_util.keystr(path).lower()
    )
    return weight * 0.5 * total


def linear_loss(pred, target, mask, sample_rate: int, num_freq: int):
    """0.5 * L1 over all bins + 0.5 * L1 over bins below 2 kHz (low frequencies matter most)."""
    n_low = int(2000 / (sample_rate * 0.5) * num_freq)
    l1 = jnp.abs(pred - target) * mask[..., None]
    denom = jnp.maximum(jnp.sum(mask), 1.0)
    return 0.5 * jnp.sum(l1) / (denom * num_freq) + 0.5 * jnp.sum(l1[..., :n_low]) / (denom * n_low)


def guided_attention_weights(text_lengths, step_lengths, max_text: int, max_steps: int, g: float):
    """W [B, S, N] of diagonal guided attention (Tachibana et al. 2017, eq. 4):
    ``W_tn = 1 - exp(-(n / N - t / T)^2 / (2 g^2))`` for decoder step t < T and symbol n < N
    of each utterance, 0 elsewhere. T counts decoder steps (frames / r), not frames."""
    n = jnp.arange(max_text)[None, None, :] / text_lengths[:, None, None]
    t = jnp.arange(max_steps)[None, :, None] / step_lengths[:, None, None]
    w = 1.0 - jnp.exp(-jnp.square(n - t) / (2.0 * g * g))
    inside = (
        sequence_mask(step_lengths, max_steps)[:, :, None]
        & sequence_mask(text_lengths, max_text)[:, None, :]
    )
    return w * inside, inside


def guided_attention_loss(alignments, text_lengths, step_lengths, g: float, valid=None):
    """Mean of ``A_tn * W_tn`` over the real (step, symbol) cells of every valid utterance
    (Tachibana et al. 2017: the expectation over n and t). alignments [B, S, N]; 0 when every
    step attends where the diagonal says."""
    b, s, n = alignments.shape
    w, inside = guided_attention_weights(text_lengths, step_lengths, n, s, g)
    if valid is not None:
        inside = inside & valid[:, None, None]
    cells = inside.astype(alignments.dtype)
    return jnp.sum(alignments * w * cells) / jnp.maximum(jnp.sum(cells), 1.0)


def guided_attention_scale(cfg: Tacotron2Config, step):
    """The guided-attention weight at ``step``: ``guided_attention_weight``, halved every
    ``guided_attention_half_life`` steps when that is > 0 (the prior is needed to find
    the alignment, not to keep it)."""
    weight = cfg.guided_attention_weight
    if cfg.guided_attention_half_life > 0:
        weight = weight * 0.5 ** (step / cfg.guided_attention_half_life)
    return weight


def losses(
    outputs, batch, params, cfg: Tacotron2Config, sample_rate: int, step=0
) -> tuple[jax.Array, dict]:
    """Total loss and its terms; ``cfg`` the model's settings, ``step`` the
    optimiser step (for the guided-attention decay).

    Mel MSEs are masked to real frames. The stop loss is masked to real frames too
    (docs/REFERENCE.md), or, with ``stop_loss_on_padding``, also covers each batch's padded
    frames (target 1), as Rayhane-mamah's default ``mask_decoder=False`` and NVIDIA's code do:
    many more positive examples, which teaches small models to stop sooner.
    """
    valid = batch["valid"].astype(jnp.float32)[:, None]
    mask = batch["mel_mask"] * valid
    before = masked_mse(outputs["mel_before"], batch["mels"], mask)
    after = masked_mse(outputs["mel_after"], batch["mels"], mask)
    stop_mask = (jnp.ones_like(mask) * valid) if cfg.stop_loss_on_padding else mask
    stop = weighted_stop_loss(
        outputs["stop_logits"], batch["stop_targets"], stop_mask, cfg.stop_pos_weight
    )
    reg = l2_regularization(params, cfg.l2_weight)
    terms = {"before": before, "after": after, "stop": stop, "regularization": reg}
    if cfg.guided_attention_weight > 0:
        steps = (batch["mel_lengths"] + cfg.reduction - 1) // cfg.reduction
        attention = guided_attention_loss(
            outputs["alignments"],
            batch["id_lengths"],
            steps,
            cfg.guided_attention_g,
            batch["valid"],
        )
        terms["guided_attention"] = guided_attention_scale(cfg, step) * attention
    if "linear" in outputs:
        terms["linear"] = linear_loss(
            outputs["linear"], batch["linears"], mask, sample_rate, outputs["linear"].shape[-1]
        )
    return sum(terms.values()), terms
