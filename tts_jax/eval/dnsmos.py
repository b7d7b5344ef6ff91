"""DNSMOS: Microsoft's reference-free estimates of a listener's opinion score.

Two networks trained on crowd-sourced ratings, run through ONNX by the ``speechmos`` package
(its wheel carries the models):

* **P.835** (Reddy et al. 2022, "DNSMOS P.835"): three scores on ITU-T P.835's scales, each
  1-5 — ``sig`` (the speech signal itself: distortion), ``bak`` (background noise) and
  ``ovrl`` (overall quality);
* **P.808** (Reddy et al. 2021, "DNSMOS"): one overall score on ITU-T P.808's
  absolute-category-rating scale, 1-5.

The models take 16 kHz audio in windows of 9.01 s, one a second; a shorter clip is repeated
until it fills a window (the package's rule, kept so scores match published ones), and a
clip's score is the mean over its windows. DNSMOS was trained on noisy and noise-suppressed
human speech, not on synthetic voices: read it as a comparison between systems on the same
sentences, not as an absolute MOS (the calibration table in ``docs/judges.md`` shows its
range on espeak, Griffin-Lim and degraded audio).

An optional dependency: ``pip install 'tts-jax[dnsmos]'`` (speechmos, onnxruntime).
"""

from __future__ import annotations

import importlib

import numpy as np

from tts_jax import audio
from tts_jax.errors import UserError

SAMPLE_RATE = 16_000  # the rate both networks were trained at
MIN_SAMPLES = 320  # one 20 ms frame of the P.808 network's mel front end, at 16 kHz

# Column name -> (speechmos's key, table heading).
SCORES = {
    "dnsmos_ovrl": ("ovrl_mos", "DNSMOS OVRL ↑"),
    "dnsmos_sig": ("sig_mos", "DNSMOS SIG ↑"),
    "dnsmos_bak": ("bak_mos", "DNSMOS BAK ↑"),
    "dnsmos_p808": ("p808_mos", "DNSMOS P.808 ↑"),
}


def _speechmos():
    try:
        return importlib.import_module("speechmos.dnsmos")
    except ImportError as e:
        raise UserError(
            "DNSMOS needs the optional 'dnsmos' extra (speechmos and onnxruntime): "
            f"pip install 'tts-jax[dnsmos]' ({e})"
        ) from None


def check_available() -> None:
    """Raises :class:`UserError` now, before any synthesis, when the extra is missing."""
    _speechmos()


def dnsmos(wav: np.ndarray, sample_rate: int) -> dict[str, float]:
    """DNSMOS P.835 (``dnsmos_sig``, ``dnsmos_bak``, ``dnsmos_ovrl``) and P.808
    (``dnsmos_p808``) of a mono waveform ``[T]`` at ``sample_rate``.

    The waveform is resampled to 16 kHz and clipped to [-1, 1], as it would be written to a
    16-bit file and heard."""
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise UserError(f"DNSMOS takes a mono waveform [samples]; got shape {wav.shape}")
    x = np.clip(audio.resample(wav, sample_rate, SAMPLE_RATE), -1.0, 1.0)
    if len(x) < MIN_SAMPLES:
        raise UserError(
            f"DNSMOS needs at least {MIN_SAMPLES / SAMPLE_RATE * 1000:.0f} ms of audio; "
            f"got {len(wav)} samples at {sample_rate} Hz"
        )
    if not np.all(np.isfinite(x)):
        raise UserError("DNSMOS of a waveform with non-finite samples")
    out = _speechmos().run(x.astype(np.float32), SAMPLE_RATE)
    return {name: float(out[key]) for name, (key, _) in SCORES.items()}
