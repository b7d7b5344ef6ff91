import numpy as np
import pytest
import soundfile as sf

from tts_jax import audio
from tts_jax.data.corpus import build_corpus
from tts_jax.data.ljspeech import assign_splits, open_corpus, read_metadata
from tts_jax.data.pipeline import AudioSegments, TextMelBatches
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
