"""The recognizer (tts_jax/models/asr), its transcripts and the CER/WER metrics."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax.errors import UserError
from tts_jax.eval.intelligibility import cer, character_errors, wer, word_errors
from tts_jax.models.asr import (
    ConformerCTCConfig,
    ctc_losses,
    greedy_decode,
    label_repeats,
    normalize_features,
    spec_augment,
)
from tts_jax.text.transcripts import (
    ALPHABET,
    BLANK,
    labels_to_transcript,
    normalize_transcript,
    transcript_to_labels,
)

TINY = str(REPO / "experiments" / "asr.py:tiny")


# ---- transcripts and error rates --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Smith paid $5.", "doctor smith paid five dollars"),
        ('"Don\'t," she said -- well-known!', "don't she said well known"),
        ("the dogs' bones 'quoted'", "the dogs bones quoted"),
        ("  It is 3:30 p.m.  ", "it is three thirty p m"),
    ],
)
def test_normalize_transcript_states_numbers_case_and_punctuation(text, expected):
    out = normalize_transcript(text)
    assert out == expected
    assert normalize_transcript(out) == out  # idempotent: applying it to a transcript is safe
    assert set(out) <= set(ALPHABET)
    assert labels_to_transcript(transcript_to_labels(out)) == out


def test_labels_refuse_text_outside_the_alphabet():
    with pytest.raises(UserError, match="outside the recognizer's alphabet"):
        transcript_to_labels("Hello!")


def test_error_rates_of_identical_strings_are_zero():
    refs = ["the cat sat on the mat", "Dr. Smith has 2 cats."]
    assert cer(refs, refs) == 0.0 and wer(refs, refs) == 0.0
    # Normalisation on both sides: the spelled-out hypothesis matches the written reference.
    assert cer(["Dr. Smith has 2 cats."], ["doctor smith has two cats"]) == 0.0


def test_error_rates_of_known_edits():
    # One substituted letter in 11 characters; one substituted word in 2.
    assert cer(["hello world"], ["hallo world"]) == pytest.approx(1 / 11)
    assert wer(["hello world"], ["hallo world"]) == pytest.approx(1 / 2)
    # A deletion and an insertion: "abc" -> "ac" (1 of 3), "ab" -> "abx" (1 of 2); corpus rate
    # is the edits' sum over the references' total length, not the mean of the two rates.
    counts = character_errors(["abc", "ab"], ["ac", "abx"])
    assert (counts.substitutions, counts.deletions, counts.insertions) == (0, 1, 1)
    assert counts.rate == pytest.approx(2 / 5)
    # An empty hypothesis deletes every word.
    assert word_errors(["one two three"], [""]).rate == 1.0


def test_error_rates_refuse_empty_references_and_mismatched_lists():
    with pytest.raises(ValueError, match="empty after normalisation"):
        cer(["?!"], ["a"])
    with pytest.raises(ValueError, match="2 references but 1"):
        cer(["a", "b"], ["a"])
    with pytest.raises(TypeError):
        cer("abc", "abc")


# ---- CTC, decoding, features ------------------------------------------------------------------


def _collapse(path) -> tuple[int, ...]:
    merged = [k for k, _ in itertools.groupby(path)]
    return tuple(k for k in merged if k != BLANK)


def _brute_force_nll(log_probs: np.ndarray, labels: tuple[int, ...]) -> float:
    """-log of the summed probability of every frame path that collapses to ``labels``."""
    t, k = log_probs.shape
    total = 0.0
    for path in itertools.product(range(k), repeat=t):
        if _collapse(path) == labels:
            total += np.exp(sum(log_probs[i, c] for i, c in enumerate(path)))
    return -np.log(total) if total > 0 else np.inf


def test_ctc_loss_equals_the_sum_over_all_alignments():
    rng = np.random.default_rng(0)
    k, t = 4, 5
    logits = rng.normal(size=(3, t, k)).astype(np.float32)
    # Row 0: two labels in 5 frames; row 1: a repeat (needs a blank between) in 4 of the
    # 5 frames (one padding frame); row 2: one label in 3 frames.
    labels = np.array([[1, 3, 0], [2, 2, 0], [3, 0, 0]], np.int32)
    label_lengths = np.array([2, 2, 1], np.int32)
    logit_lengths = np.array([5, 4, 3], np.int32)
    nll, feasible = ctc_losses(
        jnp.asarray(logits), logit_lengths, jnp.asarray(labels), label_lengths
    )
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1), np.float64)
    for b in range(3):
        want = _brute_force_nll(
            log_probs[b, : logit_lengths[b]], tuple(labels[b, : label_lengths[b]])
        )
        np.testing.assert_allclose(float(nll[b]), want, rtol=1e-4)
    assert np.all(np.asarray(feasible))


def test_ctc_feasibility_counts_the_blanks_repeats_need():
    labels = jnp.array([[1, 1, 2, 2, 2], [1, 2, 3, 0, 0]], jnp.int32)
    lengths = jnp.array([5, 3], jnp.int32)
    np.testing.assert_array_equal(label_repeats(labels, lengths), [3, 0])
    # "aabbb" needs 5 + 3 = 8 frames; "abc" needs 3.
    logits = jnp.zeros((2, 8, 4))
    _, feasible = ctc_losses(logits, jnp.array([7, 3]), labels, lengths)
    np.testing.assert_array_equal(feasible, [False, True])
    _, feasible = ctc_losses(logits, jnp.array([8, 2]), labels, lengths)
    np.testing.assert_array_equal(feasible, [True, False])


def test_greedy_decoder_merges_repeats_and_drops_blanks():
    a, b, c, z = (ALPHABET.index(x) + 1 for x in "abcz")
    # Frame winners: a a _ a b b _ _ c | z z (the last two frames are padding).
    path = [a, a, BLANK, a, b, b, BLANK, BLANK, c, z, z]
    logits = np.full((2, len(path), len(ALPHABET) + 1), -5.0, np.float32)
    for t, k in enumerate(path):
        logits[0, t, k] = logits[1, t, k] = 5.0
    best, keep = greedy_decode(jnp.asarray(logits), jnp.array([9, 4]))
    best, keep = np.asarray(best), np.asarray(keep)
    assert labels_to_transcript(best[0][keep[0]]) == "aabc"  # a blank separates two a's
    assert labels_to_transcript(best[1][keep[1]]) == "aa"  # only the first four frames


def test_features_are_normalised_over_real_frames_only():
    rng = np.random.default_rng(1)
    mels = rng.normal(3.0, 2.0, size=(1, 50, 8)).astype(np.float32)
    padded = np.concatenate([mels, np.full((1, 30, 8), -11.5, np.float32)], axis=1)
    out = np.asarray(normalize_features(jnp.asarray(padded), jnp.array([50])))
    np.testing.assert_allclose(out[0, :50].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[0, :50].std(0), 1.0, atol=1e-3)
    assert np.all(out[0, 50:] == 0.0)
    # The padding does not change the real frames' features.
    alone = np.asarray(normalize_features(jnp.asarray(mels), jnp.array([50])))
    np.testing.assert_allclose(out[:, :50], alone, atol=1e-5)


def test_spec_augment_masks_stay_within_their_limits():
    cfg = ConformerCTCConfig(freq_masks=2, freq_mask_width=5, time_masks=3, time_mask_width=20)
    x = jnp.ones((64, 100, 40))
    lengths = jnp.full((64,), 100)
    out = np.asarray(spec_augment(jax.random.key(0), x, lengths, cfg))
    bins_masked = (out == 0).all(axis=1).sum(-1)  # a masked bin is zero over all frames
    frames_masked = (out == 0).all(axis=2).sum(-1)
    assert bins_masked.max() <= 2 * 5 and bins_masked.max() > 0
    # Time masks: at most min(20, 0.05 * 100) = 5 frames each.
    assert frames_masked.max() <= 3 * 5 and frames_masked.max() > 0
    # Different draws per utterance; the values left are untouched.
    assert len({tuple(r) for r in (out == 0).all(axis=1)}) > 1
    assert len({tuple(r) for r in (out == 0).all(axis=2)}) > 1
    assert set(np.unique(out)) <= {0.0, 1.0}


# ---- training and the recognizer role ---------------------------------------------------------


def _batch_of(corpus, n: int, config) -> dict:
    from tts_jax.data.pipeline import TextMelBatches
    from tts_jax.models.asr.train import Transcripts

    split = corpus.split("train")
    batches = TextMelBatches(split, n, shuffle=False, num_buckets=1)
    return Transcripts(split).add_to(next(iter(batches)))


@pytest.mark.slow
def test_tiny_recognizer_overfits_a_few_utterances(corpus):
    """The loss falls far below the blank-only plateau, and greedy decoding recovers most of
    the characters of the training utterances."""
    from tts_jax.config import load_config
    from tts_jax.family import get_family

    config = load_config(
        TINY,
        [
            "--config.model.model_dim=64",
            "--config.model.num_blocks=2",
            "--config.model.freq_masks=0",
            "--config.model.time_masks=0",
        ],
    )
    family = get_family("asr")
    batch = {k: jnp.asarray(v) for k, v in _batch_of(corpus, 4, config).items()}
    state = family.init_state(config, jax.random.key(0), batch)
    step = jax.jit(family.train_step(config))
    evaluate = jax.jit(family.eval_step(config))
    first = float(evaluate(state, batch)["ctc"])
    for _ in range(80):
        state, _ = step(state, batch)
    after = evaluate(state, batch)
    # A blank-only model sits near 2.8 nats a character; 80 steps reach about 0.01 (from 4.8).
    assert float(after["ctc"]) < 0.05 * first, (first, float(after["ctc"]))
    assert float(after["cer"]) < 0.05


@pytest.mark.slow
def test_eval_cer_is_jiwers_on_the_greedy_transcripts_of_valid_rows(corpus):
    from tts_jax.config import load_config
    from tts_jax.family import get_family
    from tts_jax.models.asr import build_model

    config = load_config(TINY)
    family = get_family("asr")
    batch = _batch_of(corpus, 4, config)
    batch["valid"] = np.array([True, True, False, True])
    state = family.init_state(config, jax.random.key(3), batch)
    got = jax.jit(family.eval_step(config))(state, batch)
    logits, lengths = build_model(config).apply(
        {"params": state.params}, batch["mels"], batch["mel_lengths"], train=False
    )
    best, keep = map(np.asarray, greedy_decode(logits, lengths))
    rows = [0, 1, 3]
    refs = [labels_to_transcript(batch["labels"][r, : batch["label_lengths"][r]]) for r in rows]
    hyps = [labels_to_transcript(best[r][keep[r]]) for r in rows]
    np.testing.assert_allclose(float(got["cer"]), cer(refs, hyps), rtol=1e-6)
    assert float(got["weight"]) == sum(len(r) for r in refs)


@pytest.fixture(scope="module")
def tiny_recognizer(corpus_dir, tmp_path_factory):
    """A recognizer workdir trained two steps (what the after-training paths need)."""
    from tts_jax.config import load_config
    from tts_jax.train.loop import train_and_evaluate

    config = load_config(TINY, [f"--config.data.path={corpus_dir}", "--config.train.num_steps=2"])
    work = tmp_path_factory.mktemp("asr") / "w"
    train_and_evaluate(config, work)
    return work


def test_transcribe_prints_each_file_and_refuses_bad_ones(
    corpus_dir, tiny_recognizer, tmp_path, capsys
):
    from tts_jax import audio
    from tts_jax.cli import main
    from tts_jax.models.asr import Recognizer

    work = tiny_recognizer
    wav = sorted((corpus_dir / "wavs").glob("*.wav"))[0]
    # Another rate: the file is resampled to the recognizer's before transcribing.
    at_16k = tmp_path / "16k.wav"
    audio.save_wav(at_16k, audio.load_wav(wav, 16000), 16000)
    capsys.readouterr()
    assert main(["transcribe", str(wav), str(at_16k), "--workdir", str(work)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(wav), str(at_16k)]
    recognizer = Recognizer(work)
    assert lines[0].split("\t")[1] == recognizer(audio.load_wav(wav, recognizer.sample_rate))

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not a wav file")
    short = tmp_path / "short.wav"
    audio.save_wav(short, np.zeros(100, np.float32), 22050)
    for bad, says in [
        (not_audio, "cannot read audio file"),
        (short, "too short to transcribe"),
        (tmp_path / "missing.wav", "audio file not found"),
    ]:
        assert main(["transcribe", str(wav), str(bad), "--workdir", str(work)]) == 2
        captured = capsys.readouterr()
        assert says in captured.err and str(bad) in captured.err
        assert captured.out == ""  # nothing printed before the bad file was found
    # A workdir of another family: named, with the families that can transcribe.
    other = tmp_path / "frame_lm"
    other.mkdir()
    (other / "config.json").write_text('{"model": {"family": "frame_lm"}}')
    assert main(["transcribe", str(wav), "--workdir", str(other)]) == 2
    assert "no recognizer" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_scores_intelligibility_without_reference_audio(
    corpus_dir, tiny_recognizer, tmp_path, capsys
):
    """``evaluate --recognizer``: the shipped Tacotron 2 on a sentences file, and Griffin-Lim
    copies of a corpus split; each clip's transcript is kept, and the corpus CER and WER are
    those of the transcripts against the texts (recomputed here with jiwer's measures)."""
    import json

    from tts_jax.cli import main
    from tts_jax.eval.intelligibility import cer, wer
    from tts_jax.pretrained import model_path

    sentences = tmp_path / "sentences.txt"
    sentences.write_text("The cat sat on the mat.\nIt rained for 3 days.\n")
    recognizer = ["--recognizer", str(tiny_recognizer)]
    runs = {
        "shipped": [
            "--workdir",
            str(model_path("tacotron2-espeak")),
            "--sentences",
            str(sentences),
        ],
        "griffin-lim": ["--data", str(corpus_dir), "--reference", "griffin-lim", "--limit", "2"],
    }
    for name, args in runs.items():
        out = tmp_path / name
        assert main(["evaluate", *args, *recognizer, "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        result = json.loads((out / "eval.json").read_text())
        rows, judged = result["rows"], result["intelligibility"]
        assert judged["utterances"] == len(rows) >= 1  # the toy corpus's test split: 1 or 2
        texts = ["The cat sat on the mat.", "It rained for 3 days."] if name == "shipped" else None
        if texts is None:  # the split's own texts, in its order
            from tts_jax.data.ljspeech import open_corpus

            split = open_corpus(corpus_dir).split("test")
            texts = [split.texts[split.ids.index(r["id"])] for r in rows]
        heard = [r["transcript"] for r in rows]
        assert judged["cer"] == pytest.approx(cer(texts, heard))
        assert judged["wer"] == pytest.approx(wer(texts, heard))
        assert [r["cer"] for r in rows] == pytest.approx(
            [cer([t], [h]) for t, h in zip(texts, heard, strict=True)]
        )
        assert f"CER {judged['cer']:.3f}" in printed and "| CER ↓ | WER ↓ |" in printed
    # Folders of wavs carry no text: --recognizer is refused by name.
    (tmp_path / "a").mkdir()
    argv = ["evaluate", "--reference-dir", str(tmp_path / "a"), "--synthesized-dir"]
    assert main([*argv, str(tmp_path / "a"), *recognizer, "--out", str(tmp_path / "x")]) == 2
    assert "--recognizer scores synthesized speech against the text" in capsys.readouterr().err


def _emissions(frames: list[dict[str, float]]) -> np.ndarray:
    """Log-probabilities [T, len(TOKENS)] from per-frame {token: probability}; what a frame
    leaves unassigned is spread over the other tokens."""
    from tts_jax.models.asr.decoding import TOKENS

    out = np.zeros((len(frames), len(TOKENS)))
    for t, probs in enumerate(frames):
        rest = (1.0 - sum(probs.values())) / (len(TOKENS) - len(probs))
        out[t] = rest
        for token, p in probs.items():
            out[t, TOKENS.index(token)] = p
    return np.log(out).astype(np.float32)


def _spelled(text: str, p: float = 0.9) -> list[dict[str, float]]:
    """Frames that say ``text`` clearly: each character then a blank."""
    frames = []
    for c in text:
        frames += [{c: p}, {"<blank>": p}]
    return frames


def _decoder(tmp_path, words: dict[str, float], lm_weight: float):
    from tts_jax.models.asr.decoding import BeamSearch, LexiconBeamDecoder, write_unigram_arpa

    write_unigram_arpa(words, tmp_path / "lm.arpa")
    return LexiconBeamDecoder(BeamSearch("lm.arpa", lm_weight=lm_weight), tmp_path)


def test_the_beam_search_writes_only_lexicon_words(tmp_path):
    # The first frame hears "k" more than "c": greedy writes "kat", the lexicon has "cat".
    frames = [{"k": 0.6, "c": 0.3}, {"<blank>": 0.9}, *_spelled("at")]
    log_probs = _emissions(frames)
    best = np.argmax(log_probs, axis=-1)
    from tts_jax.models.asr.decoding import TOKENS

    greedy = "".join(TOKENS[i] for i in best if i != 0)
    assert greedy == "kat"
    assert _decoder(tmp_path, {"cat": 1.0, "sat": 1.0}, lm_weight=0.0)(log_probs) == "cat"


def test_the_language_model_breaks_an_acoustic_tie(tmp_path):
    frames = [{"c": 0.45, "b": 0.45}, {"<blank>": 0.9}, *_spelled("at")]
    log_probs = _emissions(frames)
    assert _decoder(tmp_path, {"cat": 0.9, "bat": 0.1}, lm_weight=1.0)(log_probs) == "cat"
    assert _decoder(tmp_path, {"cat": 0.1, "bat": 0.9}, lm_weight=1.0)(log_probs) == "bat"


def test_clear_speech_of_lexicon_words_decodes_as_greedy_does(tmp_path):
    log_probs = _emissions(_spelled("the dog sat"))
    words = {"the": 5.0, "dog": 1.0, "sat": 1.0, "do": 2.0, "go": 1.0}
    assert _decoder(tmp_path, words, lm_weight=0.5)(log_probs) == "the dog sat"
    assert _decoder(tmp_path, words, lm_weight=0.5)(log_probs[:0]) == ""


def test_the_unigram_model_is_a_distribution_over_its_words(tmp_path):
    from tts_jax.models.asr.decoding import arpa_words, write_unigram_arpa

    words = {"alpha": 3.0, "beta": 1.0, "don't": 0.5}
    write_unigram_arpa(words, tmp_path / "lm.arpa", end_probability=0.1)
    assert arpa_words(tmp_path / "lm.arpa") == list(words)
    mass = 0.0
    for line in (
        (tmp_path / "lm.arpa").read_text().split("\\1-grams:")[1].split("\\2")[0].split("\n")
    ):
        if line and line.split("\t")[1] not in ("<s>", "<unk>"):
            mass += 10 ** float(line.split("\t")[0])
    assert mass == pytest.approx(1.0, abs=1e-5)
    lines = (tmp_path / "lm.arpa").read_text().splitlines()
    line = next(x for x in lines if x.endswith("\talpha\t0"))
    assert 10 ** float(line.split("\t")[0]) == pytest.approx(0.9 * 3.0 / 4.5, rel=1e-5)


def test_an_exported_recognizer_transcribes_as_its_workdir_and_takes_a_beam_search(
    corpus_dir, tiny_recognizer, tmp_path
):
    from tts_jax import audio
    from tts_jax.cli import main
    from tts_jax.models.asr import BeamSearch, Recognizer
    from tts_jax.models.asr.decoding import write_unigram_arpa

    out = tmp_path / "exported"
    export = ["export", "--workdir", str(tiny_recognizer), "--out", str(out)]
    assert main([*export, "--dtype", "float32"]) == 0
    wavs = [audio.load_wav(w, 22050) for w in sorted((corpus_dir / "wavs").glob("*.wav"))[:2]]
    alone, shipped = Recognizer(tiny_recognizer), Recognizer(out)
    assert shipped.beam is None and shipped.step == alone.step
    assert shipped.transcribe(wavs) == alone.transcribe(wavs)

    words = {"the": 3.0, "a": 2.0, "cat": 1.0}
    write_unigram_arpa(words, out / "words.arpa")
    BeamSearch("words.arpa", lm_weight=1.0).write(out / "decoding.json")
    beam = Recognizer(out)
    assert beam.beam is not None
    for text in beam.transcribe(wavs):
        assert set(text.split()) <= set(words)
    (out / "decoding.json").write_text('{"lm": "words.arpa", "beam": 3}')
    with pytest.raises(UserError, match="expected the fields"):
        Recognizer(out)
