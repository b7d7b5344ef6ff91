"""HiFi-GAN (Kong, Kim & Bae 2020): generator V1/V2/V3, multi-period and multi-scale
discriminators, LSGAN + feature-matching + mel-L1 losses, and the trainer family.

Layouts are ``[B, T, C]`` (channels last); audio is ``[B, T]``. Names follow the paper and
REFERENCE. Parameter counts match jik876/hifi-gan exactly (tests/test_hifigan.py).

Deviations from the reference implementation, each deliberate:

* Transposed convolutions are weight-normed per *output* channel (flax's WeightNorm default,
  and Salimans & Kingma's definition). PyTorch's ``weight_norm(ConvTranspose1d)`` normalises
  over dim 0, which for a transposed conv is the *input* channel. The folded (inference)
  parameters and their count are the same either way.
* A period discriminator's ``(k, 1)`` 2-D convolutions are computed as 1-D convolutions over
  each of the ``p`` columns (batch ``B * p``): the same arithmetic and parameter count, and
  XLA's CPU backend runs 1-D convolutions faster than 2-D ones with a unit-width kernel.
* The discriminators see real and generated audio in one batch (one call instead of two);
  nothing in them mixes batch items, except that spectral norm's power iteration then
  advances once per update rather than once per call.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from tts_jax import audio
from tts_jax.data.inputs import audio_segment_data, audio_segment_example, mel_config
from tts_jax.errors import UserError
from tts_jax.nn.conv import (
    Conv1d,
    ConvTranspose1d,
    fold_weight_norm,
    normal_init,
    torch_weight_norm_init,
)
from tts_jax.train.family import Family, count_params
from tts_jax.train.optim import make_optimizer
from tts_jax.train.precision import cast_floating, compute_dtype, like
from tts_jax.train.state import skip_if_nonfinite
from tts_jax.vocoders import TrainedVocoder, workdir_config

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd, dilated kernel."""
    return (kernel_size * dilation - dilation) // 2


# ------------------------------------------------------------------------------ generator


class ResBlock1(nn.Module):
    """MRF resblock type 1 (V1, V2): per dilation d, x += conv_1(lrelu(conv_d(lrelu(x))))."""

    channels: int
    kernel_size: int
    dilations: tuple[int, ...]
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x):  # [B, T, C] -> [B, T, C]
        k = self.kernel_size
        init = normal_init(0.01)
        for d in self.dilations:
            y = nn.leaky_relu(x, LRELU_SLOPE)
            y = Conv1d(
                self.channels,
                k,
                dilation=d,
                padding=get_padding(k, d),
                norm=self.norm,
                kernel_init=init,
            )(y)
            y = nn.leaky_relu(y, LRELU_SLOPE)
            y = Conv1d(self.channels, k, padding=get_padding(k), norm=self.norm, kernel_init=init)(
                y
            )
            x = x + y
        return x


class ResBlock2(nn.Module):
    """MRF resblock type 2 (V3): per dilation d, x += conv_d(lrelu(x))."""

    channels: int
    kernel_size: int
    dilations: tuple[int, ...]
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x):  # [B, T, C] -> [B, T, C]
        k = self.kernel_size
        for d in self.dilations:
            y = nn.leaky_relu(x, LRELU_SLOPE)
            x = x + Conv1d(
                self.channels,
                k,
                dilation=d,
                padding=get_padding(k, d),
                norm=self.norm,
                kernel_init=normal_init(0.01),
            )(y)
        return x


class MRF(nn.Module):
    """Multi-receptive-field fusion: the mean of one resblock per kernel size."""

    channels: int
    resblock: str  # "1" | "2"
    kernel_sizes: tuple[int, ...]
    dilations: tuple[tuple[int, ...], ...]
    norm: str | None = "weight"

    @nn.compact
    def __call__(self, x):  # [B, T, C] -> [B, T, C]
        block = ResBlock1 if self.resblock == "1" else ResBlock2
        out = 0.0
        for k, d in zip(self.kernel_sizes, self.dilations, strict=True):
            out = out + block(self.channels, k, tuple(d), self.norm)(x)
        return out / len(self.kernel_sizes)


class Generator(nn.Module):
    """log-mel ``[B, F, n_mels]`` -> waveform ``[B, F * prod(upsample_rates)]`` in [-1, 1]."""

    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    norm: str | None = "weight"  # None after fold_weight_norm (inference)
    upsample_method: str = "polyphase"  # polyphase | dilated (see tts_jax.nn.conv)

    @nn.compact
    def __call__(self, mels):
        x = Conv1d(self.upsample_initial_channel, 7, padding=3, norm=self.norm, name="conv_pre")(
            mels
        )
        for i, (u, k) in enumerate(
            zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True)
        ):
            channels = self.upsample_initial_channel // 2 ** (i + 1)
            x = nn.leaky_relu(x, LRELU_SLOPE)
            x = ConvTranspose1d(
                channels,
                k,
                u,
                padding=(k - u) // 2,
                norm=self.norm,
                method=self.upsample_method,
                kernel_init=normal_init(0.01),
                name=f"ups_{i}",
            )(x)
            x = MRF(
                channels,
                self.resblock,
                tuple(self.resblock_kernel_sizes),
                tuple(map(tuple, self.resblock_dilation_sizes)),
                self.norm,
                name=f"mrf_{i}",
            )(x)
        # The reference's last activation is F.leaky_relu with PyTorch's default slope 0.01.
        x = nn.leaky_relu(x, 0.01)
        x = Conv1d(1, 7, padding=3, norm=self.norm, name="conv_post")(x)
        return jnp.tanh(x[..., 0])

    @property
    def hop(self) -> int:
        return int(np.prod(self.upsample_rates))


# -------------------------------------------------------------------------- discriminators


class DiscriminatorP(nn.Module):
    """Period-p discriminator: audio ``[B, T]`` viewed as ``[B, ceil(T/p), p]`` (reflect-padded
    to a multiple of p), (k, 1) convs along time per column. Returns (logits ``[B, N]``,
    feature maps after every conv ``[B, p, T_l, C_l]``)."""

    period: int
    channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    kernel_size: int = 5
    stride: int = 3
    norm: str | None = "weight"
    conv_impl: str = "auto"  # tts_jax.nn.conv.conv1d

    @nn.compact
    def __call__(self, x):
        b, t = x.shape
        p = self.period
        if t % p:
            if t % p >= t:
                raise ValueError(f"reflect padding needs more than {p - t % p} samples, got {t}")
            x = jnp.pad(x, ((0, 0), (0, p - t % p)), mode="reflect")
        # [B, T] -> [B, T/p, p] -> [B * p, T/p, 1]: column j holds samples j, j + p, ...
        h = x.reshape(b, -1, p).transpose(0, 2, 1).reshape(b * p, -1, 1)
        fmaps = []
        k = self.kernel_size
        for i, c in enumerate(self.channels):
            stride = self.stride if i < len(self.channels) - 1 else 1
            h = Conv1d(c, k, stride, padding=get_padding(k), norm=self.norm, impl=self.conv_impl)(h)
            h = nn.leaky_relu(h, LRELU_SLOPE)
            fmaps.append(h.reshape(b, p, *h.shape[1:]))
        h = Conv1d(1, 3, padding=1, norm=self.norm, name="conv_post")(h)
        fmaps.append(h.reshape(b, p, *h.shape[1:]))
        return h.reshape(b, -1), fmaps


class MultiPeriodDiscriminator(nn.Module):
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, *, update_stats: bool = False):  # noqa: ARG002 - uniform interface
        """x ``[B, T]`` -> (list of logits, list of feature-map lists), one per period."""
        outs = [
            DiscriminatorP(p, tuple(self.channels), conv_impl=self.conv_impl)(x)
            for p in self.periods
        ]
        return [o[0] for o in outs], [o[1] for o in outs]


# REFERENCE's scale discriminator: (out channels, kernel, stride, groups) of each conv before
# conv_post.
MSD_LAYERS = (
    (128, 15, 1, 1),
    (128, 41, 2, 4),
    (256, 41, 2, 16),
    (512, 41, 4, 16),
    (1024, 41, 4, 16),
    (1024, 41, 1, 16),
    (1024, 5, 1, 1),
)


class DiscriminatorS(nn.Module):
    """Scale discriminator on audio ``[B, T]``: grouped strided 1-D convs (REFERENCE's table)."""

    norm: str | None = "weight"
    layers: tuple[tuple[int, int, int, int], ...] = MSD_LAYERS
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, *, update_stats: bool = False):
        h = x[..., None]
        fmaps = []
        for c, k, s, g in self.layers:
            h = Conv1d(
                c, k, s, groups=g, padding=(k - 1) // 2, norm=self.norm, impl=self.conv_impl
            )(h, update_stats=update_stats)
            h = nn.leaky_relu(h, LRELU_SLOPE)
            fmaps.append(h)
        h = Conv1d(1, 3, padding=1, norm=self.norm, name="conv_post")(h, update_stats=update_stats)
        fmaps.append(h)
        return h.reshape(h.shape[0], -1), fmaps


class MultiScaleDiscriminator(nn.Module):
    """Three DiscriminatorS on raw, x2 and x4 average-pooled audio (pool 4, stride 2, pad 2,
    zero padding counted, as PyTorch's AvgPool1d); spectral norm on the raw-scale one."""

    layers: tuple[tuple[int, int, int, int], ...] = MSD_LAYERS
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, *, update_stats: bool = False):
        logits, fmaps = [], []
        for i, norm in enumerate(("spectral", "weight", "weight")):
            if i > 0:
                x = nn.avg_pool(x[..., None], (4,), (2,), padding=[(2, 2)])[..., 0]
            o, f = DiscriminatorS(norm, tuple(map(tuple, self.layers)), self.conv_impl)(
                x, update_stats=update_stats
            )
            logits.append(o)
            fmaps.append(f)
        return logits, fmaps


# ---------------------------------------------------------------------------------- losses


def discriminator_loss(real_logits, fake_logits):
    """LSGAN: sum over sub-discriminators of mean (1 - D(x))^2 + mean D(G(s))^2.
    Returns (total, per-discriminator real terms, per-discriminator fake terms)."""
    real = [jnp.mean(jnp.square(1.0 - r)) for r in real_logits]
    fake = [jnp.mean(jnp.square(g)) for g in fake_logits]
    return sum(real) + sum(fake), real, fake


def generator_loss(fake_logits):
    """LSGAN: sum over sub-discriminators of mean (1 - D(G(s)))^2."""
    terms = [jnp.mean(jnp.square(1.0 - g)) for g in fake_logits]
    return sum(terms), terms


def feature_loss(real_fmaps, fake_fmaps):
    """2 x the sum over sub-discriminators and layers of the mean |D_l(x) - D_l(G(s))|."""
    total = 0.0
    for rs, gs in zip(real_fmaps, fake_fmaps, strict=True):
        for r, g in zip(rs, gs, strict=True):
            total = total + jnp.mean(jnp.abs(r - g))
    return 2.0 * total


def mel_loss(audio_real, audio_fake, cfg: audio.MelConfig):
    """Mean |log-mel(x) - log-mel(G(s))| (multiply by 45 for the generator objective)."""
    return jnp.mean(jnp.abs(audio.log_mel(audio_real, cfg) - audio.log_mel(audio_fake, cfg)))


# ------------------------------------------------------------------------- model building


def build_generator(config, *, folded: bool = False) -> Generator:
    m = config.model
    return Generator(
        upsample_rates=tuple(m.upsample_rates),
        upsample_kernel_sizes=tuple(m.upsample_kernel_sizes),
        upsample_initial_channel=m.upsample_initial_channel,
        resblock=str(m.resblock),
        resblock_kernel_sizes=tuple(m.resblock_kernel_sizes),
        resblock_dilation_sizes=tuple(map(tuple, m.resblock_dilation_sizes)),
        norm=None if folded else "weight",
        upsample_method=m.upsample_method,
    )


def build_discriminators(config) -> tuple[MultiPeriodDiscriminator, MultiScaleDiscriminator]:
    m = config.model
    impl = m.get("conv_impl", "auto")  # absent from configs saved before it existed
    return (
        MultiPeriodDiscriminator(tuple(m.mpd_periods), tuple(m.mpd_channels), impl),
        MultiScaleDiscriminator(tuple(map(tuple, m.msd_layers)), impl),
    )


def check_config(config) -> None:
    m = config.model
    hop = int(np.prod(m.upsample_rates))
    if hop != config.data.hop_length:
        raise UserError(
            f"model.upsample_rates {tuple(m.upsample_rates)} multiply to {hop}, but "
            f"data.hop_length is {config.data.hop_length}; they must be equal"
        )
    if len(m.upsample_rates) != len(m.upsample_kernel_sizes):
        raise UserError("model.upsample_rates and model.upsample_kernel_sizes differ in length")
    if m.resblock not in ("1", "2"):
        raise UserError(f"model.resblock must be '1' or '2', got {m.resblock!r}")
    if config.train.segment_length % hop:
        raise UserError(
            f"train.segment_length {config.train.segment_length} is not a multiple of the hop {hop}"
        )


def loss_mel_config(config) -> audio.MelConfig:
    """The mel of the L1 loss: the data mel, full band (fmax = Nyquist) when
    ``model.loss_mel_full_band`` (the reference's fmax_for_loss = None)."""
    cfg = mel_config(config)
    if config.model.loss_mel_full_band:
        cfg = audio.MelConfig(**{**cfg.__dict__, "fmax": cfg.sample_rate / 2})
    return cfg


# ---------------------------------------------------------------------------- train state


class GANState(struct.PyTreeNode):
    """Generator and discriminators with an optimiser each. ``disc_stats`` holds spectral
    norm's power-iteration vectors (flax's "batch_stats" collection of the MSD)."""

    step: jax.Array
    gen_params: Any
    gen_opt_state: Any
    disc_params: Any  # {"mpd": ..., "msd": ...}
    disc_opt_state: Any
    disc_stats: Any  # {"msd": batch_stats}
    rng: jax.Array


def steps_per_epoch(config) -> int:
    """Training batches per epoch: one segment per training utterance, as the reference."""
    from tts_jax.data.inputs import corpus_from_config

    n = len(corpus_from_config(config).split("train"))
    return max(1, n // config.train.batch_size)


def optimizer(config, *, resolve_epoch: bool = True):
    """(tx, schedule) for either network: AdamW with the paper's lr decay. ``optim.decay_steps
    = -1`` means one epoch (x0.999 per epoch with ``staircase``, the per-step equivalent
    without); resolving it reads the corpus size, which the optimiser's state structure does
    not need (``resolve_epoch=False``)."""
    optim = config.optim
    if optim.schedule == "exponential" and optim.decay_steps == -1:
        optim = optim.copy_and_resolve_references()
        optim.decay_steps = steps_per_epoch(config) if resolve_epoch else 1
    return make_optimizer(optim)


def init_state(config, rng, batch) -> GANState:
    check_config(config)
    g_rng, p_rng, s_rng = jax.random.split(rng, 3)
    gen = build_generator(config)
    mpd, msd = build_discriminators(config)
    mels, wav = batch["mels"][:1], batch["audio"][:1]
    gen_params = torch_weight_norm_init(gen.init(g_rng, mels)["params"])
    mpd_params = torch_weight_norm_init(mpd.init(p_rng, wav)["params"])
    msd_vars = msd.init(s_rng, wav)
    msd_params = torch_weight_norm_init(msd_vars["params"])
    disc_params = {"mpd": mpd_params, "msd": msd_params}
    tx, _ = optimizer(config, resolve_epoch=False)
    return GANState(
        step=jnp.zeros((), jnp.int32),
        gen_params=gen_params,
        gen_opt_state=tx.init(gen_params),
        disc_params=disc_params,
        disc_opt_state=tx.init(disc_params),
        disc_stats={"msd": msd_vars["batch_stats"]},
        rng=rng,
    )


def _discriminate(mpd, msd, disc_params, disc_stats, x, update_stats: bool):
    """Both discriminators on ``x`` [B, T]: (logits, fmaps, new spectral-norm stats)."""
    p_logits, p_fmaps = mpd.apply({"params": disc_params["mpd"]}, x)
    (s_logits, s_fmaps), upd = msd.apply(
        {"params": disc_params["msd"], "batch_stats": disc_stats["msd"]},
        x,
        update_stats=update_stats,
        mutable=["batch_stats"],
    )
    return (p_logits, s_logits), (p_fmaps, s_fmaps), {"msd": upd["batch_stats"]}


def _split_batch(tree, n):
    """Items [:n] and [n:] of every array in a (nested list) tree."""
    return jax.tree.map(lambda a: a[:n], tree), jax.tree.map(lambda a: a[n:], tree)


def train_step(config):
    """One jitted GAN step on one batch, in the reference's order: generate; update the
    discriminators on (real, generated) with the generator held fixed; then update the
    generator against the *updated* discriminators (adversarial + 2 x feature matching +
    45 x mel L1). Gradients: the D loss sees ``stop_gradient(G(s))``; the G loss
    differentiates only with respect to the generator (the D parameters are constants)."""
    check_config(config)
    gen = build_generator(config)
    mpd, msd = build_discriminators(config)
    mel_cfg = loss_mel_config(config)
    tx, schedule = optimizer(config)  # same hyperparameters, separate states for G and D
    w_mel, w_fm = config.model.mel_loss_weight, config.model.feature_loss_weight
    dtype = compute_dtype(config.train.compute_dtype)  # networks run in it, losses in float32

    def low(tree):
        return cast_floating(tree, dtype)

    def step(state: GANState, batch):
        y, mels = batch["audio"], batch["mels"]
        n = y.shape[0]
        if y.shape[1] != mels.shape[1] * gen.hop:
            raise ValueError(f"audio {y.shape} does not match mels {mels.shape} x hop {gen.hop}")
        y_hat, gen_vjp = jax.vjp(
            lambda p: gen.apply({"params": low(p)}, low(mels)).astype(jnp.float32),
            state.gen_params,
        )

        # --- discriminators: real and generated in one batch.
        both = jnp.concatenate([y, jax.lax.stop_gradient(y_hat)], axis=0)

        def d_loss_fn(disc_params):
            logits, _, stats = _discriminate(
                mpd, msd, low(disc_params), state.disc_stats, low(both), update_stats=True
            )
            real, fake = _split_batch(cast_floating(logits, jnp.float32), n)
            loss_p, _, _ = discriminator_loss(real[0], fake[0])
            loss_s, _, _ = discriminator_loss(real[1], fake[1])
            return loss_p + loss_s, (loss_p, loss_s, like(stats, state.disc_stats))

        (d_loss, (d_loss_p, d_loss_s, disc_stats)), d_grads = jax.value_and_grad(
            d_loss_fn, has_aux=True
        )(state.disc_params)
        d_updates, disc_opt_state = tx.update(d_grads, state.disc_opt_state, state.disc_params)
        disc_params = optax.apply_updates(state.disc_params, d_updates)

        # --- generator against the updated discriminators.
        def g_loss_fn(y_hat):
            logits, fmaps, _ = _discriminate(
                mpd, msd, low(disc_params), disc_stats, low(jnp.concatenate([y, y_hat])), False
            )
            logits, fmaps = cast_floating((logits, fmaps), jnp.float32)
            (_, fake_l), (real_f, fake_f) = _split_batch(logits, n), _split_batch(fmaps, n)
            real_f = jax.lax.stop_gradient(real_f)
            adv_p, _ = generator_loss(fake_l[0])
            adv_s, _ = generator_loss(fake_l[1])
            fm_p = feature_loss(real_f[0], fake_f[0])
            fm_s = feature_loss(real_f[1], fake_f[1])
            mel = mel_loss(y, y_hat, mel_cfg)
            total = adv_p + adv_s + w_fm / 2.0 * (fm_p + fm_s) + w_mel * mel
            return total, {
                "gen/adv_mpd": adv_p,
                "gen/adv_msd": adv_s,
                "gen/fm_mpd": fm_p,
                "gen/fm_msd": fm_s,
                "gen/mel_l1": mel,
            }

        (g_loss, g_metrics), dy = jax.value_and_grad(g_loss_fn, has_aux=True)(y_hat)
        (g_grads,) = gen_vjp(dy)
        g_updates, gen_opt_state = tx.update(g_grads, state.gen_opt_state, state.gen_params)
        gen_params = optax.apply_updates(state.gen_params, g_updates)

        metrics = {
            "loss": g_loss,
            "disc/loss": d_loss,
            "disc/mpd": d_loss_p,
            "disc/msd": d_loss_s,
            "gen/grad_norm": optax.tree.norm(g_grads),
            "disc/grad_norm": optax.tree.norm(d_grads),
            "learning_rate": schedule(state.step),
            **g_metrics,
        }
        new_state = state.replace(
            step=state.step + 1,
            gen_params=gen_params,
            gen_opt_state=gen_opt_state,
            disc_params=disc_params,
            disc_opt_state=disc_opt_state,
            disc_stats=disc_stats,
        )
        finite = jnp.isfinite(g_loss) & jnp.isfinite(d_loss)
        finite &= jnp.isfinite(metrics["gen/grad_norm"]) & jnp.isfinite(metrics["disc/grad_norm"])
        return skip_if_nonfinite(state, new_state, finite, metrics)

    return step


# ------------------------------------------------------------------------ trainer plumbing


def make_data(config, process_index, process_count):
    check_config(config)
    return audio_segment_data(
        config,
        process_index,
        process_count,
        config.train.segment_length,
        eval_segment_length=config.train.eval_segment_length,
        mel_dir=config.data.gta_dir,
    )


def eval_step(config):
    """Validation: generator on ground-truth mels; mel L1 (the loss mel) on real segments."""
    gen = build_generator(config)
    mel_cfg = loss_mel_config(config)

    def step(state: GANState, batch):
        y_hat = gen.apply({"params": state.gen_params}, batch["mels"])
        err = jnp.abs(audio.log_mel(batch["audio"], mel_cfg) - audio.log_mel(y_hat, mel_cfg))
        per_item = jnp.mean(err, axis=(1, 2))
        valid = batch["valid"].astype(jnp.float32)
        weight = jnp.maximum(jnp.sum(valid), 1.0)
        return {"mel_l1": jnp.sum(per_item * valid) / weight, "weight": jnp.sum(valid)}

    return step


def eval_summaries(config, state, batch):
    from tts_jax.plotting import mel_image

    gen = build_generator(config)
    y_hat = np.asarray(jax.device_get(gen.apply({"params": state.gen_params}, batch["mels"][:1])))
    y = np.asarray(jax.device_get(batch["audio"]))[0]
    cfg = mel_config(config)
    return {
        "images": {
            "mel": mel_image(
                {
                    "ground truth": audio.log_mel_np(y, cfg),
                    "HiFi-GAN": audio.log_mel_np(y_hat[0], cfg),
                }
            )
        },
        "audio": {"generated": y_hat[0], "ground_truth": y},
    }


def param_count(config) -> dict[str, int]:
    """The generator as the paper counts it (weight norm folded), and the discriminators
    (MPD and MSD)."""
    batch = audio_segment_example(config)
    mels, wav = jnp.asarray(batch["mels"]), jnp.asarray(batch["audio"])
    key = jax.random.key(0)
    mpd, msd = build_discriminators(config)
    return {
        "generator": count_params(lambda: build_generator(config, folded=True).init(key, mels)),
        "discriminators": count_params(lambda: mpd.init(key, wav))
        + count_params(lambda: msd.init(key, wav)),
    }


FAMILY = Family(
    name="hifigan",
    make_data=make_data,
    init_state=init_state,
    train_step=train_step,
    eval_step=eval_step,
    eval_summaries=eval_summaries,
    param_count=param_count,
)


# ------------------------------------------------------------------------------- inference


class Vocoder(TrainedVocoder):
    """A trained HiFi-GAN workdir as ``mel [F, n_mels] -> waveform [F * hop]``, weight norm
    folded away (the output is identical, tests/test_hifigan.py)."""

    def __init__(self, workdir, config=None, state=None):
        from tts_jax.train.loop import restore_trained

        config = workdir_config(workdir, config, "hifigan")
        if state is None:
            state = restore_trained(workdir, config, FAMILY, audio_segment_example(config))
        self.config, self.step, self.mel = config, int(state.step), mel_config(config)
        self.hop = config.data.hop_length
        params = fold_weight_norm(jax.device_get(state.gen_params))
        apply = jax.jit(build_generator(config, folded=True).apply)
        self._generate = lambda mel: apply({"params": params}, mel)
