"""Tacotron 2 (Shen et al. 2018, arXiv 1712.05884): characters -> mel spectrogram.

Blocks follow the paper and Rayhane-mamah/Tacotron-2 (docs/REFERENCE.md):

    ids [B, N] -> Embedding -> EncoderConvolutions (3 x conv5 + BN + ReLU + dropout)
               -> EncoderBiLSTM (zoneout, length-aware)              -> memory [B, N, 2U]
    per decoder step i (r frames each):
        Prenet(previous frame)                      (dropout stays on at inference)
        -> DecoderLSTMs([prenet ++ previous context])  (2 zoneout LSTMs)
        -> LocationSensitiveAttention(query = LSTM output, cumulative weights)
        -> FrameProjection([LSTM output ++ context]) -> r * 80 frames
           StopProjection(same)                      -> r stop logits
    mel_before [B, T, 80] -> Postnet (5 x conv5 + BN) -> mel_after = mel_before + residual
    optional PostCBHG(mel_after) -> linear spectrogram [B, T, n_fft / 2 + 1]

``architecture="nvidia"`` is NVIDIA/tacotron2's variant of the same blocks, for its imported
checkpoints (:class:`NvidiaDecoderStep`): the attention sits between the two decoder LSTMs,
the second LSTM reads the new context, the location features are the previous and the
cumulative weights, dropout replaces zoneout, and prenet, location conv and energy have no
bias; batch norms use PyTorch's constants.

Training decodes with teacher forcing in one ``lax.scan`` over decoder steps
(:meth:`Tacotron2.__call__`); synthesis runs the same step in a jitted ``while_loop`` until
every utterance has emitted a stop token or ``max_decoder_steps`` is reached
(:meth:`Tacotron2.infer`). No Python loop over time anywhere.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from tts_jax.config import ModelConfig
from tts_jax.errors import UserError
from tts_jax.models.tacotron2.modules import (
    BATCH_NORM,
    DecoderStep,
    Encoder,
    NvidiaDecoderStep,
    PostCBHG,
    Postnet,
    sequence_mask,
)
from tts_jax.nn.zoneout import split_kernel_grad
from tts_jax.text import TextConfig, symbol_table


@dataclasses.dataclass(frozen=True)
class Tacotron2Config(ModelConfig):
    """``config.model`` of a Tacotron 2 run: the paper's values (Shen et al. 2018), the one
    place they are written; experiments/tacotron2.py changes what its variants need."""

    # "rayhane": the decoder of Rayhane-mamah/Tacotron-2, both LSTMs before the
    # attention. "nvidia": NVIDIA/tacotron2's (module docstring), for its checkpoints.
    architecture: str = "rayhane"
    reduction: int = 1  # r: frames per decoder step
    embedding_dim: int = 512
    encoder_conv_channels: int = 512
    encoder_conv_layers: int = 3
    encoder_conv_kernel: int = 5
    encoder_lstm_units: int = 256  # per direction
    attention_dim: int = 128
    location_filters: int = 32
    location_kernel: int = 31
    prenet_units: tuple[int, ...] = (256, 256)
    prenet_dropout: float = 0.5
    decoder_lstm_units: int = 1024
    decoder_lstm_layers: int = 2
    zoneout: float = 0.1
    decoder_dropout: float = 0.0  # on each decoder LSTM's output ("nvidia": 0.1, no zoneout)
    dropout: float = 0.5
    postnet_channels: int = 512
    postnet_layers: int = 5
    postnet_kernel: int = 5
    linear_head: bool = False  # PostCBHG to a linear spectrogram (Tacotron 1's post-net)
    # Losses
    stop_pos_weight: float = 1.0
    stop_loss_on_padding: bool = False
    l2_weight: float = 1e-6
    # Fast-alignment switches, all off here (the paper); measured in
    # experiments/tacotron2_alignment.py and used by experiments/tacotron2.py:shipped.
    guided_attention_weight: float = 0.0  # > 0: Tachibana et al. 2017's guided attention
    guided_attention_g: float = 0.2  # its width g (the paper's 0.2), in normalised time
    guided_attention_half_life: int = 0  # > 0: the weight halves every this many steps
    lstm_forget_bias: float = 0.0  # added to every LSTM's forget-gate bias (TF's LSTMCell: 1.0)
    # Synthesis
    max_decoder_steps: int = 1000
    max_text_length: int = 300  # symbols; longer texts are refused at synthesis


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


class Tacotron2(nn.Module):
    """The whole model: Encoder, attention decoder (DecoderStep under ``lax.scan``), Postnet
    and the optional PostCBHG. ``cfg`` holds the hyperparameters; the sizes that come from the
    data (symbol table, mel bins, linear bins) are given by :func:`build_model`."""

    cfg: Tacotron2Config
    num_symbols: int
    num_mels: int
    num_freq: int
    pad_value: float = -11.512925  # log(1e-5): silence in the log-mel
    defer_lstm_kernel_grads: bool = True  # see _scan_steps; False only to measure what it buys

    def setup(self):
        if self.cfg.architecture not in BATCH_NORM:
            raise UserError(
                f"model.architecture={self.cfg.architecture!r}; expected one of "
                f"{', '.join(BATCH_NORM)}"
            )
        batch_norm = BATCH_NORM[self.cfg.architecture]
        self.encoder = Encoder(
            self.num_symbols,
            self.cfg.embedding_dim,
            self.cfg.encoder_conv_channels,
            self.cfg.encoder_conv_layers,
            self.cfg.encoder_conv_kernel,
            self.cfg.encoder_lstm_units,
            self.cfg.zoneout,
            self.cfg.dropout,
            batch_norm,
        )
        self.memory_layer = nn.Dense(self.cfg.attention_dim, use_bias=False)
        nvidia = self.cfg.architecture == "nvidia"
        extra = dict(dropout=self.cfg.decoder_dropout) if nvidia else {}
        self.decoder_step = (NvidiaDecoderStep if nvidia else DecoderStep)(
            self.num_mels,
            self.cfg.reduction,
            tuple(self.cfg.prenet_units),
            self.cfg.prenet_dropout,
            self.cfg.decoder_lstm_units,
            self.cfg.decoder_lstm_layers,
            self.cfg.zoneout,
            self.cfg.attention_dim,
            self.cfg.location_filters,
            self.cfg.location_kernel,
            **extra,
        )
        self.postnet = Postnet(
            self.cfg.postnet_channels,
            self.cfg.postnet_layers,
            self.cfg.postnet_kernel,
            self.num_mels,
            self.cfg.dropout,
            batch_norm,
        )
        if self.cfg.linear_head:
            self.post_cbhg = PostCBHG(self.num_freq)

    def encode(self, ids, id_lengths, *, train: bool):
        """-> memory [B, N, 2U], processed memory V h [B, N, A], mask [B, N]."""
        memory = self.encoder(ids, id_lengths, train=train)
        mask = sequence_mask(id_lengths, ids.shape[1])
        return memory, self.memory_layer(memory), mask

    def _scan_steps(self, carry, previous_frames, memory, processed, mask, train: bool):
        """Teacher-forced decoding: one lax.scan over the steps of previous_frames [B, S, M].

        The decoder LSTMs' kernels are used at every step, and autodiff of a scan adds each
        step's kernel gradient into an accumulator of the kernel's size (2 x 29 MB at paper
        size, read and written per step). Here their gradient is deferred instead: the scan
        runs with the kernels held constant plus zero gate offsets, and the backward pass
        forms each kernel's gradient after the scan as one matmul, sum_t [x_t ++ h_{t-1}]^T
        dL/dz_t (the offsets' gradient is dL/dz_t). Values and gradients are those of the
        plain scan (tested); the train step is 1.3x faster at paper size (benchmark
        ``tacotron2_train``'s ablation rows). Without gradients (evaluation) both run the
        plain scan.
        """

        def body(step, carry, inputs, memory, processed, mask):
            frame, offsets = inputs
            return step(carry, frame, memory, processed, mask, train=train, gate_offsets=offsets)

        scan = nn.scan(
            body,
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True, "zoneout": True},
            in_axes=(1, nn.broadcast, nn.broadcast, nn.broadcast),
            out_axes=1,
        )

        def plain(step, carry, previous, memory, processed, mask):
            return scan(step, carry, (previous, None), memory, processed, mask)

        if self.is_initializing() or not self.defer_lstm_kernel_grads:
            return plain(self.decoder_step, carry, previous_frames, memory, processed, mask)

        def deferred(step, carry, previous, memory, processed, mask, offsets):
            return scan(step, carry, (previous, offsets), memory, processed, mask)

        def forward(step, *args):
            b, s = previous_frames.shape[:2]
            width = 4 * self.cfg.decoder_lstm_units
            # In the compute dtype (bfloat16 under mixed precision), as the gates themselves.
            offsets = tuple(jnp.zeros((b, s, width), memory.dtype) for _ in carry[0])
            (carry_out, outs), vjp = nn.vjp(deferred, step, *args, offsets)
            return (carry_out, outs[:4]), (vjp, outs[4])

        def backward(residuals, cotangents):
            vjp, cell_inputs = residuals  # each [B, S, D + H]
            carry_t, outs_t = cotangents
            unused = tuple(jnp.zeros_like(x) for x in cell_inputs)
            params_t, *args_t, offsets_t = vjp((carry_t, (*outs_t, unused)))
            grads = dict(params_t["params"])  # the decoder step's
            for i, (x, dz) in enumerate(zip(cell_inputs, offsets_t, strict=True)):
                kernel = split_kernel_grad(
                    jnp.einsum("bsi,bsg->ig", x, dz, preferred_element_type=jnp.float32),
                    dz.sum(axis=(0, 1), dtype=jnp.float32),
                    x.shape[-1] - self.cfg.decoder_lstm_units,
                )
                lstm = grads[f"lstm_{i}"]["lstm"]  # zero: the kernel was held constant
                grads[f"lstm_{i}"] = {
                    "lstm": jax.tree_util.tree_map(lambda a, g: a + g.astype(a.dtype), lstm, kernel)
                }
            params_t = dict(params_t, params=grads)
            return (params_t, *args_t)

        return nn.custom_vjp(plain, forward, backward)(
            self.decoder_step, carry, previous_frames, memory, processed, mask
        )

    def _postprocess(self, mel_before, mel_lengths, *, train: bool) -> dict:
        out = {
            "mel_before": mel_before,
            "mel_after": mel_before + self.postnet(mel_before, train=train),
        }
        if self.cfg.linear_head:
            out["linear"] = self.post_cbhg(out["mel_after"], mel_lengths, train=train)
        return out

    def __call__(self, ids, id_lengths, mels, mel_lengths, *, train: bool):
        """Teacher forcing. ids [B, N], mels [B, T, M] with T a multiple of r ->
        mel_before / mel_after [B, T, M], stop_logits [B, T], alignments [B, T / r, N],
        decoder_states [B, T / r, D] (each step's [h ++ context], what the projections read;
        the bridge-net of text-to-wave reads them too) (+ linear [B, T, F] with the CBHG
        head)."""
        b, t, m = mels.shape
        r = self.cfg.reduction
        if t % r:
            raise ValueError(f"mel frames {t} must be a multiple of the reduction factor {r}")
        memory, processed, mask = self.encode(ids, id_lengths, train=train)
        frame_mask = sequence_mask(mel_lengths, t)[..., None]
        # Padded target frames are replaced by silence, so whatever a batch holds there never
        # reaches the decoder (and through it the postnet's batch statistics).
        mels = jnp.where(frame_mask, mels, self.pad_value)
        # Step i is fed the last frame of group i - 1 (a zero "go" frame for i = 0).
        previous = jnp.concatenate([jnp.zeros((b, 1, m)), mels[:, r - 1 :: r][:, :-1]], axis=1)
        carry = self.decoder_step.initial_carry(b, ids.shape[1], memory.shape[-1])
        _, (frames, stops, hidden, weights) = self._scan_steps(
            carry, previous, memory, processed, mask, train
        )
        mel_before = frames.reshape(b, t, m)
        # The postnet sees silence beyond each length, so padded frames do not leak into real
        # ones through its convolutions.
        out = self._postprocess(
            jnp.where(frame_mask, mel_before, self.pad_value), mel_lengths, train=train
        )
        out["mel_before"] = mel_before
        out["stop_logits"] = stops.reshape(b, t)
        out["alignments"] = weights
        out["decoder_states"] = hidden
        return out

    def infer(
        self,
        ids,
        id_lengths,
        *,
        max_decoder_steps: int,
        stop_threshold: float = 0.5,
        decoder_states: bool = False,
    ):
        """Free-running synthesis in a jitted while loop, batched.

        Each step feeds back the last of its r predicted frames. An utterance is done at the
        first frame whose stop probability exceeds ``stop_threshold``; the loop ends when all
        are done or after ``max_decoder_steps``. Returns mel_before / mel_after
        [B, max_steps * r, M] (meaningful up to ``lengths`` [B], in frames), alignments
        [B, max_steps, N], reached_max [B] (never stopped) and decoder_steps (scalar); with
        ``decoder_states``, also each step's decoder state [B, max_steps, D] (as training's).
        """
        b = ids.shape[0]
        r, m = self.cfg.reduction, self.num_mels
        memory, processed, mask = self.encode(ids, id_lengths, train=False)
        init = dict(
            step=jnp.zeros((), jnp.int32),
            state=self.decoder_step.initial_carry(b, ids.shape[1], memory.shape[-1]),
            previous=jnp.zeros((b, m)),
            frames=jnp.zeros((b, max_decoder_steps, r * m)),
            weights=jnp.zeros((b, max_decoder_steps, ids.shape[1])),
            done=jnp.zeros((b,), bool),
            lengths=jnp.full((b,), max_decoder_steps * r, jnp.int32),
        )
        if decoder_states:
            init["states"] = jnp.zeros(
                (b, max_decoder_steps, memory.shape[-1] + self.cfg.decoder_lstm_units)
            )

        def cond(step_module, c):
            return (c["step"] < max_decoder_steps) & ~jnp.all(c["done"])

        def body(step_module, c):
            state, (frames, stops, hidden, weights) = step_module(
                c["state"], c["previous"], memory, processed, mask, train=False
            )
            i = c["step"]
            extra = {"states": c["states"].at[:, i].set(hidden)} if decoder_states else {}
            stopped = jax.nn.sigmoid(stops) > stop_threshold  # [B, r]
            first = jnp.argmax(stopped, axis=-1)
            newly = ~c["done"] & jnp.any(stopped, axis=-1)
            return dict(
                step=i + 1,
                state=state,
                previous=frames[:, (r - 1) * m :],
                frames=c["frames"].at[:, i].set(frames),
                weights=c["weights"].at[:, i].set(weights),
                done=c["done"] | newly,
                lengths=jnp.where(newly, i * r + first + 1, c["lengths"]),
                **extra,
            )

        c = nn.while_loop(
            cond,
            body,
            self.decoder_step,
            init,
            broadcast_variables="params",
            split_rngs={"dropout": True},
        )
        mel_before = c["frames"].reshape(b, max_decoder_steps * r, m)
        out = self._postprocess(mel_before, c["lengths"], train=False)
        out.update(
            lengths=c["lengths"],
            alignments=c["weights"],
            reached_max=~c["done"],
            decoder_steps=c["step"],
        )
        if decoder_states:
            out["decoder_states"] = c["states"]
        return out


def build_model(config) -> Tacotron2:
    """The model a config describes (its ``model`` section and the data's sizes)."""
    return Tacotron2(
        Tacotron2Config.from_config(config.model),
        num_symbols=len(symbol_table(TextConfig.from_config(config.data.text))),
        num_mels=config.data.n_mels,
        num_freq=config.data.n_fft // 2 + 1,
    )
