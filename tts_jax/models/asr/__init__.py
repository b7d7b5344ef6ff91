"""A speech recognizer (Conformer-CTC on log-mels, characters out): the reference-free judge
of intelligibility. ``model``: the modules, SpecAugment, the CTC loss and greedy decoding;
``train``: the shared trainer's entries; ``inference``: the trained model as a
:class:`Recognizer` (the family's ``recognizer`` role).
"""

from tts_jax.family import assemble
from tts_jax.models.asr import train
from tts_jax.models.asr.decoding import BeamSearch, LexiconBeamDecoder
from tts_jax.models.asr.inference import Recognizer, export
from tts_jax.models.asr.model import (
    ConformerBlock,
    ConformerCTC,
    ConformerCTCConfig,
    ConvSubsampling,
    build_model,
    ctc_loss,
    ctc_losses,
    greedy_decode,
    label_repeats,
    normalize_features,
    spec_augment,
    subsampled_lengths,
)

FAMILY = assemble("asr", train, recognizer=Recognizer.from_workdir, export=export)
