"""A distilled ClariNet student as a vocoder: noise and a mel in, audio out in one parallel
pass, jitted."""

from __future__ import annotations

import jax

from tts_jax import workdir
from tts_jax.data.inputs import mel_config
from tts_jax.inference import TrainedVocoder
from tts_jax.models import wavenet as W
from tts_jax.models.clarinet.train import build_student, teacher_config


class Vocoder(TrainedVocoder):
    """A distilled student as ``mel [F, n_mels] -> waveform [F * hop]``: one parallel pass.
    (Restoring it reads the teacher's workdir too: the train state holds the teacher.)
    ``config``: the saved one unless given; ``seed``: of the first call's noise."""

    def __init__(self, path, config=None, seed: int = 0):
        if config is None:
            config = workdir.read_config(path, "clarinet")
        state = workdir.restore(path, "clarinet", config=config)
        self.config, self.step, self.mel = config, int(state.step), mel_config(config)
        self.hop = config.data.hop_length
        student = build_student(config)
        params = jax.device_get(state.params)
        tconfig = teacher_config(config)

        @jax.jit
        def run(mel, rng):
            z = jax.random.normal(rng, (mel.shape[0], mel.shape[1] * self.hop))
            return student.apply({"params": params}, z, W.normalize_mel(mel, tconfig))[0]

        self._seed(seed)
        self._generate = lambda mel: run(mel, self._next_key())
