"""The ratings of one listening test in one SQLite file (write-ahead log, synchronous=FULL).

Each answer is committed in its own transaction the moment the server receives it, so a
server killed at any point loses at most the answer in flight. Tables:

* ``meta``: the test's type and fingerprint (a file holds the ratings of one test);
* ``listeners``: session id, the name they typed, when they started, their plan (JSON) and
  the seed it was drawn from;
* ``ratings`` (MUSHRA, MOS): listener, trial, sentence, system, score, time, play count; one
  row per condition of a trial;
* ``preferences`` (A/B): listener, trial, sentence, the pair in the test's order, which system
  was on the left, the choice (a system's name or ``"none"``), time, play counts.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from tts_jax.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS listeners (
    session TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL,
    seed INTEGER NOT NULL, plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ratings (
    listener TEXT NOT NULL REFERENCES listeners(session), trial INTEGER NOT NULL,
    sentence TEXT NOT NULL, system TEXT NOT NULL, score REAL NOT NULL, time REAL NOT NULL,
    play_count INTEGER NOT NULL, PRIMARY KEY (listener, trial, system));
CREATE TABLE IF NOT EXISTS preferences (
    listener TEXT NOT NULL REFERENCES listeners(session), trial INTEGER NOT NULL,
    sentence TEXT NOT NULL, system_a TEXT NOT NULL, system_b TEXT NOT NULL,
    left_system TEXT NOT NULL, choice TEXT NOT NULL, time REAL NOT NULL,
    plays_a INTEGER NOT NULL, plays_b INTEGER NOT NULL, PRIMARY KEY (listener, trial));
"""


class AlreadyAnswered(Exception):
    """The trial was answered before (a second answer is refused, not overwritten)."""


class Store:
    """One test's ratings database; safe to share between the server's threads."""

    def __init__(self, path, kind: str, fingerprint: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as e:
            raise UserError(f"cannot open the ratings file {self.path} ({e})") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta"))
            if not meta:
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("type", kind), ("fingerprint", fingerprint), ("created", str(time.time()))],
                )
            else:
                _check_meta(self.path, meta, kind, fingerprint)
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise UserError(f"{self.path} is not a ratings file ({e})") from None
        except UserError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def new_listener(self, name: str, plan_for_seed) -> str:
        """Starts a listener: their session id. ``plan_for_seed(seed)`` draws their plan."""
        session = secrets.token_urlsafe(12)
        seed = secrets.randbits(31)
        plan = plan_for_seed(seed)
        with self._lock:
            self._db.execute(
                "INSERT INTO listeners VALUES (?, ?, ?, ?, ?)",
                (session, name, time.time(), seed, json.dumps(plan)),
            )
        return session

    def listener(self, session: str) -> dict | None:
        with self._lock:
            row = self._db.execute(
                "SELECT name, created, seed, plan FROM listeners WHERE session = ?", (session,)
            ).fetchone()
        if row is None:
            return None
        return {"session": session, "name": row[0], "created": row[1], "seed": row[2],
                "plan": json.loads(row[3])}  # fmt: skip

    def answered(self, session: str) -> set[int]:
        """The trials the listener has answered."""
        with self._lock:
            rows = self._db.execute(
                "SELECT trial FROM ratings WHERE listener = ? UNION "
                "SELECT trial FROM preferences WHERE listener = ?",
                (session, session),
            ).fetchall()
        return {r[0] for r in rows}

    def add_ratings(self, session: str, trial: int, sentence: str, scores: list[tuple]) -> None:
        """A trial's ``(system, score, play_count)`` rows, in one transaction."""
        now = time.time()
        rows = [(session, trial, sentence, s, float(v), now, int(p)) for s, v, p in scores]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            except BaseException as e:
                # Whatever failed (a second answer, a full disk), the transaction must not stay
                # open: the next answer would find it and fail too.
                self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.IntegrityError):
                    raise AlreadyAnswered from None
                raise
            self._db.execute("COMMIT")

    def add_preference(
        self, session: str, trial: int, sentence: str, pair, left: str, choice: str, plays
    ) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO preferences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (session, trial, sentence, pair[0], pair[1], left, choice, time.time(),
                     int(plays[0]), int(plays[1])),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise AlreadyAnswered from None


def _check_meta(path: Path, meta: dict, kind: str, fingerprint: str) -> None:
    """A ratings file holds the ratings of one test: refuse it to another."""
    if (meta.get("type"), meta.get("fingerprint")) != (kind, fingerprint):
        raise UserError(
            f"{path} holds the ratings of another test (type {meta.get('type')}, "
            f"fingerprint {meta.get('fingerprint')}; this one is {kind}, {fingerprint}): "
            "its systems, sentences or pairs changed. Give the test a new ratings = "
            "file, or restore the test as it was"
        )


def read_ratings(path, kind: str, fingerprint: str) -> tuple[list[dict], list[dict], dict]:
    """``(ratings, preferences, listener names)`` of the ratings file of the test of this type
    and fingerprint, read only."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no ratings yet: {path} does not exist (start `tts-jax listen serve`)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        _check_meta(path, {r[0]: r[1] for r in db.execute("SELECT key, value FROM meta")}, kind,
                    fingerprint)  # fmt: skip
        ratings = [dict(r) for r in db.execute("SELECT * FROM ratings ORDER BY time, trial")]
        prefs = [dict(r) for r in db.execute("SELECT * FROM preferences ORDER BY time, trial")]
        names = dict(db.execute("SELECT session, name FROM listeners").fetchall())
    except sqlite3.DatabaseError as e:
        raise UserError(f"{path} is not a ratings file ({e})") from None
    finally:
        db.close()
    return ratings, prefs, names
