"""libespeak-ng through ctypes: speech for the embedded corpus and IPA for the phoneme front end.

The shared library and its data come from the ``espeakng-loader`` wheel, so no system package is
needed. libespeak-ng keeps global state and is not thread-safe: use it from one thread per
process (the corpus builder uses processes, not threads).
"""

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np

from tts_jax.errors import UserError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02
_RATE, _PITCH = 1, 3

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Espeak:
    """One initialised libespeak-ng in synchronous mode (one per process)."""

    def __init__(self):
        import espeakng_loader

        self.data_path = espeakng_loader.get_data_path()
        lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed with data at {self.data_path}")
        self._chunks: list[np.ndarray] = []
        # Keep a reference: ctypes callbacks are freed when the Python object is collected.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self._voice = None

    def _on_audio(self, wav, n, _events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def set_voice(self, voice: str):
        if voice != self._voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise UserError(f"unknown espeak voice {voice!r}; try one of {voices()[:12]} ...")
            self._voice = voice

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        self.set_voice(voice)
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        data = text.encode("utf-8")
        self._chunks = []
        status = self.lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        if not self._chunks:
            return np.zeros(0, np.float32)
        return (np.concatenate(self._chunks) / 32768.0).astype(np.float32)

    def phonemize_clause(self, text: str, voice: str) -> str:
        """IPA of ``text``; espeak returns one clause per call and advances the pointer."""
        self.set_voice(voice)
        buf = ctypes.c_char_p(text.encode("utf-8"))
        ptr = ctypes.pointer(buf)
        out = []
        while buf.value:
            res = self.lib.espeak_TextToPhonemes(ptr, _CHARS_UTF8, _PHONEMES_IPA)
            if res:
                out.append(res.decode("utf-8"))
        return " ".join(p for p in out if p)


@functools.lru_cache(maxsize=1)
def _engine() -> _Espeak:
    return _Espeak()


def sample_rate() -> int:
    """espeak's native output rate (22,050 Hz)."""
    return _engine().sample_rate


@functools.lru_cache(maxsize=1)
def voices() -> list[str]:
    """English voices usable for corpora: the language voices and ``en-us+VARIANT`` speakers."""
    root = os.path.join(_engine().data_path, "voices", "!v")
    variants = sorted(os.listdir(root)) if os.path.isdir(root) else []
    return ["en-us", "en", "en-gb-scotland", "en-029"] + [f"en-us+{v}" for v in variants]


def synthesize(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """Speech for ``text`` as float32 ``[T]`` at :func:`sample_rate` Hz.

    ``rate`` is in words per minute (espeak's default 175); ``pitch`` 0..100 (default 50).
    """
    return _engine().synthesize(text, voice, rate, pitch)


def phonemize(text: str, voice: str = "en-us") -> str:
    """IPA transcription of one clause (no clause punctuation; see tts_jax.text.phonemes)."""
    return _engine().phonemize_clause(text, voice)
