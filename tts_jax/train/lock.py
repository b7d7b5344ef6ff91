"""One trainer per workdir, on a local disk or in a bucket.

``WORKDIR/train.lock`` holds its holder: host, pid, when it started and a heartbeat the holder
refreshes every ``heartbeat_s`` seconds while it trains. It is taken with a create-only write
(:func:`tts_jax.paths.create_exclusive`: ``O_EXCL`` locally, ``ifGenerationMatch=0`` on GCS),
which the file system or the store decides atomically, so of two trainers started at once one
gets it and the other is refused with the holder named.

A lock is stale when its holder is gone: on the same host, its pid no longer runs; from
another host (a pod, where nothing is shared but the bucket), its heartbeat is older than
``stale_s``. A stale lock is taken over with a warning. Two trainers that find the same stale
lock race for a create-only takeover marker named after that holder; the one that creates it
replaces the lock, the other starts over and finds the new holder. Process 0 of a multi-host
run holds the lock for every process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time

import jax

from tts_jax import paths
from tts_jax.errors import UserError

log = logging.getLogger(__name__)


class FileStore:
    """The lock's storage: the run's own path type (a local disk or a bucket)."""

    def create(self, path, data: bytes) -> bool:
        return paths.create_exclusive(path, data)

    def read(self, path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path, data: bytes) -> None:
        paths.write_whole(path, data)

    def delete(self, path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def age_s(self, path) -> float | None:
        """Seconds since ``path`` was last written (None when it is gone)."""
        try:
            return time.time() - path.stat().mtime
        except (FileNotFoundError, AttributeError):
            return None


@dataclasses.dataclass
class WorkdirLock:
    """A context manager: held inside, released on exit (a crash leaves a stale lock)."""

    workdir: object  # a tts_jax.paths.Path
    store: FileStore = dataclasses.field(default_factory=FileStore)
    host: str = dataclasses.field(default_factory=socket.gethostname)
    pid: int = dataclasses.field(default_factory=os.getpid)
    heartbeat_s: float = 60.0
    stale_s: float = 600.0
    held: bool = False

    def __post_init__(self):
        self.path = self.workdir / "train.lock"
        self._stop = threading.Event()
        self._beat = None

    def __enter__(self):
        if jax.process_index() != 0:
            return self
        for _ in range(5):
            self._since = time.time()
            if self.store.create(self.path, self._record()):
                self.held = True
                self._start_heartbeat()
                return self
            holder = self._holder()
            if holder is None or self._alive(holder):
                raise UserError(self._refusal(holder)) from None
            marker = self.workdir / f"train.lock.takeover.{_holder_key(holder)}"
            if self.store.create(marker, self._record()):
                log.warning("taking over the stale lock %s of %s", self.path, holder)
                self.store.delete(self.path)
            else:  # another trainer is taking it over: give it time to write its own lock
                time.sleep(0.5)
        raise UserError(f"could not take the lock {self.path}: another trainer keeps taking it")

    def _record(self) -> bytes:
        now = time.time()
        me = {"host": self.host, "pid": self.pid, "since": self._since, "heartbeat": now}
        return json.dumps(me).encode()

    def _holder(self) -> dict | None:
        """The holder, or None for a lock being written right now; an unreadable lock older
        than 10 s (a torn local write) reads as a dead holder."""
        data = self.store.read(self.path)
        try:
            return json.loads(data) if data is not None else None
        except ValueError:
            age = self.store.age_s(self.path)
            young = age is not None and age < 10
            return None if young else {"host": self.host, "pid": -1, "since": 0}

    def _alive(self, holder: dict) -> bool:
        if holder.get("host") != self.host:
            beat = holder.get("heartbeat", holder.get("since", 0))
            return time.time() - beat < self.stale_s
        if holder.get("pid", -1) <= 0:
            return False
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _refusal(self, holder: dict | None) -> str:
        who = (
            f"pid {holder['pid']} on {holder['host']} since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder['since']))}"
            if holder
            else "a process that is starting"
        )
        return (
            f"{self.workdir} is being trained by {who}; one trainer per workdir: wait for it or "
            f"stop it (delete {self.path} only if that process is gone)"
        )

    def _start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(self.heartbeat_s):
                try:
                    self.store.write(self.path, self._record())
                except Exception as e:  # noqa: BLE001 - a missed beat is retried next time
                    log.warning("could not refresh the lock %s: %r", self.path, e)

        self._beat = threading.Thread(target=beat, name="train.lock heartbeat", daemon=True)
        self._beat.start()

    def __exit__(self, *exc):
        if self.held:
            self._stop.set()
            if self._beat is not None:
                self._beat.join()
            try:
                self.store.delete(self.path)
            except Exception as e:  # noqa: BLE001 - a lock left behind reads as stale later
                log.warning(
                    "could not remove the lock %s (%r); it will read as stale", self.path, e
                )
            self.held = False


def _holder_key(holder: dict) -> str:
    """A name for one holder's tenure (host, pid, start): the takeover marker of that lock."""
    raw = f"{holder.get('host')}-{holder.get('pid')}-{holder.get('since')}"
    return "".join(c if c.isalnum() or c in "-." else "_" for c in raw)
