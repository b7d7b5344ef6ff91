"""The model shipped in data/: its card and checksum, and that it reads new English text."""

import json
import re

import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax import exported, pretrained

SHIPPED = REPO / "data" / "tacotron2_espeak"


@pytest.mark.parametrize("folder", ["tacotron2_espeak", "asr_espeak"])
def test_shipped_files_are_small_and_their_card_states_the_checksum(folder):
    shipped = REPO / "data" / folder
    blob = shipped / exported.VARIABLES
    assert blob.stat().st_size <= 10 * 2**20
    meta = json.loads((shipped / "model.json").read_text())
    assert exported.sha256(blob) == meta["sha256"]
    card = (shipped / "MODEL_CARD.md").read_text()
    assert re.search(r"\b[0-9a-f]{64}\b", card).group(0) == meta["sha256"]
    assert f"{meta['step']:,}" in card


def test_the_shipped_recognizer_hears_espeak_and_not_noise():
    """The shipped judge with its beam search: espeak's reading of a corpus-style sentence
    comes back with few errors; white noise comes back as (nearly) nothing like it."""
    from tts_jax.data.corpus import espeak_reference
    from tts_jax.eval.intelligibility import cer

    recognizer = pretrained.load_recognizer()
    assert recognizer.beam is not None
    text = "The small dog paid twelve dollars for their garden."
    speech = espeak_reference(text, sample_rate=recognizer.sample_rate)
    noise = np.random.default_rng(0).normal(0, 0.1, len(speech)).astype(np.float32)
    heard, noise_heard = recognizer.transcribe([speech, noise])
    assert cer([text], [heard]) <= 0.1, heard
    assert cer([text], [noise_heard]) >= 0.7, noise_heard


def test_shipped_model_reads_a_sentence_outside_the_corpus_vocabulary():
    """Through the public API, a hand-written held-out sentence (most of its words never occur
    in the generated corpus) ends by its stop token, attends sharply, and lasts within 30 % of
    espeak's reading of it."""
    from tts_jax.data.corpus import espeak_reference
    from tts_jax.data.sentences import generate_sentences, read_sentences
    from tts_jax.eval.attention import focus

    text = read_sentences(REPO / "data" / "heldout_sentences.txt")[0]
    corpus_words = {w for s in generate_sentences(2000) for w in re.findall(r"\w+", s.lower())}
    words = re.findall(r"\w+", text.lower())
    assert sum(w not in corpus_words for w in words) > len(words) / 2

    tts = pretrained.load()
    speech = tts.synthesize([text])[0]
    espeak_seconds = len(espeak_reference(text)) / 22050
    assert speech.stopped and not speech.warnings
    assert focus(speech.alignment) >= 0.5
    assert 0.7 <= speech.seconds / espeak_seconds <= 1.3, (speech.seconds, espeak_seconds)
    assert speech.audio.dtype == np.float32 and np.abs(speech.audio).max() > 0.01
