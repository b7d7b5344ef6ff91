"""Text-to-mel knowledge distillation (Kim & Rush 2016): the shipped Tacotron 2
(data/tacotron2_espeak) teaches a student at half its width (experiments/tacotron2.py:student),
trained

- on the recordings' mels (``ground_truth``, the baseline),
- on the teacher's teacher-forced mels of the same utterances (``teacher_forced``, `tts-jax
  gta`),
- on the teacher's own free-running synthesis of their texts (``free_running``, `tts-jax gta
  --free-running`: sequence-level distillation, Kim & Rush 2016),

with the same steps, seed and data order each; then scored on held-out text against espeak
(MCD and the shared metrics, stop-token rate, alignment focus) and timed against the teacher
in one run. The runner is tts_jax/models/tacotron2/distill.py:

    tts-jax sweep experiments/tacotron2_distill.py:cpu --workdir runs/tacotron2_distill

``--set student.a.b=VALUE`` overrides a field of every student's config; ``--set
teacher.path=DIR`` distils another trained Tacotron 2 (a workdir or an export).
"""

from tts_jax.config import check_variant
from tts_jax.models.tacotron2.distill import run_distillation

# The sweep's variants and what each is for.
SWEEPS = {
    "cpu": "the shipped model teaches :student on the embedded corpus, 1,500 steps each",
}

SPEED_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Printing, in the only sense with which we are at present concerned.",
    "She sells sea shells by the sea shore.",
    "A journey of a thousand miles begins with a single step.",
    "How much wood would a woodchuck chuck?",
    "The rain in Spain stays mainly in the plain.",
    "Every morning the baker opens his shop at six.",
    "Music can change the way we feel about a place.",
]


def get_sweep(variant: str = "cpu") -> dict:
    check_variant(variant, SWEEPS)
    return {
        "runner": run_distillation,
        "teacher": "data/tacotron2_espeak",
        "student_config": "experiments/tacotron2.py:student",
        "heldout": 50,
        "speed_sentences": SPEED_SENTENCES,
        "speed_repeats": 5,
        "budget_note": (
            "**What this budget can and cannot show.** One seed per target, 1,500 steps of "
            "batch 16 each on the 2,000-utterance espeak corpus (about 25 minutes a student on "
            "one core): the half-width students begin to align and stop by their stop token, "
            "far from converged, so the rows compare early training at equal budget, not "
            "final quality. Espeak is deterministic and noise-free, so the recordings are "
            "already an easy target; the gain distillation gives on natural speech (targets "
            "with less variance than the recordings) may show here only as faster alignment or "
            "a lower loss, if at all."
        ),
    }
