"""jik876/hifi-gan's checkpoints as our HiFi-GAN parameters (``tts-jax import hifigan``).

The reference's files are ``torch.save`` dicts: ``g_XXXXXXXX`` holds ``{"generator": state
dict}``, ``do_XXXXXXXX`` holds ``{"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}``;
``config_vN.json`` its hyperparameters. They are read with :mod:`tts_jax.torch_checkpoint`.

Layouts. A PyTorch ``Conv1d`` weight ``[out, in / groups, k]`` is our kernel ``[k, in /
groups, out]``; a ``ConvTranspose1d`` weight ``[in, out, k]`` is our ``[k, in, out]``; the
MPD's ``Conv2d`` weights ``[out, in, k, 1]`` act on the time axis as our ``Conv1d``.

Weight norm. PyTorch keeps ``g`` per slice of dim 0 (the output channel of a convolution, but
the *input* channel of a transposed one); flax's per output channel. The importer therefore
writes the effective weight ``w = g v / ||v||`` as our ``v`` and its per-output-channel norm
as our ``g``, so every layer computes exactly the reference's weight; a fine-tuned model then
normalises ``ups`` per output channel, as every other layer.

Spectral norm (the MSD's raw-scale discriminator). PyTorch in eval mode divides by
``sigma = u . (W v)`` with its stored ``u`` and ``v``; flax runs one power iteration from its
stored ``u``. The importer stores the ``u`` from which that iteration reaches the reference's
``v`` and ``u`` exactly (a least-squares solve: ``v`` lies in ``W``'s row space by
construction), and its ``sigma``, so outputs agree and training goes on from the same state.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from tts_jax import torch_checkpoint, workdir
from tts_jax.config import frozen, load_config
from tts_jax.errors import UserError
from tts_jax.exported import same_shapes
from tts_jax.models.hifigan.model import MSD_LAYERS, HiFiGANConfig
from tts_jax.models.hifigan.train import (
    example_batch,
    gan_state,
    init_discriminators,
    init_state,
)

# config_vN.json key -> (our config section, field)
CONFIG_FIELDS = {
    "upsample_rates": ("model", "upsample_rates"),
    "upsample_kernel_sizes": ("model", "upsample_kernel_sizes"),
    "upsample_initial_channel": ("model", "upsample_initial_channel"),
    "resblock": ("model", "resblock"),
    "resblock_kernel_sizes": ("model", "resblock_kernel_sizes"),
    "resblock_dilation_sizes": ("model", "resblock_dilation_sizes"),
    "sampling_rate": ("data", "sample_rate"),
    "n_fft": ("data", "n_fft"),
    "hop_size": ("data", "hop_length"),
    "win_size": ("data", "win_length"),
    "num_mels": ("data", "n_mels"),
    "fmin": ("data", "fmin"),
    "fmax": ("data", "fmax"),
    "batch_size": ("train", "batch_size"),
}


def read_config(path) -> dict:
    """The reference's ``config_vN.json``, checked to hold what the generator needs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path} (expected jik876's config_vN.json)")
    try:
        h = json.loads(path.read_text())
    except ValueError as e:
        raise UserError(f"{path} is not JSON ({e}); expected jik876's config_vN.json") from None
    missing = [k for k in CONFIG_FIELDS if k not in h]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: not a jik876/hifi-gan config")
    return h


def _conv(w: np.ndarray) -> np.ndarray:
    """PyTorch Conv1d/Conv2d(k, 1) weight -> our kernel [k, in / groups, out]."""
    if w.ndim == 4:
        w = w[..., 0]
    return np.ascontiguousarray(w.transpose(2, 1, 0))


def _transposed(w: np.ndarray) -> np.ndarray:
    """PyTorch ConvTranspose1d weight [in, out, k] -> our kernel [k, in, out]."""
    return np.ascontiguousarray(w.transpose(2, 0, 1))


def _effective(sd: dict, prefix: str) -> np.ndarray:
    """The weight a weight-normed PyTorch layer computes: g v / ||v|| (norm over all but
    dim 0), or the plain weight."""
    if f"{prefix}.weight" in sd:
        return sd[f"{prefix}.weight"]
    g, v = sd[f"{prefix}.weight_g"], sd[f"{prefix}.weight_v"]
    norm = np.sqrt(np.sum(v.astype(np.float64) ** 2, axis=tuple(range(1, v.ndim)), keepdims=True))
    return (g * v / norm).astype(np.float32)


def _weight_normed(kernel: np.ndarray, bias: np.ndarray) -> dict:
    """Our weight-norm layout computing exactly ``kernel``: v = kernel, g = its norm."""
    scale = np.sqrt(np.sum(kernel.astype(np.float64) ** 2, axis=tuple(range(kernel.ndim - 1))))
    return {
        "conv": {"kernel": kernel, "bias": bias},
        "weight_norm": {"conv/kernel/scale": scale.astype(np.float32)},
    }


def _layer(sd: dict, prefix: str, transposed: bool = False) -> dict:
    try:
        w = _effective(sd, prefix)
        bias = sd[f"{prefix}.bias"]
    except KeyError as e:
        raise UserError(f"the checkpoint lacks {e.args[0]}: not this model's weights") from None
    return _weight_normed(_transposed(w) if transposed else _conv(w), bias)


def generator_params(sd: dict, model) -> dict:
    """The reference Generator's state dict -> our weight-normed generator params.
    ``model``: our :class:`HiFiGANConfig` (the same sizes as the reference's config)."""
    n_kernels = len(model.resblock_kernel_sizes)
    params = {"conv_pre": _layer(sd, "conv_pre"), "conv_post": _layer(sd, "conv_post")}
    for i in range(len(model.upsample_rates)):
        params[f"ups_{i}"] = _layer(sd, f"ups.{i}", transposed=True)
        mrf = {}
        for j, dilations in enumerate(model.resblock_dilation_sizes):
            block = f"resblocks.{i * n_kernels + j}"
            convs = {}
            for d in range(len(dilations)):
                if model.resblock == "1":  # our Conv1d_{2d} is convs1[d], Conv1d_{2d+1} convs2[d]
                    convs[f"Conv1d_{2 * d}"] = _layer(sd, f"{block}.convs1.{d}")
                    convs[f"Conv1d_{2 * d + 1}"] = _layer(sd, f"{block}.convs2.{d}")
                else:
                    convs[f"Conv1d_{d}"] = _layer(sd, f"{block}.convs.{d}")
            mrf[f"ResBlock{model.resblock}_{j}"] = convs
        params[f"mrf_{i}"] = mrf
    return params


def _spectral_normed(sd: dict, prefix: str) -> tuple[dict, dict]:
    """(params, batch_stats) of our spectral-normed layer from PyTorch's weight_orig, weight_u,
    weight_v (see the module docstring)."""
    w = sd[f"{prefix}.weight_orig"]
    u, v = sd[f"{prefix}.weight_u"].astype(np.float64), sd[f"{prefix}.weight_v"]
    mat = w.reshape(w.shape[0], -1).astype(np.float64)  # [out, in * k]
    sigma = float(u @ (mat @ v))
    # flax: v0 = normalize(u_f @ mat), u1 = normalize(mat @ v0), sigma = u1 . (mat v0).
    # With u_f solving mat^T u_f = v (exact: v = mat^T u_prev / ||.||), v0 = v and u1 = u.
    u_f = np.linalg.lstsq(mat.T, v.astype(np.float64), rcond=None)[0]
    params = {"conv": {"kernel": _conv(w), "bias": sd[f"{prefix}.bias"]}}
    stats = {
        "spectral_norm": {
            "conv/kernel/u": u_f[None].astype(np.float32),
            "conv/kernel/sigma": np.float32(sigma),
        }
    }
    return params, stats


def discriminator_params(mpd_sd: dict, msd_sd: dict, model) -> tuple[dict, dict]:
    """The reference's MPD and MSD state dicts -> our ``(disc_params, disc_stats)``."""
    mpd = {}
    for i in range(len(model.mpd_periods)):
        d = {f"Conv1d_{n}": _layer(mpd_sd, f"discriminators.{i}.convs.{n}") for n in range(5)}
        d["conv_post"] = _layer(mpd_sd, f"discriminators.{i}.conv_post")
        mpd[f"DiscriminatorP_{i}"] = d
    msd, stats = {}, {}
    names = [f"Conv1d_{n}" for n in range(len(model.msd_layers))] + ["conv_post"]
    for i in range(3):
        d, s = {}, {}
        for n, name in enumerate(names):
            prefix = f"discriminators.{i}.{'conv_post' if name == 'conv_post' else f'convs.{n}'}"
            if i == 0:
                d[name], s[name] = _spectral_normed(msd_sd, prefix)
            else:
                d[name] = _layer(msd_sd, prefix)
        msd[f"DiscriminatorS_{i}"] = d
        if s:
            stats[f"DiscriminatorS_{i}"] = s
    return {"mpd": mpd, "msd": msd}, {"msd": stats}


def _mpd_channels(sd: dict) -> tuple[int, ...]:
    return tuple(int(_effective(sd, f"discriminators.0.convs.{n}").shape[0]) for n in range(5))


def _msd_layers(sd: dict) -> tuple[tuple[int, int, int, int], ...]:
    """(out, kernel, stride, groups) per conv of the MSD, read off the weights (of its second,
    weight-normed, discriminator); strides are the reference's (weights do not hold them)."""
    layers = []
    for n, (_, _, stride, _) in enumerate(MSD_LAYERS):
        w = _effective(sd, f"discriminators.1.convs.{n}")  # [out, in / groups, k]
        c_in = 1 if n == 0 else layers[-1][0]
        layers.append((int(w.shape[0]), int(w.shape[2]), stride, c_in // int(w.shape[1])))
    return tuple(layers)


def our_config(h: dict):
    """experiments/hifigan.py:v1 with a reference config's sizes, front end (``framing=
    "jik876"``), segment and optimiser settings; ``data.path`` is left to the user."""
    config = load_config("experiments/hifigan.py:v1")
    with config.unlocked():
        for key, (section, field) in CONFIG_FIELDS.items():
            value = frozen(h[key])
            config[section][field] = float(value) if field in ("fmin", "fmax") else value
        config.data.framing = "jik876"
        config.data.path = ""  # the corpus to fine-tune on: --config.data.path=...
        config.train.segment_length = int(h.get("segment_size", config.train.segment_length))
        config.optim.learning_rate = float(h.get("learning_rate", config.optim.learning_rate))
        config.optim.b1 = float(h.get("adam_b1", config.optim.b1))
        config.optim.b2 = float(h.get("adam_b2", config.optim.b2))
        config.optim.decay_rate = float(h.get("lr_decay", config.optim.decay_rate))
    return config


def import_checkpoint(checkpoints: list, reference_config, out) -> dict:
    """``tts-jax import hifigan``: a jik876 generator checkpoint (and optionally its ``do_``
    discriminators checkpoint) with its ``config_vN.json`` -> a training workdir at ``out``
    (config.json and one checkpoint) that ``vocode``, ``synthesize --vocoder hifigan:OUT``,
    ``evaluate`` and fine-tuning (``train --workdir OUT``) use as they are.

    The config is experiments/hifigan.py:v1 with the reference config's sizes, the jik876 mel
    front end (``data.framing="jik876"``) and ``data.path`` left to the user. Without ``do_``,
    the discriminators are freshly initialised; Adam's moments always start afresh.
    """
    if reference_config is None:
        raise UserError("import hifigan needs --config: the checkpoint's config_vN.json")
    h = read_config(reference_config)
    loaded = [torch_checkpoint.load(p) for p in checkpoints]
    gens = [c for c in loaded if isinstance(c, dict) and "generator" in c]
    discs = [c for c in loaded if isinstance(c, dict) and "mpd" in c and "msd" in c]
    if len(gens) != 1 or len(discs) > 1 or len(gens) + len(discs) != len(loaded):
        raise UserError(
            "import hifigan takes one generator checkpoint (g_XXXXXXXX: {'generator': ...}) and "
            "at most one discriminators checkpoint (do_XXXXXXXX: {'mpd', 'msd', ...}); got "
            + ", ".join(str(p) for p in checkpoints)
        )
    config = our_config(h)
    if discs:
        with config.unlocked():
            config.model.mpd_channels = _mpd_channels(discs[0]["mpd"])
            config.model.msd_layers = _msd_layers(discs[0]["msd"])
    model = HiFiGANConfig.from_config(config.model)
    rng = jax.random.PRNGKey(config.seed)
    batch = example_batch(config)
    want = jax.eval_shape(lambda: init_state(config, rng, batch))  # what training restores
    gen = generator_params(gens[0]["generator"], model)
    _check_shapes("generator", gen, want.gen_params)
    if discs:
        disc_params, disc_stats = discriminator_params(discs[0]["mpd"], discs[0]["msd"], model)
        _check_shapes("discriminators", disc_params, want.disc_params)
        step = int(discs[0].get("steps", 0))
    else:  # fresh, as init_state draws them
        _, p_rng, s_rng = jax.random.split(rng, 3)
        fresh = jax.jit(lambda w: init_discriminators(config, p_rng, s_rng, w))
        disc_params, disc_stats = fresh(batch["audio"][:1])
        step = 0
    state = gan_state(config, rng, gen, disc_params, disc_stats, step)
    _check_shapes("imported", state, want)
    workdir.write(out, config, state, step)
    return {
        "step": step,
        "generator": int(sum(np.size(x) for x in jax.tree.leaves(gen))),
        "discriminators": bool(discs),
        "config": config,
    }


def _check_shapes(what: str, got, want) -> None:
    if jax.tree.structure(got) != jax.tree.structure(want) or not same_shapes(got, want):
        raise UserError(
            f"the {what} checkpoint does not match its config (parameter names or shapes differ): "
            "give the config_vN.json it was trained with"
        )
