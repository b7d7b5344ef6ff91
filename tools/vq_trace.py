"""Trace a VQ-VAE run's codebook and encoder across its checkpoints (one JSON line each).

    python tools/vq_trace.py runs/vqvae_cpu_ema [--split test --utterances 30]

For every checkpoint kept in the workdir: live codes (EMA cluster size above 1e-3 of the
mean), their mean norm, the largest cluster's share of the mass, the largest norm of an
unused code; and, on the split's first utterances (concatenated), the encoder's mean output
norm, the perplexity of the nearest-code histogram and the share of the most used code.
This is how the EMA-codebook collapse in docs/vqvae.md was located (train with
``--config.train.checkpoint_every=5 --config.train.keep_checkpoints=40`` around it).
Single-level VQ-VAE with the EMA codebook only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orbax.checkpoint as ocp  # noqa: E402

from tts_jax.data.inputs import corpus_from_config  # noqa: E402
from tts_jax.models import vqvae  # noqa: E402
from tts_jax.workdir import checkpoint_manager, read_config  # noqa: E402


def held_out_mels(config, split: str, utterances: int) -> np.ndarray:
    """The split's first utterances end to end, ``[1, T, n_mels]`` normalised, T cut to the
    code rate."""
    data = corpus_from_config(config).split(split)
    mel = np.concatenate([data.example(i)["mel"] for i in range(min(utterances, len(data)))])
    step = 2**config.model.downsample
    return np.asarray(vqvae.normalize(mel[: len(mel) // step * step][None], config), np.float32)


def trace_line(step: int, state: dict, config, mels: np.ndarray) -> dict:
    stats = state["model_state"]["vq_stats"]["VectorQuantizer_0"]
    codebook, size = np.asarray(stats["codebook"]), np.asarray(stats["cluster_size"])
    norms = np.linalg.norm(codebook, axis=1)
    live = size > 1e-3 * size.mean()
    m = config.model
    z = vqvae.Encoder(m.hidden, m.code_dim, m.downsample).apply(
        {"params": state["params"]["Encoder_0"]}, mels
    )
    z = np.asarray(z).reshape(-1, codebook.shape[1])
    counts = np.bincount(np.asarray(vqvae.nearest_code(z, codebook)), minlength=len(codebook))
    p = counts[counts > 0] / counts.sum()
    return {
        "step": step,
        "live_codes": int(live.sum()),
        "live_norm": float(norms[live].mean()),
        "largest_cluster_share": float(size.max() / size.sum()),
        "unused_norm_max": float(norms[~live].max()) if (~live).any() else 0.0,
        "encoder_norm": float(np.linalg.norm(z, axis=1).mean()),
        "heldout_perplexity": float(np.exp(-np.sum(p * np.log(p)))),
        "heldout_top_code_share": float(counts.max() / counts.sum()),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir")
    parser.add_argument("--split", default="test")
    parser.add_argument("--utterances", type=int, default=30)
    args = parser.parse_args(argv)
    config = read_config(args.workdir, "vqvae")
    if config.model.levels != 1 or not config.model.ema:
        raise SystemExit(f"{args.workdir}: needs a single-level VQ-VAE with model.ema=True")
    mels = held_out_mels(config, args.split, args.utterances)
    mgr = checkpoint_manager(Path(args.workdir), 1000)
    try:
        for step in sorted(mgr.all_steps()):
            restored = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
            print(json.dumps(trace_line(step, restored.state, config, mels)), flush=True)
    finally:
        mgr.close()


if __name__ == "__main__":
    main()
