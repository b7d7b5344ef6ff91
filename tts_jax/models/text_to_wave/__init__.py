"""ClariNet's text-to-wave model (Ping, Peng & Chen 2018, section 5) on Tacotron 2: a
bridge-net from the decoder's hidden states to a Gaussian WaveNet, trained end to end from
text to waveform. ``model`` (:class:`BridgeNet`, :class:`TextToWave`, the losses,
:class:`TextToWaveConfig`), ``train`` (what the shared trainer calls), ``inference`` (text to
waveform by cached autoregressive sampling: :class:`Synthesizer`).

Its synthesizer role returns the waveform it makes with each mel, and ``tts-jax synthesize``
plays that waveform unless a mel vocoder is asked for (``--vocoder``).
"""

from tts_jax.family import assemble
from tts_jax.models.text_to_wave import train
from tts_jax.models.text_to_wave.inference import Synthesizer, evaluate
from tts_jax.models.text_to_wave.model import (
    PARTS,
    BridgeNet,
    ConvBlock,
    TextToWave,
    TextToWaveConfig,
    UpsamplingBlock,
    build_model,
    cut,
    losses,
    part_config,
    window_nll,
    window_starts,
)

FAMILY = assemble("text_to_wave", train, synthesizer=Synthesizer.from_workdir, evaluate=evaluate)
