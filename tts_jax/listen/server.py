"""``tts-jax listen serve``: a listening test in the browser (FastAPI, served by uvicorn).

FastAPI rather than the standard library's ``http.server``: its request models give every
POST body a checked shape with a 422 that names the bad field, and uvicorn serves several
listeners at once; the page itself is plain HTML/JS/CSS shipped as package data.

Routes (every one validated; an unknown session, trial or slot is a 404; a malformed body, an
unknown field or a bad score a 422; a body over ``MAX_BODY`` bytes a 413, one without a length
a 411; an answer to a trial that is not the listener's next one a 409):

* ``GET /``, ``GET /static/{listen.js,listen.css}``: the page (no other file is served);
* ``POST /api/session`` ``{"name"}``: a new listener and their randomised plan;
* ``GET /api/session/{sid}``: the test and where the listener is (a reload resumes there);
* ``GET /api/session/{sid}/trial/{k}``: trial k as the listener sees it (blind letters);
* ``GET /api/audio/{sid}/{k}/{slot}``: a stimulus by position (``ref`` or a letter): audio is
  served from the stimuli prepared in memory at start-up, never by a path from a request;
* ``POST /api/answer`` ``{"session", "trial", "scores" | "choice", "plays"}``.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import re
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tts_jax import audio
from tts_jax.errors import UserError
from tts_jax.listen.design import AB_CHOICES, TestSpec, letters, make_plan
from tts_jax.listen.stats import ANCHOR, HIDDEN_REFERENCE
from tts_jax.listen.stimuli import loudness_match, lowpass_anchor, wav_bytes
from tts_jax.listen.store import AlreadyAnswered, Store

STATIC = importlib.resources.files("tts_jax.listen") / "static"
PAGE_FILES = {"listen.js": "text/javascript", "listen.css": "text/css"}
SESSION = re.compile(r"^[A-Za-z0-9_-]{16}$")

# ITU-T P.800 Annex B, the listening-quality (ACR) scale.
ACR = {5: "Excellent", 4: "Good", 3: "Fair", 2: "Poor", 1: "Bad"}
ACR_QUESTION = "Quality of the speech"
# ITU-R BS.1534-3, the continuous quality scale's five intervals (lower bounds).
MUSHRA_SCALE = {80: "Excellent", 60: "Good", 40: "Fair", 20: "Poor", 0: "Bad"}


# Every request body is small JSON; a longer one is refused before it is read.
MAX_BODY = 16 * 1024
MAX_PLAYS = 10_000


class _Body(BaseModel):
    # strict: a score or trial must be a JSON integer (not true, "5" or 5.0); extra="forbid":
    # a misspelt field is an error, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid")


class NewSession(_Body):
    name: str = Field("", max_length=80)


class Answer(_Body):
    session: str = Field(max_length=40)
    trial: int
    scores: dict[str, int] | None = Field(None, max_length=64)  # MUSHRA / MOS: letter -> score
    choice: str | None = Field(None, max_length=8)  # A/B: "A", "B" or "none"
    # letter (or "ref") -> times played
    plays: dict[str, int] = Field(default_factory=dict, max_length=65)


class LimitBody:
    """ASGI middleware: a request body must state its length (411 otherwise) and be at most
    ``limit`` bytes (413); the server then reads no more than that length."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            length = dict(scope["headers"]).get(b"content-length")
            if length is None or not length.isdigit():
                refusal = "the request body must have a Content-Length", 411
            elif int(length) > self.limit:
                refusal = f"the request body is over {self.limit} bytes", 413
            else:
                refusal = None
            if refusal:
                response = JSONResponse({"error": refusal[0]}, status_code=refusal[1])
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def prepare_stimuli(spec: TestSpec) -> tuple[dict, dict]:
    """Every stimulus of the test, loudness-matched, as WAV bytes keyed by (condition,
    sentence); and the loudness report (:func:`tts_jax.listen.stimuli.loudness_match`)."""
    wavs = {}
    for condition, files in spec.audio.items():
        for sentence, path in files.items():
            wavs[condition, sentence] = audio.load_wav(path, spec.sample_rate)
    if spec.kind == "mushra":
        for sentence in spec.sentences:
            ref = wavs[HIDDEN_REFERENCE, sentence]
            wavs[ANCHOR, sentence] = lowpass_anchor(ref, spec.sample_rate)
    matched, info = loudness_match(wavs, spec.sample_rate)
    return {k: wav_bytes(w, spec.sample_rate) for k, w in matched.items()}, info


def _not_found(what: str):
    raise HTTPException(status_code=404, detail=what)


def _next_trial(total: int, done: set[int]) -> int | None:
    """The first trial of a plan of ``total`` not yet answered (None when all are)."""
    return next((k for k in range(total) if k not in done), None)


def _state(spec: TestSpec, store: Store, loudness: dict, found: dict) -> dict:
    """What the page needs to know of the test and of where the listener ``found`` is."""
    done = store.answered(found["session"])
    total = len(found["plan"])
    return {
        "session": found["session"],
        "name": found["name"],
        "type": spec.kind,
        "title": spec.title,
        "total": total,
        "answered": len(done),
        "next": _next_trial(total, done),
        "score_range": list(spec.score_range) if spec.kind != "ab" else None,
        "scale": {"mushra": MUSHRA_SCALE, "mos": ACR}.get(spec.kind),
        "question": ACR_QUESTION if spec.kind == "mos" else None,
        "loudness_lufs": round(loudness["target_lufs"], 1),
    }


def create_app(spec: TestSpec, store: Store, stimuli: dict, loudness: dict) -> FastAPI:
    """The test's web application."""
    app = FastAPI(title=spec.title, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LimitBody)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    def state(found: dict) -> dict:
        return _state(spec, store, loudness, found)

    def listener(session: str) -> dict:
        found = store.listener(session) if SESSION.match(session) else None
        if found is None:
            _not_found(f"unknown session {session[:40]!r}; start a new one")
        return found

    def trial_of(found: dict, k: int) -> dict:
        plan = found["plan"]
        if not 0 <= k < len(plan):
            _not_found(f"trial {k} does not exist (this test has trials 0..{len(plan) - 1})")
        return plan[k]

    @app.get("/")
    def page():
        return FileResponse(str(STATIC / "listen.html"), media_type="text/html")

    @app.get("/static/{name}")
    def static(name: str):
        if name not in PAGE_FILES:
            _not_found(f"no file {name[:40]!r}")
        return FileResponse(str(STATIC / name), media_type=PAGE_FILES[name])

    @app.post("/api/session")
    def new_session(body: NewSession):
        name = " ".join(body.name.split())
        if any(not c.isprintable() for c in name):
            raise HTTPException(status_code=422, detail="name: printable characters only")
        session = store.new_listener(name, lambda seed: make_plan(spec, seed))
        return state(store.listener(session))

    @app.get("/api/session/{session}")
    def get_session(session: str):
        return state(listener(session))

    @app.get("/api/session/{session}/trial/{k}")
    def get_trial(session: str, k: int):
        found = listener(session)
        trial = trial_of(found, k)
        return {
            "index": k,
            "total": len(found["plan"]),
            "type": spec.kind,
            "text": spec.texts.get(trial["sentence"], ""),
            "slots": letters(len(trial["conditions"])),
            "reference": spec.kind == "mushra",
            "answered": k in store.answered(session),
        }

    @app.get("/api/audio/{session}/{k}/{slot}")
    def get_audio(session: str, k: int, slot: str):
        trial = trial_of(listener(session), k)
        slots = letters(len(trial["conditions"]))
        if spec.kind == "mushra" and slot == "ref":
            condition = HIDDEN_REFERENCE
        elif slot in slots:
            condition = trial["conditions"][slots.index(slot)]
        else:
            _not_found(f"trial {k} has no sample {slot[:8]!r} (it has {', '.join(slots)})")
        body = stimuli[condition, trial["sentence"]]
        return Response(body, media_type="audio/wav", headers={"Cache-Control": "no-store"})

    @app.post("/api/answer")
    def answer(body: Answer):
        found = listener(body.session)
        _record(spec, store, found, trial_of(found, body.trial), body)
        return state(found)

    return app


def _record(spec: TestSpec, store: Store, found: dict, trial: dict, body: Answer) -> None:
    """Checks an answer to the listener ``found``'s ``trial`` and stores it (one transaction):
    409 unless it is their next trial, 422 unless every sample was played and the scores or
    the choice fit the test."""
    done = store.answered(body.session)
    if body.trial in done:
        raise HTTPException(status_code=409, detail=f"trial {body.trial} is already answered")
    current = _next_trial(len(found["plan"]), done)
    if body.trial != current:
        raise HTTPException(
            status_code=409, detail=f"trial {body.trial} is not the next one ({current})"
        )
    slots = letters(len(trial["conditions"]))
    plays = _check_plays(body.plays, slots, spec.kind == "mushra")
    try:
        if spec.kind == "ab":
            pair, left, choice, pair_plays = _preference(body, trial, slots, plays)
            store.add_preference(
                body.session, body.trial, trial["sentence"], pair, left, choice, pair_plays
            )
        else:
            scores = _check_scores(body.scores, slots, spec.score_range)
            shown = zip(slots, trial["conditions"], strict=True)
            rows = [(c, scores[s], plays[s]) for s, c in shown]
            store.add_ratings(body.session, body.trial, trial["sentence"], rows)
    except AlreadyAnswered:  # the same answer, posted twice at once
        raise HTTPException(status_code=409, detail="already answered") from None


def _http_error(_request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


def _validation_error(_request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"error": "; ".join(map(_invalid, exc.errors()))}, status_code=422)


def _invalid(e: dict) -> str:
    """One of pydantic's validation errors as ``field: what is wrong``."""
    if e["type"] == "json_invalid":
        return f"the request body is not valid JSON ({e.get('ctx', {}).get('error', '')})"
    where = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
    return f"{where}: {e['msg']}"


def _check_plays(plays: dict, slots: list[str], with_reference: bool) -> dict:
    """Every sample must have been played before it is rated; counts are whole numbers from 0
    (the open reference, ``ref``, of a MUSHRA trial may be left unplayed) to MAX_PLAYS."""
    unknown = sorted(set(plays) - {*slots, *(["ref"] if with_reference else [])})
    if unknown:
        raise HTTPException(status_code=422, detail=f"plays: unknown sample(s) {unknown}")
    if any(not 0 <= v <= MAX_PLAYS for v in plays.values()):
        raise HTTPException(status_code=422, detail=f"plays: counts must be 0..{MAX_PLAYS}")
    unplayed = [s for s in slots if plays.get(s, 0) < 1]
    if unplayed:
        raise HTTPException(
            status_code=422, detail=f"play every sample before rating (not played: {unplayed})"
        )
    return plays


def _check_scores(scores: dict | None, slots: list[str], score_range) -> dict:
    low, high = score_range
    if scores is None or set(scores) != set(slots):
        raise HTTPException(
            status_code=422, detail=f"scores: expected one score for each of {slots}"
        )
    bad = {s: v for s, v in scores.items() if not low <= v <= high}
    if bad:
        raise HTTPException(status_code=422, detail=f"scores {bad} are outside {low}..{high}")
    return scores


def _preference(body: Answer, trial: dict, slots: list[str], plays: dict) -> tuple:
    """An A/B answer as stored: ``(pair in the test's order, the system on the left, the
    chosen system or "none", the pair's play counts)``."""
    if body.choice not in AB_CHOICES or body.scores is not None:
        raise HTTPException(status_code=422, detail=f"choice: expected one of {list(AB_CHOICES)}")
    shown = trial["conditions"]
    choice = "none" if body.choice == "none" else shown[slots.index(body.choice)]
    pair = trial["pair"]
    return pair, shown[0], choice, [plays[slots[shown.index(s)]] for s in pair]


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` (port 0: a free one), or a UserError saying why
    it cannot be (the port is taken, the host is not this machine's, ...)."""
    if not 0 <= port <= 65535:
        raise UserError(f"port {port}: expected 0..65535")
    sock = socket.socket()
    # As uvicorn does for its own sockets: a restarted server may take its port back at once.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    return sock


@contextlib.contextmanager
def _serving(spec: TestSpec, host: str, port: int):
    """The socket bound, the ratings file opened, the stimuli prepared: yields ``(server,
    socket, store, loudness)``; closes the socket and the ratings file on exit."""
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(contextlib.closing(bind(host, port)))
        store = Store(spec.ratings, spec.kind, spec.fingerprint)
        stack.callback(store.close)
        stimuli, loudness = prepare_stimuli(spec)
        app = create_app(spec, store, stimuli, loudness)
        yield uvicorn.Server(uvicorn.Config(app, log_level="warning")), sock, store, loudness


@contextlib.contextmanager
def running(spec: TestSpec, host: str = "127.0.0.1", port: int = 0):
    """The test served in a background thread of this process, on ``port`` (0: a free one);
    yields ``(url, store, loudness)`` and stops the server on exit (scripts and tests)."""
    with _serving(spec, host, port) as (server, sock, store, loudness):
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the listening-test server did not start")
                time.sleep(0.02)
            yield f"http://{host}:{sock.getsockname()[1]}", store, loudness
        finally:
            server.should_exit = True
            thread.join(10)


def serve(spec: TestSpec, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Prepares the stimuli, opens the ratings file and serves until interrupted."""
    with _serving(spec, host, port) as (server, sock, store, loudness):
        print(
            f"listen: {spec.title}: {len(spec.sentences)} sentences, "
            f"{len(loudness['measured'])} stimuli at {loudness['target_lufs']:.1f} LUFS "
            f"(ITU-R BS.1770-4), ratings -> {spec.ratings}\n"
            f"listen: open http://{host}:{sock.getsockname()[1]}/ (Ctrl-C stops)",
            flush=True,
        )
        server.run(sockets=[sock])
