"""A listening test's definition (``TEST.toml``) and each listener's randomised plan.

``TEST.toml`` (paths relative to the file)::

    type = "mushra"            # "mushra" (ITU-R BS.1534-3), "mos" (ITU-T P.800 ACR) or "ab"
    samples = "samples"        # a folder written by `tts-jax listen page`
    systems = ["a", "b"]       # optional: a subset of its systems (default: all of them)
    sentences = 8              # optional: the first N sentences, or a list of sentence ids
    ratings = "ratings.sqlite" # optional (default: TEST.sqlite beside TEST.toml)
    title = "..."              # optional
    pairs = [["a", "b"]]       # A/B only, optional (default: every pair of systems)
    include_reference = true   # MOS only: rate the reference recordings as a system too

What a trial holds, by test type:

* MUSHRA: one sentence; the open reference, and behind blind letters every system, the hidden
  reference and the 3.5 kHz low-pass anchor, each with a 0-100 slider.
* MOS: one stimulus (a system's rendering of one sentence), rated 1-5 on the ACR scale.
* A/B: one sentence by two systems, "A", "B" or "no preference".

A listener's plan draws the order of the trials and, within each, the order of the
conditions behind the letters (for A/B, which side each system is on) from a seed of their
own; it is stored with the listener, so a reload finds the same plan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import tomllib
from pathlib import Path

import numpy as np

from tts_jax.errors import UserError
from tts_jax.listen.stats import ANCHOR, HIDDEN_REFERENCE
from tts_jax.listen.stimuli import ANCHOR_CUTOFF_HZ

KINDS = ("mushra", "mos", "ab")
MANIFEST = "samples.json"  # what `tts-jax listen page` writes beside index.html
KEYS = {"type", "samples", "systems", "sentences", "ratings", "title", "pairs", "include_reference"}
# Scores a trial accepts: MUSHRA's continuous quality scale in whole points, the ACR scale.
SCORE_RANGE = {"mushra": (0, 100), "mos": (1, 5)}
AB_CHOICES = ("A", "B", "none")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class TestSpec:
    kind: str
    title: str
    path: Path  # the TEST.toml
    samples: Path
    systems: tuple[str, ...]
    sentences: tuple[str, ...]
    texts: dict  # sentence id -> text ("" when unknown)
    audio: dict  # condition -> sentence id -> wav Path (the reference under "reference")
    sample_rate: int
    ratings: Path
    pairs: tuple[tuple[str, str], ...] = ()
    include_reference: bool = False

    @property
    def conditions(self) -> tuple[str, ...]:
        """What a MUSHRA trial's sliders or a MOS test's stimuli are."""
        if self.kind == "mushra":
            return (*self.systems, HIDDEN_REFERENCE, ANCHOR)
        if self.kind == "mos" and self.include_reference:
            return (*self.systems, HIDDEN_REFERENCE)
        return self.systems

    @property
    def fingerprint(self) -> str:
        """What the ratings of this test depend on; a database holds the ratings of one."""
        what = [self.kind, self.systems, self.sentences, self.pairs, self.include_reference]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]

    @property
    def score_range(self) -> tuple[int, int]:
        return SCORE_RANGE[self.kind]


def _fail(path, message: str):
    raise UserError(f"{path}: {message}")


def read_manifest(samples: Path) -> dict:
    """A samples folder's ``samples.json`` (written by ``tts-jax listen page``)."""
    manifest = samples / MANIFEST
    if not manifest.is_file():
        raise UserError(
            f"{samples} is not a samples folder (no {MANIFEST}); write one with "
            "`tts-jax listen page --out DIR ...`"
        )
    try:
        found = json.loads(manifest.read_text(encoding="utf-8"))
        ok = isinstance(found, dict) and {"systems", "sentences", "audio", "sample_rate"} <= set(
            found
        )
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        _fail(manifest, "not a samples manifest as `tts-jax listen page` writes it; write it again")
    return found


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"test file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        _fail(path, f"not valid TOML ({e})")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        _fail(path, f"unknown key(s) {unknown}; the keys are {sorted(KEYS)}")
    for key in ("samples", "ratings", "title"):
        if key in raw and not isinstance(raw[key], str):
            _fail(path, f"{key} must be a string; got {raw[key]!r}")
    if not isinstance(raw.get("include_reference", False), bool):
        _fail(path, f"include_reference must be true or false; got {raw['include_reference']!r}")
    return raw


def _systems(path: Path, raw: dict, kind: str, samples: Path, available: list) -> list[str]:
    systems = raw.get("systems", available)
    if not isinstance(systems, list) or not all(isinstance(s, str) for s in systems):
        _fail(path, "systems must be a list of names")
    missing = [s for s in systems if s not in available]
    if missing:
        _fail(path, f"systems {missing} are not in {samples} (it has {available})")
    if len(set(systems)) != len(systems) or not systems:
        _fail(path, f"systems must be distinct and at least one; got {systems}")
    if kind == "ab" and len(systems) < 2:
        _fail(path, "an A/B test needs two or more systems")
    return systems


def _sentences(path: Path, raw: dict, samples: Path, all_ids: list) -> list[str]:
    chosen = raw.get("sentences", len(all_ids))
    if isinstance(chosen, int) and not isinstance(chosen, bool):
        if chosen < 1:
            _fail(path, f"sentences = {chosen}; expected a number >= 1 or a list of ids")
        return all_ids[:chosen]
    if not isinstance(chosen, list) or not chosen:
        _fail(path, "sentences must be a number >= 1 or a non-empty list of sentence ids")
    bad = [s for s in chosen if s not in all_ids]
    if bad:
        _fail(path, f"sentences {bad} are not in {samples} (it has {all_ids})")
    return list(dict.fromkeys(chosen))


def _pairs(path: Path, raw: dict, systems: list[str]) -> tuple[tuple[str, str], ...]:
    """An A/B test's pairs, each in the order the statistics report it."""
    given = raw.get("pairs", [list(p) for p in itertools.combinations(systems, 2)])
    ok = isinstance(given, list) and all(
        isinstance(p, list) and len(p) == 2 and p[0] != p[1] and set(p) <= set(systems)
        for p in given
    )
    if not ok or not given:
        _fail(path, f"pairs must be a list of two different systems of {systems}")
    if len({frozenset(p) for p in given}) != len(given):
        _fail(path, f"pairs {given} name a pair twice (A/B order is drawn per listener)")
    return tuple(tuple(p) for p in given)


def _audio(path: Path, manifest: dict, samples: Path, conditions, sentences) -> dict:
    """condition -> sentence id -> wav Path, each inside the samples folder."""
    audio = {}
    for condition in conditions:
        audio[condition] = {}
        for sid in sentences:
            rel = manifest["audio"].get(condition, {}).get(sid)
            wav = (samples / rel).resolve() if isinstance(rel, str) else None
            if wav is None or not wav.is_file() or samples not in wav.parents:
                _fail(path, f"{condition} has no audio for sentence {sid!r} in {samples}")
            audio[condition][sid] = wav
    return audio


def load_test(path) -> TestSpec:
    """Reads and checks ``TEST.toml`` and the samples folder it names."""
    path = Path(path)
    raw = _read_toml(path)
    kind = raw.get("type")
    if kind not in KINDS:
        _fail(path, f"type = {kind!r}; expected one of {', '.join(repr(k) for k in KINDS)}")
    if "samples" not in raw:
        _fail(path, "needs samples = 'DIR' (a folder written by `tts-jax listen page`)")
    samples = (path.parent / raw["samples"]).resolve()
    manifest = read_manifest(samples)
    systems = _systems(path, raw, kind, samples, list(manifest["systems"]))
    sentences = _sentences(path, raw, samples, [s["id"] for s in manifest["sentences"]])
    pairs = _pairs(path, raw, systems) if kind == "ab" else ()
    include_reference = raw.get("include_reference", False)
    needs_reference = kind == "mushra" or (kind == "mos" and include_reference)
    if needs_reference and HIDDEN_REFERENCE not in manifest["audio"]:
        _fail(path, f"a {kind} test needs reference recordings; {samples} has none")
    rate = int(manifest["sample_rate"])
    if kind == "mushra" and rate <= 2 * ANCHOR_CUTOFF_HZ:
        _fail(path, f"the {ANCHOR_CUTOFF_HZ:.0f} Hz low-pass anchor needs audio above "
                    f"{2 * ANCHOR_CUTOFF_HZ:.0f} Hz; {samples} is at {rate} Hz")  # fmt: skip
    keep = [*systems, *([HIDDEN_REFERENCE] if needs_reference else [])]
    texts = {s["id"]: s.get("text", "") for s in manifest["sentences"]}
    return TestSpec(
        kind=kind,
        title=raw.get("title", f"{kind.upper()} test: {', '.join(systems)}"),
        path=path,
        samples=samples,
        systems=tuple(systems),
        sentences=tuple(sentences),
        texts={k: texts[k] for k in sentences},
        audio=_audio(path, manifest, samples, keep, sentences),
        sample_rate=rate,
        ratings=path.parent / raw.get("ratings", path.with_suffix(".sqlite").name),
        pairs=pairs,
        include_reference=include_reference,
    )


def make_plan(spec: TestSpec, seed: int) -> list[dict]:
    """A listener's trials in their order: ``[{"sentence", "conditions": [...]}]``, the
    conditions in the order of the letters A, B, ... on screen (A/B trials also name their
    ``"pair"`` in the test's order, which the statistics keep)."""
    rng = np.random.default_rng(seed)

    def shuffled(items) -> list:
        items = list(items)
        return [items[i] for i in rng.permutation(len(items))]

    if spec.kind == "mushra":
        trials = [{"sentence": s, "conditions": shuffled(spec.conditions)} for s in spec.sentences]
    elif spec.kind == "mos":
        trials = [
            {"sentence": s, "conditions": [c]} for s in spec.sentences for c in spec.conditions
        ]
    else:
        trials = [
            {"sentence": s, "conditions": shuffled(pair), "pair": list(pair)}
            for s in spec.sentences
            for pair in spec.pairs
        ]
    return shuffled(trials)


def letters(n: int) -> list[str]:
    """The blind labels of a trial's ``n`` conditions: A, B, C, ..."""
    return [chr(ord("A") + i) for i in range(n)]
