"""Shared fixtures: one small espeak corpus (and its TFDS dataset) per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.gcs_emulator import GCSServer

REPO = Path(__file__).resolve().parents[1]
NUM_UTTERANCES = 20

# One persistent XLA compilation cache for the session's processes (both xdist workers and the
# CLI subprocesses they start inherit the environment): the tests build the same tiny models
# again and again, and each is compiled once. It lives in .pytest_cache (ignored), so a clean
# clone starts without it; set JAX_COMPILATION_CACHE_DIR to put it elsewhere.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    """A 20-utterance LJSpeech-format corpus, prepared as TFDS (built once per session)."""
    from tts_jax.data.corpus import build_corpus
    from tts_jax.data.ljspeech import prepare

    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, NUM_UTTERANCES, seed=7, workers=1)
    prepare(out)
    return out


@pytest.fixture(scope="session")
def corpus(corpus_dir):
    from tts_jax.data.ljspeech import open_corpus

    return open_corpus(corpus_dir)


def tiny_spec(family: str) -> str:
    """The first ``experiments/*.py:tiny`` config of ``family`` in the config catalogue."""
    from tts_jax.config import config_catalog, load_config

    for row in config_catalog():
        if row["spec"].endswith(":tiny") and load_config(row["spec"]).model.family == family:
            return row["spec"]
    raise AssertionError(f"no experiments/*.py:tiny config of the {family} family")


def run_cli(args: list[str], *, devices: int = 1, timeout: float = 300, env=None):
    """Runs ``python -m tts_jax ARGS`` (what `tts-jax` runs) in a fresh process with
    ``devices`` fake CPUs."""
    full_env = dict(os.environ)
    full_env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    full_env["JAX_PLATFORMS"] = "cpu"
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tts_jax", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
    )


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """A GCS-compatible server on localhost for the session; its clients' environment is set
    in this process (and so in the CLI subprocesses it starts)."""
    server = GCSServer(tmp_path_factory.mktemp("gcs"))
    server.start()
    os.environ.update(server.env)
    yield server
    server.stop()


@pytest.fixture
def bucket(gcs_server, request):
    """A new, empty bucket for one test: ``gs://NAME``."""
    import re
    import uuid

    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    return gcs_server.bucket(f"{stem}-{uuid.uuid4().hex[:8]}")
