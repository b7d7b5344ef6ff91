"""Alignment diagnostics of Tacotron 2's attention: how focused and how monotonic it is,
logged in training and reported by evaluation."""

from __future__ import annotations

import jax.numpy as jnp

from tts_jax.models.tacotron2.modules import sequence_mask


def alignment_focus(alignments, id_lengths, mel_lengths, reduction: int, valid):
    """Mean over real decoder steps of the largest attention weight (the diagonality score)."""
    steps = (mel_lengths + reduction - 1) // reduction
    step_mask = sequence_mask(steps, alignments.shape[1]) & valid[:, None]
    peak = jnp.max(alignments, axis=-1)
    return jnp.sum(peak * step_mask) / jnp.maximum(jnp.sum(step_mask), 1)


def alignment_monotonicity(alignments, mel_lengths, reduction: int, valid):
    """Fraction of consecutive real decoder steps whose attention argmax does not move back."""
    steps = (mel_lengths + reduction - 1) // reduction
    peak = jnp.argmax(alignments, axis=-1)  # [B, S]
    forward = (peak[:, 1:] >= peak[:, :-1]).astype(jnp.float32)
    pair_mask = sequence_mask(steps - 1, forward.shape[1]) & valid[:, None]
    return jnp.sum(forward * pair_mask) / jnp.maximum(jnp.sum(pair_mask), 1)
