"""DNSMOS (speechmos's ONNX models) as a reference-free column of ``tts-jax evaluate``."""

import json
import sys

import numpy as np
import pytest

from tts_jax import audio, espeak
from tts_jax.cli import main
from tts_jax.errors import UserError
from tts_jax.eval import dnsmos as dnsmos_lib

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="module")
def speech():
    """espeak's reading of one sentence, at espeak's own rate."""
    return espeak.synthesize(SENTENCE), espeak.sample_rate()


def test_noise_at_zero_db_lowers_the_background_and_overall_scores(speech):
    wav, sr = speech
    clean = dnsmos_lib.dnsmos(wav, sr)
    noise = np.random.default_rng(0).standard_normal(len(wav)).astype(np.float32)
    noise *= np.sqrt(np.mean(wav**2) / np.mean(noise**2))  # 0 dB SNR
    noisy = dnsmos_lib.dnsmos(wav + noise, sr)
    for score in clean.values():
        assert 1.0 <= score <= 5.0
    assert noisy["dnsmos_bak"] < clean["dnsmos_bak"] - 1.0
    assert noisy["dnsmos_ovrl"] < clean["dnsmos_ovrl"] - 0.5


def test_the_rate_it_is_given_at_does_not_change_the_scores(speech):
    wav, sr = speech
    at_16k = audio.resample(wav, sr, dnsmos_lib.SAMPLE_RATE)
    a = dnsmos_lib.dnsmos(wav, sr)
    b = dnsmos_lib.dnsmos(at_16k, dnsmos_lib.SAMPLE_RATE)
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-3)


def test_bad_waveforms_are_refused_by_name():
    with pytest.raises(UserError, match="at least 20 ms"):
        dnsmos_lib.dnsmos(np.zeros(100, np.float32), 16_000)
    with pytest.raises(UserError, match="mono"):
        dnsmos_lib.dnsmos(np.zeros((2, 16_000), np.float32), 16_000)
    with pytest.raises(UserError, match="non-finite"):
        dnsmos_lib.dnsmos(np.full(16_000, np.nan, np.float32), 16_000)


def test_a_missing_extra_is_named_before_any_work(monkeypatch, tmp_path):
    # The package is hidden, not mocked: importing it fails as it does where it is absent.
    monkeypatch.setitem(sys.modules, "speechmos", None)
    monkeypatch.setitem(sys.modules, "speechmos.dnsmos", None)
    with pytest.raises(UserError, match=r"tts-jax\[dnsmos\]"):
        dnsmos_lib.check_available()
    ref, syn = tmp_path / "ref", tmp_path / "syn"
    for d in (ref, syn):
        audio.save_wav(d / "a.wav", np.zeros(22050, np.float32), 22050)
    out = tmp_path / "out"
    args = ["evaluate", "--reference-dir", str(ref), "--synthesized-dir", str(syn)]
    assert main([*args, "--dnsmos", "--out", str(out)]) == 2
    assert not (out / "eval.json").exists()


def test_evaluate_reports_dnsmos_per_clip_and_in_the_table(speech, tmp_path, capsys):
    wav, sr = speech
    wav = audio.resample(wav, sr, 22050)
    ref, syn = tmp_path / "ref", tmp_path / "syn"
    audio.save_wav(ref / "clean.wav", wav, 22050)
    audio.save_wav(syn / "clean.wav", wav, 22050)
    audio.save_wav(ref / "short.wav", wav, 22050)
    audio.save_wav(syn / "short.wav", wav[:200], 22050)  # under DNSMOS's 20 ms at 16 kHz
    out = tmp_path / "out"
    args = ["evaluate", "--reference-dir", str(ref), "--synthesized-dir", str(syn)]
    assert main([*args, "--dnsmos", "--out", str(out)]) == 0
    result = json.loads((out / "eval.json").read_text())
    rows = {r["id"]: r for r in result["rows"]}
    expected = dnsmos_lib.dnsmos(wav, 22050)
    for k, v in expected.items():
        assert rows["clean"][k] == pytest.approx(v, abs=1e-6)
        assert result["summary"][k]["n"] == 1
    assert "at least 20 ms" in rows["short"]["dnsmos_error"]
    assert "DNSMOS OVRL ↑" in (out / "eval.md").read_text()
    assert "DNSMOS P.808 ↑" in capsys.readouterr().out
