"""Tacotron 2's blocks (Shen et al. 2018): the encoder, the decoder step with its prenet and
location-sensitive attention (Rayhane-mamah/Tacotron-2's order, and NVIDIA/tacotron2's), the
post-net and Tacotron 1's optional PostCBHG. :mod:`tts_jax.models.tacotron2.model` puts them
together.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from tts_jax.errors import UserError
from tts_jax.nn.zoneout import ZoneoutLSTMCell

_NEG_INF = -1e9
# (epsilon, momentum) of every batch norm: TensorFlow's defaults in Rayhane-mamah's code, and
# PyTorch's in NVIDIA's (eps 1e-5; its running-average momentum 0.1 is flax's 0.9).
BATCH_NORM = {"rayhane": (1e-3, 0.99), "nvidia": (1e-5, 0.9)}


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
