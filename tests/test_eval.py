import json

import librosa
import numpy as np
import pytest

from tests.conftest import REPO
from tts_jax import audio, espeak
from tts_jax.eval import attention
from tts_jax.eval.evaluate import evaluate_pairs
from tts_jax.eval.metrics import (
    MetricError,
    log_mel_l1,
    mcd_and_f0,
    mr_stft,
    pesq_wb,
    stoi,
    summarize,
)


@pytest.fixture(scope="module")
def utterances():
    a = espeak.synthesize("The quick brown fox jumps over the lazy dog.")
    b = espeak.synthesize("Seven silver kettles were polished on Tuesday morning.")
    return a, b


def noisy(x, std, seed=0):
    return x + np.random.default_rng(seed).normal(0, std, len(x)).astype(np.float32)


def test_mcd_is_zero_on_itself_and_grows_with_noise(utterances):
    x, _ = utterances
    assert mcd_and_f0(x, x)["mcd_db"] == 0.0
    values = [mcd_and_f0(x, noisy(x, s))["mcd_db"] for s in (0.001, 0.01, 0.05)]
    assert 0 < values[0] < values[1] < values[2]


def test_dtw_handles_a_time_stretched_copy(utterances):
    x, other = utterances
    stretched = librosa.effects.time_stretch(x, rate=1.1)  # 10 % faster, same words
    assert abs(len(stretched) - len(x) / 1.1) < 512
    same_words = mcd_and_f0(x, stretched)
    different = mcd_and_f0(x, other)
    assert same_words["mcd_db"] < 0.7 * different["mcd_db"]
    assert same_words["f0_rmse_hz"] < different["f0_rmse_hz"]


def test_pesq_and_stoi_are_maximal_on_identical_signals(utterances):
    x, _ = utterances
    assert pesq_wb(x, x) == pytest.approx(4.64, abs=0.01)
    assert stoi(x, x) == pytest.approx(1.0, abs=1e-6)
    y = noisy(x, 0.02)
    assert pesq_wb(x, y) < 3.5
    assert stoi(x, y) < 0.99


def test_spectral_distances(utterances):
    x, other = utterances
    assert log_mel_l1(x, x) == 0.0 and mr_stft(x, x)["total"] == 0.0
    assert mr_stft(x, noisy(x, 0.01))["total"] < mr_stft(x, other)["total"]


def test_bad_inputs_are_metric_errors(utterances):
    x, _ = utterances
    with pytest.raises(MetricError, match="too short"):
        pesq_wb(x, x[:1000])
    with pytest.raises(MetricError, match="silent"):
        stoi(x, np.zeros_like(x))
    with pytest.raises(MetricError, match="NaN"):
        mcd_and_f0(x, np.full_like(x, np.nan))


def test_summary_interval():
    s = summarize([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert s["n"] == 4 and s["mean"] == 2.5
    # t(0.975, 3) = 3.182; sd = 1.291; half width = 3.182 * 1.291 / 2
    assert s["ci95"] == pytest.approx(3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2, rel=1e-5)


def test_attention_diagnostics():
    n_dec, n_enc = 40, 10
    diag = np.zeros((n_dec, n_enc))
    diag[np.arange(n_dec), np.arange(n_dec) * n_enc // n_dec] = 1.0
    uniform = np.full((n_dec, n_enc), 1.0 / n_enc)
    assert attention.focus(diag) == 1.0 and attention.focus(uniform) == pytest.approx(0.1)
    assert attention.monotonicity(diag) == 1.0
    assert attention.coverage(diag) == 1.0
    backwards = np.eye(n_enc)[::-1]  # reads the text from the end
    assert attention.monotonicity(backwards) == 0.0
    assert attention.monotonicity(diag[::-1]) == pytest.approx(30 / 39)  # 9 jumps back in 39
    skipping = np.zeros((n_dec, n_enc))
    skipping[:, 0] = 1.0
    assert attention.coverage(skipping) == pytest.approx(0.1)
    d = attention.diagnostics(diag, decoded_steps=40, max_steps=40)
    assert d["stopped_by_token"] == 0.0
    assert attention.stop_reason(12, 40) == "stop_token"


def test_evaluate_pairs_writes_tables_and_records_failures(tmp_path, utterances):
    x, other = utterances
    pairs = [("same", x, x), ("noisy", x, noisy(x, 0.01)), ("broken", x, np.zeros(100, np.float32))]
    result = evaluate_pairs(pairs, 22050, tmp_path, "test system")
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["failed"] == 1 and "too short" in saved["rows"][2]["error"]
    assert result["summary"]["mcd_db"]["n"] == 2
    table = (tmp_path / "eval.md").read_text()
    assert "| test system | 2 |" in table


def test_griffin_lim_floor_through_the_cli(tmp_path, corpus_dir):
    from tts_jax.cli import main

    out = tmp_path / "gl"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(corpus_dir),
                "--reference",
                "griffin-lim",
                "--split",
                "train",
                "--limit",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads((out / "eval.json").read_text())
    assert result["utterances"] == 2 and result["failed"] == 0
    # Copy-synthesis from the true mel is close, but not transparent.
    assert 3.0 < result["summary"]["pesq_wb"]["mean"] < 4.64
    assert result["summary"]["stoi"]["mean"] > 0.85


@pytest.mark.slow
@pytest.mark.parametrize("model", ["hifigan", "clarinet", "conv_tasnet", "vqvae"])
def test_model_benchmarks_smoke_run(model, tmp_path, monkeypatch):
    from tts_jax.cli import main

    monkeypatch.chdir(REPO)  # the benchmarks read experiments/*.py
    out = tmp_path / "bench.jsonl"
    assert main(["bench", model, "--quick", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["benchmark"] == model and r["params"] > 0 for r in rows)
    assert all(r["median_s"] > 0 and r["quick"] for r in rows)


@pytest.mark.slow
def test_bench_writes_json_lines_with_parameter_counts(tmp_path, capsys):
    from tts_jax.cli import main

    out = tmp_path / "bench.jsonl"
    for model in ("frame_lm", "griffin_lim", "gemm"):
        assert main(["bench", model, "--quick", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["benchmark"] for r in rows] == ["frame_lm", "griffin_lim", "gemm"]
    assert rows[2]["gflops_xla"] > 0 and rows[2]["gflops_numpy_blas"] > 0
    for r in rows:
        for key in (
            "compile_s",
            "median_s",
            "min_s",
            "device",
            "jax_version",
            "peak_host_memory_mb",
            "params",
        ):
            assert key in r
        assert r["median_s"] > 0
    assert rows[0]["params"] == 7808  # frame_lm tiny: conv 80*16*5+16, BN 2*16, dense 16*80+80
    assert main(["bench", "nope", "--out", str(out)]) == 2
    import subprocess
    import sys

    table = subprocess.run(
        [sys.executable, str(REPO / "tools" / "report.py"), "bench", str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "frame_lm" not in table and "griffin_lim" not in table  # quick runs are not reported
    assert table.startswith("| benchmark |")


def test_mel_to_audio_level_is_kept(utterances):
    x, _ = utterances
    wav = np.asarray(audio.mel_to_audio(audio.log_mel_np(x), n_iter=20, power=1.5))
    assert 0.3 < np.max(np.abs(wav)) / np.max(np.abs(x)) < 1.5
