"""Tacotron 2 configs. ``paper``: REFERENCE / Shen et al. 2018 sizes (batch 64, r = 1).
``cpu``: narrower, r = 3, so that it aligns on the embedded espeak corpus on 2 CPU cores.
``shipped``: ``cpu`` with guided attention, TensorFlow's forget-gate bias and espeak IPA
input: the recipe of the model in data/. ``nvidia``: NVIDIA/tacotron2's architecture, text
and mel front ends and training recipe, exactly (the target of ``tts-jax import tacotron2``).
``tiny``: tests. Same code for all.

    tts-jax train --config experiments/tacotron2.py:cpu --workdir runs/tacotron2_cpu
"""

from tts_jax.config import base_config, check_variant, cpu_schedule, schedule, tiny_schedule
from tts_jax.models.tacotron2 import Tacotron2Config
from tts_jax.train.optim import TACOTRON2_SCHEDULE

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "Shen et al. 2018 at paper size (r = 1, batch 64), for accelerators",
    "cpu": "narrow, r = 3, batch 16: the embedded espeak corpus on 2 CPU cores",
    "shipped": ":cpu + guided attention, forget-gate bias, IPA input: the model in data/",
    "student": ":shipped at half width: the student of experiments/tacotron2_distill.py",
    "nvidia": "NVIDIA/tacotron2 exactly: its decoder, 148 symbols, mels; imported checkpoints",
    "tiny": "tests",
}


# The layer widths of Tacotron2Config, each of which the :student variant halves.
WIDTHS = (
    "embedding_dim",
    "encoder_conv_channels",
    "encoder_lstm_units",
    "attention_dim",
    "location_filters",
    "prenet_units",
    "decoder_lstm_units",
    "postnet_channels",
)


def _halved(width):
    return tuple(n // 2 for n in width) if isinstance(width, tuple) else width // 2


def get_config(variant: str = "paper"):
    check_variant(variant, INTENDED_USE)
    c = base_config()
    c.model = Tacotron2Config.section("tacotron2")  # the paper's values
    m = c.model

    c.optim.name = "adam"
    c.optim.b1, c.optim.b2, c.optim.eps = 0.9, 0.999, 1e-6
    c.optim.grad_clip_norm = 1.0
    c.optim.update(TACOTRON2_SCHEDULE)

    schedule(c, batch_size=64, num_steps=300_000, checkpoint_every=5000, log_every=100)
    c.data.max_frames = 1000

    if variant == "paper":
        pass
    elif variant == "nvidia":
        # NVIDIA/tacotron2 (hparams.py, model.py, train.py), so that its checkpoints load
        # unchanged (tts-jax import tacotron2) and training from scratch follows its recipe.
        m.architecture = "nvidia"
        m.zoneout = 0.0
        m.decoder_dropout = 0.1
        m.stop_loss_on_padding = True  # its gate loss also covers each batch's padding
        c.data.text.update(frontend="nvidia", cleaners="nvidia", unknown="drop")
        c.data.framing = "nvidia"
        # Adam at a constant 1e-3 with weight decay 1e-6 (our l2_weight: the same gradient,
        # biases excluded) and PyTorch's eps; gradient norm clipped at 1.
        c.optim.schedule = "constant"
        c.optim.eps = 1e-8
    elif variant in ("cpu", "shipped", "student", "tiny"):
        m.reduction = 3
        m.embedding_dim = 128
        m.encoder_conv_channels = 128
        m.encoder_lstm_units = 64
        m.attention_dim = 64
        m.location_filters = 16
        m.prenet_units = (128, 128)
        m.decoder_lstm_units = 256
        m.postnet_channels = 128
        m.stop_loss_on_padding = True
        m.max_decoder_steps = 400
        cpu_schedule(c, 20_000, batch_size=16, eval_batches=2)
        c.data.max_frames = 640
        if variant in ("shipped", "student"):
            # The recipe of the model shipped in data/ (data/tacotron2_espeak.md): :cpu plus
            # the switches that won experiments/tacotron2_alignment.py, on espeak IPA input
            # so that any English word reaches the model as the phonemes the voice speaks.
            m.guided_attention_weight = 50.0
            m.lstm_forget_bias = 1.0
            c.data.text.frontend = "ipa"
            c.train.num_steps = 40_000
            c.train.checkpoint_every = 500
            c.train.keep_checkpoints = 100  # the MCD-over-training curve reads them
        if variant == "student":
            # Half of every width: the smaller, faster text-to-mel model of sequence-level
            # distillation (experiments/tacotron2_distill.py), on the teacher's budget terms.
            for name in WIDTHS:
                m[name] = _halved(m[name])
            # The :cpu sweep's budget: three students of 1,500 steps fit a few hours on
            # 2 CPU cores next to the receptive-field runs (about 1 s a step on one core).
            c.train.num_steps = 1500
            c.train.keep_checkpoints = 3
        if variant == "tiny":
            m.embedding_dim = 16
            m.encoder_conv_channels = 16
            m.encoder_conv_layers = 1
            m.encoder_lstm_units = 8
            m.attention_dim = 8
            m.location_filters = 4
            m.location_kernel = 7
            m.prenet_units = (16, 16)
            m.decoder_lstm_units = 32
            m.decoder_lstm_layers = 2
            m.postnet_channels = 16
            m.postnet_layers = 2
            m.max_decoder_steps = 80
            tiny_schedule(c, batch_size=4, num_steps=10, eval_every=5)
            c.data.num_buckets = 3
            c.data.max_frames = 1000
    return c
