"""Alignment diagnostics for attention-based text-to-mel models (Tacotron 2).

All take one utterance's attention weights ``[decoder_steps, encoder_steps]`` trimmed to its
real lengths (rows: decoder steps actually decoded; columns: real input symbols).

* ``focus``: mean over decoder steps of the largest weight, in (0, 1]. A sharp, learned
  alignment is near 1; uniform attention over N symbols gives 1 / N. Used as the
  diagonality score when reporting "steps until alignment".
* ``monotonicity``: fraction of consecutive decoder steps whose argmax does not move back.
* ``coverage``: fraction of input symbols whose total received attention is at least 0.5
  (a symbol read once gets about 1; skipped symbols get about 0).
* ``stop_reason``: "stop_token" when decoding ended before ``max_steps``, else "max_steps".
"""

from __future__ import annotations

import numpy as np


def _check(alignment) -> np.ndarray:
    a = np.asarray(alignment, np.float64)
    if a.ndim != 2 or min(a.shape) == 0:
        raise ValueError(f"alignment must be [decoder_steps, encoder_steps], got {a.shape}")
    return a


def focus(alignment) -> float:
    return float(np.mean(np.max(_check(alignment), axis=1)))


def monotonicity(alignment) -> float:
    a = _check(alignment)
    if len(a) < 2:
        return 1.0
    return float(np.mean(np.diff(np.argmax(a, axis=1)) >= 0))


def coverage(alignment) -> float:
    return float(np.mean(np.sum(_check(alignment), axis=0) >= 0.5))


def stop_reason(decoded_steps: int, max_steps: int) -> str:
    return "stop_token" if decoded_steps < max_steps else "max_steps"


def diagnostics(alignment, decoded_steps: int | None = None, max_steps: int | None = None):
    out = {
        "focus": focus(alignment),
        "monotonicity": monotonicity(alignment),
        "coverage": coverage(alignment),
    }
    if decoded_steps is not None and max_steps is not None:
        out["stopped_by_token"] = float(stop_reason(decoded_steps, max_steps) == "stop_token")
    return out


def diagnostics_summary(rows: list[dict]) -> dict:
    """Means of per-utterance :func:`diagnostics` (e.g. the fraction stopped by token)."""
    keys = rows[0].keys() if rows else ()
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}
