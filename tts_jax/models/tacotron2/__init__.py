"""Tacotron 2 (Shen et al. 2018, arXiv 1712.05884): text -> mel spectrogram.

``modules`` holds the paper's blocks, ``model`` their assembly, ``losses`` its losses (guided
attention too), ``alignment`` the attention's diagnostics, ``train`` what the shared trainer calls,
``inference`` the trained model's synthesizer, export, GTA mels and held-out scoring.
"""

from tts_jax.family import assemble
from tts_jax.models.tacotron2 import nvidia, train
from tts_jax.models.tacotron2.alignment import alignment_focus, alignment_monotonicity
from tts_jax.models.tacotron2.inference import (
    TEXT_BUCKET,
    Synthesizer,
    evaluate,
    export,
    export_gta,
    heldout_synthesis,
    text_batches,
)
from tts_jax.models.tacotron2.losses import (
    guided_attention_loss,
    guided_attention_scale,
    guided_attention_weights,
    losses,
    masked_mse,
    weighted_stop_loss,
)
from tts_jax.models.tacotron2.model import Tacotron2, Tacotron2Config, build_model
from tts_jax.models.tacotron2.train import (
    apply_model,
)

FAMILY = assemble(
    "tacotron2",
    train,
    synthesizer=Synthesizer.from_workdir,
    evaluate=evaluate,
    export=export,
    gta=export_gta,
    import_checkpoint=nvidia.import_checkpoint,
)
