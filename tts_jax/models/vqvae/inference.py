"""A trained VQ-VAE after training: the ``autoencoder`` role and held-out evaluation."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from tts_jax import audio, workdir
from tts_jax.data.inputs import corpus_from_config
from tts_jax.errors import UserError
from tts_jax.family import EvalRequest, Evaluation
from tts_jax.inference import frame_bucket, griffin_lim
from tts_jax.models.vqvae.model import VQVAEConfig, build_model, denormalize, mel_scale, normalize


class Autoencoder:
    """A trained VQ-VAE (a training workdir's newest checkpoint, or ``step``'s) as
    ``mel [T, n_mels] -> (reconstruction [T, n_mels], counts)`` (numpy). ``counts`` holds the
    bottom level's code uses over the real frames, ``{"counts": [K]}`` (and ``counts_top`` for
    VQ-VAE-2). Mels are padded to frame buckets (one compilation per bucket) and masked, so
    the padding never reaches the codes. ``config``: the run's; ``step``: the checkpoint's."""

    def __init__(self, path, step: int | None = None):
        self.config, self._variables, self.step = workdir.load_variables(path, "vqvae", step)
        self._n_mels = self.config.data.n_mels
        self._multiple = VQVAEConfig.from_config(self.config.model).frames_multiple
        self._apply = jax.jit(build_model(self.config).apply)

    def __call__(self, mel) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        mel = np.asarray(mel, np.float32)
        if mel.ndim != 2 or mel.shape[1] != self._n_mels:
            raise UserError(f"mel of shape {mel.shape}; expected [frames, {self._n_mels}]")
        t = len(mel)
        padded_t = -(-frame_bucket(t) // self._multiple) * self._multiple
        mels = np.zeros((1, padded_t, self._n_mels), np.float32)
        mels[0, :t] = normalize(mel, self.config)
        mask = (np.arange(padded_t) < t).astype(np.float32)[None]
        recon, info = self._apply(self._variables, mels, mask)
        counts = {k: np.asarray(v) for k, v in info.items() if k.startswith("counts")}
        return np.asarray(denormalize(recon, self.config))[0, :t], counts


def evaluate(path, request: EvalRequest) -> Evaluation:
    """Reconstructs the first ``request.limit`` mels of a corpus split with a trained VQ-VAE
    and vocodes them with ``request.vocoder`` (Griffin-Lim when None).

    ``pairs``: ``(id, recording, vocoder(reconstruction))``. ``stats["mel"]``: the mel-domain
    scores over every real frame: ``mse`` (the training loss's reconstruction term: normalised
    mel, see :func:`~tts_jax.models.vqvae.model.mel_scale`), ``mean_mel_mse`` (the same error
    for the split's per-channel mean mel: what a model that ignored its input would score),
    ``logmel_l1`` (natural-log mel units), and ``perplexity`` and ``codes_used`` of the pooled
    code histogram (per level), with ``step``, ``frames`` and ``num_codes``.
    """
    autoencoder = Autoencoder(path, request.step)
    config, step = autoencoder.config, int(autoencoder.step)
    vocode = request.vocoder or griffin_lim(audio.MelConfig.from_config(config.data))
    split = corpus_from_config(config).split(request.split)
    pairs, targets, errors, counts = [], [], [], {}
    for i in range(min(request.limit, len(split))):
        ex = split.example(i)
        recon, c = autoencoder(ex["mel"])
        targets.append(ex["mel"])
        errors.append(recon - ex["mel"])
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        pairs.append((split.ids[i], ex["audio"], vocode(recon)))
    err, target = np.concatenate(errors), np.concatenate(targets)
    span = mel_scale(config)[1]
    stats = {
        "step": step,
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
    stats["num_codes"] = VQVAEConfig.from_config(config.model).num_codes
    return Evaluation(
        title=f"{Path(path).name} (step {step}) reconstruction + {request.vocoder_name}",
        step=step,
        pairs=pairs,
        stats={"mel": stats},
    )
