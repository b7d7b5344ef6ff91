"""ClariNet distillation and the comparison of its objectives (tts_jax/models/clarinet/).

Config variants: ``paper`` (student 6 flows x 10 layers, 128 channels, filter 3; Adam 1e-3
halved every 200k steps; teacher experiments/wavenet.py:paper), ``cpu`` (a narrow student
and the :cpu teacher, for 2 CPU cores), ``tiny`` (tests). One distillation run is

    tts-jax train --config experiments/clarinet_kl.py:cpu --workdir W \
        --config.model.teacher_workdir=T --config.model.objective=reverse_reg

and the comparison of every objective (x seeds), teacher included, is one command:

    tts-jax sweep experiments/clarinet_kl.py:cpu --workdir runs/clarinet_kl_cpu

(see :func:`get_sweep`; the sweep runner is tts_jax/models/clarinet/sweep.py).
"""

from tts_jax.config import base_config, check_variant, cpu_schedule, schedule, tiny_schedule
from tts_jax.models.clarinet import ClariNetConfig
from tts_jax.models.clarinet.sweep import compare_objectives

# The variants compared by the sweep: name -> overrides of model.*.
VARIANTS = {
    "reverse": {"objective": "reverse", "stft_weight": 0.0},
    "reverse+stft": {"objective": "reverse", "stft_weight": 1.0},
    "reverse_reg+stft": {"objective": "reverse_reg", "stft_weight": 1.0},
    "forward_reg+stft": {"objective": "forward_reg", "stft_weight": 1.0},
    "reverse_mc+stft": {"objective": "reverse_mc", "stft_weight": 1.0},
}


# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "ClariNet's Gaussian IAF student, 6 flows x 10 layers; the sweep compares objectives",
    "cpu": "a narrow student distilled from the :cpu teacher, for 2 CPU cores",
    "tiny": "tests",
}


def get_config(variant: str = "paper"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    # The paper's student and objective (ClariNetConfig's defaults); the teacher's workdir is
    # given on the command line (or by the sweep).
    c.model = ClariNetConfig.section("clarinet")
    m = c.model

    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.optim.schedule = "exponential"
    c.optim.decay_steps = 200_000
    c.optim.decay_rate = 0.5
    c.optim.staircase = True
    c.optim.grad_clip_norm = 1.0

    c.train.segment_length = 11008
    c.train.eval_segment_length = 22016
    schedule(c, batch_size=8, num_steps=1_000_000, checkpoint_every=5000, log_every=100)
    # The sweep compares objectives by how many non-finite steps they produce (each skipped
    # and counted), so an unstable one runs its whole budget instead of stopping the sweep.
    c.train.max_skipped_steps = c.train.num_steps

    if variant == "paper":
        pass
    elif variant in ("cpu", "tiny"):
        m.flows = 4
        m.student_layers = 6
        m.student_channels = 32
        c.train.segment_length = 4096
        c.train.eval_segment_length = 8192
        # 150 steps x 10 runs (5 variants x 2 seeds) at ~2 s/step fits the sweep in about
        # 1.5 h of 2 CPU cores with the teacher; enough to separate the objectives, far from
        # convergence.
        cpu_schedule(c, 150, every=50, eval_every=25, log_every=10, eval_batches=2)
        if variant == "tiny":
            m.flows = 2
            m.student_layers = 3
            m.student_channels = 8
            m.student_front_kernel = 4
            c.train.segment_length = 2048  # > n_fft of the STFT loss
            c.train.eval_segment_length = 2048
            tiny_schedule(c, batch_size=2)
    return c


def get_sweep(variant: str = "cpu"):
    """What ``tts-jax sweep`` runs: the teacher, then every VARIANTS entry x seeds."""
    return {
        "runner": compare_objectives,
        "teacher_config": f"experiments/wavenet.py:{variant}",
        "student_config": f"experiments/clarinet_kl.py:{variant}",
        "variants": VARIANTS,
        "seeds": (0, 1) if variant != "tiny" else (0,),
        # Held-out utterances scored per run (sampling them is most of a run's eval time).
        "heldout": {"tiny": 3, "cpu": 20}.get(variant, 50),
    }
