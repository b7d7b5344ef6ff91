"""Conv-TasNet (Luo & Mesgarani 2019): time-domain speech separation with a learned encoder,
a temporal convolutional network (TCN) separator of depthwise-separable blocks, masks, and a
learned decoder; trained with negative SI-SNR under utterance-level permutation invariant
training. Layouts ``[B, T]`` for waveforms, ``[B, K, N]`` for encoder frames.
"""

from __future__ import annotations

import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.nn.conv import conv_transpose_1d
from tts_jax.nn.separable import DepthwiseSeparableConv1d, PReLU
from tts_jax.train.family import Family, count_params


class GlobalLayerNorm(nn.Module):
    """gLN: normalise over time *and* channels of each utterance, then per-channel gain and
    bias (paper eq. 13). ``[B, K, C]``."""

    eps: float = 1e-8

    @nn.compact
    def __call__(self, x):
        mean = jnp.mean(x, axis=(1, 2), keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
        gamma = self.param("gamma", nn.initializers.ones, (x.shape[-1],))
        beta = self.param("beta", nn.initializers.zeros, (x.shape[-1],))
        return gamma * (x - mean) / jnp.sqrt(var + self.eps) + beta


class CumulativeLayerNorm(nn.Module):
    """cLN: normalise frame k over channels and frames <= k (causal configuration)."""

    eps: float = 1e-8

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        count = c * jnp.arange(1, x.shape[1] + 1)[None, :, None]
        mean = jnp.cumsum(jnp.sum(x, -1, keepdims=True), axis=1) / count
        power = jnp.cumsum(jnp.sum(jnp.square(x), -1, keepdims=True), axis=1) / count
        var = power - jnp.square(mean)
        gamma = self.param("gamma", nn.initializers.ones, (c,))
        beta = self.param("beta", nn.initializers.zeros, (c,))
        return gamma * (x - mean) / jnp.sqrt(jnp.maximum(var, 0.0) + self.eps) + beta


def _norm(causal: bool):
    return CumulativeLayerNorm if causal else GlobalLayerNorm


class Encoder(nn.Module):
    """Waveform ``[B, T]`` -> non-negative frames ``[B, K, N]``: conv1d N filters of L samples,
    stride L / 2, no bias, ReLU. T is zero-padded to a whole number of strides."""

    num_filters: int = 512
    filter_length: int = 16

    @nn.compact
    def __call__(self, x):
        stride = self.filter_length // 2
        t = x.shape[1]
        frames = max(1, -(-(t - self.filter_length) // stride) + 1)
        x = jnp.pad(x, ((0, 0), (0, (frames - 1) * stride + self.filter_length - t)))
        w = nn.Conv(
            self.num_filters,
            (self.filter_length,),
            strides=(stride,),
            padding="VALID",
            use_bias=False,
        )(x[..., None])
        return nn.relu(w)


class Decoder(nn.Module):
    """Masked frames ``[B, K, N]`` -> waveform ``[B, T]``: transposed conv1d (N -> 1, kernel L,
    stride L / 2, no bias), i.e. overlap-add of learned basis signals; trimmed to ``length``."""

    filter_length: int = 16

    @nn.compact
    def __call__(self, frames, length: int):
        n = frames.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.filter_length, n, 1))
        y = conv_transpose_1d(frames, kernel, self.filter_length // 2, 0)
        return y[:, :length, 0]


class TemporalBlock(nn.Module):
    """1x1 conv B -> H, PReLU, norm, depthwise-separable (D-conv P taps with dilation d, PReLU,
    norm, 1x1 to B + Sc). Returns (x + residual, skip)."""

    bottleneck: int = 128
    hidden: int = 512
    skip: int = 128
    kernel_size: int = 3
    dilation: int = 1
    causal: bool = False

    @nn.compact
    def __call__(self, x):  # [B, K, bottleneck]
        norm = _norm(self.causal)
        y = nn.Conv(self.hidden, (1,))(x)
        y = norm()(PReLU()(y))
        y = DepthwiseSeparableConv1d(
            self.bottleneck + self.skip,
            self.kernel_size,
            self.dilation,
            self.causal,
            inner=lambda: nn.Sequential([PReLU(), norm()]),
        )(y)
        residual, skip = jnp.split(y, [self.bottleneck], axis=-1)
        return x + residual, skip


class Separator(nn.Module):
    """Frames ``[B, K, N]`` -> masks ``[B, K, C, N]`` in (0, 1) (sigmoid)."""

    num_sources: int = 2
    bottleneck: int = 128
    hidden: int = 512
    skip: int = 128
    kernel_size: int = 3
    blocks: int = 8  # X: dilations 1, 2, ..., 2^(X-1)
    repeats: int = 3  # R
    causal: bool = False

    @nn.compact
    def __call__(self, w):
        n = w.shape[-1]
        x = nn.Conv(self.bottleneck, (1,))(_norm(self.causal)()(w))
        skips = 0.0
        for _ in range(self.repeats):
            for i in range(self.blocks):
                x, s = TemporalBlock(
                    self.bottleneck, self.hidden, self.skip, self.kernel_size, 2**i, self.causal
                )(x)
                skips = skips + s
        masks = nn.Conv(self.num_sources * n, (1,))(PReLU()(skips))
        return jax.nn.sigmoid(masks.reshape(*masks.shape[:2], self.num_sources, n))

    def receptive_field(self) -> int:
        """In encoder frames: 1 + R (P - 1) (2^X - 1)."""
        return 1 + self.repeats * (self.kernel_size - 1) * (2**self.blocks - 1)


class ConvTasNet(nn.Module):
    """Mixture ``[B, T]`` -> estimated sources ``[B, C, T]``."""

    num_sources: int = 2
    num_filters: int = 512  # N
    filter_length: int = 16  # L
    bottleneck: int = 128  # B
    hidden: int = 512  # H
    skip: int = 128  # Sc
    kernel_size: int = 3  # P
    blocks: int = 8  # X
    repeats: int = 3  # R
    causal: bool = False

    @nn.compact
    def __call__(self, mixture):
        w = Encoder(self.num_filters, self.filter_length)(mixture)
        masks = Separator(
            self.num_sources,
            self.bottleneck,
            self.hidden,
            self.skip,
            self.kernel_size,
            self.blocks,
            self.repeats,
            self.causal,
        )(w)
        decoder = Decoder(self.filter_length)
        b, k, c, n = masks.shape
        masked = (w[:, :, None, :] * masks).transpose(0, 2, 1, 3).reshape(b * c, k, n)
        return decoder(masked, mixture.shape[1]).reshape(b, c, -1)


# ---------------------------------------------------------------------------------- losses


def si_snr(estimate, target, eps: float = 1e-8):
    """Scale-invariant SNR in dB over the last axis (both zero-mean first, paper eq. 7):
    s_t = <s^, s> s / ||s||^2, e = s^ - s_t, 10 log10(||s_t||^2 / ||e||^2)."""
    estimate = estimate - jnp.mean(estimate, axis=-1, keepdims=True)
    target = target - jnp.mean(target, axis=-1, keepdims=True)
    dot = jnp.sum(estimate * target, axis=-1, keepdims=True)
    s_target = dot * target / (jnp.sum(jnp.square(target), axis=-1, keepdims=True) + eps)
    noise = estimate - s_target
    ratio = jnp.sum(jnp.square(s_target), -1) / (jnp.sum(jnp.square(noise), -1) + eps)
    return 10.0 * jnp.log10(ratio + eps)


@functools.cache
def _permutations(c: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(c))))  # numpy: safe to cache


def pit_si_snr(estimates, targets):
    """Utterance-level PIT: per utterance, the permutation of ``estimates`` ``[B, C, T]``
    maximising the mean SI-SNR against ``targets``. Returns (best mean SI-SNR ``[B]``, the
    permutation ``[B, C]``: estimate ``perm[j]`` is matched with target j)."""
    c = targets.shape[1]
    # pair[b, i, j] = SI-SNR(estimate i, target j); every permutation sums C of them.
    pair = si_snr(estimates[:, :, None, :], targets[:, None, :, :])
    perms = jnp.asarray(_permutations(c))  # [P, C]
    scores = jnp.mean(pair[:, perms, jnp.arange(c)], axis=-1)  # [B, P]
    best = jnp.argmax(scores, axis=-1)
    return jnp.max(scores, axis=-1), perms[best]


# ------------------------------------------------------------------------ trainer plumbing


def build_model(config) -> ConvTasNet:
    m = config.model
    return ConvTasNet(
        num_sources=m.num_sources,
        num_filters=m.num_filters,
        filter_length=m.filter_length,
        bottleneck=m.bottleneck,
        hidden=m.hidden,
        skip=m.skip,
        kernel_size=m.kernel_size,
        blocks=m.blocks,
        repeats=m.repeats,
        causal=m.causal,
    )


def make_data(config, process_index, process_count):
    from tts_jax.data.mixtures import MixtureSegments, load_split, sample_rate_of
    from tts_jax.train.family import Data

    root = config.data.mixtures
    sr = sample_rate_of(root)
    segment = int(config.train.segment_seconds * sr)
    common = dict(seed=config.seed, process_index=process_index, process_count=process_count)
    train = MixtureSegments(load_split(root, "train"), config.train.batch_size, segment, **common)
    val_items = load_split(root, "validation")

    def eval_batches():
        n = min(len(val_items), config.train.batch_size)
        return MixtureSegments(val_items, n, segment, shuffle=False, **common).epoch_batches()

    describe = (
        f"data: {len(train.items)} training mixtures at {sr} Hz, {segment}-sample segments",
    )
    return Data(train=train, eval=eval_batches, describe=describe)


def init_state(config, rng, batch):
    from tts_jax.train.optim import make_optimizer
    from tts_jax.train.state import TrainState

    params = build_model(config).init(rng, batch["mixture"][:1])["params"]
    tx, _ = make_optimizer(config.optim)
    return TrainState.create(params, tx, rng)


def train_step(config):
    from tts_jax.train.optim import make_optimizer
    from tts_jax.train.state import make_train_step

    model = build_model(config)
    _, schedule = make_optimizer(config.optim)

    def loss_fn(params, model_state, batch, rng):
        estimates = model.apply({"params": params}, batch["mixture"])
        score, _ = pit_si_snr(estimates, batch["sources"])
        return -jnp.mean(score), ({"si_snr": jnp.mean(score)}, model_state)

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def si_snr_improvement(estimates, sources, mixture):
    """SI-SNRi per utterance ``[B]``: PIT SI-SNR of the estimates minus that of the mixture
    itself taken as every source's estimate."""
    score, _ = pit_si_snr(estimates, sources)
    baseline = jnp.mean(si_snr(mixture[:, None, :], sources), axis=-1)
    return score - baseline, score


def eval_step(config):
    model = build_model(config)

    def step(state, batch):
        estimates = model.apply({"params": state.params}, batch["mixture"])
        improvement, score = si_snr_improvement(estimates, batch["sources"], batch["mixture"])
        return {"si_snr": jnp.mean(score), "si_snri": jnp.mean(improvement)}

    return step


def param_count(config) -> dict[str, int]:
    mixture = jnp.zeros((1, 4 * config.model.filter_length))
    return {"model": count_params(lambda: build_model(config).init(jax.random.key(0), mixture))}


FAMILY = Family(
    name="conv_tasnet",
    make_data=make_data,
    init_state=init_state,
    train_step=train_step,
    eval_step=eval_step,
    param_count=param_count,
)


def load_separator(workdir, config=None):
    """A trained workdir as a function mixture ``[T]`` -> sources ``[C, T]`` (numpy, at the
    run's sample rate, returned too). The mixture is padded to a whole number of seconds (one
    compilation per length in seconds) and the output trimmed; the checkpoint's step comes
    third. ``config``: the workdir's, if already loaded."""
    from tts_jax.data.mixtures import sample_rate_of
    from tts_jax.train.loop import restore_trained
    from tts_jax.vocoders import workdir_config

    config = workdir_config(workdir, config, "conv_tasnet")
    sr = sample_rate_of(config.data.mixtures)
    seg = int(config.train.segment_seconds * sr)
    example = {
        "mixture": np.zeros((1, seg), np.float32),
        "sources": np.zeros((1, config.model.num_sources, seg), np.float32),
    }
    state = restore_trained(workdir, config, FAMILY, example)
    params = state.params
    apply = jax.jit(build_model(config).apply)

    def run(mixture):
        n = len(mixture)
        padded = np.zeros(-(-n // sr) * sr, np.float32)
        padded[:n] = mixture
        return np.asarray(apply({"params": params}, padded[None]))[0, :, :n]

    return run, sr, state.step


def separate(workdir, mixture, config=None):
    """One mixture ``[T]`` -> (sources ``[C, T]``, sample rate); see :func:`load_separator`."""
    run, sr, _ = load_separator(workdir, config)
    return run(mixture), sr


def evaluate_split(workdir, split: str = "test", config=None) -> dict:
    """Separates every whole mixture of a split of the run's mixtures and scores it:
    ``{"rows": [{"id", "seconds", "si_snr", "si_snri"}], "si_snr", "si_snri", "step"}`` (dB;
    means, with ``*_ci95`` the half-width of their 95 % Student-t intervals; SI-SNRi is the
    PIT SI-SNR of the estimates minus the mixture's own SI-SNR)."""
    from tts_jax.data.mixtures import load_split
    from tts_jax.eval.metrics import summarize
    from tts_jax.vocoders import workdir_config

    config = workdir_config(workdir, config, "conv_tasnet")
    run, sr, step = load_separator(workdir, config)
    rows = []
    for item in load_split(config.data.mixtures, split):
        estimates = run(item["mixture"])
        improvement, score = si_snr_improvement(
            estimates[None], item["sources"][None], item["mixture"][None]
        )
        rows.append(
            {
                "id": item["id"],
                "seconds": len(item["mixture"]) / sr,
                "si_snr": float(score[0]),
                "si_snri": float(improvement[0]),
            }
        )
    snr, snri = (summarize([r[k] for r in rows]) for k in ("si_snr", "si_snri"))
    return {
        "split": split,
        "mixtures": len(rows),
        "step": int(step),
        "si_snr": snr["mean"],
        "si_snr_ci95": snr["ci95"],
        "si_snri": snri["mean"],
        "si_snri_ci95": snri["ci95"],
        "rows": rows,
    }
