"""A trained Conv-TasNet after training: the ``separator`` role and the scoring of a split."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from tts_jax import workdir
from tts_jax.data.mixtures import load_split, sample_rate_of, voice_pairs
from tts_jax.errors import UserError
from tts_jax.eval.metrics import summarize
from tts_jax.family import EvalRequest, Evaluation
from tts_jax.models.conv_tasnet.model import ConvTasNetConfig, build_model, si_snr_improvement


class TrainedSeparator:
    """A trained Conv-TasNet (a training workdir's newest checkpoint, or ``step``'s) as
    mixture ``[T]`` -> sources ``[C, T]`` (numpy, at ``sample_rate``: the run's mixtures').
    The mixture is padded to a whole number of seconds (one compilation per length in
    seconds) and the output trimmed. ``config``: the run's; ``step``: the checkpoint's.

    (Not named ``Separator``: that is the paper's separation module, in ``model``.)"""

    def __init__(self, path, step: int | None = None):
        self.config, variables, self.step = workdir.load_variables(path, "conv_tasnet", step)
        self.sample_rate = sample_rate_of(self.config.data.mixtures)
        self._params = variables["params"]
        self._apply = jax.jit(build_model(self.config).apply)

    def __call__(self, mixture) -> np.ndarray:
        mixture = np.asarray(mixture, np.float32)
        if mixture.ndim != 1:
            raise UserError(f"mixture of shape {mixture.shape}; expected one channel [samples]")
        n, sr = len(mixture), self.sample_rate
        window = ConvTasNetConfig.from_config(self.config.model).filter_length
        if n < window:
            raise UserError(
                f"a mixture of {n} sample(s) is shorter than the encoder's window of {window} "
                f"samples ({1000 * window / sr:.1f} ms at {sr} Hz): nothing to separate"
            )
        padded = np.zeros(-(-n // sr) * sr, np.float32)
        padded[:n] = mixture
        return np.asarray(self._apply({"params": self._params}, padded[None]))[0, :, :n]


def evaluate(path, request: EvalRequest) -> Evaluation:
    """Separates the first ``request.limit`` whole mixtures of a split of the run's mixtures
    and scores them (dB; SI-SNRi is the PIT SI-SNR of the estimates minus the mixture's own).

    ``rows``: ``{"id", "voices", "seconds", "si_snr", "si_snri"}`` per mixture (``voices``:
    "voice1 / voice2", empty when the source corpus is gone). ``stats``: ``split``,
    ``mixtures``, ``step``, the means ``si_snr`` and ``si_snri`` with ``*_ci95`` the
    half-widths of their 95 % Student-t intervals, and, when the voices are known,
    ``si_snri_by_voices``: the SI-SNRi summary per pair of voices (which pairs the model
    cannot tell apart).
    """
    separator = TrainedSeparator(path, request.step)
    root, step = separator.config.data.mixtures, int(separator.step)
    voices = voice_pairs(root, request.split)
    rows = []
    for item in load_split(root, request.split)[: request.limit]:
        estimates = separator(item["mixture"])
        improvement, score = si_snr_improvement(
            estimates[None], item["sources"][None], item["mixture"][None]
        )
        rows.append(
            {
                "id": item["id"],
                "voices": voices.get(item["id"], ""),
                "seconds": len(item["mixture"]) / separator.sample_rate,
                "si_snr": float(score[0]),
                "si_snri": float(improvement[0]),
            }
        )
    snr, snri = (summarize([r[k] for r in rows]) for k in ("si_snr", "si_snri"))
    stats = {
        "split": request.split,
        "mixtures": len(rows),
        "step": step,
        "si_snr": snr["mean"],
        "si_snr_ci95": snr["ci95"],
        "si_snri": snri["mean"],
        "si_snri_ci95": snri["ci95"],
    }
    if voices:
        by_voices = {}
        for r in rows:
            by_voices.setdefault(r["voices"], []).append(r["si_snri"])
        stats["si_snri_by_voices"] = {k: summarize(v) for k, v in sorted(by_voices.items())}
    return Evaluation(
        title=f"{Path(path).name} (step {step}) separation, {request.split} split",
        step=step,
        rows=rows,
        stats=stats,
    )
