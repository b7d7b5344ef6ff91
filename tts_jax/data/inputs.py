"""Config -> corpus and batch iterators, for families to use in their ``make_data``."""

from __future__ import annotations

import numpy as np

from tts_jax import audio
from tts_jax.config import data_seed
from tts_jax.data import Data
from tts_jax.data.ljspeech import Corpus, open_corpus
from tts_jax.data.pipeline import AudioSegments, TextMelBatches
from tts_jax.text import TextConfig


def mel_config(config) -> audio.MelConfig:
    return audio.MelConfig.from_config(config.data)


def corpus_from_config(config) -> Corpus:
    return open_corpus(
        config.data.path,
        mel_config(config),
        tuple(config.data.split_fractions),
        tfds_data_dir=config.data.tfds_data_dir,
    )


def text_mel_data(
    config,
    process_index: int,
    process_count: int,
    frames_multiple: int = 1,
    linear: bool = False,
    audio: bool = False,
):
    """Training and validation :class:`TextMelBatches` as the trainer's :class:`Data`. With
    ``config.data.mel_dir`` the training targets are that folder's mels (validation keeps the
    recordings'); ``audio`` adds each waveform to the batches."""
    corpus = corpus_from_config(config)
    text = TextConfig.from_config(config.data.text)
    common = dict(
        text=text,
        seed=data_seed(config),
        frames_multiple=frames_multiple,
        num_buckets=config.data.num_buckets,
        process_index=process_index,
        process_count=process_count,
        prefetch=config.data.prefetch,
        log_floor=mel_config(config).log_floor,
        linear=linear,
        audio=audio,
    )
    mel_dir = config.data.get("mel_dir")
    train = TextMelBatches(
        corpus.split("train"),
        config.train.batch_size,
        max_frames=config.data.max_frames,
        mel_dir=mel_dir,
        **common,
    )

    def eval_batches():
        val = TextMelBatches(
            corpus.split("validation"),
            config.train.batch_size,
            shuffle=False,
            drop_remainder=False,
            **common,
        )
        return val.epoch_batches()

    shapes = train.shapes()
    describe = (
        f"data: {len(corpus.split('train'))} training utterances "
        f"({train.dropped} longer than {config.data.max_frames} frames skipped), "
        f"{len(train)} batches per epoch" + (f", target mels from {mel_dir}" if mel_dir else ""),
        f"data: {len(shapes)} padded (text, frames) shapes -> at most {len(shapes)} "
        f"compilations of the train step: {shapes}",
    )
    return Data(train=train, eval=eval_batches, describe=describe)


def audio_segment_example(config, batch_size: int = 1) -> dict:
    """Zeros in the shapes of an :func:`audio_segment_data` training batch (initialising or
    restoring a vocoder needs only shapes)."""
    seg = config.train.segment_length
    return {
        "audio": np.zeros((batch_size, seg), np.float32),
        "mels": np.zeros(
            (batch_size, seg // config.data.hop_length, config.data.n_mels), np.float32
        ),
    }


def audio_segment_data(
    config,
    process_index: int,
    process_count: int,
    segment_length: int,
    eval_segment_length: int | None = None,
    mel_dir: str | None = None,
):
    """Training and validation :class:`AudioSegments` (vocoders) as the trainer's :class:`Data`.

    ``mel_dir``: training mels from a ``tts-jax gta`` export instead of the corpus (validation
    keeps the ground-truth mels: it measures copy synthesis).
    """
    corpus = corpus_from_config(config)
    common = dict(
        seed=data_seed(config),
        process_index=process_index,
        process_count=process_count,
        prefetch=config.data.prefetch,
        log_floor=mel_config(config).log_floor,
    )
    train = AudioSegments(
        corpus.split("train"), config.train.batch_size, segment_length, mel_dir=mel_dir, **common
    )

    def eval_batches():
        val = AudioSegments(
            corpus.split("validation"),
            config.train.batch_size,
            eval_segment_length or segment_length,
            shuffle=False,
            drop_remainder=False,
            **common,
        )
        return val.epoch_batches()

    describe = (
        f"data: {len(train)} batches of {segment_length}-sample segments per epoch"
        + (f", mels from {mel_dir}" if mel_dir else ""),
    )
    return Data(train=train, eval=eval_batches, describe=describe)
