"""ClariNet's text-to-wave model (Ping, Peng & Chen 2018, section 5), with Tacotron 2 as its
text-to-spectrogram part.

    ids [B, N] -> Tacotron2 (teacher forced)  -> mels, stop logits, alignments,
                                                 decoder states [B, S, D]   (S = frames / r)
    decoder states -> BridgeNet.frames        -> frame features h [B, F, C] (F = S * r)
                      (a dense layer splits each step's state into its r frames, then
                       non-causal ConvBlocks: Deep Voice 3's gated convolution block)
    h -> optional log-linear spectrogram head    [B, F, n_fft / 2 + 1]    (the paper's
                                                                            bridge-net output)
    h -> BridgeNet.upsample                   -> conditioning [B, F * hop, C]
                      (transposed 2-D convolutions, stride s, filter 2 s x 3, softsign)
    conditioning, audio -> Gaussian WaveNet   -> mean, log-scale of sample t + 1   [B, T]

Training cuts, per utterance, a window of ``window_steps`` decoder steps (``W * r * hop``
samples) inside its real length: the frame-rate part of the bridge-net runs on the whole
utterance (it is cheap), only that window is upsampled (plus the few frames its transposed
convolutions reach across the window's edges), and the WaveNet is teacher-forced on exactly
those samples. As in the WaveNet's own segment training, it sees silence before each window
and the window's first sample is not scored. Every loss is summed with weight one, as in the
paper: Tacotron 2's (mel MSEs, stop token, L2), the WaveNet's Gaussian NLL and the bridge-net's
log-linear spectrogram loss.

**Alignment.** Frame ``f`` of the bridge-net is the part of decoder step ``f // r`` the dense
split assigns to it; conditioning sample ``n`` lies in frame ``n // hop``. With filter length
= stride (``upsample_kernel_multiple=1``) and ``bridge_kernel=1`` sample ``n`` draws on frame
``n // hop`` alone (tests/test_text_to_wave.py checks the Jacobian's support). With the paper's
filters it draws on that frame and on neighbours up to :meth:`BridgeNet.reach_samples` away on
either side, symmetrically: the frame's own samples stay the centre of its influence.

**Where this departs from the paper.** The text-to-spectrogram part is Tacotron 2 (an LSTM
decoder with location-sensitive attention), not Deep Voice 3's convolutional encoder and
decoder, so the model is not fully convolutional and its decoder states are [LSTM output ++
attention context]. Tacotron 2 decodes r frames per step; the bridge's first layer splits each
step's state into r frame vectors (the paper's bridge-net starts from frame-rate states).
Upsampling strides are 16 x 16 (our hop of 256 at 22,050 Hz) instead of 15 x 20 (its hop of
300 at 24 kHz), with the same filter = 2 x stride rule. The bridge's width, depth and kernel
and the window length are ours (the values in experiments/clarinet_text_to_wave.py). The paper
trains every part from scratch; ``warm_start_dir`` and ``tacotron2_frozen_steps`` (ours) start
the Tacotron 2 part from a trained one and may hold it frozen at first (``train``).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from ml_collections import ConfigDict

from tts_jax.config import ModelConfig
from tts_jax.distributions import gaussian_nll
from tts_jax.errors import UserError
from tts_jax.models import tacotron2 as T2
from tts_jax.models import wavenet as W
from tts_jax.models.tacotron2.losses import linear_loss
from tts_jax.models.tacotron2.modules import sequence_mask

PARTS = ("tacotron2", "wavenet")  # sub-sections of config.model, each its family's own section
SQRT_HALF = 0.5**0.5


@dataclasses.dataclass(frozen=True)
class TextToWaveConfig(ModelConfig):
    """The bridge-net and the end-to-end training of a text-to-wave run: the top level of
    ``config.model``, beside ``config.model.tacotron2`` (Tacotron2Config's fields) and
    ``config.model.wavenet`` (WaveNetConfig's; its ``upsample_strides`` and ``mel_max``
    are unused here, the bridge-net upsamples)."""

    bridge_channels: int = 128  # C: width of the frame features and of the conditioning (ours)
    bridge_blocks: int = 6  # non-causal convolution blocks at the frame rate (ours)
    bridge_kernel: int = 5  # their filter length, odd (ours)
    bridge_dropout: float = 0.05  # the paper's dropout in every convolution block
    upsample_strides: tuple[int, ...] = (16, 16)  # product = hop (paper: 15 x 20 at hop 300)
    upsample_kernel_multiple: int = 2  # filter length in time = this x stride (paper: 2)
    window_steps: int = 43  # W decoder steps per utterance go to the WaveNet (ours)
    nll_weight: float = 1.0  # paper: every loss weighted one
    linear_weight: float = 1.0  # the bridge-net's log-linear spectrogram loss (0: no head)
    # Warm start (ours; the paper trains all three parts from scratch, end to end): a trained
    # Tacotron 2 (an exported model or a tacotron2 training workdir) as the text-to-spectrogram
    # part at step 0; "" none. Its sizes must be those of config.model.tacotron2.
    warm_start_dir: str = ""
    # Tacotron 2 stays exactly as loaded (parameters and batch statistics) for this many
    # steps while the bridge-net and the WaveNet train on its states; then all end to end.
    tacotron2_frozen_steps: int = 0

    @classmethod
    def section(cls, family: str = "text_to_wave") -> ConfigDict:
        """``config.model`` with the bridge's defaults and the two parts' own sections (each
        with its paper's defaults)."""
        c = super().section(family)
        c.tacotron2 = T2.Tacotron2Config.section("tacotron2")
        c.wavenet = W.WaveNetConfig.section("wavenet")
        return c

    @classmethod
    def from_config(cls, model: ConfigDict):
        m = super().from_config(ConfigDict({k: v for k, v in model.items() if k not in PARTS}))
        if m.tacotron2_frozen_steps < 0:
            raise UserError(
                f"model.tacotron2_frozen_steps must be >= 0, got {m.tacotron2_frozen_steps}"
            )
        if m.tacotron2_frozen_steps and not m.warm_start_dir:
            raise UserError(
                "model.tacotron2_frozen_steps holds Tacotron 2 as model.warm_start_dir loads "
                "it, and model.warm_start_dir is empty: give a trained Tacotron 2 "
                "(e.g. data/tacotron2_espeak) or set the frozen steps to 0"
            )
        return m


def part_config(config, name: str) -> ConfigDict:
    """``config`` with ``model`` replaced by its ``name`` part: a config of that family, which
    the part's own builders (Tacotron 2's, the WaveNet's) read unchanged."""
    return ConfigDict({**config.to_dict(), "model": config.model[name].to_dict()})


# --------------------------------------------------------------------------------------------
# Bridge-net
# --------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """Deep Voice 3's convolution block, non-causal: dropout, a 1-D convolution to 2C
    channels ('same' padding), gated linear unit ``a * sigmoid(b)``, residual connection
    scaled by sqrt(0.5). ``[B, F, C]`` and ``valid`` ``[B, F, 1]`` -> ``[B, F, C]``.

    Positions outside ``valid`` are zeroed before the convolution, exactly as its own padding,
    so a window of frames computes what the whole utterance computes there."""

    channels: int
    kernel_size: int
    dropout: float

    @nn.compact
    def __call__(self, x, valid, *, train: bool):
        h = nn.Dropout(self.dropout, deterministic=not train)(x * valid)
        h = nn.Conv(2 * self.channels, (self.kernel_size,), padding="SAME")(h)
        a, b = jnp.split(h, 2, axis=-1)
        return (x + a * jax.nn.sigmoid(b)) * SQRT_HALF


class UpsamplingBlock(nn.Module):
    """The bridge-net's upsampling layer: a single-channel transposed 2-D convolution over
    (time, channels) with stride ``(s, 1)`` and filter ``(m * s, 3)``, then softsign.
    ``[B, F, C]`` -> ``[B, F * s, C]``.

    Input unit ``j`` reaches output samples ``[j s - p, (j + 1) s + p)``, ``p = s (m - 1) / 2``:
    its own s samples and p more on either side (none when m = 1)."""

    stride: int
    kernel_multiple: int

    @nn.compact
    def __call__(self, x):
        s = self.stride
        k, p = self.kernel_multiple * s, self.pad(s, self.kernel_multiple)
        kernel = self.param("kernel", nn.initializers.kaiming_normal(), (k, 3, 1, 1))
        bias = self.param("bias", nn.initializers.zeros, (1,))
        # lax's convolution does not promote as jnp does: under bfloat16 compute a float32
        # input (from a float32 carry upstream) meets a bfloat16 kernel, so both go to the
        # promoted dtype (tts_jax/train/precision.py).
        dtype = jnp.result_type(x, kernel)
        # A transposed convolution: the input stuffed with s - 1 zeros between units,
        # correlated with the filter; k - 1 - p padding makes the output exactly F * s long.
        y = lax.conv_general_dilated(
            x[..., None].astype(dtype),
            kernel.astype(dtype),
            (1, 1),
            [(k - 1 - p, k - 1 - p), (1, 1)],
            lhs_dilation=(s, 1),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return jax.nn.soft_sign(y[..., 0] + bias)

    @staticmethod
    def pad(stride: int, kernel_multiple: int) -> int:
        if stride * (kernel_multiple - 1) % 2:
            raise UserError(
                f"an upsampling stride {stride} with filter {kernel_multiple} x stride overlaps "
                "its neighbours unevenly; use even strides or an odd multiple"
            )
        return stride * (kernel_multiple - 1) // 2


class BridgeNet(nn.Module):
    """Decoder states -> sample-rate conditioning for the WaveNet (ClariNet section 5.1).

    :meth:`frames`: states ``[B, S, D]`` -> frame features ``[B, S * r, C]``;
    :meth:`upsample`: frame features ``[B, F, C]`` -> conditioning ``[B, F * hop, C]``;
    ``__call__`` both. Frames beyond each utterance's length are zero at every layer's input.
    """

    channels: int
    reduction: int
    blocks: int
    kernel_size: int
    dropout: float
    upsample_strides: tuple[int, ...]
    kernel_multiple: int

    def setup(self):
        if self.kernel_size % 2 == 0:
            raise UserError(f"model.bridge_kernel must be odd (centred), got {self.kernel_size}")
        self.split_steps = nn.Dense(self.reduction * self.channels)
        self.conv_blocks = [
            ConvBlock(self.channels, self.kernel_size, self.dropout) for _ in range(self.blocks)
        ]
        self.upsampling = [UpsamplingBlock(s, self.kernel_multiple) for s in self.upsample_strides]

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_strides))

    def reach_samples(self) -> int:
        """How far beyond its own ``hop`` samples a frame feature reaches through the
        upsampling (each side): ``sum_l p_l * prod(strides after l)``."""
        reach, after = 0, 1
        for s in reversed(self.upsample_strides):
            reach += UpsamplingBlock.pad(s, self.kernel_multiple) * after
            after *= s
        return reach

    def halo_frames(self) -> int:
        """Frames a window needs on either side for its samples to be exactly the whole
        utterance's."""
        return math.ceil(self.reach_samples() / self.hop)

    def frames(self, states, frame_lengths, *, train: bool):
        """``[B, S, D]`` decoder states, ``[B]`` lengths in frames -> ``[B, S * r, C]``. Frame
        ``f`` comes from step ``f // r`` alone, then the convolution blocks mix neighbours
        (``blocks * (kernel - 1) / 2`` frames each side)."""
        b, s, _ = states.shape
        x = self.split_steps(states).reshape(b, s * self.reduction, self.channels)
        valid = sequence_mask(frame_lengths, x.shape[1])[..., None].astype(x.dtype)
        for block in self.conv_blocks:
            x = block(x, valid, train=train)
        return x * valid

    def upsample(self, h, valid):
        """Frame features ``[B, F, C]`` and ``valid`` ``[B, F]`` (True on real frames) ->
        ``[B, F * hop, C]``; sample ``n`` lies in frame ``n // hop``."""
        for layer in self.upsampling:
            h = layer(h * valid[..., None].astype(h.dtype))
            valid = jnp.repeat(valid, layer.stride, axis=1)
        return h * valid[..., None].astype(h.dtype)

    def __call__(self, states, frame_lengths, *, train: bool = False):
        h = self.frames(states, frame_lengths, train=train)
        return self.upsample(h, sequence_mask(frame_lengths, h.shape[1]))


# --------------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------------


def window_starts(rng, mel_lengths, reduction: int, window_steps: int):
    """``[B]`` first decoder step of each utterance's window, uniform over the starts that
    keep all ``window_steps`` inside its real steps (0 when it has fewer)."""
    steps = -(-mel_lengths // reduction)
    room = jnp.maximum(steps - window_steps, 0)
    u = jax.random.uniform(rng, mel_lengths.shape)
    return jnp.minimum((u * (room + 1)).astype(jnp.int32), room)


def cut(x, first, size: int):
    """Rows of ``x`` ``[B, T, ...]`` from ``first`` ``[B]`` (may be negative or run past T):
    ``[B, size, ...]``, zeros outside ``[0, T)``."""
    pad = [(0, 0), (size, size)] + [(0, 0)] * (x.ndim - 2)
    padded = jnp.pad(x, pad)
    return jax.vmap(lambda row, i: lax.dynamic_slice_in_dim(row, i + size, size, axis=0))(
        padded, first
    )


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class TextToWave(nn.Module):
    """Tacotron 2, the bridge-net and the Gaussian WaveNet, trained as one model.

    ``__call__`` is the training pass (teacher forcing, one window per utterance);
    :meth:`synthesis_frames` and :meth:`conditioning` the inference path, whose conditioning
    the WaveNet's cached sampler (:func:`tts_jax.models.wavenet.generate`) consumes.
    """

    tacotron2: T2.Tacotron2
    bridge: BridgeNet
    wavenet: W.WaveNet
    window_steps: int
    num_freq: int = 0  # > 0: the bridge's log-linear spectrogram head

    def setup(self):
        if self.num_freq:
            self.linear_head = nn.Dense(self.num_freq)

    @property
    def window_samples(self) -> int:
        return self.window_steps * self.tacotron2.cfg.reduction * self.bridge.hop

    def __call__(self, ids, id_lengths, mels, mel_lengths, audio, starts, *, train: bool):
        """ids ``[B, N]``, mels ``[B, T, M]`` (T a multiple of r), audio ``[B, T * hop]``,
        starts ``[B]`` (each window's first decoder step: :func:`window_starts`) -> Tacotron 2's
        outputs plus ``frames`` ``[B, T, C]``, ``bridge_linear`` ``[B, T, F]`` (with the head),
        and on the windows (``L = W * r * hop`` samples): ``conditioning`` ``[B, L, C]``,
        ``window_audio`` and ``window_mask`` (real samples) ``[B, L]``, the WaveNet's
        ``mean`` and ``log_scale`` ``[B, L]`` (of the sample after each)."""
        out = self.tacotron2(ids, id_lengths, mels, mel_lengths, train=train)
        h = self.bridge.frames(out["decoder_states"], mel_lengths, train=train)
        out["frames"] = h
        if self.num_freq:
            out["bridge_linear"] = self.linear_head(h)
        r, hop, halo = self.tacotron2.cfg.reduction, self.bridge.hop, self.bridge.halo_frames()
        first = starts * r - halo  # the window's frames and the halo around them
        size = self.window_steps * r + 2 * halo
        positions = first[:, None] + jnp.arange(size)[None, :]
        valid = (positions >= 0) & (positions < mel_lengths[:, None])
        cond = self.bridge.upsample(cut(h, first, size), valid)
        cond = cond[:, halo * hop : halo * hop + self.window_samples]
        sample0 = starts * r * hop
        x = cut(audio, sample0, self.window_samples)
        n = sample0[:, None] + jnp.arange(self.window_samples)[None, :]
        # The WaveNet computes in the audio's dtype (bfloat16 under mixed precision); the
        # conditioning comes out of Tacotron 2's float32 recurrent carry.
        mean, log_scale = self.wavenet.forward(x, cond.astype(x.dtype))
        out.update(
            conditioning=cond,
            window_audio=x,
            window_mask=(n < (mel_lengths * hop)[:, None]).astype(x.dtype),
            mean=mean,
            log_scale=log_scale,
        )
        return out

    def synthesis_frames(self, ids, id_lengths, *, max_decoder_steps: int):
        """Free-running Tacotron 2 (:meth:`Tacotron2.infer` with its decoder states) and the
        bridge's frame features of what it decoded: its outputs plus ``frames``
        ``[B, max_steps * r, C]`` (zero beyond ``lengths``)."""
        out = self.tacotron2.infer(
            ids, id_lengths, max_decoder_steps=max_decoder_steps, decoder_states=True
        )
        out["frames"] = self.bridge.frames(out["decoder_states"], out["lengths"], train=False)
        return out

    def conditioning(self, frames, frame_lengths):
        """The whole utterance's conditioning: frames ``[B, F, C]`` -> ``[B, F * hop, C]``."""
        return self.bridge.upsample(frames, sequence_mask(frame_lengths, frames.shape[1]))


def build_model(config) -> TextToWave:
    """The model a text-to-wave config describes; each part built by its own family."""
    m = TextToWaveConfig.from_config(config.model)
    tacotron2 = T2.build_model(part_config(config, "tacotron2"))
    bridge = BridgeNet(
        channels=m.bridge_channels,
        reduction=tacotron2.cfg.reduction,
        blocks=m.bridge_blocks,
        kernel_size=m.bridge_kernel,
        dropout=m.bridge_dropout,
        upsample_strides=tuple(m.upsample_strides),
        kernel_multiple=m.upsample_kernel_multiple,
    )
    if bridge.hop != config.data.hop_length:
        raise UserError(
            f"model.upsample_strides {tuple(m.upsample_strides)} multiply to {bridge.hop}, "
            f"not data.hop_length {config.data.hop_length}"
        )
    return TextToWave(
        tacotron2=tacotron2,
        bridge=bridge,
        wavenet=W.build_model(part_config(config, "wavenet")),
        window_steps=m.window_steps,
        num_freq=config.data.n_fft // 2 + 1 if m.linear_weight > 0 else 0,
    )


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def window_nll(outputs, valid, log_scale_min: float):
    """The WaveNet's Gaussian NLL (nats per sample) of every real sample of the windows but
    their first, each from the output at the sample before; ``valid`` ``[B]`` the real rows."""
    # In float32 whatever the compute dtype (bfloat16 log-scales lose too much).
    x, mean, log_scale, mask = (
        outputs[k].astype(jnp.float32) for k in ("window_audio", "mean", "log_scale", "window_mask")
    )
    nll = gaussian_nll(x[:, 1:], mean[:, :-1], log_scale[:, :-1], log_scale_min)
    mask = mask[:, 1:] * valid.astype(jnp.float32)[:, None]
    return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def losses(outputs, batch, params, config, step=0) -> tuple[jax.Array, dict]:
    """Total loss and its terms: Tacotron 2's (:func:`tts_jax.models.tacotron2.losses`, its
    L2 term over its own parameters), ``nll_weight`` x the windows' NLL and, with the head,
    ``linear_weight`` x the bridge's log-linear spectrogram loss (Tacotron 2's
    :func:`linear_loss`: L1, half of it on bins below 2 kHz)."""
    m = TextToWaveConfig.from_config(config.model)
    t2 = T2.Tacotron2Config.from_config(config.model.tacotron2)
    floor = W.WaveNetConfig.from_config(config.model.wavenet).log_scale_min
    sample_rate = config.data.sample_rate
    total, terms = T2.losses(outputs, batch, params["tacotron2"], t2, sample_rate, step)
    terms["nll"] = window_nll(outputs, batch["valid"], floor)
    total = total + m.nll_weight * terms["nll"]
    if "bridge_linear" in outputs:
        mask = batch["mel_mask"] * batch["valid"].astype(jnp.float32)[:, None]
        pred = outputs["bridge_linear"]
        terms["bridge_linear"] = linear_loss(
            pred, batch["linears"], mask, sample_rate, pred.shape[-1]
        )
        total = total + m.linear_weight * terms["bridge_linear"]
    return total, terms
