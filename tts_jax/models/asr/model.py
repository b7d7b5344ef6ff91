"""A Conformer-CTC character recognizer (Gulati et al. 2020, arXiv 2005.08100; CTC: Graves et
al. 2006) with SpecAugment (Park et al. 2019, arXiv 1904.08779) and greedy decoding.

log-mel [B, T, n_mels] -> per-utterance mean/variance normalisation -> (training only)
SpecAugment -> convolutional subsampling (two 3x3 Conv2D + ReLU, frequency stride 2 each,
time strides ``time_strides``) -> linear to ``model_dim`` + sinusoidal positions -> Conformer
blocks -> linear to the CTC classes (blank + :data:`~tts_jax.text.transcripts.ALPHABET`).

**Outputs are characters**, not phonemes: the judge scores speech against the text a user
typed, and characters are that text (after :func:`~tts_jax.text.transcripts.normalize_transcript`).
A phoneme recognizer would score against espeak's transcription of the text, the very front
end that made the training audio and that one Tacotron 2 variant reads: a mistake of that
front end would then be invisible. Characters also give WER directly, with no lexicon.

Where this differs from the paper, and why:

* absolute sinusoidal positions added once after the subsampling, not Transformer-XL relative
  positions inside every attention: far simpler, and the utterances are short (a few seconds);
* layer norm, not batch norm, after the depthwise convolution: no statistics over padded
  frames, and training and inference compute the same thing;
* the depthwise kernel is odd (31, not 32) so that it is centred on its frame;
* the subsampling convolutions have their own channel count (``subsampling_channels``; the
  paper's is the model width): on a CPU the second 3x3 convolution at 144 channels would
  cost more than all the Conformer blocks, so experiments/asr.py:cpu gives them 32;
* the time reduction is configurable: the paper's 4x gives 40 ms frames for word pieces; a
  character needs an output frame of its own (two for a doubled letter) and espeak's corpus
  speaks 16.5 a second (5.3 of our 11.6 ms mel frames each), so experiments/asr.py:cpu
  reduces by 3.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tts_jax.config import ModelConfig
from tts_jax.text.transcripts import BLANK, NUM_CLASSES


@dataclasses.dataclass(frozen=True)
class ConformerCTCConfig(ModelConfig):
    """``config.model`` of a recognizer run. Defaults: Conformer (S) of Gulati et al. 2020
    (16 blocks of width 144, 4 heads) and SpecAugment's LibriSpeech policy with adaptive time
    masks (Park et al. 2019, 2020): experiments/asr.py:paper."""

    subsampling_channels: int = 144
    time_strides: tuple[int, ...] = (2, 2)  # one per subsampling Conv2D; total reduction: prod
    model_dim: int = 144
    num_blocks: int = 16
    num_heads: int = 4
    ffn_multiplier: int = 4
    conv_kernel: int = 31
    dropout: float = 0.1
    # SpecAugment: frequency masks of up to freq_mask_width bins; time masks of up to
    # min(time_mask_width, time_mask_ratio * length) frames. Masked values are the mean (0).
    freq_masks: int = 2
    freq_mask_width: int = 27
    time_masks: int = 10
    time_mask_width: int = 40
    time_mask_ratio: float = 0.05

    @property
    def time_reduction(self) -> int:
        return int(np.prod(self.time_strides))


def normalize_features(mels, lengths):
    """Per-utterance, per-bin mean and variance normalisation over the real frames.

    mels [B, T, M], lengths [B] -> [B, T, M], 0 on padding. It makes the recognizer blind to
    a level or a constant spectral tilt (another vocoder, another microphone)."""
    mask = (jnp.arange(mels.shape[1])[None, :] < lengths[:, None]).astype(mels.dtype)[..., None]
    n = jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
    mean = jnp.sum(mels * mask, axis=1, keepdims=True) / n
    var = jnp.sum(jnp.square(mels - mean) * mask, axis=1, keepdims=True) / n
    return (mels - mean) * jax.lax.rsqrt(var + 1e-5) * mask


def spec_augment(rng, x, lengths, cfg: ConformerCTCConfig):
    """SpecAugment's frequency and time masks (no time warping, which the paper found the
    least useful of the three) on normalised features x [B, T, M] with lengths [B]: masked
    values become 0, the features' mean. Widths and positions are drawn per utterance."""
    b, t, m = x.shape
    kfw, kf0, ktw, kt0 = jax.random.split(rng, 4)
    fw = jnp.floor(jax.random.uniform(kfw, (b, cfg.freq_masks)) * (cfg.freq_mask_width + 1))
    f0 = jnp.floor(jax.random.uniform(kf0, (b, cfg.freq_masks)) * (m - fw + 1))
    bins = jnp.arange(m)[None, None, :]
    freq = jnp.any((bins >= f0[..., None]) & (bins < (f0 + fw)[..., None]), axis=1)  # [B, M]
    longest = jnp.minimum(cfg.time_mask_width, jnp.floor(cfg.time_mask_ratio * lengths))
    tw = jnp.floor(jax.random.uniform(ktw, (b, cfg.time_masks)) * (longest[:, None] + 1))
    room = jnp.maximum(lengths[:, None] - tw + 1, 1)
    t0 = jnp.floor(jax.random.uniform(kt0, (b, cfg.time_masks)) * room)
    frames = jnp.arange(t)[None, None, :]
    time = jnp.any((frames >= t0[..., None]) & (frames < (t0 + tw)[..., None]), axis=1)
    return jnp.where(freq[:, None, :] | time[:, :, None], 0.0, x)


def subsampled_lengths(lengths, strides):
    """Frames left after 'SAME' convolutions of the given time strides: ceil(n / s) each."""
    for s in strides:
        lengths = -(-lengths // s)
    return lengths


def sinusoids(length: int, dim: int) -> np.ndarray:
    """Transformer positions [length, dim]: sin on the even, cos on the odd channels."""
    pos = np.arange(length)[:, None]
    freq = np.exp(-np.log(10000.0) * np.arange(0, dim, 2) / dim)[None, :]
    out = np.zeros((length, dim), np.float32)
    out[:, 0::2] = np.sin(pos * freq)
    out[:, 1::2] = np.cos(pos * freq)[:, : dim // 2]
    return out


class ConvSubsampling(nn.Module):
    """[B, T, M] -> [B, T / prod(time_strides), dim]: Conv2D 3x3 + ReLU per stride, frequency
    halved each time, then a linear map of (frequency x channels) to ``dim``."""

    channels: int
    time_strides: tuple[int, ...]
    dim: int

    @nn.compact
    def __call__(self, x, lengths):
        x = x[..., None]
        for s in self.time_strides:
            x = nn.relu(nn.Conv(self.channels, (3, 3), strides=(s, 2), padding="SAME")(x))
            lengths = subsampled_lengths(lengths, (s,))
            mask = jnp.arange(x.shape[1])[None, :] < lengths[:, None]
            x = x * mask[:, :, None, None]  # padding stays zero for the next convolution
        b, t, f, c = x.shape
        return nn.Dense(self.dim)(x.reshape(b, t, f * c)), lengths


class FeedForward(nn.Module):
    """Conformer's macaron half: LN -> dense x mult -> swish -> dropout -> dense -> dropout."""

    dim: int
    multiplier: int
    dropout: float

    @nn.compact
    def __call__(self, x, *, train: bool):
        y = nn.LayerNorm()(x)
        y = nn.swish(nn.Dense(self.dim * self.multiplier)(y))
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
        y = nn.Dense(self.dim)(y)
        return nn.Dropout(self.dropout, deterministic=not train)(y)


class ConvModule(nn.Module):
    """LN -> pointwise to 2 dim -> GLU -> depthwise conv (kernel k) -> LN -> swish ->
    pointwise -> dropout; padded frames are zeroed before the depthwise convolution."""

    dim: int
    kernel: int
    dropout: float

    @nn.compact
    def __call__(self, x, mask, *, train: bool):
        y = nn.LayerNorm()(x)
        y = nn.glu(nn.Dense(2 * self.dim)(y), axis=-1)
        y = y * mask[..., None]
        y = nn.Conv(self.dim, (self.kernel,), feature_group_count=self.dim, padding="SAME")(y)
        y = nn.swish(nn.LayerNorm()(y))
        y = nn.Dense(self.dim)(y)
        return nn.Dropout(self.dropout, deterministic=not train)(y)


class ConformerBlock(nn.Module):
    """x + FFN/2 -> + MHSA -> + Conv -> + FFN/2 -> LN (Gulati et al. 2020, eq. 1)."""

    dim: int
    heads: int
    ffn_multiplier: int
    kernel: int
    dropout: float

    @nn.compact
    def __call__(self, x, mask, *, train: bool):  # x [B, T, dim], mask [B, T] bool
        x = x + 0.5 * FeedForward(self.dim, self.ffn_multiplier, self.dropout)(x, train=train)
        y = nn.LayerNorm()(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.heads, dropout_rate=self.dropout, deterministic=not train
        )(y, y, mask=mask[:, None, None, :])  # every query sees the real frames only
        x = x + nn.Dropout(self.dropout, deterministic=not train)(y)
        x = x + ConvModule(self.dim, self.kernel, self.dropout)(x, mask, train=train)
        x = x + 0.5 * FeedForward(self.dim, self.ffn_multiplier, self.dropout)(x, train=train)
        return nn.LayerNorm()(x)


class ConformerCTC(nn.Module):
    cfg: ConformerCTCConfig

    @nn.compact
    def __call__(self, mels, lengths, *, train: bool):
        """mels [B, T, n_mels] (log-mels, any padding), lengths [B] -> (logits [B, T', K],
        output lengths [B]); K = blank + alphabet, T' = T / time reduction (rounded up).
        Training draws SpecAugment from the "specaug" stream and dropout from "dropout"."""
        cfg = self.cfg
        x = normalize_features(mels, lengths)
        if train:
            x = spec_augment(self.make_rng("specaug"), x, lengths, cfg)
        x, lengths = ConvSubsampling(cfg.subsampling_channels, cfg.time_strides, cfg.model_dim)(
            x, lengths
        )
        x = x + sinusoids(x.shape[1], cfg.model_dim)[None]
        x = nn.Dropout(cfg.dropout, deterministic=not train)(x)
        mask = jnp.arange(x.shape[1])[None, :] < lengths[:, None]
        for _ in range(cfg.num_blocks):
            x = ConformerBlock(
                cfg.model_dim, cfg.num_heads, cfg.ffn_multiplier, cfg.conv_kernel, cfg.dropout
            )(x, mask, train=train)
        return nn.Dense(NUM_CLASSES)(x), lengths


def label_repeats(labels, label_lengths):
    """Adjacent equal labels within each sequence [B, N] -> [B]: each needs a blank between
    its two frames, so CTC needs at least ``length + repeats`` frames."""
    n = labels.shape[1]
    same = (labels[:, 1:] == labels[:, :-1]) & (jnp.arange(1, n)[None, :] < label_lengths[:, None])
    return jnp.sum(same, axis=1)


def ctc_losses(logits, logit_lengths, labels, label_lengths):
    """Per-utterance CTC negative log-likelihoods [B] (``optax.ctc_loss``, blank 0) and a
    mask [B] of the utterances whose labels fit their frames (an utterance spoken too fast
    for the time reduction has no alignment; its loss would be ``optax``'s large constant).
    logits [B, T, K], labels [B, N] (ids >= 1, any padding)."""
    t, n = logits.shape[1], labels.shape[1]
    logit_pad = (jnp.arange(t)[None, :] >= logit_lengths[:, None]).astype(jnp.float32)
    label_pad = (jnp.arange(n)[None, :] >= label_lengths[:, None]).astype(jnp.float32)
    nll = optax.ctc_loss(logits, logit_pad, labels, label_pad, blank_id=BLANK)
    feasible = logit_lengths >= label_lengths + label_repeats(labels, label_lengths)
    return nll, feasible


def ctc_loss(logits, logit_lengths, labels, label_lengths, weights):
    """The training loss: summed NLL over summed label length (a per-character loss), over
    the feasible utterances with weight 1 (weights [B], e.g. the batch's "valid" rows).
    Returns ``(loss, feasible [B])``."""
    nll, feasible = ctc_losses(logits, logit_lengths, labels, label_lengths)
    w = weights * feasible
    loss = jnp.sum(nll * w) / jnp.maximum(jnp.sum(label_lengths * w), 1.0)
    return loss, feasible


def greedy_decode(logits, lengths):
    """Best path: argmax per frame, repeats merged, blanks removed. logits [B, T, K],
    lengths [B] -> (best [B, T] int32, keep [B, T] bool): the transcript of row b is
    ``best[b][keep[b]]``."""
    best = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    previous = jnp.pad(best, ((0, 0), (1, 0)), constant_values=-1)[:, :-1]
    real = jnp.arange(best.shape[1])[None, :] < lengths[:, None]
    return best, (best != BLANK) & (best != previous) & real


def build_model(config) -> ConformerCTC:
    return ConformerCTC(ConformerCTCConfig.from_config(config.model))
