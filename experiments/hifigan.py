"""HiFi-GAN configs. ``v1`` / ``v2`` / ``v3``: the paper's generators (Kong et al. 2020,
table of REFERENCE) with the full discriminators, batch 16 of 8,192 samples. ``cpu``: a V3-like
generator with fewer channels and narrower discriminators, to train on 2 CPU cores. ``tiny``:
tests. Fine-tune on Tacotron 2's ground-truth-aligned mels with ``--config.data.gta_dir=DIR``
(written by ``tts-jax gta``).

    tts-jax train --config experiments/hifigan.py:cpu --workdir runs/hifigan_cpu
"""

from ml_collections import config_dict

from tts_jax.config import base_config, check_variant, cpu_schedule, schedule, tiny_schedule
from tts_jax.models.hifigan import MSD_LAYERS, HiFiGANConfig

# The paper's generators as changes of HiFiGANConfig's defaults (V1).
_GENERATORS = {
    "v1": {},
    "v2": dict(upsample_initial_channel=128),
    "v3": dict(
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=256,
        resblock="2",
        resblock_kernel_sizes=(3, 5, 7),
        resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    ),
}


# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "v1": "Kong et al. 2020 V1 generator (512 channels) with MPD and MSD, batch 16 x 8,192 samples",
    "v2": "V2: the V1 layout at 128 channels (0.93 M generator parameters)",
    "v3": "V3: fewer, shorter MRF blocks (1.46 M generator parameters)",
    "cpu": "V3-like with fewer channels and narrower discriminators, for 2 CPU cores",
    "tiny": "tests",
}


def get_config(variant: str = "v1"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    # V1 with MPD and MSD, the reference's loss weights and full-band loss mel.
    c.model = HiFiGANConfig.section("hifigan")
    m = c.model
    m.update(_GENERATORS["v3" if variant in ("cpu", "tiny") else variant])

    # AdamW 2e-4, betas (0.8, 0.99), weight decay 0.01, lr x 0.999 per epoch
    # (decay_steps -1 = one epoch; staircase False gives the per-step equivalent).
    c.optim.name = "adamw"
    c.optim.learning_rate = 2e-4
    c.optim.b1, c.optim.b2 = 0.8, 0.99
    c.optim.weight_decay = 0.01
    c.optim.schedule = "exponential"
    c.optim.decay_rate = 0.999
    c.optim.decay_steps = -1
    c.optim.staircase = True

    # A `tts-jax gta` folder: fine-tune on Tacotron 2's mels.
    c.data.gta_dir = config_dict.placeholder(str)
    c.train.segment_length = 8192
    c.train.eval_segment_length = 32768
    schedule(
        c,
        batch_size=16,
        num_steps=2_500_000,
        checkpoint_every=5000,
        eval_every=1000,
        log_every=100,
        eval_batches=4,
    )

    if variant in ("v1", "v2", "v3"):
        pass
    elif variant in ("cpu", "tiny"):
        m.upsample_initial_channel = 128
        m.mpd_channels = (16, 32, 64, 128, 128)
        m.msd_layers = tuple(
            (c_out // 8 if c_out > 16 else c_out, k, s, min(g, 4)) for c_out, k, s, g in MSD_LAYERS
        )
        cpu_schedule(c, 200_000, batch_size=8, eval_batches=2)
        if variant == "tiny":
            m.upsample_initial_channel = 16
            m.resblock_kernel_sizes = (3,)
            m.resblock_dilation_sizes = ((1, 2),)
            m.mpd_periods = (2, 3)
            m.mpd_channels = (4, 8)
            m.msd_layers = ((8, 15, 1, 1), (8, 41, 4, 4))
            c.train.segment_length = 2048
            c.train.eval_segment_length = 4096
            tiny_schedule(c, batch_size=2)
            c.optim.learning_rate = 1e-3
    return c
