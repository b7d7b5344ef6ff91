"""ClariNet's text-to-wave model on Tacotron 2 (tts_jax/models/text_to_wave/): Tacotron 2,
a bridge-net and a Gaussian WaveNet trained end to end from text to waveform.

``paper``: Tacotron 2 and the WaveNet at their papers' sizes (experiments/tacotron2.py:paper,
experiments/wavenet.py:paper), a 6-block, 128-channel bridge-net, 43-step windows (0.5 s at
r = 1). ``cpu``: both parts at their ``:cpu`` sizes (Tacotron 2 with r = 3), a narrow bridge,
5-step windows (3,840 samples), for one or two CPU cores. ``warm_cpu``: ``cpu``'s bridge and
WaveNet on the shipped Tacotron 2 (data/tacotron2_espeak, recipe experiments/tacotron2.py:shipped),
loaded at step 0 and held frozen while they learn on its states, then all three trained end
to end; it needs the corpus the shipped model was trained on. ``tiny``: tests.

    tts-jax train --config experiments/clarinet_text_to_wave.py:cpu --workdir runs/text_to_wave_cpu

    tts-jax corpus --out runs/corpus --num-utterances 2000
    tts-jax train --config experiments/clarinet_text_to_wave.py:warm_cpu \
        --workdir runs/text_to_wave_warm_cpu --config.data.path=runs/corpus
"""

import importlib.util
from pathlib import Path

from tts_jax.config import check_variant
from tts_jax.models.text_to_wave import TextToWaveConfig

SHIPPED_TACOTRON2 = Path(__file__).resolve().parents[1] / "data" / "tacotron2_espeak"
# The variants of experiments/tacotron2.py and experiments/wavenet.py each variant builds on.
PART_VARIANTS = {"warm_cpu": ("shipped", "cpu")}

# Each variant and what it is for (`tts-jax configs` lists them with parameter counts).
INTENDED_USE = {
    "paper": "Tacotron 2 + bridge-net + Gaussian WaveNet at paper sizes, text to wave end to end",
    "cpu": "the :cpu Tacotron 2 (r = 3) and WaveNet with a narrow bridge-net, for CPU cores",
    "warm_cpu": ":cpu bridge + WaveNet on the shipped Tacotron 2, frozen first, then end to end",
    "tiny": "tests",
}


def _experiment(name: str, variant: str):
    """``get_config(variant)`` of experiments/NAME.py: each part's own recipe, written once."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_text_to_wave_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


def get_config(variant: str = "paper"):
    check_variant(variant, INTENDED_USE)
    tacotron2, wavenet = PART_VARIANTS.get(variant, (variant, variant))
    # Tacotron 2's recipe (data, Adam with its decay and clipping, batches, bookkeeping) with
    # the model section holding the bridge-net and both parts' own sections.
    c = _experiment("tacotron2", tacotron2)
    m = TextToWaveConfig.section("text_to_wave")
    m.tacotron2 = c.model
    m.wavenet = _experiment("wavenet", wavenet).model
    c.model = m

    if variant == "paper":
        c.train.batch_size = 16  # 16 windows of 11,008 samples for the WaveNet (ours)
    elif variant in ("cpu", "warm_cpu", "tiny"):
        m.bridge_channels = 64
        m.bridge_blocks = 3
        m.bridge_kernel = 3
        m.window_steps = 5  # 5 x 3 x 256 = 3,840 samples, about the :cpu WaveNet's segment
        if variant == "cpu":
            # Tacotron 2's :cpu bookkeeping, but a step here costs about 5 s on one core.
            c.train.checkpoint_every = 100
            c.train.eval_every = 100
        elif variant == "warm_cpu":
            # The paper trains all three parts from scratch, end to end; 225 steps of that
            # (:cpu) never aligned here. Instead the text-to-spectrogram part starts as the
            # shipped Tacotron 2 (its sizes, features and recipe: experiments/tacotron2.py
            # :shipped, guided attention included), so alignment is there from step 0; the
            # bridge-net and the WaveNet first learn on its states with it frozen, then all
            # three train end to end with every loss weighted one, as in the paper.
            m.warm_start_dir = str(SHIPPED_TACOTRON2)
            m.tacotron2_frozen_steps = 1000
            c.train.num_steps = 2000
            c.train.checkpoint_every = 50
            c.train.eval_every = 100
            c.train.log_every = 10
            c.train.keep_checkpoints = 5
        else:
            m.bridge_channels = 8
            m.bridge_blocks = 1
            m.window_steps = 2
    return c
