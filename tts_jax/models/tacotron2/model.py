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
from tts_jax.nn.zoneout import ZoneoutLSTMCell, split_kernel_grad
from tts_jax.text import TextConfig, symbol_table

_NEG_INF = -1e9
# (epsilon, momentum) of every batch norm: TensorFlow's defaults in Rayhane-mamah's code, and
# PyTorch's in NVIDIA's (eps 1e-5; its running-average momentum 0.1 is flax's 0.9).
BATCH_NORM = {"rayhane": (1e-3, 0.99), "nvidia": (1e-5, 0.9)}


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


def sequence_mask(lengths, max_len: int):
    """[B] lengths -> [B, max_len] bool, True on the first ``length`` positions."""
    return jnp.arange(max_len)[None, :] < lengths[:, None]


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------


class ConvBNBlock(nn.Module):
    """conv1d ('same') -> batch norm -> activation -> dropout. [B, T, C] -> [B, T, channels]."""

    channels: int
    kernel_size: int
    activation: str | None  # "relu" | "tanh" | None
    dropout: float
    batch_norm: tuple[float, float] = BATCH_NORM["rayhane"]  # (epsilon, momentum)

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = nn.Conv(self.channels, (self.kernel_size,), padding="SAME")(x)
        epsilon, momentum = self.batch_norm
        x = nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon)(x)
        if self.activation == "relu":
            x = nn.relu(x)
        elif self.activation == "tanh":
            x = jnp.tanh(x)
        return nn.Dropout(self.dropout, deterministic=not train)(x)


class Encoder(nn.Module):
    """Embedding, 3 conv blocks and a bidirectional zoneout LSTM. ids [B, N] -> [B, N, 2U].

    Padding never reaches real positions: padded positions are zeroed before every
    convolution, and the backward LSTM starts at each utterance's own last symbol.
    """

    num_symbols: int
    embedding_dim: int
    conv_channels: int
    conv_layers: int
    conv_kernel: int
    lstm_units: int
    zoneout: float
    dropout: float
    batch_norm: tuple[float, float] = BATCH_NORM["rayhane"]

    @nn.compact
    def __call__(self, ids, lengths, *, train: bool):
        mask = sequence_mask(lengths, ids.shape[1])[..., None]
        # std sqrt(2 / (num_symbols + dim)) * sqrt(3): Rayhane's Xavier-uniform embedding.
        x = nn.Embed(
            self.num_symbols, self.embedding_dim, embedding_init=nn.initializers.xavier_uniform()
        )(ids)
        for _ in range(self.conv_layers):
            x = ConvBNBlock(
                self.conv_channels, self.conv_kernel, "relu", self.dropout, self.batch_norm
            )(x * mask, train=train)
        x = x * mask

        def rnn(reverse: bool, name: str):
            cell = ZoneoutLSTMCell(self.lstm_units, self.zoneout, deterministic=not train)
            return nn.RNN(
                cell,
                reverse=reverse,
                keep_order=True,
                name=name,
                split_rngs={"params": False, "zoneout": True},
            )

        bilstm = nn.Bidirectional(rnn(False, "forward"), rnn(True, "backward"))
        return bilstm(x, seq_lengths=lengths) * mask


# --------------------------------------------------------------------------------------------
# Decoder
# --------------------------------------------------------------------------------------------


class Prenet(nn.Module):
    """2 x [dense, ReLU, dropout]. The dropout is always on (paper): it is the only source of
    output variation at inference and helps generalisation."""

    units: tuple[int, ...]
    dropout: float
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        for u in self.units:
            x = nn.relu(nn.Dense(u, use_bias=self.use_bias)(x))
            x = nn.Dropout(self.dropout, deterministic=self.dropout == 0.0)(x)
        return x


class LocationSensitiveAttention(nn.Module):
    """e_ij = v^T tanh(W s_i + V h_j + U f_ij + b), f = conv(location features).

    query [B, Q], processed_memory (V h) [B, N, A], location [B, N, L] (the cumulative
    weights, or NVIDIA's previous and cumulative weights), mask [B, N] -> weights [B, N]
    (0 on padding, summing to 1). ``use_bias=False`` drops b and the conv's bias (NVIDIA).
    """

    attention_dim: int
    location_filters: int
    location_kernel: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, query, processed_memory, location, mask):
        w_query = nn.Dense(self.attention_dim, use_bias=False, name="query_layer")(query)
        f = nn.Conv(
            self.location_filters,
            (self.location_kernel,),
            padding="SAME",
            use_bias=self.use_bias,
            name="location_conv",
        )(location)
        energy = w_query[:, None, :] + processed_memory
        energy = energy + nn.Dense(self.attention_dim, use_bias=False, name="location_layer")(f)
        if self.use_bias:
            energy = energy + self.param(
                "attention_bias", nn.initializers.zeros, (self.attention_dim,)
            )
        v = self.param("attention_v", nn.initializers.xavier_uniform(), (self.attention_dim, 1))
        energy = (jnp.tanh(energy) @ v)[..., 0]
        energy = jnp.where(mask, energy, _NEG_INF)
        return jax.nn.softmax(energy, axis=-1) * mask


class DecoderStep(nn.Module):
    """One decoder step (Rayhane-mamah's order: prenet, both LSTMs, then attention queried by
    the last LSTM's output). carry = (lstm states, context [B, 2U], cumulative weights
    [B, N], previous weights [B, N]); previous frame [B, M] ->
    (carry, (frames [B, r*M], stop logits [B, r], decoder state [h ++ context] [B, D],
    weights [B, N]))."""

    num_mels: int
    reduction: int
    prenet_units: tuple[int, ...]
    prenet_dropout: float
    lstm_units: int
    lstm_layers: int
    zoneout: float
    attention_dim: int
    location_filters: int
    location_kernel: int

    @nn.compact
    def __call__(
        self,
        carry,
        previous_frame,
        memory,
        processed_memory,
        mask,
        *,
        train: bool,
        gate_offsets=None,
    ):
        """``gate_offsets``: one [B, 4H] per LSTM for the deferred kernel gradient of
        teacher forcing (:meth:`Tacotron2._scan_steps`); then each LSTM's input
        [x ++ h_prev] [B, D + H] is also returned, as a fifth output."""
        lstm_states, context, cumulative, _ = carry
        offsets = gate_offsets or (None,) * len(lstm_states)
        x = Prenet(self.prenet_units, self.prenet_dropout, name="prenet")(previous_frame)
        x = jnp.concatenate([x, context], axis=-1)
        new_states, cell_inputs = [], []
        for i, state in enumerate(lstm_states):
            cell = ZoneoutLSTMCell(
                self.lstm_units, self.zoneout, deterministic=not train, name=f"lstm_{i}"
            )
            cell_inputs.append(jnp.concatenate([x, state[1]], axis=-1))
            state, x = cell(state, x, offsets[i])
            new_states.append(state)
        weights = LocationSensitiveAttention(
            self.attention_dim, self.location_filters, self.location_kernel, name="attention"
        )(x, processed_memory, cumulative[..., None], mask)
        context = jnp.einsum("bn,bnd->bd", weights, memory)
        carry = (tuple(new_states), context, cumulative + weights, weights)
        extra = (tuple(cell_inputs),) if gate_offsets is not None else ()
        return carry, (*self.project(x, context), weights, *extra)

    def project(self, h, context):
        """FrameProjection and StopProjection of the decoder state [h ++ context] [B, D]:
        (frames [B, r*M], stop logits [B, r], the decoder state itself)."""
        state = jnp.concatenate([h, context], axis=-1)
        frames = nn.Dense(self.num_mels * self.reduction, name="frame_projection")(state)
        return frames, nn.Dense(self.reduction, name="stop_projection")(state), state

    def initial_carry(self, batch: int, memory_len: int, memory_dim: int):
        zeros = jnp.zeros((batch, self.lstm_units))
        states = tuple((zeros, zeros) for _ in range(self.lstm_layers))
        weights = jnp.zeros((batch, memory_len))
        return states, jnp.zeros((batch, memory_dim)), weights, weights


class NvidiaDecoderStep(DecoderStep):
    """One decoder step in NVIDIA/tacotron2's order (its ``Decoder.decode``):

        h0 = LSTM_0([Prenet(previous frame) ++ previous context])    (the "attention RNN")
        weights = attention(query h0, location [previous weights, cumulative weights])
        h1 = LSTM_1([h0 ++ new context])                              (the "decoder RNN")
        frames, stop = projections([h1 ++ new context])

    Dropout ``dropout`` on h0 and h1 (the dropped value is also what the LSTM carries, as
    NVIDIA's), no zoneout; prenet and attention without biases. Same carry and outputs as
    :class:`DecoderStep`.
    """

    dropout: float = 0.1

    @nn.compact
    def __call__(
        self,
        carry,
        previous_frame,
        memory,
        processed_memory,
        mask,
        *,
        train: bool,
        gate_offsets=None,
    ):
        lstm_states, context, cumulative, previous = carry
        if len(lstm_states) != 2:
            raise UserError(
                f"the nvidia decoder has 2 LSTMs, got decoder_lstm_layers={len(lstm_states)}"
            )
        offsets = gate_offsets or (None, None)
        x = Prenet(self.prenet_units, self.prenet_dropout, use_bias=False, name="prenet")(
            previous_frame
        )
        new_states, cell_inputs, h = [], [], None
        for i, state in enumerate(lstm_states):
            if i == 1:
                weights = LocationSensitiveAttention(
                    self.attention_dim,
                    self.location_filters,
                    self.location_kernel,
                    use_bias=False,
                    name="attention",
                )(h, processed_memory, jnp.stack([previous, cumulative], axis=-1), mask)
                context = jnp.einsum("bn,bnd->bd", weights, memory)
                x = h
            cell = ZoneoutLSTMCell(
                self.lstm_units, self.zoneout, deterministic=not train, name=f"lstm_{i}"
            )
            x = jnp.concatenate([x, context], axis=-1)
            cell_inputs.append(jnp.concatenate([x, state[1]], axis=-1))
            (c, h), _ = cell(state, x, offsets[i])
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
            new_states.append((c, h))
        carry = (tuple(new_states), context, cumulative + weights, weights)
        extra = (tuple(cell_inputs),) if gate_offsets is not None else ()
        return carry, (*self.project(h, context), weights, *extra)


class Postnet(nn.Module):
    """5 conv blocks (tanh on all but the last, which maps to the mel bins). [B,T,M] -> [B,T,M]."""

    channels: int
    layers: int
    kernel_size: int
    num_mels: int
    dropout: float
    batch_norm: tuple[float, float] = BATCH_NORM["rayhane"]

    @nn.compact
    def __call__(self, x, *, train: bool):
        bn = self.batch_norm
        for _ in range(self.layers - 1):
            x = ConvBNBlock(self.channels, self.kernel_size, "tanh", self.dropout, bn)(
                x, train=train
            )
        return ConvBNBlock(self.num_mels, self.kernel_size, None, self.dropout, bn)(x, train=train)


class HighwayLayer(nn.Module):
    units: int

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(self.units, name="H")(x))
        t = nn.sigmoid(nn.Dense(self.units, name="T", bias_init=nn.initializers.constant(-1.0))(x))
        return h * t + x * (1.0 - t)


class PostCBHG(nn.Module):
    """CBHG (Tacotron 1) over mel_after, projected to the linear spectrogram.

    Conv bank (kernels 1..K) -> max-pool 2 (stride 1) -> 2 projection convs -> residual ->
    highway layers -> bidirectional GRU -> dense to ``num_freq``. [B, T, M] -> [B, T, F].
    """

    num_freq: int
    bank_kernels: int = 8
    bank_channels: int = 128
    projection_channels: int = 256
    projection_kernel: int = 3
    highway_layers: int = 4
    highway_units: int = 128
    rnn_units: int = 128

    @nn.compact
    def __call__(self, x, lengths, *, train: bool):
        mask = sequence_mask(lengths, x.shape[1])[..., None]
        x = x * mask
        bank = jnp.concatenate(
            [
                ConvBNBlock(self.bank_channels, k, "relu", 0.0)(x, train=train)
                for k in range(1, self.bank_kernels + 1)
            ],
            axis=-1,
        )
        y = nn.max_pool(bank, (2,), strides=(1,), padding="SAME")
        y = ConvBNBlock(self.projection_channels, self.projection_kernel, "relu", 0.0)(
            y, train=train
        )
        y = ConvBNBlock(x.shape[-1], self.projection_kernel, None, 0.0)(y, train=train)
        y = y + x
        if y.shape[-1] != self.highway_units:
            y = nn.Dense(self.highway_units, use_bias=False, name="highway_input")(y)
        for i in range(self.highway_layers):
            y = HighwayLayer(self.highway_units, name=f"highway_{i}")(y)
        y = nn.Bidirectional(
            nn.RNN(nn.GRUCell(self.rnn_units)),
            nn.RNN(nn.GRUCell(self.rnn_units), reverse=True, keep_order=True),
        )(y * mask, seq_lengths=lengths)
        return nn.Dense(self.num_freq, name="linear_projection")(y)


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


# --------------------------------------------------------------------------------------------
# Losses (REFERENCE / seed 000)
# --------------------------------------------------------------------------------------------


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
    """``weight * sum(w^2) / 2`` over every parameter except biases (tf.nn.l2_loss, as the
    seed). Included: embedding, LSTM and dense kernels, and batch-norm scales (the seed's
    TF variant also regularises BN gammas: only names containing 'bias' are excluded)."""
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

    Mel MSEs are masked to real frames. The stop loss is masked to real frames too (REFERENCE), or,
    with ``stop_loss_on_padding``, also covers each batch's padded frames (target 1), as
    Rayhane-mamah's default ``mask_decoder=False`` and NVIDIA's code do: many more positive
    examples, which teaches small models to stop sooner.
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


def build_model(config) -> Tacotron2:
    """The model a config describes (its ``model`` section and the data's sizes)."""
    return Tacotron2(
        Tacotron2Config.from_config(config.model),
        num_symbols=len(symbol_table(TextConfig.from_config(config.data.text))),
        num_mels=config.data.n_mels,
        num_freq=config.data.n_fft // 2 + 1,
    )


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
