"""Bad input, verb by verb: each case exits with status 2 and an ``error:`` line that names the
input and what was expected, never a traceback. New verbs add their rows to CASES."""

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO
from tts_jax.cli import main
from tts_jax.errors import UserError
from tts_jax.text import text_to_ids

FRAME_LM = str(REPO / "experiments" / "frame_lm.py") + ":tiny"


def _npy(tmp, name, array, **kw):
    path = tmp / name
    np.save(path, array, **kw)
    return str(path)


def _npz(tmp):
    path = tmp / "mel.npz"
    np.savez(path, a=np.zeros((4, 80)), b=np.zeros((4, 80)))
    return str(path)


def _wav(tmp, samples=2205):
    path = tmp / "x.wav"
    sf.write(str(path), np.zeros(samples, np.float32), 22050)
    return str(path)


def _bad_config(tmp):
    path = tmp / "broken.py"
    path.write_text("def get_config(variant='x'):\n    return (\n")
    return str(path)


def _corpus(tmp, metadata: bytes, samples=2205):
    """Utterance ``a`` (``samples`` long) first in ``metadata``, then 19 good ones."""
    root = tmp / "corpus"
    (root / "wavs").mkdir(parents=True)
    more = b"".join(b"u%d|hello|hello\n" % i for i in range(19))
    (root / "metadata.csv").write_bytes(metadata + more)
    sf.write(str(root / "wavs" / "a.wav"), np.zeros(samples, np.float32), 22050)
    for i in range(19):
        sf.write(str(root / "wavs" / f"u{i}.wav"), np.full(2205, 0.1, np.float32), 22050)
    return str(root)


def _train(tmp, *overrides):
    """``train`` of the tiny frame_lm config in ``tmp`` with ``overrides``."""
    return ["train", "--config", FRAME_LM, "--workdir", str(tmp), *overrides]


def _folders_of_wavs(tmp, synthesized: bytes):
    """``ref/u.wav`` a real wav and ``syn/u.wav`` holding ``synthesized``'s bytes."""
    for d in ("ref", "syn"):
        (tmp / d).mkdir()
    sf.write(str(tmp / "ref" / "u.wav"), np.zeros(2205, np.float32), 22050)
    (tmp / "syn" / "u.wav").write_bytes(synthesized)
    args = ["evaluate", "--reference-dir", str(tmp / "ref"), "--synthesized-dir"]
    return [*args, str(tmp / "syn"), "--out", str(tmp / "ev")]


def _file(tmp):
    path = tmp / "afile"
    path.write_text("x")
    return str(path)


# (verb arguments built from a temporary folder, what the error must say)
CASES = {
    "corpus --num-utterances 0": (
        lambda t: ["corpus", "--out", str(t / "c"), "--num-utterances", "0"],
        "expected a whole number >= 1, got 0",
    ),
    "corpus --workers 0": (
        lambda t: ["corpus", "--out", str(t / "c"), "--workers", "0"],
        "argument --workers: expected a whole number >= 1",
    ),
    "corpus --out a file": (
        lambda t: ["corpus", "--out", _file(t), "--num-utterances", "2"],
        "is an existing file; expected a folder",
    ),
    "prepare metadata in latin-1": (
        lambda t: ["prepare", "--data", _corpus(t, "a|caf\xe9|caf\xe9\n".encode("latin-1"))],
        "metadata.csv:1: not UTF-8 text",
    ),
    "prepare a wav without samples": (
        lambda t: ["prepare", "--data", _corpus(t, b"a|hello|hello\n", samples=0)],
        "a.wav holds no samples",
    ),
    "train config with a syntax error": (
        lambda t: ["train", "--config", _bad_config(t), "--workdir", str(t / "w")],
        "broken.py line 2 cannot be run: SyntaxError",
    ),
    "train.batch_size 0": (
        lambda t: _train(t / "w", "--config.train.batch_size=0"),
        "train.batch_size must be >= 1, got 0",
    ),
    "train --workdir a file": (
        lambda t: _train(_file(t)),
        "is a file; give a directory",
    ),
    "gta --batch-size 0": (
        lambda t: ["gta", "--workdir", str(t), "--out", str(t / "g"), "--batch-size", "0"],
        "argument --batch-size: expected a whole number >= 1",
    ),
    "vocode --mel .npz": (
        lambda t: ["vocode", "--mel", _npz(t), "--out", str(t / "x.wav")],
        "holds several arrays (.npz)",
    ),
    "vocode --mel object array": (
        lambda t: [
            "vocode",
            "--mel",
            _npy(t, "o.npy", np.array([None, 1], dtype=object), allow_pickle=True),
            "--out",
            str(t / "x.wav"),
        ],
        "is not a .npy array file",
    ),
    "vocode --mel a wav": (
        lambda t: ["vocode", "--mel", _wav(t), "--out", str(t / "x.wav")],
        "is not a .npy array file",
    ),
    "vocode --mel with NaN": (
        lambda t: [
            "vocode",
            "--mel",
            _npy(t, "n.npy", np.full((8, 80), np.nan, np.float32)),
            "--out",
            str(t / "x.wav"),
        ],
        "NaN or infinite values",
    ),
    "vocode --mel of integers": (
        lambda t: ["vocode", "--mel", _npy(t, "i.npy", np.zeros((8, 80), np.int64)), "--out", "x"],
        "holds int64 values; expected a float log-mel",
    ),
    "vocode --mel of 0 frames": (
        lambda t: [
            "vocode",
            "--mel",
            _npy(t, "z.npy", np.zeros((0, 80), np.float32)),
            "--out",
            "o",
        ],
        "holds shape (0, 80); expected [frames, 80] with at least one frame",
    ),
    "evaluate a synthesized wav of random bytes": (
        lambda t: _folders_of_wavs(t, np.random.default_rng(0).bytes(3000)),
        "cannot read audio file",
    ),
    "evaluate a synthesized wav of zero bytes": (
        lambda t: _folders_of_wavs(t, b""),
        "cannot read audio file",
    ),
    "train --workdir with an unknown scheme": (
        lambda t: _train("ftp://host/run"),
        "unknown storage scheme 'ftp'",
    ),
    "train --workdir gs:// without a bucket": (
        lambda t: _train("gs:///run"),
        "names no bucket",
    ),
    "corpus --out in a bucket": (
        lambda t: ["corpus", "--out", "gs://b/c", "--num-utterances", "2"],
        "must be a local path",
    ),
    "vocode --iterations -1": (
        lambda t: ["vocode", "--mel", "m.npy", "--out", "x.wav", "--iterations", "-1"],
        "argument --iterations: expected a whole number >= 1, got -1",
    ),
    "vocode --out a folder": (
        lambda t: ["vocode", "--mel", "m.npy", "--out", str(t)],
        "is a folder; expected a file name",
    ),
    "evaluate --limit 0": (
        lambda t: ["evaluate", "--data", str(t), "--reference", "griffin-lim", "--limit", "0"],
        "argument --limit: expected a whole number >= 1, got 0",
    ),
    "evaluate --out a file": (
        lambda t: ["evaluate", "--data", str(t), "--reference", "griffin-lim", "--out", _file(t)],
        "is an existing file; expected a folder",
    ),
    "mixtures --sample-rate 0": (
        lambda t: ["mixtures", "--corpus", str(t), "--out", str(t / "m"), "--sample-rate", "0"],
        "argument --sample-rate: expected a whole number >= 1, got 0",
    ),
    "train override without '='": (
        lambda t: _train(t, "--config.train.num_steps"),
        "override '--config.train.num_steps' needs a value after '='",
    ),
    "train override of the wrong type": (
        lambda t: _train(t, "--config.train.num_steps=x"),
        "--config.train.num_steps expects type int (it is 12), got 'x'",
    ),
    "train override of an unknown key": (
        lambda t: _train(t, "--config.train.num_stepz=3"),
        'Did you mean "num_steps"',
    ),
    "vocode with an override": (
        lambda t: ["vocode", "--mel", "m.npy", "--out", "x.wav", "--config.data.n_mels=40"],
        "vocode takes no --config.* overrides",
    ),
    "sweep --set without a prefix": (
        lambda t: [
            "sweep",
            str(REPO / "experiments" / "clarinet_kl.py:tiny"),
            "--workdir",
            str(t),
            "--set",
            "nonsense",
        ],
        "--set 'nonsense': expected PREFIX.a.b=VALUE",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_clear_error(case, tmp_path, capsys):
    build, message = CASES[case]
    try:
        code = main(build(tmp_path))
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


@pytest.fixture(scope="module")
def frame_lm_run(tmp_path_factory, corpus_dir):
    """A 4-step tiny frame_lm workdir (trained once for the path-form cases below)."""
    run = tmp_path_factory.mktemp("paths") / "runs" / "lm"
    argv = _train(run, f"--config.data.path={corpus_dir}", "--config.train.num_steps=4")
    assert main(argv) == 0
    return run


@pytest.mark.parametrize("form", ["relative", "./relative", "../relative", "symlink"])
@pytest.mark.slow
def test_a_workdir_in_any_path_form_keeps_the_refusals(form, frame_lm_run, corpus_dir, capsys):
    """The workdir as users type it, from a directory other than the repository: a changed
    model size is refused by name with the workdir untouched, exactly as with an absolute
    path, and the run then resumes through the same form."""
    import os

    from tests.test_reliability import snapshot

    root = frame_lm_run.parent
    (root / "sub").mkdir(exist_ok=True)
    link = root / "sub" / "link"
    if not link.exists():
        link.symlink_to(frame_lm_run)
    cwd, typed = {
        "relative": (root, "lm"),
        "./relative": (root, "./lm"),
        "../relative": (root / "sub", "../lm"),
        "symlink": (root / "sub", "link"),
    }[form]
    before = snapshot(frame_lm_run)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        data = f"--config.data.path={corpus_dir}"
        code = main(_train(typed, data, "--config.train.num_steps=6", "--config.model.channels=24"))
        err = capsys.readouterr().err
        assert code == 2 and "model fields changed: channels" in err and "Traceback" not in err
        assert snapshot(frame_lm_run) == before
        assert main(_train(typed, data, "--config.train.num_steps=4")) == 0  # already at 4
        assert "at step 4" in capsys.readouterr().out
    finally:
        os.chdir(old)
    assert not (frame_lm_run / "damaged_checkpoints").exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("I owe you " + "9" * 40 + " dollars.", "has too many digits to read out (40)"),
        ("Well done \U0001f600", "'\U0001f600'"),
        ("Héllo → naïve", "'→'"),
    ],
)
def test_text_the_front_end_cannot_read_is_named(text, message):
    """The error names what the user typed (not anyascii's ':grinning:' or '->')."""
    with pytest.raises(UserError) as e:
        text_to_ids(text)
    assert message in str(e.value)


def test_prepare_rebuilds_a_dataset_left_stale_by_a_new_corpus(tmp_path):
    """metadata.csv rewritten with fewer utterances (corpus --force): prepare notices that its
    dataset holds other ids and builds it again, so training never reads stale data."""
    from tts_jax.data.ljspeech import open_corpus

    root = _corpus(tmp_path, b"a|hello there|hello there\n")
    before = open_corpus(root)
    assert sum(len(s) for s in before.splits.values()) == 20
    meta = tmp_path / "corpus" / "metadata.csv"
    meta.write_text("".join(meta.read_text().splitlines(keepends=True)[:15]))
    after = open_corpus(root)
    ids = sorted(i for s in after.splits.values() for i in s.ids)
    assert ids == sorted(line.split("|")[0] for line in meta.read_text().splitlines())


def test_evaluate_resamples_a_folder_at_another_rate_and_says_so(tmp_path, capsys):
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    (tmp_path / "ref").mkdir()
    (tmp_path / "syn").mkdir()
    sf.write(str(tmp_path / "ref" / "u.wav"), wav, 22050)
    sf.write(str(tmp_path / "syn" / "u.wav"), wav[::2][:8000], 16000)
    args = ["evaluate", "--reference-dir", str(tmp_path / "ref")]
    args += ["--synthesized-dir", str(tmp_path / "syn"), "--out", str(tmp_path / "ev")]
    assert main(args) == 0
    assert "u.wav is at 16000 Hz: resampled to 22050 Hz" in capsys.readouterr().out
