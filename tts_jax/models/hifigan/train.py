"""Training HiFi-GAN: audio segments in, one GAN step (discriminators, then the generator
against the updated discriminators) as a pure function of (state, batch)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from tts_jax import audio
from tts_jax.data.inputs import (
    audio_segment_data,
    audio_segment_example,
    corpus_from_config,
    mel_config,
)
from tts_jax.errors import UserError
from tts_jax.family import count_params
from tts_jax.models.hifigan.model import (
    HiFiGANConfig,
    build_discriminators,
    build_generator,
    discriminator_loss,
    feature_loss,
    generator_loss,
    mel_loss,
)
from tts_jax.nn.conv import torch_weight_norm_init
from tts_jax.plotting import mel_image
from tts_jax.train.optim import make_optimizer
from tts_jax.train.precision import cast_floating, compute_dtype, like
from tts_jax.train.state import skip_if_nonfinite


def check_config(config) -> None:
    m = HiFiGANConfig.from_config(config.model)
    if m.hop != config.data.hop_length:
        raise UserError(
            f"model.upsample_rates {m.upsample_rates} multiply to {m.hop}, but "
            f"data.hop_length is {config.data.hop_length}; they must be equal"
        )
    if len(m.upsample_rates) != len(m.upsample_kernel_sizes):
        raise UserError("model.upsample_rates and model.upsample_kernel_sizes differ in length")
    if m.resblock not in ("1", "2"):
        raise UserError(f"model.resblock must be '1' or '2', got {m.resblock!r}")
    if config.train.segment_length % m.hop:
        raise UserError(
            f"train.segment_length {config.train.segment_length} is not a multiple of the "
            f"hop {m.hop}"
        )


def loss_mel_config(config) -> audio.MelConfig:
    """The mel of the L1 loss: the data mel, full band (fmax = Nyquist) when
    ``model.loss_mel_full_band`` (the reference's fmax_for_loss = None)."""
    cfg = mel_config(config)
    if HiFiGANConfig.from_config(config.model).loss_mel_full_band:
        cfg = audio.MelConfig(**{**cfg.__dict__, "fmax": cfg.sample_rate / 2})
    return cfg


# ------------------------------------------------------------------------------------ data


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


def example_batch(config) -> dict:
    """Zeros in the shapes of a training batch (restoring a checkpoint needs only those)."""
    return audio_segment_example(config)


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


def init_discriminators(config, p_rng, s_rng, wav) -> tuple[dict, dict]:
    """Fresh ``(disc_params, disc_stats)`` for audio like ``wav`` ``[1, T]``; weight-normed
    layers start computing exactly their drawn kernels (g = ||v||, as torch)."""
    (mpd, msd), (mpd_plain, msd_plain) = (
        build_discriminators(config, plain=plain) for plain in (False, True)
    )
    mpd_params = torch_weight_norm_init(
        mpd.init(p_rng, wav)["params"], mpd_plain.init(p_rng, wav)["params"]
    )
    msd_vars = msd.init(s_rng, wav)
    msd_params = torch_weight_norm_init(msd_vars["params"], msd_plain.init(s_rng, wav)["params"])
    return {"mpd": mpd_params, "msd": msd_params}, {"msd": msd_vars["batch_stats"]}


def gan_state(config, rng, gen_params, disc_params, disc_stats, step: int = 0) -> GANState:
    """A train state around the given parameters, the optimisers' moments fresh."""
    tx, _ = optimizer(config, resolve_epoch=False)
    return GANState(
        step=jnp.asarray(step, jnp.int32),
        gen_params=gen_params,
        gen_opt_state=tx.init(gen_params),
        disc_params=disc_params,
        disc_opt_state=tx.init(disc_params),
        disc_stats=disc_stats,
        rng=rng,
    )


def init_state(config, rng, batch) -> GANState:
    check_config(config)
    g_rng, p_rng, s_rng = jax.random.split(rng, 3)
    mels, wav = batch["mels"][:1], batch["audio"][:1]
    gen_params = torch_weight_norm_init(
        build_generator(config).init(g_rng, mels)["params"],
        build_generator(config, folded=True).init(g_rng, mels)["params"],
    )
    disc_params, disc_stats = init_discriminators(config, p_rng, s_rng, wav)
    return gan_state(config, rng, gen_params, disc_params, disc_stats)


# ----------------------------------------------------------------------------------- steps


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
    m = HiFiGANConfig.from_config(config.model)
    gen = build_generator(config)
    mpd, msd = build_discriminators(config)
    mel_cfg = loss_mel_config(config)
    tx, schedule = optimizer(config)  # same hyperparameters, separate states for G and D
    w_mel, w_fm = m.mel_loss_weight, m.feature_loss_weight
    dtype = compute_dtype(config.train.compute_dtype)  # networks run in it, losses in float32

    def low(tree):
        return cast_floating(tree, dtype)

    def step(state: GANState, batch):
        y, mels = batch["audio"], batch["mels"]
        n = y.shape[0]
        if y.shape[1] != mels.shape[1] * gen.hop:
            raise ValueError(f"audio {y.shape} does not match mels {mels.shape} x hop {gen.hop}")
        y_hat, gen_vjp = jax.vjp(
            # The generator stays float32 under bfloat16: its output is the audio (bfloat16's
            # 8-bit mantissa would lay a -48 dB floor under it), and at the reference's init
            # (N(0, 0.01)) its residual updates fall below bfloat16's resolution (measured at
            # step 0 of the :tiny config: mel L1 5.84 in float32, 4.36 with a bf16 generator).
            lambda p: gen.apply({"params": p}, mels),
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
    batch = example_batch(config)
    mels, wav = jnp.asarray(batch["mels"]), jnp.asarray(batch["audio"])
    key = jax.random.key(0)
    mpd, msd = build_discriminators(config)
    return {
        "generator": count_params(lambda: build_generator(config, folded=True).init(key, mels)),
        "discriminators": count_params(lambda: mpd.init(key, wav))
        + count_params(lambda: msd.init(key, wav)),
    }
