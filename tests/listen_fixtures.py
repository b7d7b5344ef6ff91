"""What the listening-test tests share: tiny synthetic systems, a test file, a real server.

The audio is made here (1-second tones with more or less noise), so no model is needed; the
samples folder is written by the real ``tts-jax listen page`` code from those wav folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tts_jax import audio
from tts_jax.listen.design import load_test
from tts_jax.listen.page import build_page
from tts_jax.listen.server import running

RATE = 16000
SENTENCES = ("s000", "s001")
# name -> noise level added to the reference tone
SYSTEMS = {"clean": 0.01, "noisy": 0.2}

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def write_systems(root: Path) -> dict[str, Path]:
    """Wav folders ``root/NAME/ID.wav`` for the reference and every system."""
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    dirs = {}
    for k, sid in enumerate(SENTENCES):
        f0 = 220.0 * (1 + 0.25 * k)
        tone = sum(0.3 / h * np.sin(2 * np.pi * h * f0 * t) for h in range(1, 8))
        for name, noise in {"reference": 0.0, **SYSTEMS}.items():
            wav = tone + noise * rng.standard_normal(len(t))
            dirs[name] = root / name
            audio.save_wav(dirs[name] / f"{sid}.wav", 0.5 * wav, RATE)
    return dirs


def write_samples(root: Path) -> Path:
    """The samples folder of the synthetic systems, as `tts-jax listen page` writes it."""
    dirs = write_systems(root / "wavs")
    out = root / "samples"
    systems = [(name, dirs[name]) for name in SYSTEMS]
    build_page(systems, out, reference_dir=dirs["reference"], title="Synthetic tones")
    return out


def write_test(root: Path, samples: Path, kind: str, **extra) -> Path:
    lines = [f'type = "{kind}"', f'samples = "{samples}"', f'title = "Synthetic {kind}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]  # JSON's values are TOML's
    path = root / f"{kind}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class Served:
    """A test served by a real uvicorn on a free localhost port, in a thread."""

    def __init__(self, test_file: Path):
        self.spec = load_test(test_file)
        self._running = running(self.spec)

    def __enter__(self):
        self.url, self.store, self.loudness = self._running.__enter__()
        return self

    def __exit__(self, *exc):
        return self._running.__exit__(*exc)
