"""The listening lab end to end: real servers on localhost, real SQLite files, and a scripted
listener in a real headless Chromium (Debian's ``chromium`` driven by Playwright; ``make test``
installs it when it is missing).

The scripted listener knows which blind letter is which system by reading its own plan from
the ratings file: it is an oracle that rates each condition with a chosen score, so the
tables can be checked against those scores.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import REPO
from tests.listen_fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RATE,
    SENTENCES,
    Served,
    write_samples,
    write_test,
)
from tts_jax.cli import main
from tts_jax.errors import UserError
from tts_jax.listen import stimuli
from tts_jax.listen.design import load_test
from tts_jax.listen.results import write_results
from tts_jax.listen.store import Store, read_ratings

# Where to keep the screenshots (the docs/ images are refreshed by setting this to docs/).
SHOTS = os.environ.get("TTS_JAX_LISTEN_SCREENSHOTS")
# The oracle's scores in the MUSHRA test, per condition.
MUSHRA_SCORES = {"reference": 100, "clean": 80, "noisy": 45, "anchor": 15}


def http(method: str, url: str, body: dict | bytes | None = None) -> tuple[int, dict | bytes]:
    """A request with a JSON ``body`` (or these bytes, as they are): ``(status, reply)``."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw, status, kind = r.read(), r.status, r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        raw, status, kind = e.read(), e.code, e.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in kind else raw


def plan_of(db: Path, session: str) -> list[dict]:
    with sqlite3.connect(db) as c:
        return json.loads(c.execute("SELECT plan FROM listeners WHERE session=?", (session,))
                          .fetchone()[0])  # fmt: skip


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    assert (tmp_path / name).stat().st_size > 5000
    if SHOTS:
        shutil.copyfile(tmp_path / name, Path(SHOTS) / name)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    return write_samples(tmp_path_factory.mktemp("listen"))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def play_all(page, slots) -> None:
    for slot in slots:
        page.click(f"button.play[data-slot={slot}]")
        page.wait_for_selector(f"button.play.played[data-slot={slot}]", timeout=10_000)


def set_slider(page, slot: str, value: int) -> None:
    """Through the keyboard, as a listener can: End (100), then ArrowDown to ``value``."""
    page.focus(f"input.score[data-slot={slot}]")
    page.keyboard.press("End")
    for _ in range(100 - value):
        page.keyboard.press("ArrowDown")


# --- pieces --------------------------------------------------------------------------------


def test_anchor_is_a_3_5_khz_low_pass_aligned_with_the_reference():
    t = np.arange(RATE) / RATE
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 6000 * t)
    mid = slice(RATE // 4, 3 * RATE // 4)  # away from the filter's edges

    def gain_db(x):
        y = stimuli.lowpass_anchor(x, RATE)
        return 20 * np.log10(np.std(y[mid]) / np.std(x[mid]))

    assert abs(gain_db(low)) < 0.1
    assert gain_db(high) < -40
    # zero phase: the passed tone is not delayed
    y = stimuli.lowpass_anchor(low, RATE)
    assert np.max(np.abs(y[mid] - low[mid])) < 0.02


def test_loudness_match_reaches_the_target_and_lowers_all_alike_rather_than_clip():
    rng = np.random.default_rng(0)
    quiet, loud = 0.01 * rng.standard_normal(RATE), 0.3 * rng.standard_normal(RATE)
    out, info = stimuli.loudness_match({"q": quiet, "l": loud}, RATE)
    for w in out.values():
        assert stimuli.integrated_loudness(w, RATE) == pytest.approx(-23.0, abs=0.05)
    assert info["target_lufs"] == -23.0
    # A peaky click train cannot reach -23 LUFS unclipped: both go down by the same gain.
    clicks = np.zeros(RATE)
    clicks[:: RATE // 4] = 0.5
    out, info = stimuli.loudness_match({"c": clicks, "l": loud}, RATE)
    assert np.max(np.abs(out["c"])) == pytest.approx(stimuli.PEAK_LIMIT, rel=1e-4)
    lc, ll = (stimuli.integrated_loudness(out[k], RATE) for k in ("c", "l"))
    assert lc == pytest.approx(ll, abs=0.05) and lc == pytest.approx(info["target_lufs"], abs=0.05)
    assert info["target_lufs"] < -23.0


def test_test_files_are_checked(samples, tmp_path):
    with pytest.raises(UserError, match="type = 'mosh'"):
        load_test(write_test(tmp_path, samples, "mosh"))
    with pytest.raises(UserError, match=r"systems \['nope'\] are not in"):
        load_test(write_test(tmp_path, samples, "mos", systems=["clean", "nope"]))
    with pytest.raises(UserError, match="unknown key"):
        load_test(write_test(tmp_path, samples, "ab", sentence=3))
    with pytest.raises(UserError, match="not a samples folder"):
        load_test(write_test(tmp_path, tmp_path, "ab"))
    with pytest.raises(UserError, match="include_reference must be true or false"):
        load_test(write_test(tmp_path, samples, "mos", include_reference="no"))
    with pytest.raises(UserError, match="non-empty list of sentence ids"):
        load_test(write_test(tmp_path, samples, "mos", sentences=[]))
    with pytest.raises(UserError, match="name a pair twice"):
        load_test(
            write_test(tmp_path, samples, "ab", pairs=[["clean", "noisy"], ["noisy", "clean"]])
        )
    (tmp_path / "latin1.toml").write_bytes('title = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(UserError, match="not valid TOML"):
        load_test(tmp_path / "latin1.toml")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "samples.json").write_text('{"systems": ')
    with pytest.raises(UserError, match="not a samples manifest"):
        load_test(write_test(tmp_path, broken, "ab"))
    narrow = tmp_path / "narrow"  # the same folder, as if its audio were at 6 kHz
    shutil.copytree(samples, narrow)
    manifest = json.loads((narrow / "samples.json").read_text())
    (narrow / "samples.json").write_text(json.dumps({**manifest, "sample_rate": 6000}))
    with pytest.raises(UserError, match="anchor needs audio above 7000 Hz"):
        load_test(write_test(tmp_path, narrow, "mushra"))
    spec = load_test(write_test(tmp_path, samples, "mushra", sentences=1))
    assert spec.sentences == SENTENCES[:1]
    assert spec.conditions == ("clean", "noisy", "reference", "anchor")
    # A ratings file belongs to one test: another test's definition is refused, not mixed in.
    Store(spec.ratings, spec.kind, spec.fingerprint).close()
    other = load_test(write_test(tmp_path, samples, "mushra", sentences=2))
    with pytest.raises(UserError, match="holds the ratings of another test"):
        Store(other.ratings, other.kind, other.fingerprint)
    with pytest.raises(UserError, match="holds the ratings of another test"):
        read_ratings(other.ratings, other.kind, other.fingerprint)
    not_db = tmp_path / "not_a_database.sqlite"
    not_db.write_bytes(b"these are no ratings" * 100)
    for open_it in (Store, read_ratings):
        with pytest.raises(UserError, match="is not a ratings file"):
            open_it(not_db, spec.kind, spec.fingerprint)


def test_server_validates_every_request(samples, tmp_path):
    with Served(write_test(tmp_path, samples, "mushra")) as s:
        status, state = http("POST", f"{s.url}/api/session", {"name": "probe"})
        assert status == 200 and state["next"] == 0 and state["total"] == 2
        sid = state["session"]
        plays = dict.fromkeys("ABCD", 1)
        ok = dict.fromkeys("ABCD", 50)
        cases = [
            ("GET", f"/api/session/{'x' * 16}", None, 404, "unknown session"),
            ("GET", f"/api/session/{sid}/trial/7", None, 404, "trial 7 does not exist"),
            ("GET", f"/api/audio/{sid}/0/E", None, 404, "has no sample"),
            ("GET", f"/api/audio/{sid}/0/..%2F..%2Fsamples.json", None, 404, ""),
            ("GET", "/static/..%2Fdesign.py", None, 404, ""),
            ("GET", "/static/listen.html", None, 404, "no file"),
            ("POST", "/api/answer", {"session": sid, "trial": 0, "scores": {**ok, "B": 101},
                                      "plays": plays}, 422, "outside 0..100"),
            ("POST", "/api/answer", {"session": sid, "trial": 0, "scores": {"A": 5},
                                      "plays": plays}, 422, "one score for each"),
            ("POST", "/api/answer", {"session": sid, "trial": 0, "scores": ok,
                                      "plays": {"A": 1}}, 422, "play every sample"),
            ("POST", "/api/answer", {"session": sid, "trial": 1, "scores": ok,
                                      "plays": plays}, 409, "not the next one"),
            ("POST", "/api/answer", {"session": sid, "trial": "zero"}, 422, "trial"),
            # a JSON true is no score, "0" no trial number, a misspelt field no field
            ("POST", "/api/answer", {"session": sid, "trial": 0, "scores": {**ok, "A": True},
                                      "plays": plays}, 422, "scores.A"),
            ("POST", "/api/answer", {"session": sid, "trial": "0", "scores": ok,
                                      "plays": plays}, 422, "trial"),
            ("POST", "/api/answer", {"session": sid, "trial": 0, "scores": ok, "plays": plays,
                                      "score": 3}, 422, "score: Extra inputs"),
            ("POST", "/api/answer", {"session": sid, "trial": 0, "scores": ok,
                                      "plays": {**plays, "ref": -2}}, 422, "plays: counts"),
            ("POST", "/api/answer", b'{"session": "', 422, "not valid JSON"),
            ("POST", "/api/answer", b"[" * 20_000, 413, "over 16384 bytes"),
            ("POST", "/api/session", {"name": "x" * 81}, 422, "name"),
        ]  # fmt: skip
        for method, path, body, want, message in cases:
            status, reply = http(method, s.url + path, body)
            assert status == want, (path, reply)
            assert message in (reply.get("error", "") if isinstance(reply, dict) else ""), reply
        # A body without a stated length (chunked) is refused before it is read.
        conn = HTTPConnection(s.url.removeprefix("http://"), timeout=10)
        conn.request("POST", "/api/answer", body=iter([b"{}"]), encode_chunked=True,
                     headers={"Content-Type": "application/json"})  # fmt: skip
        reply = conn.getresponse()
        assert reply.status == 411 and b"Content-Length" in reply.read()
        conn.close()
        status, wav = http("GET", f"{s.url}/api/audio/{sid}/0/A")
        assert status == 200 and wav[:4] == b"RIFF"
        answer = {"session": sid, "trial": 0, "scores": ok, "plays": plays}
        assert http("POST", f"{s.url}/api/answer", answer)[0] == 200
        status, reply = http("POST", f"{s.url}/api/answer", answer)
        assert status == 409 and "already answered" in reply["error"]
    with sqlite3.connect(s.spec.ratings) as c:
        assert c.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 4  # one trial only


# --- in the browser ------------------------------------------------------------------------


def test_mushra_in_chromium_rates_resumes_after_reload_and_reports(samples, tmp_path, browser):
    with Served(write_test(tmp_path, samples, "mushra")) as s:
        page = browser.new_page()
        page.goto(s.url)
        page.fill("#name", "oracle")
        page.click("#start")
        page.wait_for_selector("button#submit")
        sid = page.evaluate("localStorage.getItem('tts-jax-listen-session')")
        plan = plan_of(s.spec.ratings, sid)
        for k, trial in enumerate(plan):
            assert page.locator("#progress").inner_text().startswith(f"Trial {k + 1} of 2")
            assert page.locator("#submit").is_disabled()  # nothing played yet
            play_all(page, ["ref", "A", "B", "C", "D"])
            for slot, condition in zip("ABCD", trial["conditions"], strict=True):
                set_slider(page, slot, MUSHRA_SCORES[condition])
            if k == 0:
                shot(page, tmp_path, "listen_mushra.png")
            page.click("#submit")
            if k == 0:  # the answer is in SQLite; a reload continues at the next trial
                page.wait_for_selector("text=Trial 2 of 2")
                page.reload()
                page.wait_for_selector("text=Trial 2 of 2")
                assert f"session={sid}" in page.url
        page.wait_for_selector("#done")

        # A listener who cannot find the hidden reference, through the API directly.
        _, state = http("POST", f"{s.url}/api/session", {"name": "careless"})
        careless = state["session"]
        for k in range(len(plan_of(s.spec.ratings, careless))):
            scores = {slot: 50 for slot in "ABCD"}
            answer = {"session": careless, "trial": k, "scores": scores,
                      "plays": dict.fromkeys("ABCD", 1)}  # fmt: skip
            if k == 0:  # an out-of-range score posted directly is refused and not stored
                status, reply = http("POST", f"{s.url}/api/answer",
                                     {**answer, "scores": {**scores, "A": -3}})  # fmt: skip
                assert status == 422 and "outside 0..100" in reply["error"]
            assert http("POST", f"{s.url}/api/answer", answer)[0] == 200

    with sqlite3.connect(s.spec.ratings) as c:
        rows = c.execute(
            "SELECT trial, sentence, system, score, play_count FROM ratings WHERE listener=?",
            (sid,),
        ).fetchall()
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        careless_scores = {r[0] for r in c.execute(
            "SELECT score FROM ratings WHERE listener=?", (careless,))}  # fmt: skip
    assert careless_scores == {50.0}
    assert len(rows) == 8  # 2 trials x 4 conditions
    for trial, sentence, system, score, plays in rows:
        assert sentence == plan[trial]["sentence"]
        assert score == MUSHRA_SCORES[system] and plays >= 1

    md = write_results(s.spec, tmp_path / "results")
    assert "careless (" in md and "below 90 in 2 of 2 trials (100 % > 15 %)" in md
    assert "1 of 2 excluded" in md
    for system, score in MUSHRA_SCORES.items():  # only the oracle's ratings remain
        assert f"| {system} | 2 | 1 | {score:.1f} | {score:.1f} – {score:.1f} |" in md
    assert (tmp_path / "results" / "results.png").stat().st_size > 5000
    systems_csv = (tmp_path / "results" / "systems.csv").read_text().splitlines()
    assert systems_csv[0].startswith("system,n,listeners,mean,t_low,t_high,boot_low,boot_high")
    assert len(systems_csv) == 5
    # The CLI prints and writes the same tables.
    assert main(["listen", "results", "--test", str(s.spec.path), "--out",
                 str(tmp_path / "cli")]) == 0  # fmt: skip
    assert (tmp_path / "cli" / "results.md").read_text() == md


def test_ab_in_chromium(samples, tmp_path, browser):
    with Served(write_test(tmp_path, samples, "ab")) as s:
        page = browser.new_page()
        page.goto(s.url)
        page.click("#start")
        page.wait_for_selector("button#submit")
        sid = page.evaluate("localStorage.getItem('tts-jax-listen-session')")
        plan = plan_of(s.spec.ratings, sid)
        assert len(plan) == 2  # one pair x two sentences
        for k, trial in enumerate(plan):
            play_all(page, ["A", "B"])
            # The oracle prefers "clean" on the first sentence, has no preference on the other.
            choice = "none" if trial["sentence"] == SENTENCES[1] else "AB"[
                trial["conditions"].index("clean")]  # fmt: skip
            page.check(f"input[name=choice][value={choice}]")
            if k == 0:
                shot(page, tmp_path, "listen_ab.png")
            page.click("#submit")
            page.wait_for_selector("#done" if k == 1 else "text=Trial 2 of 2")
    with sqlite3.connect(s.spec.ratings) as c:
        rows = c.execute(
            "SELECT sentence, system_a, system_b, left_system, choice, plays_a, plays_b "
            "FROM preferences"
        ).fetchall()
    assert sorted(r[0] for r in rows) == list(SENTENCES)
    for sentence, a, b, left, choice, pa, pb in rows:
        assert (a, b) == ("clean", "noisy") and left in (a, b) and pa >= 1 and pb >= 1
        assert choice == ("none" if sentence == SENTENCES[1] else "clean")
    md = write_results(s.spec, tmp_path / "results")
    assert "| clean | noisy | 2 | 50 % (9–91) | 0 % (0–66) | 50 % (9–91) | 1 | 1 |" in md
    with open(tmp_path / "results" / "preferences.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))  # one column a number: share, its interval's bounds
    assert float(row["share_a"]) == 0.5 and float(row["share_b_high"]) == pytest.approx(
        0.658, abs=1e-3
    )


def test_mos_and_the_samples_page_in_chromium(samples, tmp_path, browser):
    with Served(write_test(tmp_path, samples, "mos", include_reference=True)) as s:
        page = browser.new_page()
        page.goto(s.url)
        page.click("#start")
        page.wait_for_selector("button#submit")
        assert "Quality of the speech" in page.inner_text("main")
        assert page.locator("input[name=choice]").count() == 5
        play_all(page, ["A"])
        page.check("input[name=choice][value='4']")
        shot(page, tmp_path, "listen_mos.png")
        page.click("#submit")
        page.wait_for_selector("text=Trial 2 of 6")  # 3 conditions x 2 sentences
    with sqlite3.connect(s.spec.ratings) as c:
        assert c.execute("SELECT score, play_count FROM ratings").fetchall() == [(4.0, 1)]

    # The samples page opens from disk: every player loads its wav, every image its PNG.
    page = browser.new_page()
    page.goto((samples / "index.html").as_uri())
    players = page.locator("audio")
    assert players.count() == 3 * len(SENTENCES)  # reference + two systems
    for i in range(players.count()):
        players.nth(i).evaluate("a => { a.preload = 'auto'; a.load(); }")
    page.wait_for_function(
        "[...document.querySelectorAll('audio')].every(a => a.readyState >= 1)", timeout=10_000
    )
    durations = page.evaluate("[...document.querySelectorAll('audio')].map(a => a.duration)")
    assert durations == pytest.approx([1.0] * len(durations), abs=0.01)
    page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    page.wait_for_function(
        "[...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    hrefs = page.evaluate("[...document.querySelectorAll('[src]')].map(e => e.getAttribute('src'))")
    assert hrefs and not any(h.startswith(("/", "file:", "http")) for h in hrefs)
    shot(page, tmp_path, "listen_samples.png")


# --- the command line ----------------------------------------------------------------------


def test_listen_cli_refuses_bad_input(tmp_path, samples, capsys):
    assert main(["listen", "page", "--system", "nonsense", "--out", str(tmp_path / "p")]) == 2
    assert "expected NAME=PATH" in capsys.readouterr().err
    assert main(["listen", "page", "--system", f"x={tmp_path}", "--out", str(tmp_path)]) == 2
    assert "neither a workdir or exported model" in capsys.readouterr().err
    assert main(["listen", "page", "--system", f"anchor={samples}", "--out", str(tmp_path)]) == 2
    assert "system name 'anchor'" in capsys.readouterr().err
    run = tmp_path / "run"
    shutil.copytree(samples / "audio" / "clean", run)
    (run / "done.json").write_text('{"mcd": ')
    assert main(["listen", "page", "--system", f"x={run}", "--out", str(tmp_path / "p")]) == 2
    assert "done.json is not valid JSON" in capsys.readouterr().err
    test = write_test(tmp_path, samples, "mos")
    assert main(["listen", "results", "--test", str(test)]) == 2
    assert "no ratings yet" in capsys.readouterr().err
    for port in ("99999", None):  # out of range; taken
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            argv = ["listen", "serve", "--test", str(test), "--port",
                    port or str(taken.getsockname()[1])]  # fmt: skip
            assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert ("expected 0..65535" if port else "cannot serve on 127.0.0.1") in err


@pytest.mark.slow
def test_served_by_the_cli_survives_kill_9_and_resumes(samples, tmp_path):
    test = write_test(tmp_path, samples, "mos")
    with socket.socket() as probe:  # a free port (the server binds it again by number)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def start():
        proc = subprocess.Popen(
            [sys.executable, "-m", "tts_jax", "listen", "serve", "--test", str(test),
             "--port", str(port)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for _ in range(600):
            try:
                if http("GET", f"http://127.0.0.1:{port}/")[0] == 200:
                    return proc
            except OSError:
                time.sleep(0.1)
        proc.kill()
        raise AssertionError(proc.stdout.read())

    url = f"http://127.0.0.1:{port}"
    proc = start()
    try:
        _, state = http("POST", f"{url}/api/session", {"name": "k"})
        sid = state["session"]
        for k in range(2):
            answer = {"session": sid, "trial": k, "scores": {"A": 3}, "plays": {"A": 1}}
            assert http("POST", f"{url}/api/answer", answer)[0] == 200
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = start()
    try:
        status, state = http("GET", f"{url}/api/session/{sid}")
        assert status == 200 and state["answered"] == 2 and state["next"] == 2
    finally:
        proc.terminate()
        proc.wait()
    with sqlite3.connect(load_test(test).ratings) as c:
        assert c.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 2
