"""What a listener hears: loudness-matched stimuli and the MUSHRA low-pass anchor.

* Loudness: every stimulus is measured with ITU-R BS.1770-4 integrated loudness (K-weighting,
  400 ms blocks with 75 % overlap, absolute gate at -70 LUFS and relative gate at -10 LU,
  through ``pyloudnorm``) and scaled to ``TARGET_LUFS`` (EBU R 128's -23 LUFS). Where a
  stimulus would then clip, every stimulus of the test is lowered by the same amount, so
  they stay matched. A clip shorter than one 400 ms block is measured with trailing silence,
  which the absolute gate leaves out.
* Anchor: ITU-R BS.1534-3's low-quality anchor, the reference low-pass filtered at 3.5 kHz
  (an 8th-order Butterworth run forward and backward: zero phase, so it stays aligned with
  the reference). The standard fixes the cut-off, not the filter.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pyloudnorm
import scipy.signal
import soundfile as sf

TARGET_LUFS = -23.0
ANCHOR_CUTOFF_HZ = 3500.0
PEAK_LIMIT = 0.99


def lowpass_anchor(reference: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 3.5 kHz low-pass anchor of ``reference`` ``[T]`` (float32 ``[T]``)."""
    sos = scipy.signal.butter(8, ANCHOR_CUTOFF_HZ, btype="low", fs=sample_rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, np.asarray(reference, np.float64)).astype(np.float32)


def integrated_loudness(wav: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness (LUFS) of ``wav`` ``[T]``; -inf for silence."""
    wav = np.asarray(wav, np.float64)
    block = int(math.ceil(0.4 * sample_rate))
    if len(wav) < block:
        wav = np.pad(wav, (0, block - len(wav)))
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(wav))


def loudness_match(wavs: dict, sample_rate: int, target: float = TARGET_LUFS) -> tuple[dict, dict]:
    """``wavs`` (key -> ``[T]``) scaled to a common integrated loudness. Returns the scaled
    float32 waveforms and ``{"target_lufs", "measured": {key: LUFS}}``; a silent waveform
    (no block above the gate) is left as it is."""
    measured = {k: integrated_loudness(w, sample_rate) for k, w in wavs.items()}
    gains = {k: 10 ** ((target - m) / 20) if math.isfinite(m) else 1.0 for k, m in measured.items()}
    peak = max(float(np.max(np.abs(w)) * gains[k]) if len(w) else 0.0 for k, w in wavs.items())
    common = min(1.0, PEAK_LIMIT / peak) if peak > 0 else 1.0
    out = {
        k: (
            np.asarray(w, np.float64) * gains[k] * (common if math.isfinite(measured[k]) else 1)
        ).astype(np.float32)
        for k, w in wavs.items()
    }
    info = {"target_lufs": target + 20 * math.log10(common), "measured": measured}
    return out, info


def wav_bytes(wav: np.ndarray, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file's bytes."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(wav, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
