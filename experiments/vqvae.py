"""VQ-VAE / VQ-VAE-2 on log-mels (tts_jax/models/vqvae/). ``paper``: codebook K=512 of
D=64, beta 0.25, frames x4 downsampled, Adam 2e-4 (van den Oord et al. 2017's sizes, on mels).
``cpu``: a smaller encoder/decoder for 2 CPU cores. ``tiny``: tests. ``--config.model.levels=2``
gives VQ-VAE-2, ``--config.model.ema=True`` the EMA codebook (decay 0.99).

    tts-jax train --config experiments/vqvae.py:cpu --workdir runs/vqvae_cpu
"""

from tts_jax.config import base_config, check_variant, cpu_schedule, schedule, tiny_schedule
from tts_jax.models.vqvae import VQVAEConfig

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "VQ-VAE on log-mels: codebook 512 x 64, frames x4 downsampled (levels=2: VQ-VAE-2)",
    "cpu": "a smaller encoder and decoder for 2 CPU cores",
    "tiny": "tests",
}


def get_config(variant: str = "paper"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    c.model = m = VQVAEConfig.section("vqvae")  # the paper variant's sizes

    c.optim.name = "adam"
    c.optim.learning_rate = 2e-4
    schedule(c, batch_size=32, num_steps=250_000, checkpoint_every=5000, log_every=100)

    if variant == "paper":
        pass
    elif variant in ("cpu", "tiny"):
        m.hidden = 128
        # 5x the paper's rate: faster codebook uptake on 2 cores. With the EMA codebook it
        # made the encoder jump at step ~2,510 (perplexity 72 -> 6); 2e-4 from the same state
        # did not (docs/vqvae.md, results).
        c.optim.learning_rate = 1e-3
        cpu_schedule(c, 5000, batch_size=16, eval_batches=4)
        if variant == "tiny":
            m.hidden = 16
            m.num_codes = 16
            m.code_dim = 8
            tiny_schedule(c, batch_size=4)
            c.data.num_buckets = 3
    return c
