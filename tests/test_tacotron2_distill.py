"""Text-to-mel distillation's pieces: training batches read a teacher's mels with their own
lengths, a student trained on them fits them (not the recordings), the student config is
:shipped at half width, and a student must read the teacher's text and mels."""

import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax.config import load_config
from tts_jax.data.pipeline import TextMelBatches
from tts_jax.errors import UserError
from tts_jax.models.tacotron2.distill import _check_compatible
from tts_jax.models.tacotron2.train import param_count
from tts_jax.text import TextConfig

T2 = str(REPO / "experiments" / "tacotron2.py")


def test_batches_read_teacher_mels_with_their_own_lengths(corpus, tmp_path):
    split = corpus.split("train")
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 40, len(split))  # free-running outputs: any length
    for utt, n in zip(split.ids, lengths, strict=True):
        np.save(tmp_path / f"{utt}.npy", rng.normal(-5, 1, (n, 80)).astype(np.float32))
    batches = TextMelBatches(split, 4, TextConfig(), frames_multiple=3, mel_dir=tmp_path)
    seen = 0
    for batch in batches.epoch_batches():
        for j in np.flatnonzero(batch["valid"]):
            row = int(batch["index"][j])
            want = np.load(tmp_path / f"{split.ids[row]}.npy")
            n = int(batch["mel_lengths"][j])
            assert n == len(want) != split.num_frames[row]
            np.testing.assert_array_equal(batch["mels"][j, :n], want)
            assert batch["stop_targets"][j, n - 2] == 0 and batch["stop_targets"][j, n - 1] == 1
            assert batch["mels"].shape[1] % 3 == 0 and batch["mels"].shape[1] >= n
            seen += 1
    assert seen == 4 * len(batches) > 0

    (tmp_path / f"{split.ids[3]}.npy").unlink()
    with pytest.raises(UserError, match=f"lacks 1 of the {len(split)} mels"):
        TextMelBatches(split, 4, TextConfig(), mel_dir=tmp_path)


@pytest.mark.slow
def test_a_student_fits_the_teachers_mels_not_the_recordings(corpus, tmp_path):
    """A tiny overfit through the distillation data path: trained on "teacher" mels (the
    recordings' mels shifted by +2, so that the two targets differ everywhere), the loss
    falls, and the model ends closer to the teacher's mels than to the recordings'."""
    import jax

    from tts_jax.models import tacotron2 as T

    split = corpus.split("train")
    rows = range(4)
    for i in rows:
        np.save(tmp_path / f"{split.ids[i]}.npy", split.example(i)["mel"] + 2.0)
    for i in range(4, len(split)):  # the rest are not trained on: any mel will do
        np.save(tmp_path / f"{split.ids[i]}.npy", np.zeros((9, 80), np.float32))
    cfg = load_config(
        f"{T2}:tiny", ["--config.optim.learning_rate=1e-2", "--config.model.prenet_dropout=0"]
    )
    text = TextConfig.from_config(cfg.data.text)
    kw = dict(frames_multiple=cfg.model.reduction, shuffle=False, prefetch=0)
    teacher = TextMelBatches(split, 4, text, mel_dir=tmp_path, **kw).batch_at(0, 0)
    recorded = TextMelBatches(split, 4, text, **kw).batch_at(0, 0)
    assert sorted(teacher["index"]) == sorted(recorded["index"]) == list(rows)
    state = T.FAMILY.init_state(cfg, jax.random.PRNGKey(0), teacher)
    step = jax.jit(T.FAMILY.train_step(cfg))
    evaluate = jax.jit(T.FAMILY.eval_step(cfg))
    first = float(evaluate(state, teacher)["after"])
    for _ in range(60):
        state, _ = step(state, teacher)
    to_teacher = float(evaluate(state, teacher)["after"])
    to_recordings = float(evaluate(state, recorded)["after"])
    assert to_teacher < first / 2, (first, to_teacher)
    # The targets differ by 2 everywhere (a squared error of 4 between them).
    assert to_recordings - to_teacher > 1.0, (to_teacher, to_recordings)


def test_student_is_shipped_at_half_width():
    shipped, student = load_config(f"{T2}:shipped"), load_config(f"{T2}:student")
    widths = {
        "embedding_dim", "encoder_conv_channels", "encoder_lstm_units", "attention_dim",
        "location_filters", "prenet_units", "decoder_lstm_units", "postnet_channels",
    }  # fmt: skip
    for key, value in shipped.model.items():
        if key in widths:
            assert np.all(np.asarray(student.model[key]) * 2 == np.asarray(value)), key
        else:
            assert student.model[key] == value, key
    assert student.data.to_dict() == shipped.data.to_dict()
    teacher, small = param_count(shipped)["model"], param_count(student)["model"]
    assert small < teacher / 3  # 1.91 M -> about 0.5 M


def test_student_must_read_the_teachers_text_and_mels():
    teacher = load_config(f"{T2}:shipped")
    _check_compatible(teacher, load_config(f"{T2}:student"))
    for override, what in (
        ("--config.data.text.frontend=chars", "data.text"),
        ("--config.data.framing=jik876", "mel front end"),
        ("--config.data.path=elsewhere", "distil on the teacher's corpus"),
    ):
        with pytest.raises(UserError, match=what):
            _check_compatible(teacher, load_config(f"{T2}:student", [override]))
