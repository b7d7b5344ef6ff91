"""ClariNet (Ping, Peng & Chen 2018): a Gaussian IAF student distilled from a trained Gaussian
WaveNet (:mod:`tts_jax.models.wavenet`). ``model`` (the student, the distillation losses,
:class:`ClariNetConfig`), ``train`` (the teacher's workdir, the distillation step),
``inference`` (the student as a :class:`Vocoder`), ``sweep`` (the comparison of objectives,
``tts-jax sweep``)."""

from tts_jax.family import assemble
from tts_jax.inference import evaluate_vocoder
from tts_jax.models.clarinet import train
from tts_jax.models.clarinet.inference import Vocoder
from tts_jax.models.clarinet.model import (
    OBJECTIVES,
    TERMS,
    ClariNetConfig,
    IAFFlow,
    Student,
    distillation_terms,
    objective,
    objective_weights,
    stft_config,
    stft_loss,
    weighted_objective,
)
from tts_jax.models.clarinet.train import (
    build_student,
    check_config,
    state_with_random_teacher,
    teacher_config,
    teacher_params,
)

FAMILY = assemble(
    "clarinet",
    train,
    vocoder=Vocoder,
    evaluate=evaluate_vocoder(Vocoder),
)
