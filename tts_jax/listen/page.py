"""``tts-jax listen page``: a static samples page, one audio player per system and sentence.

A system is one of

* a training workdir or exported model of a family with the synthesizer role (text -> mel,
  e.g. Tacotron 2; :class:`tts_jax.pretrained.TTS` speaks it, with ``--vocoder``),
* one with the vocoder role (mel -> wav, e.g. a ClariNet student): it vocodes the corpus's
  ground-truth mels,
* a folder of wavs named by sentence id (e.g. ``tts-jax evaluate --save-audio``'s ``audio/``;
  an ``eval.json`` beside it gives the metrics).

The sentences: ``--sentences FILE`` (one a line; the reference is espeak speaking them as the
corpus builder does), or the first ``--limit`` utterances of a corpus split (the reference is
the recording; vocoders get its mels). Without either, a page of synthesizers reads
``data/heldout_sentences.txt`` and one with a vocoder the ``test`` split. A page of wav
folders alone takes the sentence ids they share, and ``--reference DIR`` for the reference.

The folder written (relative links only, opens from disk)::

    OUT/index.html  OUT/samples.css  OUT/samples.json (what `listen serve` reads)
    OUT/audio/SYSTEM/ID.wav    OUT/images/SYSTEM/ID_mel.png    OUT/images/SYSTEM/ID_alignment.png
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import importlib.resources
import json
import math
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np

from tts_jax import audio, workdir
from tts_jax.data.corpus import espeak_reference
from tts_jax.data.inputs import corpus_from_config
from tts_jax.data.sentences import read_sentences
from tts_jax.errors import UserError
from tts_jax.family import get_family
from tts_jax.listen.design import MANIFEST, NAME
from tts_jax.listen.stats import ANCHOR, HIDDEN_REFERENCE
from tts_jax.plotting import alignment_image, mel_image, save_png
from tts_jax.pretrained import DATA
from tts_jax.pretrained import load as load_tts
from tts_jax.text import TextConfig
from tts_jax.vocoders import load_vocoder

STATIC = importlib.resources.files("tts_jax.listen") / "static"
HELDOUT = DATA / "heldout_sentences.txt"
RESERVED = {HIDDEN_REFERENCE, ANCHOR}  # the names a test gives its own conditions


@dataclasses.dataclass
class System:
    name: str
    path: Path
    role: str  # "synthesizer", "vocoder" or "wavs"
    config: object = None
    metrics: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Sentence:
    id: str
    text: str
    reference: np.ndarray | None  # [T]
    mel: np.ndarray | None = None  # the corpus's ground-truth mel [frames, n_mels]


def parse_system(text: str) -> tuple[str, Path]:
    """``NAME=PATH`` (``--system``)."""
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise UserError(f"--system {text!r}: expected NAME=PATH (e.g. student=runs/clarinet)")
    return name, Path(path)


def _scalars(row: dict) -> dict:
    return {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _read_json(path: Path, name: str) -> dict:
    """A run's or an evaluation's JSON record (a dict), or a UserError naming the file."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"system {name}: {path} is not valid JSON ({e})") from None
    if not isinstance(found, dict):
        raise UserError(f"system {name}: {path} holds no JSON object")
    return found


def sweep_systems(sweep_dir) -> list[tuple[str, Path]]:
    """Every run of a sweep workdir (``W/runs/NAME`` with a config), by run name."""
    runs = Path(sweep_dir) / "runs"
    found = sorted(p for p in runs.glob("*") if (p / workdir.CONFIG).is_file())
    if not found:
        raise UserError(f"--workdir {sweep_dir}: no runs in {runs} (expected a sweep's workdir)")
    return [(p.name, p) for p in found]


def open_system(name: str, path: Path) -> System:
    """What ``path`` is (a model of a role, or a folder of wavs), with its metrics: a sweep
    run's ``done.json`` or an evaluation's ``eval.json`` summary."""
    if not NAME.match(name) or name in RESERVED:
        raise UserError(
            f"system name {name!r}: use letters, digits and ._+=- (not {sorted(RESERVED)})"
        )
    if not path.is_dir():
        raise UserError(f"system {name}: {path} is not a folder")
    metrics = {}
    if (path / "done.json").is_file():
        metrics = _scalars(_read_json(path / "done.json", name))
    if (path / workdir.CONFIG).is_file():
        config = workdir.read_config(path)
        family = get_family(config.model.family)
        role = "synthesizer" if family.synthesizer else "vocoder" if family.vocoder else None
        if role is None:
            raise UserError(
                f"system {name}: {path} holds a {config.model.family!r} model, which neither "
                "synthesizes text nor vocodes mels"
            )
        return System(name, path, role, config, metrics)
    if (path / "eval.json").is_file():
        summary = _read_json(path / "eval.json", name).get("summary", {})
        metrics = {k: v["mean"] for k, v in summary.items() if isinstance(v, dict) and v.get("n")}
    wavs = path / "audio" if not any(path.glob("*.wav")) and (path / "audio").is_dir() else path
    if not any(wavs.glob("*.wav")):
        raise UserError(
            f"system {name}: {path} is neither a workdir or exported model (no config.json) "
            "nor a folder of wavs"
        )
    return System(name, wavs, "wavs", None, metrics)


def _mel_config(systems: list[System], sample_rate: int) -> audio.MelConfig:
    for s in systems:
        if s.config is not None:
            return audio.MelConfig.from_config(s.config.data)
    if sample_rate == audio.MelConfig().sample_rate:
        return audio.MelConfig()
    return audio.MelConfig(sample_rate=sample_rate, fmax=min(8000.0, sample_rate / 2))


def _text_sentences(model: System, sentences_file, limit: int) -> tuple[list, int, str]:
    """Sentences of a text file (default: the held-out ones), espeak speaking them."""
    rate = audio.MelConfig.from_config(model.config.data).sample_rate
    texts = read_sentences(sentences_file or HELDOUT)[:limit]
    voice = TextConfig.from_config(model.config.data.text).voice
    found = [
        Sentence(f"sentence{i:03d}", t, espeak_reference(t, voice, rate))
        for i, t in enumerate(texts)
    ]
    return found, rate, f"espeak ({voice}) speaking the sentences, as the corpus builder does"


def _corpus_sentences(model: System, split: str, limit: int) -> tuple[list, int, str]:
    """The first utterances of a split of the model's corpus: recordings and their mels."""
    corpus = corpus_from_config(model.config).split(split)
    found = []
    for i in range(min(limit, len(corpus))):
        ex = corpus.example(i)
        sid = corpus.ids[i] if NAME.match(corpus.ids[i]) else f"utt{i:03d}"
        found.append(Sentence(sid, corpus.texts[i], ex["audio"], ex["mel"]))
    return found, corpus.mel.sample_rate, f"the corpus's recordings ({split} split)"


def _shared_wavs(systems: list[System], limit: int) -> tuple[list, int, str]:
    """The sentence ids every wav folder has, without text or reference."""
    stems = set.intersection(*({p.stem for p in s.path.glob("*.wav")} for s in systems))
    ids = sorted(i for i in stems if NAME.match(i))[:limit]
    if not ids:
        raise UserError(
            "the wav folders share no file names: "
            + ", ".join(f"{s.name} ({s.path})" for s in systems)
        )
    rate = int(audio.wav_info(systems[0].path / f"{ids[0]}.wav").samplerate)
    return [Sentence(i, "", None) for i in ids], rate, "none given"


def choose_sentences(
    systems: list[System], sentences_file, split, limit: int, reference_dir
) -> tuple[list[Sentence], int, str]:
    """The page's sentences with their references, its sample rate, and where the reference
    comes from (for the page)."""
    models = [s for s in systems if s.role != "wavs"]
    vocoders = [s.name for s in models if s.role == "vocoder"]
    if sentences_file and vocoders:
        raise UserError(
            f"--sentences: {', '.join(vocoders)} vocode mels, which a text file does not give; "
            "use --split (the corpus's recordings and their mels) instead"
        )
    if models and not split and (sentences_file or not vocoders):
        found, rate, source = _text_sentences(models[0], sentences_file, limit)
    elif models:
        found, rate, source = _corpus_sentences(models[0], split or "test", limit)
    else:
        found, rate, source = _shared_wavs(systems, limit)
    if not found:
        raise UserError(f"no sentences to render (reference: {source}); check --split / --limit")
    if reference_dir:
        reference_dir = Path(reference_dir)
        for s in found:
            wav = reference_dir / f"{s.id}.wav"
            if not wav.is_file():
                raise UserError(f"--reference {reference_dir}: no {wav.name} (sentence {s.id})")
            s.reference = audio.load_wav(wav, rate)
        source = f"the wavs of {reference_dir.name}/"
    return found, rate, source


def render_system(system: System, sentences: list[Sentence], rate: int, vocoder) -> list[dict]:
    """``[{"audio" [T], "mel" [F, n_mels] or None, "alignment" or None}]``, one per sentence."""
    if system.role == "synthesizer":
        tts = load_tts(system.path, vocoder)
        return [
            {"audio": audio.resample(sp.audio, tts.sample_rate, rate), "mel": sp.mel,
             "alignment": sp.alignment}
            for sp in tts.synthesize([s.text for s in sentences])
        ]  # fmt: skip
    if system.role == "vocoder":
        if any(s.mel is None for s in sentences):
            raise UserError(f"system {system.name} vocodes mels; the sentences have none")
        mel_cfg = audio.MelConfig.from_config(system.config.data)
        vocode = load_vocoder(f"{system.config.model.family}:{system.path}", mel_cfg)
        return [
            {"audio": np.asarray(vocode(s.mel), np.float32), "mel": None, "alignment": None}
            for s in sentences
        ]
    out = []
    for s in sentences:
        wav = system.path / f"{s.id}.wav"
        if not wav.is_file():
            raise UserError(f"system {system.name}: {system.path} has no {wav.name}")
        out.append({"audio": audio.load_wav(wav, rate), "mel": None, "alignment": None})
    return out


def _metric_cell(v) -> str:
    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def write_page(out, title: str, systems, sentences, renders, rate, source, mel_cfg) -> dict:
    """Writes the folder (audio, images, index.html, samples.json); returns the manifest."""
    out = Path(out)
    manifest = {
        "title": title,
        "sample_rate": rate,
        "reference_source": source,
        "systems": [s.name for s in systems],
        "sentences": [{"id": s.id, "text": s.text} for s in sentences],
        "audio": {},
        "metrics": {s.name: s.metrics for s in systems},
    }
    rows_by_sentence = {s.id: [] for s in sentences}
    named = [(HIDDEN_REFERENCE, None)] if sentences[0].reference is not None else []
    named += [(s.name, s) for s in systems]
    for name, system in named:
        manifest["audio"][name] = {}
        for k, sent in enumerate(sentences):
            r = renders[name][k] if system else {"audio": sent.reference, "mel": sent.mel}
            wav_rel = f"audio/{name}/{sent.id}.wav"
            audio.save_wav(out / wav_rel, r["audio"], rate)
            manifest["audio"][name][sent.id] = wav_rel
            mel = r["mel"] if r.get("mel") is not None else audio.log_mel_np(r["audio"], mel_cfg)
            mel_rel = f"images/{name}/{sent.id}_mel.png"
            (out / mel_rel).parent.mkdir(parents=True, exist_ok=True)
            save_png(out / mel_rel, mel_image({f"{name}: {sent.id}": mel}))
            align_rel = None
            if r.get("alignment") is not None:
                align_rel = f"images/{name}/{sent.id}_alignment.png"
                save_png(out / align_rel, alignment_image(r["alignment"], f"{name}: {sent.id}"))
            rows_by_sentence[sent.id].append((name, wav_rel, mel_rel, align_rel))
    shutil.copyfile(str(STATIC / "samples.css"), out / "samples.css")
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    (out / "index.html").write_text(_html(manifest, systems, sentences, rows_by_sentence))
    return manifest


def _html(manifest, systems, sentences, rows_by_sentence) -> str:
    e = html.escape
    keys = list(dict.fromkeys(k for s in systems for k in s.metrics))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(manifest['title'])}</title>",
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="samples.css"></head><body>',
        f"<h1>{e(manifest['title'])}</h1>",
        f"<p>{len(sentences)} sentences, {len(systems)} systems, "
        f"{manifest['sample_rate']} Hz. Reference: {e(manifest['reference_source'])}. "
        f"Written by <code>tts-jax listen page</code> on {datetime.date.today().isoformat()}."
        "</p>",
        "<h2>Systems</h2>",
        "<table class='systems'><tr><th>system</th><th>kind</th><th>source</th>"
        + "".join(f"<th>{e(k)}</th>" for k in keys)
        + "</tr>",
    ]
    for s in systems:
        cells = "".join(f"<td>{e(_metric_cell(s.metrics.get(k, '')))}</td>" for k in keys)
        kind = s.config.model.family + " " + s.role if s.config is not None else "wav folder"
        parts.append(
            f"<tr><td>{e(s.name)}</td><td>{e(kind)}</td><td>{e(s.path.name)}</td>{cells}</tr>"
        )
    parts.append("</table>")
    if keys:
        parts.append("<p class='note'>Metrics as the run or evaluation recorded them.</p>")
    parts.append("<h2>Sentences</h2>")
    for sent in sentences:
        parts.append(f"<section id='{e(sent.id)}'><h3>{e(sent.id)}</h3>")
        if sent.text:
            parts.append(f"<p class='text'>“{e(sent.text)}”</p>")
        parts.append("<table class='samples'>")
        for name, wav, mel, align in rows_by_sentence[sent.id]:
            img = f"<img src='{quote(align)}' alt='alignment' loading='lazy'>" if align else ""
            parts.append(
                f"<tr><th>{e(name)}</th><td><audio controls preload='none' "
                f"src='{quote(wav)}'></audio></td><td><img src='{quote(mel)}' alt='mel' "
                f"loading='lazy'></td><td>{img}</td></tr>"
            )
        parts.append("</table></section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_page(
    systems: list[tuple[str, Path]],
    out,
    *,
    sentences_file=None,
    split=None,
    limit: int = 5,
    reference_dir=None,
    vocoder=None,
    title: str = "Samples",
) -> dict:
    """``tts-jax listen page``: opens the systems, picks the sentences, renders and writes."""
    names = [n for n, _ in systems]
    if len(set(names)) != len(names):
        raise UserError(f"system names must differ; got {names}")
    opened = [open_system(n, p) for n, p in systems]
    sentences, rate, source = choose_sentences(opened, sentences_file, split, limit, reference_dir)
    renders = {s.name: render_system(s, sentences, rate, vocoder) for s in opened}
    return write_page(
        out, title, opened, sentences, renders, rate, source, _mel_config(opened, rate)
    )
