"""Text to speech in three lines, with the model shipped in this repository:

    from tts_jax import pretrained
    tts = pretrained.load()                 # data/tacotron2_espeak + Griffin-Lim
    wav = tts("Any English sentence.")      # float32 [samples] at tts.sample_rate (22,050 Hz)

``pretrained.load(DIR)`` takes a training workdir or an exported model instead of a name, and
``vocoder=`` any of :func:`tts_jax.vocoders.load_vocoder`'s names. ``tts.synthesize(texts)``
returns everything per text (audio, mel, alignment, whether the stop token ended it, warnings).
The shipped model's card is ``data/tacotron2_espeak/MODEL_CARD.md``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from tts_jax import audio, workdir
from tts_jax.errors import UserError
from tts_jax.vocoders import load_vocoder

DATA = Path(__file__).resolve().parents[1] / "data"
SHIPPED = {"tacotron2-espeak": "tacotron2_espeak", "asr-espeak": "asr_espeak"}
DEFAULT = "tacotron2-espeak"
RECOGNIZER = "asr-espeak"  # the judge of intelligibility: data/asr_espeak/MODEL_CARD.md

# espeak speaks about 12-16 symbols (characters or IPA) a second at the corpus rate; a clip
# shorter than one second per this many symbols is a truncated decode, not fast speech.
MAX_SYMBOLS_PER_SECOND = 40.0

log = logging.getLogger(__name__)


def model_path(name_or_dir: str | Path = DEFAULT) -> Path:
    """A shipped model's directory by name, or the given directory."""
    if str(name_or_dir) in SHIPPED:
        path = DATA / SHIPPED[str(name_or_dir)]
        if not (path / "model.json").is_file():
            raise UserError(
                f"the shipped model {name_or_dir!r} is not at {path}: it lives in the "
                "repository's data/ folder; install tts-jax from a clone (pip install -e .)"
            )
        return path
    path = Path(name_or_dir) if isinstance(name_or_dir, str) else name_or_dir  # epath stays
    if not path.is_dir():
        raise UserError(
            f"{name_or_dir!r} is neither a shipped model ({', '.join(SHIPPED)}) nor a directory"
        )
    return path


@dataclasses.dataclass
class Speech:
    text: str
    audio: np.ndarray  # float32 [samples]
    mel: np.ndarray  # [frames, n_mels] log-mel
    alignment: np.ndarray  # [decoder steps, symbols]
    stopped: bool  # ended by the stop token (not max_decoder_steps)
    seconds: float
    warnings: list[str]


def speech_warnings(text: str, symbols: int, seconds: float, stopped: bool, max_steps: int):
    """What is implausible about a synthesised clip, as sentences (empty when nothing is)."""
    out = []
    if not stopped:
        out.append(
            f"{text[:60]!r}: decoding reached max_decoder_steps ({max_steps}) without a stop "
            "token; the clip is cut there"
        )
    if seconds < symbols / MAX_SYMBOLS_PER_SECOND:
        out.append(
            f"{text[:60]!r}: {seconds:.2f} s is implausibly short for {symbols} symbols "
            f"(espeak would take about {symbols / 14:.1f} s): the model stopped early, it is "
            "probably not trained enough"
        )
    return out


class TTS:
    """Text -> waveform: a synthesizer (a text-to-mel family's, e.g. Tacotron 2's) and a mel
    vocoder by name (:func:`tts_jax.vocoders.load_vocoder`). ``vocoder=None``: the waveform
    the model makes itself where it makes one (text_to_wave), else Griffin-Lim."""

    def __init__(self, synthesizer, vocoder: str | None = None):
        self.synthesizer = synthesizer
        self.mel_config = audio.MelConfig.from_config(synthesizer.config.data)
        self.own_waveform = vocoder is None
        self.vocoder = load_vocoder(vocoder or "griffin-lim", self.mel_config)
        self.sample_rate = self.mel_config.sample_rate

    def synthesize(self, texts: list[str], seed: int = 0) -> list[Speech]:
        synth = self.synthesizer
        out = []
        for text, res in zip(texts, synth(list(texts), seed=seed), strict=True):
            own = self.own_waveform and "audio" in res
            wav = np.asarray(res["audio"] if own else self.vocoder(res["mel"]), np.float32)
            seconds = len(wav) / self.sample_rate
            symbols = int(res["alignment"].shape[1])
            warnings = speech_warnings(text, symbols, seconds, res["stopped"], synth.max_steps)
            for w in warnings:
                log.warning(w)
            out.append(
                Speech(text, wav, res["mel"], res["alignment"], res["stopped"], seconds, warnings)
            )
        return out

    def __call__(self, text: str) -> np.ndarray:
        return self.synthesize([text])[0].audio


def load(name_or_dir: str | Path = DEFAULT, vocoder: str | None = None) -> TTS:
    """The shipped model by name (default), or the workdir / exported model of any text-to-mel
    family."""
    path = model_path(name_or_dir)
    load_synthesizer = workdir.family_entry(path, "synthesizer", f"pretrained.load({path})")
    return TTS(load_synthesizer(path), vocoder)


def load_recognizer(name_or_dir=RECOGNIZER):
    """The shipped speech recognizer by name (default), or a recognizer family's workdir or
    exported model: ``.transcribe(wavs)`` -> normalised transcripts."""
    path = model_path(name_or_dir)
    return workdir.family_entry(path, "recognizer", f"recognizer {name_or_dir}")(path)
