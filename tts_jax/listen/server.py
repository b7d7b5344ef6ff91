"""``tts-jax listen serve``: a listening test in the browser (FastAPI, served by uvicorn).

FastAPI rather than the standard library's ``http.server``: its request models give every
POST body a checked shape with a 422 that names the bad field, and uvicorn serves several
listeners at once; the page itself is plain HTML/JS/CSS shipped as package data.

Routes (every one validated; an unknown session, trial or slot is a 404, a bad score a 422, a
second answer to a trial a 409):

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
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from tts_jax import audio
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


class NewSession(BaseModel):
    name: str = Field("", max_length=80)


class Answer(BaseModel):
    session: str = Field(max_length=40)
    trial: int
    scores: dict[str, int] | None = None  # MUSHRA / MOS: letter -> score
    choice: str | None = None  # A/B: "A", "B" or "none"
    plays: dict[str, int] = Field(default_factory=dict)  # letter (or "ref") -> times played


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


def create_app(spec: TestSpec, store: Store, stimuli: dict, loudness: dict) -> FastAPI:
    """The test's web application."""
    app = FastAPI(title=spec.title, docs_url=None, redoc_url=None, openapi_url=None)

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

    def state(found: dict) -> dict:
        done = store.answered(found["session"])
        total = len(found["plan"])
        upcoming = [k for k in range(total) if k not in done]
        return {
            "session": found["session"],
            "name": found["name"],
            "type": spec.kind,
            "title": spec.title,
            "total": total,
            "answered": len(done),
            "next": upcoming[0] if upcoming else None,
            "score_range": list(spec.score_range) if spec.kind != "ab" else None,
            "scale": {"mushra": MUSHRA_SCALE, "mos": ACR}.get(spec.kind),
            "question": ACR_QUESTION if spec.kind == "mos" else None,
            "loudness_lufs": round(loudness["target_lufs"], 1),
        }

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
        trial = trial_of(found, body.trial)
        slots = letters(len(trial["conditions"]))
        current = state(found)["next"]
        if body.trial in store.answered(body.session):
            raise HTTPException(status_code=409, detail=f"trial {body.trial} is already answered")
        if body.trial != current:
            raise HTTPException(
                status_code=409, detail=f"trial {body.trial} is not the next one ({current})"
            )
        plays = _check_plays(body.plays, slots)
        if spec.kind == "ab":
            if body.choice not in AB_CHOICES or body.scores is not None:
                raise HTTPException(
                    status_code=422, detail=f"choice: expected one of {list(AB_CHOICES)}"
                )
            shown = trial["conditions"]
            choice = "none" if body.choice == "none" else shown[slots.index(body.choice)]
            pair = trial["pair"]
            try:
                store.add_preference(
                    body.session, body.trial, trial["sentence"], pair, shown[0], choice,
                    [plays[slots[shown.index(s)]] for s in pair],
                )  # fmt: skip
            except AlreadyAnswered:
                raise HTTPException(status_code=409, detail="already answered") from None
        else:
            scores = _check_scores(body.scores, slots, spec.score_range)
            rows = [
                (c, scores[s], plays[s]) for s, c in zip(slots, trial["conditions"], strict=True)
            ]
            try:
                store.add_ratings(body.session, body.trial, trial["sentence"], rows)
            except AlreadyAnswered:
                raise HTTPException(status_code=409, detail="already answered") from None
        return state(found)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request, exc: StarletteHTTPException):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def invalid(_request, exc: RequestValidationError):
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": where}, status_code=422)

    return app


def _check_plays(plays: dict, slots: list[str]) -> dict:
    """Every sample must have been played before it is rated."""
    unknown = sorted(set(plays) - {*slots, "ref"})
    if unknown:
        raise HTTPException(status_code=422, detail=f"plays: unknown sample(s) {unknown}")
    unplayed = [s for s in slots if plays.get(s, 0) < 1]
    if unplayed:
        raise HTTPException(
            status_code=422, detail=f"play every sample before rating (not played: {unplayed})"
        )
    if any(v > 10_000 for v in plays.values()):
        raise HTTPException(status_code=422, detail="plays: implausible play count")
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


@contextlib.contextmanager
def running(spec: TestSpec, host: str = "127.0.0.1", port: int = 0):
    """The test served in a background thread of this process, on ``port`` (0: a free one);
    yields ``(url, store, loudness)`` and stops the server on exit (scripts and tests)."""
    store = Store(spec.ratings, spec.kind, spec.fingerprint)
    stimuli, loudness = prepare_stimuli(spec)
    server = uvicorn.Server(
        uvicorn.Config(create_app(spec, store, stimuli, loudness), log_level="warning")
    )
    sock = socket.socket()
    sock.bind((host, port))
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
        store.close()
        sock.close()


def serve(spec: TestSpec, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Prepares the stimuli, opens the ratings file and serves until interrupted."""
    store = Store(spec.ratings, spec.kind, spec.fingerprint)
    stimuli, loudness = prepare_stimuli(spec)
    app = create_app(spec, store, stimuli, loudness)
    print(
        f"listen: {spec.title}: {len(spec.sentences)} sentences, "
        f"{len(stimuli)} stimuli at {loudness['target_lufs']:.1f} LUFS (ITU-R BS.1770-4), "
        f"ratings -> {spec.ratings}\nlisten: open http://{host}:{port}/ (Ctrl-C stops)",
        flush=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        store.close()
