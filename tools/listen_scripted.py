"""Scripted listeners through a real listening-test server: the example table of docs/listening.md.

    python tools/listen_scripted.py --samples runs/listen/shipped --out runs/listen/scripted

SIMULATED RATINGS, NOT A LISTENING TEST. Each scripted listener starts a session on a
MUSHRA test of the samples folder (served on localhost by ``tts_jax.listen.server``), and
answers every trial over HTTP with a score drawn around a fixed mean per condition (--mean,
plus Gaussian noise); one careless listener rates everything at random, so the post-screening
has someone to exclude. What the tables then show is the statistics' behaviour on ratings of
known means, nothing about how the systems sound.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

import numpy as np

from tts_jax.listen.design import letters, load_test
from tts_jax.listen.results import write_results
from tts_jax.listen.server import running

MEANS = {"reference": 99.0, "anchor": 22.0}
# Listeners who find the hidden reference rate it near 100: a narrower spread for it.
REFERENCE_NOISE = 3.0


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def system_mean(text: str) -> tuple[str, float]:
    """argparse type of ``--mean SYSTEM=MEAN``."""
    name, _, value = text.partition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SYSTEM=MEAN (e.g. a=55), got {text!r}"
        ) from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", required=True, help="a folder written by `tts-jax listen page`")
    p.add_argument("--out", required=True, help="where the test file, ratings and tables go")
    p.add_argument("--listeners", type=int, default=8)
    p.add_argument(
        "--mean", action="append", default=[], type=system_mean, help="SYSTEM=MEAN (default 60)"
    )
    p.add_argument("--noise", type=float, default=8.0, help="standard deviation of a score")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ratings = out / "scripted.sqlite"
    ratings.unlink(missing_ok=True)
    test = out / "scripted.toml"
    test.write_text(  # JSON's strings are TOML's: any path quoted as it should be
        f'type = "mushra"\nsamples = {json.dumps(str(Path(args.samples).resolve()))}\n'
        'title = "Scripted listeners (simulated ratings, not a listening test)"\n'
        'ratings = "scripted.sqlite"\n'
    )
    spec = load_test(test)
    means = {**MEANS, **dict(args.mean)}
    rng = np.random.default_rng(args.seed)

    def spread(condition: str) -> float:
        return REFERENCE_NOISE if condition == "reference" else args.noise

    def draw(careless: bool) -> dict:
        """A listener's score of every (sentence, condition), drawn in the test's own order so
        that --seed alone fixes the table (each listener's trial order is drawn at random)."""
        return {
            (sentence, c): int(rng.uniform(0, 100))
            if careless
            else int(np.clip(rng.normal(means.get(c, 60.0), spread(c)), 0, 100))
            for sentence in spec.sentences
            for c in spec.conditions
        }

    with running(spec) as (url, store, _):
        for i in range(args.listeners + 1):
            careless = i == args.listeners
            name = "scripted-careless" if careless else f"scripted-{i}"
            session = post(f"{url}/api/session", {"name": name})["session"]
            scores = draw(careless)
            for k, trial in enumerate(store.listener(session)["plan"]):
                slots = letters(len(trial["conditions"]))
                shown = zip(slots, trial["conditions"], strict=True)
                answer = {"session": session, "trial": k,
                          "scores": {s: scores[trial["sentence"], c] for s, c in shown},
                          "plays": dict.fromkeys(slots, 1)}  # fmt: skip
                post(f"{url}/api/answer", answer)
    print(write_results(spec, out / "results"))


if __name__ == "__main__":
    sys.exit(main())
