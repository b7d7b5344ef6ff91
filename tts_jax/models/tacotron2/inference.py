"""Tacotron 2 after training: batched jitted synthesis, export, GTA mels, held-out scoring.

Reads trained models through :mod:`tts_jax.workdir`; writes only what it is asked to export.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from tts_jax import audio, exported, workdir
from tts_jax.data.corpus import espeak_reference
from tts_jax.data.inputs import corpus_from_config
from tts_jax.data.pipeline import TextMelBatches
from tts_jax.errors import UserError
from tts_jax.eval import attention
from tts_jax.family import EvalRequest, Evaluation
from tts_jax.inference import griffin_lim
from tts_jax.models.tacotron2.model import Tacotron2, build_model
from tts_jax.text import TextConfig, text_to_ids

TEXT_BUCKET = 32  # texts are padded to multiples of this many symbols


class Synthesizer:
    """Batched text -> mel with trained variables. Every batch of a call is padded to
    [batch_size, the call's longest text rounded up to 32 symbols], so a call compiles once
    and later calls with texts in the same bucket compile never.

    ``Synthesizer.from_workdir(DIR)`` loads a training workdir's newest checkpoint, or a model
    exported by :func:`export` (``tts-jax export``; the model shipped in data/ is one)."""

    def __init__(self, config, variables, step: int):
        self.config = config
        self.text = TextConfig.from_config(config.data.text)
        self.model = build_model(config)
        self.variables = variables
        self.step = int(step)
        self.max_steps = self.model.cfg.max_decoder_steps
        self.max_text = self.model.cfg.max_text_length
        self.shapes: set[tuple[int, int]] = set()
        self._infer = jax.jit(
            functools.partial(
                self.model.apply, method=Tacotron2.infer, max_decoder_steps=self.max_steps
            )
        )

    @classmethod
    def from_workdir(cls, path, step: int | None = None) -> Synthesizer:
        """A training workdir's newest checkpoint (or ``step``), or an exported model."""
        return cls(*workdir.load_variables(path, "tacotron2", step))

    def encode(self, text: str) -> np.ndarray:
        ids = text_to_ids(text, self.text)  # raises a UserError for empty / unknown input
        if len(ids) > self.max_text:
            raise UserError(
                f"text of {len(ids)} symbols is longer than this model supports "
                f"(model.max_text_length = {self.max_text}): {text[:60]!r}..."
            )
        return ids

    def __call__(self, texts: list[str], batch_size: int = 16, seed: int = 0) -> list[dict]:
        """Per text: mel [frames, M], alignment [steps, symbols], stopped (bool)."""
        results = []
        for start, chunk, ids, lengths in text_batches([self.encode(t) for t in texts], batch_size):
            self.shapes.add(ids.shape)
            out = jax.device_get(
                self._infer(
                    self.variables, ids, lengths, rngs={"dropout": jax.random.PRNGKey(seed + start)}
                )
            )
            r = self.model.cfg.reduction
            for j, x in enumerate(chunk):
                frames = int(out["lengths"][j])
                results.append(
                    {
                        "mel": np.asarray(out["mel_after"][j, :frames]),
                        "alignment": np.asarray(out["alignments"][j, : -(-frames // r), : len(x)]),
                        "stopped": not bool(out["reached_max"][j]),
                    }
                )
        return results


def text_batches(encoded: list[np.ndarray], batch_size: int):
    """One call's encoded texts as padded batches ``(start, chunk, ids [batch_size, n],
    lengths [batch_size])``: one shape for the whole call, ``n`` the longest text rounded up to
    :data:`TEXT_BUCKET`; filler rows repeat the chunk's first text."""
    n = -(-max(len(x) for x in encoded) // TEXT_BUCKET) * TEXT_BUCKET
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        ids = np.zeros((batch_size, n), np.int32)
        lengths = np.full((batch_size,), len(chunk[0]), np.int32)
        for j in range(batch_size):
            x = chunk[j] if j < len(chunk) else chunk[0]
            ids[j, : len(x)], lengths[j] = x, len(x)
        yield start, chunk, ids, lengths


def export(path, out_dir, dtype: str = "float16") -> dict:
    """``tts-jax export``: the newest checkpoint's variables and config as an exported model
    (:mod:`tts_jax.exported`), which ``synthesize --workdir`` and ``evaluate --workdir`` take
    like a workdir."""
    synth = Synthesizer.from_workdir(path)
    return exported.write(
        out_dir, synth.config, synth.variables, synth.step, dtype, Path(path).name
    )


def export_gta(
    path, out_dir, split_name: str = "train", batch_size: int = 16, free_running: bool = False
) -> dict:
    """Teacher-forced (ground-truth-aligned) mels of every utterance of a split.

    Writes ``OUT/ID.npy`` (float32 [len(audio) // hop, n_mels], exactly the frames of the
    utterance's ground-truth mel) and ``OUT/index.json``. Dropout as at inference: the prenet's
    stays on (as in the paper's GTA setup), everything else is off.

    ``free_running``: the model's own synthesis of each utterance's text instead, as long as it
    decodes (until its stop token, or ``max_decoder_steps``; ``index.json`` says which): the
    targets of sequence-level distillation (Kim & Rush 2016).
    """
    synth = Synthesizer.from_workdir(path)  # its decoding loop is not used here
    config, model, variables = synth.config, synth.model, synth.variables
    split = corpus_from_config(config).split(split_name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if free_running:
        written = []
        for i, result in enumerate(synth(split.texts, batch_size)):
            np.save(out_dir / f"{split.ids[i]}.npy", result["mel"].astype(np.float32))
            written.append(
                {"id": split.ids[i], "frames": len(result["mel"]), "stopped": result["stopped"]}
            )
        return _write_index(out_dir, path, synth.step, split_name, "free-running", written)
    batches = TextMelBatches(
        split,
        batch_size,
        synth.text,
        shuffle=False,
        drop_remainder=False,
        frames_multiple=model.cfg.reduction,
        prefetch=2,
    )
    apply = jax.jit(
        lambda v, b, rng: model.apply(
            v,
            b["ids"],
            b["id_lengths"],
            b["mels"],
            b["mel_lengths"],
            train=False,
            rngs={"dropout": rng},
        )["mel_after"]
    )
    written = []
    for i, batch in enumerate(batches.epoch_batches()):
        feed = {k: batch[k] for k in ("ids", "id_lengths", "mels", "mel_lengths")}
        mels = np.asarray(apply(variables, feed, jax.random.PRNGKey(i)))
        for j in np.flatnonzero(batch["valid"]):
            row, frames = int(batch["index"][j]), int(batch["mel_lengths"][j])
            np.save(out_dir / f"{split.ids[row]}.npy", mels[j, :frames])
            written.append({"id": split.ids[row], "frames": frames})
    return _write_index(out_dir, path, synth.step, split_name, "teacher-forced", written)


def _write_index(out_dir: Path, path, step: int, split_name: str, kind: str, written) -> dict:
    index = {"workdir": str(path), "step": step, "split": split_name, "kind": kind}
    index["utterances"] = written
    (out_dir / "index.json").write_text(json.dumps(index, indent=1))
    return index


def heldout_synthesis(
    path,
    split_name: str = "test",
    limit: int = 50,
    vocoder: Callable[[np.ndarray], np.ndarray] | None = None,
    sentences: list[str] | None = None,
    step: int | None = None,
    synthesizer=None,
    own_waveform: bool = False,
):
    """Synthesises held-out text with the trained model at ``path`` (a workdir or an exported
    model) and ``vocoder`` (mel -> wav; Griffin-Lim when None): a corpus split's sentences
    against their recordings, or ``sentences`` against espeak speaking them as the corpus
    builder does (same voice, rate and trimming). ``synthesizer``: another family's
    synthesizer role built on Tacotron 2 (text_to_wave's) instead of this one; with
    ``own_waveform`` its ``"audio"`` is scored instead of the vocoded mel.

    Returns ``(pairs, diagnostics, synthesizer, texts)``: ``(id, espeak audio, synthesized
    audio)`` triples for :func:`tts_jax.eval.evaluate.evaluate_pairs`, per sentence the
    attention diagnostics of the free-running alignment with ``stopped_by_token``, and each
    id's text.
    """
    synth = synthesizer or Synthesizer.from_workdir(path, step=step)
    config = synth.config
    mel_cfg = audio.MelConfig.from_config(config.data)
    if sentences is None:
        split = corpus_from_config(config).split(split_name)
        n = min(limit, len(split))
        ids, texts = split.ids[:n], [split.texts[i] for i in range(n)]
        references = [split.example(i)["audio"] for i in range(n)]
    else:
        texts = sentences[:limit]
        ids = [f"sentence{i:03d}" for i in range(len(texts))]
        voice = TextConfig.from_config(config.data.text).voice
        references = [espeak_reference(t, voice, mel_cfg.sample_rate) for t in texts]
    vocode = vocoder or griffin_lim(mel_cfg)
    results = synth(texts)
    pairs, diagnostics = [], []
    for utt, ref, res in zip(ids, references, results, strict=True):
        wav = np.asarray(res["audio"]) if own_waveform else vocode(res["mel"])
        pairs.append((utt, ref, wav))
        diagnostics.append(
            dict(
                attention.diagnostics(res["alignment"]),
                stopped_by_token=float(res["stopped"]),
                seconds=len(wav) / mel_cfg.sample_rate,
                reference_seconds=len(ref) / mel_cfg.sample_rate,
            )
        )
    return pairs, diagnostics, synth, dict(zip(ids, texts, strict=True))


def evaluate(path, request: EvalRequest) -> Evaluation:
    """Held-out synthesis (:func:`heldout_synthesis`) scored against espeak, with the attention
    diagnostics and the duration ratio as the family's own statistics."""
    pairs, diagnostics, synth, texts = heldout_synthesis(
        path, request.split, request.limit, request.vocoder, request.sentences, request.step
    )
    held_out = "given sentences" if request.sentences else f"{request.split} split"
    stats = attention.diagnostics_summary(diagnostics)
    stats["duration_ratio"] = stats["seconds"] / stats["reference_seconds"]
    return Evaluation(
        title=f"{Path(path).name} (step {synth.step}) + {request.vocoder_name}, {held_out}",
        step=synth.step,
        pairs=pairs,
        stats={"attention": stats},
        texts=texts,
    )
