"""A trained Gaussian WaveNet as a vocoder (cached autoregressive sampling, jitted) and as a
likelihood of recordings (teacher forcing)."""

from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp

from tts_jax import workdir
from tts_jax.data.inputs import mel_config
from tts_jax.inference import TrainedVocoder
from tts_jax.models.wavenet.model import (
    WaveNetConfig,
    build_model,
    generate,
    normalize_mel,
    teacher_nll,
)


class Vocoder(TrainedVocoder):
    """A trained teacher as ``mel [F, n_mels] -> waveform [F * hop]`` by cached autoregressive
    sampling (slow by nature: one step per sample). ``config`` and ``state``: the saved ones
    unless given; ``seed``: of the first sample's noise (each call draws new noise)."""

    def __init__(self, path, config=None, state=None, seed: int = 0):
        if config is None:
            config = workdir.read_config(path, "wavenet")
        if state is None:
            state = workdir.restore(path, "wavenet", config=config)
        self.config, self.step, self.mel = config, int(state.step), mel_config(config)
        self.hop = config.data.hop_length
        model = build_model(config)
        params = jax.device_get(state.params)
        floor = WaveNetConfig.from_config(config.model).log_scale_min

        @jax.jit
        def run(mel, rng):
            cond = model.apply(
                {"params": params}, normalize_mel(mel, config), method=model.upsample
            )
            return generate(model, params, cond, rng, log_scale_min=floor)

        self._seed(seed)
        self._generate = lambda mel: run(mel, self._next_key())


def recording_nll(config, params, windows: Iterable[tuple]) -> list[float]:
    """The mean Gaussian NLL per sample (nats) the WaveNet ``params`` of ``config`` gives each
    recording of ``windows`` ``(i, audio [T], mel [1, T / hop, n_mels])`` under teacher forcing
    (one compilation per window length)."""
    model = build_model(config)
    floor = WaveNetConfig.from_config(config.model).log_scale_min

    @jax.jit
    def score(audio, mel):
        return teacher_nll(model, params, audio, normalize_mel(mel, config), floor)

    return [float(score(jnp.asarray(audio)[None], mel)) for _, audio, mel in windows]
