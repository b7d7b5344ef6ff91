import numpy as np
import pytest
import soundfile as sf

from tts_jax import audio
from tts_jax.data.corpus import build_corpus
from tts_jax.data.ljspeech import assign_splits, corpus_splits, open_corpus, read_metadata
from tts_jax.data.pipeline import AudioSegments, TextMelBatches
from tts_jax.data.sentences import english_words, generate_sentences
from tts_jax.errors import UserError
from tts_jax.text import text_to_ids
from tts_jax.text.cleaners import english_cleaners


def test_corpus_is_ljspeech_format(corpus_dir):
    rows = read_metadata(corpus_dir)
    assert len(rows) == 20
    assert len({r.id for r in rows}) == 20
    for r in rows:
        assert r.normalized_text == english_cleaners(r.text)
        info = sf.info(str(corpus_dir / "wavs" / f"{r.id}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert info.frames > 22050 * 0.5  # at least half a second of speech


def test_corpus_is_deterministic(tmp_path, corpus_dir):
    build_corpus(tmp_path / "again", 3, seed=7, workers=1)
    first = (corpus_dir / "metadata.csv").read_text().splitlines()[:3]
    assert (tmp_path / "again" / "metadata.csv").read_text().splitlines() == first
    uid = first[0].split("|")[0]
    a, _ = sf.read(str(corpus_dir / "wavs" / f"{uid}.wav"))
    b, _ = sf.read(str(tmp_path / "again" / "wavs" / f"{uid}.wav"))
    np.testing.assert_array_equal(a, b)


def test_unknown_voice_is_rejected(tmp_path):
    with pytest.raises(UserError, match="unknown espeak voice"):
        build_corpus(tmp_path, 2, voices=("en-us+nobody",))


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(UserError, match="metadata.csv is missing"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("A1|hi|hi\nA2|yo|yo\n")
    with pytest.raises(UserError, match="missing from"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("A1\n")
    with pytest.raises(UserError, match="expected 'id|text|normalized_text'"):
        read_metadata(tmp_path)


def test_extra_words_widen_the_sentences_and_nothing_else():
    plain = generate_sentences(300, seed=5)
    assert generate_sentences(300, seed=5, extra_words=()) == plain  # the default corpus holds
    extra = ["quendle", "blorptastic", "snarfing"]
    wide = generate_sentences(300, seed=5, extra_words=extra)
    assert wide == generate_sentences(300, seed=5, extra_words=extra)
    tokens = [w.strip('.,!?;:"') for s in wide for w in s.lower().split()]
    share = sum(t.startswith(tuple(extra)) for t in tokens) / len(tokens)
    assert 0.05 < share < 0.4  # half of the open-class slots, a minority of all words
    held_out = set(wide[:10])
    again = generate_sentences(300, seed=5, extra_words=extra, exclude=held_out)
    assert not held_out & set(again) and len(again) == 300
    words = english_words(3000)
    assert {"the", "people", "government"} <= set(words)
    assert all(w.isalpha() and w.islower() and len(w) >= 3 for w in words)


def test_extended_corpus_keeps_the_base_splits(tmp_path, corpus_dir):
    base = read_metadata(corpus_dir)
    out = tmp_path / "wide"
    build_corpus(out, 6, seed=8, workers=1, words=3000, extend=corpus_dir)
    rows = read_metadata(out)
    assert rows[: len(base)] == base and len(rows) == len(base) + 6
    assert not {r.text for r in rows[len(base) :]} & {r.text for r in base}
    pinned = corpus_splits(out, [r.id for r in rows])
    assert {r.id: pinned[r.id] for r in base} == assign_splits([r.id for r in base])
    wide = open_corpus(out)
    for name in ("validation", "test"):
        held_out = {i for i, s in assign_splits([r.id for r in base]).items() if s == name}
        assert held_out <= set(wide.split(name).ids)
    # A hand edit of splits.csv is seen: the TFDS dataset is rebuilt with the new assignment.
    moved = next(i for i in wide.split("train").ids)
    lines = (out / "splits.csv").read_text().splitlines()
    (out / "splits.csv").write_text(
        "".join(
            (f"{moved}|test" if line.startswith(moved + "|") else line) + "\n" for line in lines
        )
    )
    assert moved in open_corpus(out).split("test").ids


def test_bad_splits_file_is_named(tmp_path, corpus_dir):
    ids = [r.id for r in read_metadata(corpus_dir)]
    (tmp_path / "splits.csv").write_text(f"{ids[0]}|holdout\n")
    with pytest.raises(UserError, match="line 1: expected 'id|split'"):
        corpus_splits(tmp_path, ids)
    (tmp_path / "splits.csv").write_text(f"{ids[0]}|test\n")
    with pytest.raises(UserError, match="gives no split for 19 utterance"):
        corpus_splits(tmp_path, ids)


def test_split_assignment():
    ids = [f"U{i}" for i in range(1000)]
    a = assign_splits(ids)
    assert a == assign_splits(list(reversed(ids)))  # order of the metadata does not matter
    counts = {s: list(a.values()).count(s) for s in ("train", "validation", "test")}
    assert counts == {"train": 950, "validation": 25, "test": 25}
    small = assign_splits(["a", "b", "c", "d"])
    assert sorted(small.values()) == ["test", "train", "train", "validation"]


def test_tfds_examples_match_the_wavs(corpus, corpus_dir):
    all_ids = set()
    for split in corpus.splits.values():
        assert len(split) > 0
        all_ids |= set(split.ids)
        for i in range(len(split)):
            ex = split.example(i)
            wav = audio.load_wav(corpus_dir / "wavs" / f"{split.ids[i]}.wav", 22050)
            np.testing.assert_allclose(ex["audio"], wav, atol=2e-4)
            assert ex["mel"].shape == (len(ex["audio"]) // 256, 80)
            assert split.num_frames[i] == len(ex["mel"])
            np.testing.assert_allclose(ex["mel"], audio.log_mel_np(ex["audio"]), atol=1e-5)
    assert all_ids == {r.id for r in read_metadata(corpus_dir)}


def test_text_mel_batches_masks_and_stop_targets(corpus):
    split = corpus.split("train")
    batches = TextMelBatches(split, 4, frames_multiple=2, num_buckets=3, prefetch=0)
    seen = 0
    for b in batches.epoch_batches(0):
        n, t = b["mels"].shape[:2]
        assert t % 2 == 0 and b["ids"].shape[0] == n == 4
        for j in range(n):
            row, length, ids_len = b["index"][j], b["mel_lengths"][j], b["id_lengths"][j]
            ids = text_to_ids(split.texts[row])
            np.testing.assert_array_equal(b["ids"][j, :ids_len], ids)
            assert np.all(b["ids"][j, ids_len:] == 0)
            assert length == split.num_frames[row]
            np.testing.assert_array_equal(b["mel_mask"][j], np.arange(t) < length)
            np.testing.assert_array_equal(b["stop_targets"][j], np.arange(t) >= length - 1)
            np.testing.assert_array_equal(b["mels"][j, :length], split.example(row)["mel"])
            assert np.all(b["mels"][j, length:] == np.float32(np.log(1e-5)))
        seen += n
    assert seen == (len(split) // 4) * 4  # drop_remainder
    assert len(batches.shapes()) <= 3


def test_padded_shapes_are_bounded(corpus):
    split = corpus.split("train")
    batches = TextMelBatches(split, 2, num_buckets=4, prefetch=0)
    shapes = set()
    for epoch in range(5):
        shapes |= {tuple(b["mels"].shape[:2]) for b in batches.epoch_batches(epoch)}
    assert len(shapes) <= 4
    assert {(s[1]) for s in shapes} <= set(batches.frame_buckets)


def test_plans_are_deterministic_and_resumable(corpus):
    split = corpus.split("train")

    def make():
        return TextMelBatches(split, 2, seed=5, prefetch=2)

    a = make()
    full = [next(a)["index"].tolist() for _ in range(14)]  # crosses an epoch boundary
    b = make()
    for _ in range(6):
        next(b)
    state = b.get_state()
    c = make()
    c.set_state(state)
    rest = [next(c)["index"].tolist() for _ in range(8)]
    assert rest == full[6:]
    assert [x for ep in full[:9] for x in ep] != [x for ep in full[9:] for x in ep][:18]
    other_seed = TextMelBatches(split, 2, seed=6, prefetch=0)
    assert [next(other_seed)["index"].tolist() for _ in range(5)] != full[:5]


def test_each_host_reads_its_own_rows(corpus):
    split = corpus.split("train")
    whole = TextMelBatches(split, 4, seed=1, prefetch=0)
    hosts = [
        TextMelBatches(split, 4, seed=1, prefetch=0, process_index=p, process_count=2)
        for p in range(2)
    ]
    for i in range(len(whole)):
        g = whole.batch_at(0, i)
        parts = [h.batch_at(0, i) for h in hosts]
        np.testing.assert_array_equal(np.concatenate([p["index"] for p in parts]), g["index"])
        np.testing.assert_array_equal(np.concatenate([p["mels"] for p in parts]), g["mels"])


def test_eval_batches_keep_every_utterance(corpus):
    split = corpus.split("train")
    batches = TextMelBatches(split, 8, shuffle=False, drop_remainder=False, prefetch=0)
    rows = np.concatenate([b["index"][b["valid"]] for b in batches.epoch_batches()])
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(split)))


def test_audio_segments_align_with_their_mels(corpus):
    split = corpus.split("train")
    seg = AudioSegments(split, 4, 8192, seed=3, prefetch=0)
    b = next(seg)
    assert b["audio"].shape == (4, 8192) and b["mels"].shape == (4, 32, 80)
    for j in range(4):
        fresh = audio.log_mel_np(b["audio"][j])
        # Frames whose window lies inside the segment see the same samples as the stored mel.
        np.testing.assert_allclose(fresh[2:-2], b["mels"][j, 2:-2], atol=1e-4)
    again = AudioSegments(split, 4, 8192, seed=3, prefetch=0)
    np.testing.assert_array_equal(next(again)["audio"], b["audio"])
    with pytest.raises(UserError, match="multiple of hop"):
        AudioSegments(split, 4, 1000)


def test_batch_size_larger_than_split_is_an_error(corpus):
    with pytest.raises(UserError, match="fewer than the batch size"):
        TextMelBatches(corpus.split("validation"), 64)


def test_open_corpus_rejects_missing_tfds_dataset(tmp_path):
    with pytest.raises(UserError, match="cannot open TFDS dataset"):
        open_corpus("tfds:ljspeech", tfds_data_dir=str(tmp_path))
