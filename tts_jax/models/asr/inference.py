"""A trained recognizer after training: the ``recognizer`` role (waveform -> text)."""

from __future__ import annotations

import jax
import numpy as np

from tts_jax import audio, workdir
from tts_jax.errors import UserError
from tts_jax.models.asr.model import build_model, greedy_decode
from tts_jax.text.transcripts import labels_to_transcript

FRAME_BUCKET = 128  # inputs are padded to a multiple of this many frames: few compilations


class Recognizer:
    """A trained recognizer (a training workdir's newest checkpoint, or ``step``'s, or an
    exported model) as waveform ``[T]`` at ``sample_rate`` -> normalised transcript
    (:func:`tts_jax.text.transcripts.normalize_transcript`'s form), by greedy CTC decoding.
    ``config``: the run's; ``step``: the checkpoint's; ``mel``: its front end;
    ``min_samples``: the shortest waveform it takes."""

    def __init__(self, path, step: int | None = None):
        self.config, variables, self.step = workdir.load_variables(path, "asr", step)
        self.mel = audio.MelConfig.from_config(self.config.data)
        self.sample_rate = self.mel.sample_rate
        self.min_samples = 4 * self.mel.hop_length  # four frames: the shortest input taken
        model = build_model(self.config)

        def decode(params, mels, lengths):
            logits, out_lengths = model.apply({"params": params}, mels, lengths, train=False)
            return greedy_decode(logits, out_lengths)

        self._params = variables["params"]
        self._decode = jax.jit(decode)

    @classmethod
    def from_workdir(cls, path, step: int | None = None) -> Recognizer:
        return cls(path, step)

    def transcribe_mels(self, mels: list[np.ndarray]) -> list[str]:
        """Log-mels ``[frames, n_mels]`` of this front end -> their transcripts, as one
        padded batch."""
        if not mels:
            return []
        for m in mels:
            if m.ndim != 2 or m.shape[1] != self.mel.n_mels:
                raise UserError(f"mel of shape {m.shape}; expected [frames, {self.mel.n_mels}]")
        longest = max(len(m) for m in mels)
        frames = max(1, -(-longest // FRAME_BUCKET)) * FRAME_BUCKET
        batch = np.full((len(mels), frames, self.mel.n_mels), np.log(self.mel.log_floor))
        for j, m in enumerate(mels):
            batch[j, : len(m)] = m
        lengths = np.array([len(m) for m in mels], np.int32)
        best, keep = jax.device_get(self._decode(self._params, batch.astype(np.float32), lengths))
        return [labels_to_transcript(b[k]) for b, k in zip(best, keep, strict=True)]

    def transcribe(self, wavs: list[np.ndarray]) -> list[str]:
        """Waveforms ``[T]`` at :attr:`sample_rate` (float, [-1, 1]) -> their transcripts."""
        shortest = self.min_samples
        for j, w in enumerate(wavs):
            if np.ndim(w) != 1:
                raise UserError(f"waveform {j} has shape {np.shape(w)}; expected mono [samples]")
            if len(w) < shortest:
                raise UserError(
                    f"waveform {j} has {len(w)} samples; a transcript needs at least "
                    f"{shortest} ({shortest / self.sample_rate * 1000:.0f} ms)"
                )
        return self.transcribe_mels([audio.log_mel_np(np.asarray(w), self.mel) for w in wavs])

    def __call__(self, wav: np.ndarray) -> str:
        return self.transcribe([wav])[0]
