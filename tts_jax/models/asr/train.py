"""The recognizer in the shared trainer: data, state, train and eval steps, summaries.

Batches are the text-to-mel batches (:class:`tts_jax.data.pipeline.TextMelBatches`: the same
corpora, TFDS path, buckets and resumable positions) with the CTC targets added:

    labels         int32 [B, N]   normalised transcript ids (tts_jax.text.transcripts), 0-padded
    label_lengths  int32 [B]

``N`` is the batch's text bucket: a transcript is no longer than the cleaned text, so the
labels add no padded shapes and no compilations (but for a text whose symbols the table
drops, whose labels are then padded to a multiple of 8).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tts_jax.data import Data
from tts_jax.data.inputs import corpus_from_config, text_mel_data
from tts_jax.errors import UserError
from tts_jax.eval.intelligibility import character_errors
from tts_jax.family import count_params
from tts_jax.models.asr.model import (
    build_model,
    ctc_loss,
    greedy_decode,
)
from tts_jax.plotting import alignment_image
from tts_jax.text.transcripts import labels_to_transcript, normalize_transcript
from tts_jax.text.transcripts import transcript_to_labels as to_labels
from tts_jax.train.optim import make_optimizer
from tts_jax.train.state import TrainState, make_train_step


class Transcripts:
    """The CTC targets of one split's utterances, added to a batch of that split by its
    ``index`` (each row's position in the split)."""

    def __init__(self, split):
        self.labels = [to_labels(normalize_transcript(t)) for t in split.texts]
        empty = [split.ids[i] for i, x in enumerate(self.labels) if len(x) == 0]
        if empty:
            raise UserError(
                f"utterance {empty[0]} of split {split.name!r} has no transcript after "
                "normalisation (no letters): remove it from the corpus"
            )

    def add_to(self, batch: dict) -> dict:
        rows = np.asarray(batch["index"])
        real = rows[rows >= 0]  # filler rows (valid False) repeat a real one, as the mels do
        fill = real[0] if len(real) else 0  # (a host whose rows are all filler: any one)
        labels = [self.labels[r if r >= 0 else fill] for r in rows]
        longest = max(len(x) for x in labels)
        width = max(batch["ids"].shape[1], -(-longest // 8) * 8)
        out = np.zeros((len(rows), width), np.int32)
        for j, x in enumerate(labels):
            out[j, : len(x)] = x
        lengths = np.array([len(x) for x in labels], np.int32)
        return dict(batch, labels=out, label_lengths=lengths)


class WithLabels:
    """A text-mel batch iterator whose batches also hold their CTC targets; position and
    state are the wrapped iterator's, so checkpoints resume it exactly."""

    def __init__(self, batches):
        self.batches = batches
        self.transcripts = Transcripts(batches.split)

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        return self.transcripts.add_to(next(self.batches))

    def __len__(self) -> int:
        return len(self.batches)

    def get_state(self) -> dict:
        return self.batches.get_state()

    def set_state(self, state: dict) -> None:
        self.batches.set_state(state)


def make_data(config, process_index, process_count) -> Data:
    base = text_mel_data(config, process_index, process_count)
    validation = Transcripts(corpus_from_config(config).split("validation"))

    def eval_batches():
        return (validation.add_to(b) for b in base.eval())

    return Data(train=WithLabels(base.train), eval=eval_batches, describe=base.describe)


def example_batch(config, batch_size: int = 1, frames: int = 64) -> dict:
    """Zeros in the shapes init_state traces (the parameters do not depend on them)."""
    return {
        "mels": np.zeros((batch_size, frames, config.data.n_mels), np.float32),
        "mel_lengths": np.full((batch_size,), frames, np.int32),
        "labels": np.ones((batch_size, 8), np.int32),
        "label_lengths": np.full((batch_size,), 8, np.int32),
    }


def init_state(config, rng, batch):
    model = build_model(config)
    p, d, s = jax.random.split(rng, 3)
    variables = model.init(
        {"params": p, "dropout": d, "specaug": s},
        batch["mels"],
        batch["mel_lengths"],
        train=False,
    )
    tx, _ = make_optimizer(config.optim)
    return TrainState.create(variables["params"], tx, rng)


def _weights(batch):
    if "valid" in batch:
        return batch["valid"].astype(jnp.float32)
    return jnp.ones(batch["mels"].shape[0], jnp.float32)


def train_step(config):
    model = build_model(config)
    _, schedule = make_optimizer(config.optim)

    def loss_fn(params, model_state, batch, rng):
        d, s = jax.random.split(rng)
        logits, lengths = model.apply(
            {"params": params},
            batch["mels"],
            batch["mel_lengths"],
            train=True,
            rngs={"dropout": d, "specaug": s},
        )
        weights = _weights(batch)
        loss, feasible = ctc_loss(logits, lengths, batch["labels"], batch["label_lengths"], weights)
        infeasible = jnp.sum(weights * (1.0 - feasible)) / jnp.maximum(jnp.sum(weights), 1.0)
        return loss, ({"ctc": loss, "infeasible": infeasible}, model_state)

    return make_train_step(loss_fn, schedule, config.train.compute_dtype)


def _host_character_errors(best, keep, labels, label_lengths, valid):
    """Greedy transcripts against the labels, on the host (jiwer): [edits, reference chars]."""
    refs, hyps = [], []
    for b in range(len(best)):
        if valid[b]:
            refs.append(labels_to_transcript(labels[b, : label_lengths[b]]))
            hyps.append(labels_to_transcript(best[b][keep[b]]))
    if not refs:
        return np.zeros(2, np.float32)
    counts = character_errors(refs, hyps)
    return np.array([counts.edits, counts.length], np.float32)


def eval_step(config):
    """Per-character CTC loss and the greedy transcripts' CER (jiwer, through a host
    callback), weighted by the batch's reference characters: the trainer's weighted mean is
    then the validation split's corpus CER."""
    model = build_model(config)

    def step(state, batch):
        logits, lengths = model.apply(
            {"params": state.params}, batch["mels"], batch["mel_lengths"], train=False
        )
        weights = _weights(batch)
        loss, _ = ctc_loss(logits, lengths, batch["labels"], batch["label_lengths"], weights)
        best, keep = greedy_decode(logits, lengths)
        counts = jax.pure_callback(
            _host_character_errors,
            jax.ShapeDtypeStruct((2,), jnp.float32),
            best,
            keep,
            batch["labels"],
            batch["label_lengths"],
            weights > 0,
        )
        chars = jnp.maximum(counts[1], 1.0)
        return {"ctc": loss, "cer": counts[0] / chars, "weight": counts[1]}

    return step


def eval_summaries(config, state, batch):
    """The CTC posteriors of the first validation utterance (frames x classes)."""
    model = build_model(config)
    one = {k: v[:1] for k, v in jax.device_get(batch).items()}
    logits, lengths = model.apply(
        {"params": state.params}, one["mels"], one["mel_lengths"], train=False
    )
    n = int(lengths[0])
    posteriors = np.asarray(jax.nn.softmax(logits[0, :n], axis=-1))
    return {"images": {"ctc_posteriors": alignment_image(posteriors, "frame x class")}}


def param_count(config) -> dict[str, int]:
    batch = example_batch(config)
    rngs = {k: jax.random.key(0) for k in ("params", "dropout", "specaug")}
    init = lambda: build_model(config).init(  # noqa: E731
        rngs, batch["mels"], batch["mel_lengths"], train=False
    )
    return {"model": count_params(init)}
