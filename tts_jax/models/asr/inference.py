"""A trained recognizer after training: the ``recognizer`` role (waveform -> text)."""

from __future__ import annotations

import jax
import numpy as np

from tts_jax import audio, exported, workdir
from tts_jax.errors import UserError
from tts_jax.models.asr.decoding import DECODING_FILE, BeamSearch, LexiconBeamDecoder
from tts_jax.models.asr.model import build_model, greedy_decode
from tts_jax.paths import run_path
from tts_jax.text.transcripts import labels_to_transcript

FRAME_BUCKET = 128  # inputs are padded to a multiple of this many frames: few compilations
BATCH = 16  # utterances per padded batch


class Recognizer:
    """A trained recognizer (a training workdir's newest checkpoint, or ``step``'s, or an
    exported model) as waveform ``[T]`` at ``sample_rate`` -> normalised transcript
    (:func:`tts_jax.text.transcripts.normalize_transcript`'s form).

    Decoding is greedy, unless the model's folder holds a ``decoding.json``
    (:class:`~tts_jax.models.asr.decoding.BeamSearch`, written beside an exported model):
    then a lexicon-constrained beam search with that file's word language model. ``config``:
    the run's; ``step``: the checkpoint's; ``mel``: its front end; ``min_samples``: the
    shortest waveform it takes; ``beam``: the beam search, or None."""

    def __init__(self, path, step: int | None = None):
        self.config, variables, self.step = workdir.load_variables(path, "asr", step)
        self.mel = audio.MelConfig.from_config(self.config.data)
        self.sample_rate = self.mel.sample_rate
        self.min_samples = 4 * self.mel.hop_length  # four frames: the shortest input taken
        model = build_model(self.config)

        settings = run_path(path) / DECODING_FILE
        self.beam = None
        if settings.is_file():
            folder = run_path(path)
            if str(folder).startswith("gs://"):
                raise UserError(
                    f"{path}: a recognizer with a beam search reads its language model from a "
                    "local disk; copy the folder out of the bucket first"
                )
            self.beam = LexiconBeamDecoder(BeamSearch.read(settings), folder)

        def decode(params, mels, lengths):
            logits, out_lengths = model.apply({"params": params}, mels, lengths, train=False)
            return greedy_decode(logits, out_lengths)

        def log_probs(params, mels, lengths):
            logits, out_lengths = model.apply({"params": params}, mels, lengths, train=False)
            return jax.nn.log_softmax(logits, axis=-1), out_lengths

        self._params = variables["params"]
        self._decode = jax.jit(decode)
        self._log_probs = jax.jit(log_probs)

    @classmethod
    def from_workdir(cls, path, step: int | None = None) -> Recognizer:
        return cls(path, step)

    def _batch(self, mels: list[np.ndarray]):
        for m in mels:
            if m.ndim != 2 or m.shape[1] != self.mel.n_mels:
                raise UserError(f"mel of shape {m.shape}; expected [frames, {self.mel.n_mels}]")
        longest = max(len(m) for m in mels)
        frames = max(1, -(-longest // FRAME_BUCKET)) * FRAME_BUCKET
        batch = np.full((len(mels), frames, self.mel.n_mels), np.log(self.mel.log_floor))
        for j, m in enumerate(mels):
            batch[j, : len(m)] = m
        return batch.astype(np.float32), np.array([len(m) for m in mels], np.int32)

    def log_probs_of_mels(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """Log-mels ``[frames, n_mels]`` -> each one's CTC log-probabilities ``[T', classes]``
        (``T'`` its subsampled length), in padded batches of :data:`BATCH`."""
        out = []
        for k in range(0, len(mels), BATCH):
            batch = self._batch(mels[k : k + BATCH])
            log_probs, lengths = jax.device_get(self._log_probs(self._params, *batch))
            out += [lp[:n] for lp, n in zip(log_probs, lengths, strict=True)]
        return out

    def transcribe_mels(self, mels: list[np.ndarray]) -> list[str]:
        """Log-mels ``[frames, n_mels]`` of this front end -> their transcripts, in padded
        batches of :data:`BATCH`."""
        if self.beam is not None:
            return [self.beam(lp) for lp in self.log_probs_of_mels(mels)]
        out = []
        for k in range(0, len(mels), BATCH):
            best, keep = jax.device_get(
                self._decode(self._params, *self._batch(mels[k : k + BATCH]))
            )
            out += [labels_to_transcript(b[j]) for b, j in zip(best, keep, strict=True)]
        return out

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


def export(path, out_dir, dtype: str = "float16") -> dict:
    """``tts-jax export``: the newest checkpoint's parameters and config as an exported model
    (:mod:`tts_jax.exported`) that ``transcribe`` and ``evaluate --recognizer`` take like a
    workdir. A beam search is added by writing ``decoding.json`` and its language model
    into the folder (``tools/asr_lexicon.py``)."""
    recognizer = Recognizer(path)
    return exported.write(
        out_dir,
        recognizer.config,
        {"params": recognizer._params},
        recognizer.step,
        dtype,
        run_path(path).name,
    )
