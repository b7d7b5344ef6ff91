"""NVIDIA/tacotron2 checkpoints (``{'state_dict': ...}`` from its train.py, or the published
``tacotron2_statedict.pt``) as Tacotron 2 workdirs of ``experiments/tacotron2.py:nvidia``.

Every size is read from the tensors, so a checkpoint trained with other widths imports too.
Layout changes on the way: torch's ``[out, in]`` dense and ``[out, in, k]`` conv weights
become flax's ``[in, out]`` and ``[k, in, out]``; an LSTM's four gates (i, f, g, o) are split
into flax's per-gate kernels, and its two bias vectors (``b_ih + b_hh``) summed into one; batch
norms' running statistics go to ``batch_stats``.
"""

from __future__ import annotations

import jax
import numpy as np

from tts_jax import torch_checkpoint, workdir
from tts_jax.config import load_config
from tts_jax.errors import UserError
from tts_jax.exported import same_shapes
from tts_jax.models.tacotron2.train import example_batch, init_state
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState

GATES = ("i", "f", "g", "o")  # torch's order of the four LSTM gates


def state_dict(checkpoint) -> dict:
    """The ``state_dict`` of a loaded NVIDIA checkpoint (or the bare state dict itself)."""
    sd = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict) or "embedding.weight" not in sd:
        raise UserError(
            "not an NVIDIA/tacotron2 checkpoint: expected {'state_dict': {...}} holding "
            "'embedding.weight', 'encoder.*', 'decoder.*' and 'postnet.*'"
        )
    return {k: np.asarray(v, np.float32) for k, v in sd.items() if "num_batches" not in k}


def _count(sd: dict, prefix: str) -> int:
    return len({k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)})


def our_config(sd: dict):
    """experiments/tacotron2.py:nvidia with the checkpoint's sizes."""
    config = load_config("experiments/tacotron2.py:nvidia")
    num_symbols, embedding_dim = sd["embedding.weight"].shape
    conv = sd["encoder.convolutions.0.0.conv.weight"]  # [out, in, k]
    lstm = sd["decoder.attention_rnn.weight_hh"]  # [4H, H]
    if sd["decoder.decoder_rnn.weight_hh"].shape != lstm.shape:
        raise UserError(
            "the checkpoint's attention_rnn_dim and decoder_rnn_dim differ "
            f"({lstm.shape[1]} and {sd['decoder.decoder_rnn.weight_hh'].shape[1]}); "
            "our decoder_lstm_units covers both and needs them equal"
        )
    location = sd["decoder.attention_layer.location_layer.location_conv.conv.weight"]
    postnet = sd["postnet.convolutions.0.0.conv.weight"]
    prenet = [
        int(sd[f"decoder.prenet.layers.{i}.linear_layer.weight"].shape[0])
        for i in range(_count(sd, "decoder.prenet.layers."))
    ]
    with config.unlocked():
        m = config.model
        m.embedding_dim = int(embedding_dim)
        m.encoder_conv_channels = int(conv.shape[0])
        m.encoder_conv_kernel = int(conv.shape[2])
        m.encoder_conv_layers = _count(sd, "encoder.convolutions.")
        m.encoder_lstm_units = int(sd["encoder.lstm.weight_hh_l0"].shape[1])
        m.attention_dim = int(
            sd["decoder.attention_layer.query_layer.linear_layer.weight"].shape[0]
        )
        m.location_filters, m.location_kernel = int(location.shape[0]), int(location.shape[2])
        m.prenet_units = tuple(prenet)
        m.decoder_lstm_units = int(lstm.shape[1])
        m.postnet_channels = int(postnet.shape[0])
        m.postnet_kernel = int(postnet.shape[2])
        m.postnet_layers = _count(sd, "postnet.convolutions.")
        m.reduction = int(sd["decoder.linear_projection.linear_layer.weight"].shape[0]) // int(
            postnet.shape[1]
        )
        config.data.n_mels = int(postnet.shape[1])
        config.data.path = ""  # the corpus to fine-tune on: --config.data.path=...
    if num_symbols != 148:
        raise UserError(
            f"the checkpoint's embedding has {num_symbols} symbols; NVIDIA/tacotron2's table "
            "(text.frontend='nvidia') has 148"
        )
    return config


def _dense(sd, name) -> dict:
    out = {"kernel": sd[f"{name}.weight"].T}
    if f"{name}.bias" in sd:
        out["bias"] = sd[f"{name}.bias"]
    return out


def _conv(sd, name) -> dict:
    out = {"kernel": sd[f"{name}.weight"].transpose(2, 1, 0)}
    if f"{name}.bias" in sd:
        out["bias"] = sd[f"{name}.bias"]
    return out


def _lstm(sd, name, suffix="") -> dict:
    """torch LSTM(Cell) ``name`` -> a ZoneoutLSTMCell's params ``{"lstm": {ii, ..., ho}}``."""
    w_ih, w_hh = sd[f"{name}.weight_ih{suffix}"], sd[f"{name}.weight_hh{suffix}"]
    bias = sd[f"{name}.bias_ih{suffix}"] + sd[f"{name}.bias_hh{suffix}"]
    h = w_hh.shape[1]
    cell = {}
    for k, gate in enumerate(GATES):
        rows = slice(k * h, (k + 1) * h)
        cell[f"i{gate}"] = {"kernel": w_ih[rows].T}
        cell[f"h{gate}"] = {"kernel": w_hh[rows].T, "bias": bias[rows]}
    return {"lstm": cell}


def _conv_bn(sd, name) -> tuple[dict, dict]:
    """``name`` = nn.Sequential(ConvNorm, BatchNorm1d) -> (ConvBNBlock params, batch_stats)."""
    params = {
        "Conv_0": _conv(sd, f"{name}.0.conv"),
        "BatchNorm_0": {"scale": sd[f"{name}.1.weight"], "bias": sd[f"{name}.1.bias"]},
    }
    stats = {
        "BatchNorm_0": {"mean": sd[f"{name}.1.running_mean"], "var": sd[f"{name}.1.running_var"]}
    }
    return params, stats


def variables(sd: dict) -> dict:
    """An NVIDIA state dict -> ``{"params", "batch_stats"}`` of our ``architecture="nvidia"``
    Tacotron2."""
    encoder = {"Embed_0": {"embedding": sd["embedding.weight"]}}
    enc_stats, post, post_stats = {}, {}, {}
    for i in range(_count(sd, "encoder.convolutions.")):
        encoder[f"ConvBNBlock_{i}"], enc_stats[f"ConvBNBlock_{i}"] = _conv_bn(
            sd, f"encoder.convolutions.{i}"
        )
    encoder["ZoneoutLSTMCell_0"] = _lstm(sd, "encoder.lstm", "_l0")  # forward
    encoder["ZoneoutLSTMCell_1"] = _lstm(sd, "encoder.lstm", "_l0_reverse")
    for i in range(_count(sd, "postnet.convolutions.")):
        post[f"ConvBNBlock_{i}"], post_stats[f"ConvBNBlock_{i}"] = _conv_bn(
            sd, f"postnet.convolutions.{i}"
        )
    a = "decoder.attention_layer"
    decoder = {
        "prenet": {
            f"Dense_{i}": _dense(sd, f"decoder.prenet.layers.{i}.linear_layer")
            for i in range(_count(sd, "decoder.prenet.layers."))
        },
        "lstm_0": _lstm(sd, "decoder.attention_rnn"),
        "lstm_1": _lstm(sd, "decoder.decoder_rnn"),
        "attention": {
            "query_layer": _dense(sd, f"{a}.query_layer.linear_layer"),
            "location_conv": _conv(sd, f"{a}.location_layer.location_conv.conv"),
            "location_layer": _dense(sd, f"{a}.location_layer.location_dense.linear_layer"),
            "attention_v": sd[f"{a}.v.linear_layer.weight"].T,
        },
        "frame_projection": _dense(sd, "decoder.linear_projection.linear_layer"),
        "stop_projection": _dense(sd, "decoder.gate_layer.linear_layer"),
    }
    params = {
        "encoder": encoder,
        "memory_layer": _dense(sd, f"{a}.memory_layer.linear_layer"),
        "decoder_step": decoder,
        "postnet": post,
    }
    return {"params": params, "batch_stats": {"encoder": enc_stats, "postnet": post_stats}}


def import_checkpoint(checkpoints: list, reference_config, out) -> dict:
    """``tts-jax import tacotron2 --checkpoint tacotron2_statedict.pt --out DIR``: an
    NVIDIA/tacotron2 checkpoint -> a training workdir of ``experiments/tacotron2.py:nvidia``
    (with the checkpoint's sizes) that ``synthesize``, ``gta``, ``evaluate``, ``export`` and
    fine-tuning use as they are. Adam's moments start afresh; the step is the checkpoint's
    ``iteration`` when it has one."""
    if reference_config is not None:
        raise UserError("import tacotron2 reads every size from the checkpoint: drop --config")
    if len(checkpoints) != 1:
        raise UserError(f"import tacotron2 takes one checkpoint, got {len(checkpoints)}")
    loaded = torch_checkpoint.load(checkpoints[0])
    sd = state_dict(loaded)
    config = our_config(sd)
    rng = jax.random.PRNGKey(config.seed)
    batch = example_batch(config)
    want = jax.eval_shape(lambda: init_state(config, rng, batch))
    v = variables(sd)
    if not same_shapes(v, {"params": want.params, **want.model_state}):
        raise UserError(
            f"{checkpoints[0]}: its tensors do not form NVIDIA/tacotron2's model (names or shapes "
            "differ from experiments/tacotron2.py:nvidia at the checkpoint's sizes)"
        )
    step = int(loaded.get("iteration", 0) or 0)
    tx, _ = make_optimizer(config.optim)
    state = TrainState.create(
        v["params"], tx, rng, model_state={"batch_stats": v["batch_stats"]}
    ).replace(step=np.int32(step))
    workdir.write(out, config, state, step)
    return {
        "step": step,
        "parameters": int(sum(np.size(x) for x in jax.tree.leaves(v["params"]))),
        "config": config,
    }
