"""libespeak-ng through ctypes: speech for the embedded corpus and IPA for the phoneme front end.

The shared library and its data come from the ``espeakng-loader`` wheel, so no system package is
needed. Two details matter for a reproducible corpus:

* libespeak-ng keeps static state between utterances (the same text spoken twice in a row comes
  out a few samples different, and neither ``espeak_ng_SetRandSeed`` nor re-initialising
  resets it). :func:`synthesize` therefore loads the library, speaks one utterance and unloads
  it (about 10 ms), so the audio depends on its arguments alone.
* The phonemiser keeps a private copy of the library loaded, so that it never shares that
  state with synthesis.

libespeak-ng is not thread-safe: use it from one thread per process.
"""

from __future__ import annotations

import _ctypes
import ctypes
import functools
import os
import shutil
import tempfile

import espeakng_loader
import numpy as np

from tts_jax.errors import UserError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02
_RATE, _PITCH = 1, 3
SAMPLE_RATE = 22050  # espeak-ng's native rate

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


def _paths() -> tuple[str, str]:
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class _Espeak:
    """One loaded and initialised libespeak-ng (synchronous mode)."""

    def __init__(self, library_path: str):
        data_path = _paths()[1]
        lib = ctypes.CDLL(library_path, mode=os.RTLD_LOCAL)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int,
        ]  # fmt: skip
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"espeak_Initialize returned {rate} (data at {data_path})")
        self._chunks: list[np.ndarray] = []
        # Keep a reference: ctypes frees a callback when its Python object is collected.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib

    def _on_audio(self, wav, n, _events):
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def set_voice(self, voice: str):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise UserError(f"unknown espeak voice {voice!r}; try one of {voices()[:12]} ...")

    def close(self):
        self.lib.espeak_Terminate()
        handle = self.lib._handle
        del self.lib
        _ctypes.dlclose(handle)


def voices() -> list[str]:
    """English voices usable for corpora: the language voices and ``en-us+VARIANT`` speakers."""
    root = os.path.join(_paths()[1], "voices", "!v")
    variants = sorted(os.listdir(root)) if os.path.isdir(root) else []
    return ["en-us", "en", "en-gb-scotland", "en-029"] + [f"en-us+{v}" for v in variants]


def sample_rate() -> int:
    return SAMPLE_RATE


def synthesize(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """Speech for ``text`` as float32 ``[T]`` at 22,050 Hz; a pure function of its arguments.

    ``rate`` is in words per minute (espeak's default 175); ``pitch`` 0..100 (default 50).
    """
    engine = _Espeak(_paths()[0])
    try:
        engine.set_voice(voice)
        engine.lib.espeak_SetParameter(_RATE, rate, 0)
        engine.lib.espeak_SetParameter(_PITCH, pitch, 0)
        data = text.encode("utf-8")
        status = engine.lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        chunks = engine._chunks
    finally:
        engine.close()
    if not chunks:
        return np.zeros(0, np.float32)
    return (np.concatenate(chunks) / 32768.0).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _phonemizer() -> _Espeak:
    # A private copy of the library, so this long-lived instance never shares static state
    # with the load-speak-unload cycle of synthesize().
    private = os.path.join(tempfile.mkdtemp(prefix="tts_jax_espeak_"), "libespeak-ng-ipa.so")
    shutil.copyfile(_paths()[0], private)
    return _Espeak(private)


def phonemize(text: str, voice: str = "en-us") -> str:
    """IPA of ``text`` with clause punctuation dropped (see tts_jax.text.phonemes)."""
    engine = _phonemizer()
    engine.set_voice(voice)
    buf = ctypes.c_char_p(text.encode("utf-8"))
    ptr = ctypes.pointer(buf)
    out = []
    while buf.value:  # espeak transcribes one clause per call and advances the pointer
        res = engine.lib.espeak_TextToPhonemes(ptr, _CHARS_UTF8, _PHONEMES_IPA)
        if res:
            out.append(res.decode("utf-8"))
    return " ".join(p for p in out if p)
