"""VQ-VAE (van den Oord et al. 2017) and VQ-VAE-2 (Razavi et al. 2019) on log-mel frames.

An encoder maps a log-mel ``[B, T, n_mels]`` to ``[B, T / 2^d, D]``; each vector is replaced
by its nearest codebook entry (K x D); a decoder reconstructs the mel. The quantiser passes
gradients straight through (z_q = z_e + sg(e - z_e)); the loss is

    reconstruction + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2        (beta = 0.25)

or, with the EMA codebook (``ema=True``), reconstruction + beta x commitment, the codebook
following exponential moving averages of its assigned vectors (decay 0.99). Under data
parallelism the EMA statistics are sums over the *global* batch: inside ``jax.jit`` with the
batch sharded over the mesh, the sum is an all-reduce, so every device holds the same
codebook (tests/test_vqvae.py checks 4 devices against 1).

VQ-VAE-2 adds a top level: the bottom encoder's output is encoded again (x2 coarser) and
quantised; the top code, decoded back to the bottom resolution, conditions the bottom
quantiser's input; the decoder reads both levels. Audio comes back through any vocoder of
the project (``tts_jax.vocoders.load_vocoder``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from tts_jax.errors import UserError
from tts_jax.train.family import Family, count_params


class VectorQuantizer(nn.Module):
    """``z_e [..., D] -> (z_q [..., D], info)``; info has ``indices``, ``codebook_loss``,
    ``commitment_loss``, ``counts`` (codes' uses, ``[K]``) and ``perplexity`` (exp of the
    entropy of the code histogram). ``mask`` ``[...]`` (1 = a real frame) keeps padding out
    of the losses, the histogram and the EMA statistics: a batch padded to a bucket would
    otherwise spend a code on silence-padding frames and count it in the perplexity."""

    num_codes: int = 512
    code_dim: int = 64
    ema: bool = False
    decay: float = 0.99
    eps: float = 1e-5

    @nn.compact
    def __call__(self, z_e, mask=None, *, train: bool = False):
        k, d = self.num_codes, self.code_dim
        if z_e.shape[-1] != d:
            raise ValueError(f"z_e has {z_e.shape[-1]} channels; the codebook has {d}")
        init = nn.initializers.uniform(scale=2.0 / k)  # U(0, 2/K) shifted below: U(-1/K, 1/K)
        if self.ema:
            codebook = self.variable(
                "vq_stats", "codebook", lambda: init(self.make_rng("params"), (k, d)) - 1.0 / k
            )
            cluster_size = self.variable("vq_stats", "cluster_size", jnp.zeros, (k,))
            ema_sum = self.variable("vq_stats", "ema_sum", lambda: codebook.value)
            embedding = codebook.value
        else:
            embedding = self.param("codebook", lambda key, s: init(key, s) - 1.0 / k, (k, d))

        flat = z_e.reshape(-1, d)
        w = jnp.ones(flat.shape[:1], flat.dtype) if mask is None else mask.reshape(-1)
        w = w.astype(flat.dtype)
        total = jnp.maximum(jnp.sum(w), 1.0)
        indices = nearest_code(flat, embedding)
        onehot = jax.nn.one_hot(indices, k, dtype=flat.dtype) * w[:, None]
        quantized = embedding[indices]

        def masked_mse(a, b):
            return jnp.sum(jnp.sum(jnp.square(a - b), axis=1) * w) / (total * d)

        commitment = masked_mse(flat, jax.lax.stop_gradient(quantized))
        counts = jnp.sum(onehot, axis=0)  # global over the batch, even when sharded
        if self.ema:
            codebook_loss = jnp.zeros((), flat.dtype)  # the codebook is not trained by gradient
            if train and not self.is_initializing():
                sums = onehot.T @ jax.lax.stop_gradient(flat)
                new = ema_update(
                    cluster_size.value, ema_sum.value, counts, sums, self.decay, self.eps
                )
                cluster_size.value, ema_sum.value, codebook.value = new
        else:
            codebook_loss = masked_mse(jax.lax.stop_gradient(flat), quantized)

        z_q = flat + jax.lax.stop_gradient(quantized - flat)  # straight-through estimator
        probs = counts / total
        perplexity = jnp.exp(-jnp.sum(probs * jnp.log(probs + 1e-10)))
        info = {
            "indices": indices.reshape(z_e.shape[:-1]),
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment,
            "counts": counts,
            "perplexity": perplexity,
        }
        return z_q.reshape(z_e.shape), info


def nearest_code(flat, embedding):
    """argmin_k ||a - e_k||^2 through ||a||^2 - 2 a.e_k + ||e_k||^2 (one matrix product)."""
    distances = (
        jnp.sum(jnp.square(flat), axis=1, keepdims=True)
        - 2.0 * flat @ embedding.T
        + jnp.sum(jnp.square(embedding), axis=1)[None, :]
    )
    return jnp.argmin(distances, axis=1)


def ema_update(cluster_size, ema_sum, counts, sums, decay: float, eps: float):
    """One EMA step of the codebook (VQ-VAE appendix): N_k <- d N_k + (1 - d) n_k,
    m_k <- d m_k + (1 - d) sum of the vectors assigned to k, e_k = m_k / N_k with N_k
    Laplace-smoothed so that an unused code never divides by zero."""
    cluster_size = decay * cluster_size + (1.0 - decay) * counts
    ema_sum = decay * ema_sum + (1.0 - decay) * sums
    n = jnp.sum(cluster_size)
    smoothed = (cluster_size + eps) / (n + cluster_size.shape[0] * eps) * n
    return cluster_size, ema_sum, ema_sum / smoothed[:, None]


# ------------------------------------------------------------------------- encoder/decoder


class ResidualStack(nn.Module):
    """``layers`` x [ReLU, conv3 (hidden // 2), ReLU, conv1 (hidden)] with identity skips."""

    hidden: int
    layers: int = 2

    @nn.compact
    def __call__(self, x):
        for _ in range(self.layers):
            y = nn.Conv(self.hidden // 2, (3,))(nn.relu(x))
            x = x + nn.Conv(self.hidden, (1,))(nn.relu(y))
        return nn.relu(x)


class Encoder(nn.Module):
    """``[B, T, C] -> [B, T / 2^downsample, out]``: strided convs (kernel 4, stride 2), a
    conv 3, residual stack, 1x1 projection."""

    hidden: int = 128
    out: int = 64
    downsample: int = 2

    @nn.compact
    def __call__(self, x):
        for _ in range(self.downsample):
            x = nn.relu(nn.Conv(self.hidden, (4,), strides=(2,), padding=[(1, 1)])(x))
        x = nn.Conv(self.hidden, (3,))(x)
        return nn.Conv(self.out, (1,))(ResidualStack(self.hidden)(x))


class Decoder(nn.Module):
    """``[B, T', C] -> [B, T' 2^upsample, out]``: conv 3, residual stack, transposed convs
    (kernel 4, stride 2) back to the frame rate."""

    hidden: int = 128
    out: int = 80
    upsample: int = 2

    @nn.compact
    def __call__(self, x):
        x = ResidualStack(self.hidden)(nn.Conv(self.hidden, (3,))(x))
        for i in range(self.upsample):
            features = self.out if i == self.upsample - 1 else self.hidden
            x = nn.ConvTranspose(features, (4,), strides=(2,), padding="SAME")(x)
            if i < self.upsample - 1:
                x = nn.relu(x)
        if self.upsample == 0:
            x = nn.Conv(self.out, (3,))(x)
        return x


class VQVAE(nn.Module):
    """Log-mel ``[B, T, n_mels]`` (T a multiple of 2^downsample) -> (reconstruction, info)."""

    n_mels: int = 80
    hidden: int = 128
    num_codes: int = 512
    code_dim: int = 64
    downsample: int = 2
    ema: bool = False

    @nn.compact
    def __call__(self, mels, mask=None, *, train: bool = False):
        """``mask`` ``[B, T]``: real frames (padding is kept out of the quantiser)."""
        z_e = Encoder(self.hidden, self.code_dim, self.downsample)(mels)
        code_mask = None if mask is None else mask[:, :: 2**self.downsample]
        z_q, info = VectorQuantizer(self.num_codes, self.code_dim, self.ema)(
            z_e, code_mask, train=train
        )
        recon = Decoder(self.hidden, self.n_mels, self.downsample)(z_q)
        info = {k: v for k, v in info.items()}
        info["losses"] = {
            "codebook": info.pop("codebook_loss"),
            "commit": info.pop("commitment_loss"),
        }
        return recon, info


class VQVAE2(nn.Module):
    """Two levels: bottom codes at T / 2^downsample, top codes at half that rate."""

    n_mels: int = 80
    hidden: int = 128
    num_codes: int = 512
    code_dim: int = 64
    downsample: int = 2
    ema: bool = False

    @nn.compact
    def __call__(self, mels, mask=None, *, train: bool = False):
        """``mask`` ``[B, T]``: real frames (padding is kept out of the quantisers)."""
        d = self.downsample
        masks = (None, None) if mask is None else (mask[:, :: 2 ** (d + 1)], mask[:, :: 2**d])
        h_bottom = Encoder(self.hidden, self.hidden, self.downsample, name="enc_bottom")(mels)
        z_top = Encoder(self.hidden, self.code_dim, 1, name="enc_top")(h_bottom)
        q_top, info_top = VectorQuantizer(self.num_codes, self.code_dim, self.ema, name="vq_top")(
            z_top, masks[0], train=train
        )
        top_up = Decoder(self.hidden, self.code_dim, 1, name="dec_top")(q_top)
        z_bottom = nn.Conv(self.code_dim, (1,), name="pre_bottom")(
            jnp.concatenate([h_bottom, top_up], axis=-1)
        )
        q_bottom, info_bottom = VectorQuantizer(
            self.num_codes, self.code_dim, self.ema, name="vq_bottom"
        )(z_bottom, masks[1], train=train)
        top_for_dec = nn.ConvTranspose(
            self.code_dim, (4,), strides=(2,), padding="SAME", name="up_top"
        )(q_top)
        recon = Decoder(self.hidden, self.n_mels, self.downsample, name="dec")(
            jnp.concatenate([q_bottom, top_for_dec], axis=-1)
        )
        info = {
            "indices": {"top": info_top["indices"], "bottom": info_bottom["indices"]},
            "perplexity": info_bottom["perplexity"],
            "counts": info_bottom["counts"],
            "counts_top": info_top["counts"],
            "perplexity_top": info_top["perplexity"],
            "losses": {
                "codebook": info_top["codebook_loss"] + info_bottom["codebook_loss"],
                "commit": info_top["commitment_loss"] + info_bottom["commitment_loss"],
            },
        }
        return recon, info


def mel_scale(config) -> tuple[float, float]:
    """(offset, span) of the affine map from natural-log mel to the model's features: the log
    floor goes to 0 and ``model.mel_max`` to 1. Unclipped, so it inverts exactly. Raw log-mels
    (about -11.5 to 2) put the encoder's outputs far from the codebook's U(-1/K, 1/K)
    initialisation, and training collapsed onto one code (perplexity 1.0 by step 50)."""
    import numpy as np

    from tts_jax import audio

    lo = float(np.log(audio.MelConfig.from_config(config.data).log_floor))
    return lo, config.model.mel_max - lo


def normalize(mel, config):
    lo, span = mel_scale(config)
    return (mel - lo) / span


def denormalize(x, config):
    lo, span = mel_scale(config)
    return x * span + lo


def vq_loss(recon, target, mask, info, beta: float = 0.25):
    """Masked MSE reconstruction + codebook + beta x commitment; ``mask`` ``[B, T]``."""
    err = jnp.sum(jnp.square(recon - target), axis=-1) * mask
    reconstruction = jnp.sum(err) / (jnp.maximum(jnp.sum(mask), 1.0) * target.shape[-1])
    total = reconstruction + info["losses"]["codebook"] + beta * info["losses"]["commit"]
    return total, reconstruction


# ------------------------------------------------------------------------ trainer plumbing


def build_model(config):
    m = config.model
    cls = {1: VQVAE, 2: VQVAE2}.get(m.levels)
    if cls is None:
        raise UserError(f"model.levels must be 1 (VQ-VAE) or 2 (VQ-VAE-2), got {m.levels}")
    return cls(
        n_mels=config.data.n_mels,
        hidden=m.hidden,
        num_codes=m.num_codes,
        code_dim=m.code_dim,
        downsample=m.downsample,
        ema=m.ema,
    )


def _frames_multiple(config) -> int:
    # VQ-VAE-2's top level halves the rate once more.
    return 2 ** (config.model.downsample + (config.model.levels - 1))


def make_data(config, process_index, process_count):
    from tts_jax.data.inputs import text_mel_data

    return text_mel_data(
        config, process_index, process_count, frames_multiple=_frames_multiple(config)
    )


def init_state(config, rng, batch):
    from tts_jax.train.optim import make_optimizer
    from tts_jax.train.state import TrainState

    variables = build_model(config).init(rng, normalize(batch["mels"][:1], config))
    tx, _ = make_optimizer(config.optim)
    stats = {k: v for k, v in variables.items() if k != "params"}
    return TrainState.create(variables["params"], tx, rng, model_state=stats)


def train_step(config):
    from tts_jax.train.optim import make_optimizer
    from tts_jax.train.state import make_train_step

    model = build_model(config)
    _, schedule = make_optimizer(config.optim)
    beta = config.model.beta

    def loss_fn(params, model_state, batch, rng):
        mels = normalize(batch["mels"], config)
        (recon, info), new_state = model.apply(
            {"params": params, **model_state},
            mels,
            batch["mel_mask"],
            train=True,
            mutable=list(model_state),
        )
        total, rec = vq_loss(recon, mels, batch["mel_mask"], info, beta)
        metrics = {
            "reconstruction": rec,
            "commitment": info["losses"]["commit"],
            "perplexity": info["perplexity"],
        }
        return total, (metrics, dict(new_state))

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def eval_step(config):
    model = build_model(config)

    def step(state, batch):
        mask = batch["mel_mask"] * batch["valid"][:, None]
        mels = normalize(batch["mels"], config)
        recon, info = model.apply({"params": state.params, **state.model_state}, mels, mask)
        _, rec = vq_loss(recon, mels, mask, info)
        return {"reconstruction": rec, "perplexity": info["perplexity"], "weight": jnp.sum(mask)}

    return step


def eval_summaries(config, state, batch):
    import numpy as np

    from tts_jax.plotting import mel_image

    recon, _ = build_model(config).apply(
        {"params": state.params, **state.model_state}, normalize(batch["mels"][:1], config)
    )
    recon = denormalize(recon, config)
    n = int(jax.device_get(batch["mel_lengths"])[0])
    target = np.asarray(jax.device_get(batch["mels"]))[0, :n]
    return {
        "images": {
            "mel": mel_image({"target": target, "VQ-VAE": np.asarray(jax.device_get(recon))[0, :n]})
        }
    }


def param_count(config) -> dict[str, int]:
    mels = jnp.zeros((1, 64, config.data.n_mels))
    return {"model": count_params(lambda: build_model(config).init(jax.random.key(0), mels))}


FAMILY = Family(
    name="vqvae",
    make_data=make_data,
    init_state=init_state,
    train_step=train_step,
    eval_step=eval_step,
    eval_summaries=eval_summaries,
    param_count=param_count,
)


def load_autoencoder(workdir, config=None):
    """A trained workdir as ``mel [T, n_mels] -> (reconstruction [T, n_mels], code counts)``
    (numpy). ``counts`` holds the bottom level's code uses over the real frames ``[K]`` (and
    ``counts_top`` for VQ-VAE-2). Mels are padded to frame buckets (one compilation per
    bucket) and masked, so the padding never reaches the codes."""
    import numpy as np

    from tts_jax.train.loop import restore_trained
    from tts_jax.vocoders import frame_bucket, workdir_config

    config = workdir_config(workdir, config, "vqvae")
    n_mels, multiple = config.data.n_mels, _frames_multiple(config)
    example = {
        "mels": np.zeros((1, multiple * 8, n_mels), np.float32),
        "mel_mask": np.ones((1, multiple * 8), np.float32),
    }
    state = restore_trained(workdir, config, FAMILY, example)
    variables = {"params": state.params, **state.model_state}
    apply = jax.jit(build_model(config).apply)

    def run(mel):
        t = len(mel)
        padded_t = -(-frame_bucket(t) // multiple) * multiple
        mels = np.zeros((1, padded_t, n_mels), np.float32)
        mels[0, :t] = normalize(mel, config)
        mask = (np.arange(padded_t) < t).astype(np.float32)[None]
        recon, info = apply(variables, mels, mask)
        counts = {k: np.asarray(v) for k, v in info.items() if k.startswith("counts")}
        return np.asarray(denormalize(recon, config))[0, :t], counts

    return run, state.step


def heldout_reconstruction(
    workdir, split_name: str = "test", limit: int = 50, vocoder: str = "griffin-lim"
):
    """Reconstructs a corpus split's mels with a trained workdir and vocodes them.

    Returns ``(pairs, stats)``: ``(id, recording, vocoder(reconstruction))`` triples for
    :func:`tts_jax.eval.evaluate.evaluate_pairs`, and the mel-domain scores over every real
    frame of the split: ``mse`` (the training loss's reconstruction term: normalised mel, see
    :func:`mel_scale`), ``mean_mel_mse`` (the same error for the split's per-channel mean mel:
    what a model that ignored its input would score), ``logmel_l1`` (natural-log mel units),
    and ``perplexity`` and ``codes_used`` of the pooled code histogram (per level).
    """
    import numpy as np

    from tts_jax import audio
    from tts_jax.data.inputs import corpus_from_config
    from tts_jax.vocoders import load_vocoder, workdir_config

    config = workdir_config(workdir, None, "vqvae")
    split = corpus_from_config(config).split(split_name)
    vocode = load_vocoder(vocoder, audio.MelConfig.from_config(config.data))
    run, step = load_autoencoder(workdir, config)
    pairs, targets, errors, counts = [], [], [], {}
    for i in range(min(limit, len(split))):
        ex = split.example(i)
        recon, c = run(ex["mel"])
        targets.append(ex["mel"])
        errors.append(recon - ex["mel"])
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        pairs.append((split.ids[i], ex["audio"], vocode(recon)))
    err, target = np.concatenate(errors), np.concatenate(targets)
    span = mel_scale(config)[1]
    stats = {
        "step": int(step),
        "frames": len(err),
        "mse": float(np.mean(np.square(err / span))),
        "mean_mel_mse": float(np.mean(np.square((target - target.mean(0)) / span))),
        "logmel_l1": float(np.mean(np.abs(err))),
    }
    for k, v in counts.items():
        level = k.removeprefix("counts")  # "" or "_top"
        p = v[v > 0] / v.sum()
        stats[f"perplexity{level}"] = float(np.exp(-np.sum(p * np.log(p))))
        stats[f"codes_used{level}"] = int(np.sum(v > 0))
    stats["num_codes"] = int(config.model.num_codes)
    return pairs, stats
