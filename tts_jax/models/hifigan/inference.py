"""A trained HiFi-GAN as a vocoder: the generator with weight norm folded away, jitted."""

from __future__ import annotations

import jax

from tts_jax import workdir
from tts_jax.data.inputs import mel_config
from tts_jax.inference import TrainedVocoder
from tts_jax.models.hifigan.model import build_generator
from tts_jax.nn.conv import fold_weight_norm


class Vocoder(TrainedVocoder):
    """A trained HiFi-GAN workdir as ``mel [F, n_mels] -> waveform [F * hop]``, weight norm
    folded away (the output is identical, tests/test_hifigan.py). ``config`` and ``state``:
    the saved ones unless given."""

    def __init__(self, path, config=None, state=None):
        if config is None:
            config = workdir.read_config(path, "hifigan")
        if state is None:
            state = workdir.restore(path, "hifigan", config=config)
        self.config, self.step, self.mel = config, int(state.step), mel_config(config)
        self.hop = config.data.hop_length
        params = fold_weight_norm(jax.device_get(state.gen_params))
        apply = jax.jit(build_generator(config, folded=True).apply)
        self._generate = lambda mel: apply({"params": params}, mel)
