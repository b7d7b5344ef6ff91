"""``tts-jax``: the command line.

    tts-jax corpus     --out DIR --num-utterances N [--seed S] [--voice V ...]
    tts-jax prepare    --data DIR [--config FILE[:VARIANT]]
    tts-jax train      --config FILE[:VARIANT] --workdir DIR [--config.a.b=VALUE ...]
    tts-jax synthesize --text "..." [--text "..."] --out OUT.wav [--workdir DIR]
    tts-jax export     --workdir DIR --out DIR [--dtype float16]
    tts-jax import     FAMILY --checkpoint FILE [--checkpoint FILE] [--config FILE] --out DIR
    tts-jax gta        --workdir DIR --out DIR [--split train] [--free-running]
    tts-jax vocode     --mel MEL.npy --out OUT.wav [--workdir DIR]
    tts-jax transcribe FILE.wav [FILE.wav ...] --workdir DIR
    tts-jax evaluate   --workdir W [--vocoder V] [--split S | --sentences F] [--limit N] --out DIR
    tts-jax evaluate   --reference-dir A --synthesized-dir B --out DIR
    tts-jax evaluate   --data CORPUS --reference griffin-lim [--split test] [--limit 50] --out DIR
    tts-jax bench      MODEL [MODEL ...] [--config FILE[:VARIANT]] [--quick] [--out FILE.jsonl]
    tts-jax listen page    (--workdir SWEEP | --system NAME=PATH ...) --out DIR
    tts-jax listen serve   --test TEST.toml [--host 127.0.0.1] [--port 8000]
    tts-jax listen results --test TEST.toml [--out DIR]

User mistakes print ``error: ...`` and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import inspect
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from tts_jax import audio, benchmarks, pretrained, workdir
from tts_jax.config import PROJECT, load_config
from tts_jax.data.corpus import build_corpus
from tts_jax.data.ljspeech import open_corpus
from tts_jax.data.mixtures import build_mixtures
from tts_jax.data.sentences import read_sentences
from tts_jax.errors import UserError
from tts_jax.eval.evaluate import (
    copy_synthesis_pairs,
    evaluate_pairs,
    folder_pairs,
    griffin_lim_pairs,
)
from tts_jax.family import EvalRequest, families_with, get_family, with_role
from tts_jax.inference import griffin_lim
from tts_jax.listen import design as listen_design
from tts_jax.listen import page as listen_page
from tts_jax.listen import results as listen_results
from tts_jax.listen import server as listen_server
from tts_jax.paths import local_path, run_path
from tts_jax.plotting import alignment_image, mel_image, save_png
from tts_jax.pretrained import TTS, model_path
from tts_jax.sweep import run_sweep
from tts_jax.train import distributed
from tts_jax.train.loop import train_and_evaluate
from tts_jax.vocoders import load_vocoder


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _path_type(make, what: str):
    """An argparse type: ``make`` (:mod:`tts_jax.paths`) turns what was typed into a path the
    moment it is parsed, so no function below sees a relative one; its refusal is argparse's
    usage error."""

    def convert(text: str):
        try:
            return make(text) if make is run_path else make(text, what)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = what
    return convert


RUN = _path_type(run_path, "a run's path")  # local, gs:// or s3://: workdirs, exports
LOCAL = _path_type(local_path, "a local path")  # inputs and outputs each host keeps itself


def _recognizer_arg(text: str):
    """``--recognizer``: a shipped recognizer's name, ``none``, or a recognizer's run."""
    return text if text in ("none", *pretrained.SHIPPED) else RUN(text)


def _data_path(text: str):
    """``--data``: a corpus folder (made absolute) or a TFDS name such as ``tfds:ljspeech``."""
    return text if text.startswith("tfds:") else LOCAL(text)


def _check_out(args) -> None:
    """``--out`` must be a file path for verbs that write one file, a folder path otherwise."""
    out = getattr(args, "out", None) or getattr(args, "out_dir", None)
    kind = getattr(args, "out_kind", None)
    if not out or kind is None:
        return
    if kind == "file" and out.is_dir():
        raise UserError(f"--out {out} is a folder; expected a file name such as out.wav")
    if kind == "dir" and out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; expected a folder")


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.ERROR)
    # gcsfs logs every retry it gives up on with a traceback; the error it raises is reported
    # in one line (tts_jax.paths.check_bucket, the trainer).
    logging.getLogger("gcsfs").setLevel(logging.CRITICAL)
    logging.getLogger("google.auth").setLevel(logging.ERROR)  # it tries each source in turn
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tfds.disable_progress_bar()


OVERRIDES_HELP = (
    "Any config field can be overridden: --config.a.b=VALUE (with '=', e.g. "
    "--config.train.num_steps=500 --config.optim.learning_rate=3e-4); the fields are the "
    "config file's (tts_jax/config.py has those every config shares)."
)


def config_catalog() -> list[dict]:
    """Every variant of every experiment config (``experiments/*.py`` with an INTENDED_USE
    table, read from the project folder): spec, whether it is the file's default, its use."""

    rows = []
    for path in sorted((PROJECT / "experiments").glob("*.py")):
        if "INTENDED_USE = {" not in path.read_text(encoding="utf-8"):
            continue  # a script, not a config file
        spec = importlib.util.spec_from_file_location(f"_tts_jax_config_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        default = inspect.signature(module.get_config).parameters["variant"].default
        for variant, use in module.INTENDED_USE.items():
            rows.append(
                {
                    "spec": f"experiments/{path.name}:{variant}",
                    "default": variant == default,
                    "use": use,
                }
            )
    return rows


def _catalog_help() -> str:
    lines = [f"  {r['spec']:<34} {r['use']}" for r in config_catalog()]
    return "configs (`tts-jax configs` adds their families and parameter counts):\n" + "\n".join(
        lines
    )


def _format_params(parts: dict[str, int]) -> str:
    """``{"generator": 13926017, "discriminators": 70724591}`` -> '13.93 M (+ discriminators
    70.72 M)': the first part is the model that is used after training."""

    def size(n: int) -> str:
        return f"{n / 1e6:.2f} M" if n >= 10_000 else f"{n / 1e3:.1f} k"

    (_, head), *rest = parts.items()
    extra = ", ".join(f"{k} {size(v)}" for k, v in rest)
    return size(head) + (f" (+ {extra})" if extra else "")


def config_table() -> list[dict]:
    """:func:`config_catalog` rows with each variant's family and parameter count."""

    rows = []
    for row in config_catalog():
        config = load_config(row["spec"])
        family = get_family(config.model.family)
        params = _format_params(family.param_count(config)) if family.param_count else "?"
        rows.append({**row, "family": config.model.family, "params": params})
    return rows


def cmd_configs(args) -> int:
    rows = config_table()
    width = max(len(row["spec"]) for row in rows) + 1
    for row in rows:
        mark = "*" if row["default"] else " "
        print(f"{row['spec']:<{width}}{mark} {row['family']:<11} {row['params']:<34} {row['use']}")
    print("* the file's default variant (FILE.py alone); parameters are the trained ones")
    return 0


def _split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    for a in argv:
        if a.startswith("--config.") and "=" not in a:
            raise UserError(f"override {a!r} needs a value after '=': {a}=VALUE")
    overrides = [a for a in argv if a.startswith("--config.")]
    rest = [a for a in argv if not a.startswith("--config.")]
    return rest, overrides


# --------------------------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------------------------


def cmd_corpus(args) -> int:

    out = args.out
    meta = out / "metadata.csv"
    if meta.is_file() and not args.force:

        def rows(corpus) -> int:
            return sum(
                1 for line in (Path(corpus) / "metadata.csv").read_text().splitlines() if line
            )

        n = rows(out)
        if n == args.num_utterances + (rows(args.extend) if args.extend else 0):
            print(f"corpus: {out} already has {n} utterances (use --force to rebuild)")
            return 0
        raise UserError(
            f"{out} already holds a corpus of {n} utterances; pass --force to overwrite it"
        )
    voices = tuple(v for group in args.voice for v in group.split(",")) or ("en-us",)
    info = build_corpus(
        out,
        args.num_utterances,
        seed=args.seed,
        voices=voices,
        workers=args.workers,
        words=args.words,
        extend=args.extend,
    )
    print(
        f"corpus: {info['utterances']} utterances, {info['hours']:.2f} h of audio, "
        f"voices {info['voices']}, written to {out} in {info['seconds']:.1f} s"
    )
    return 0


def cmd_prepare(args) -> int:

    if args.config:
        config = load_config(args.config, args.overrides)
        mel = audio.MelConfig.from_config(config.data)
        fractions = tuple(config.data.split_fractions)
        data_dir = config.data.tfds_data_dir
    else:
        mel, fractions, data_dir = audio.MelConfig(), (0.95, 0.025, 0.025), None
    corpus = open_corpus(args.data, mel, fractions, tfds_data_dir=data_dir)
    for name, split in corpus.splits.items():
        hours = split.num_samples.sum() / mel.sample_rate / 3600
        print(
            f"prepare: {name:10s} {len(split):6d} utterances  {hours:6.2f} h  "
            f"frames {split.num_frames.min()}..{split.num_frames.max()}"
        )
    return 0


def cmd_train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tts-jax train",
        epilog=textwrap.fill(OVERRIDES_HELP, 88) + "\n\n" + _catalog_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="experiments/NAME.py[:VARIANT]")
    parser.add_argument("--workdir", required=True, type=RUN, help="local, gs://... or s3://...")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run (same command on every host; see tts_jax/train/distributed.py)",
    )
    parser.add_argument("--coordinator", help="with --distributed: HOST:PORT of process 0")
    parser.add_argument("--num-processes", type=_positive_int, help="with --distributed")
    parser.add_argument("--process-id", type=int, help="with --distributed: 0 .. N-1")
    parser.add_argument(
        "--heartbeat-seconds",
        type=_positive_int,
        default=100,
        help="with --distributed: a process silent this long ends the run on every host",
    )
    rest, overrides = _split_overrides(argv)
    args = parser.parse_args(rest)
    config = load_config(args.config, overrides)
    if args.distributed:
        distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, args.heartbeat_seconds
        )
    elif args.coordinator or args.num_processes or args.process_id is not None:
        raise UserError("--coordinator, --num-processes and --process-id need --distributed")

    state = train_and_evaluate(config, args.workdir)
    print(f"train: workdir {args.workdir} at step {int(state.step)}")
    return 0


def cmd_synthesize(args) -> int:
    """Wavs, alignment and mel PNGs for each ``--text``; a warning for every clip that hit
    max_decoder_steps or is implausibly short for its text."""
    path = args.workdir or run_path(model_path(args.model))  # default: the shipped model
    config = workdir.read_config(path)
    _, load = with_role(config.model.family, "synthesizer", f"synthesize --workdir {path}")
    synth = load(path)
    for override in args.overrides:
        key, _, value = override[len("--config.") :].partition("=")
        if key != "data.text.unknown":
            raise UserError(
                f"synthesize takes only --config.data.text.unknown=drop|error; {key} is fixed "
                "by the trained model"
            )
        synth.text = dataclasses.replace(synth.text, unknown=value)
    tts = TTS(synth, args.vocoder)
    speeches = tts.synthesize(list(args.text))
    stem = args.out.with_suffix("")
    for i, sp in enumerate(speeches):
        base = stem if len(speeches) == 1 else Path(f"{stem}_{i:02d}")
        audio.save_wav(base.with_suffix(".wav"), sp.audio, tts.sample_rate)
        save_png(f"{base}_alignment.png", alignment_image(sp.alignment, sp.text[:80]))
        save_png(f"{base}_mel.png", mel_image({sp.text[:80]: sp.mel}))
        print(
            f"synthesize: {base}.wav ({sp.seconds:.2f} s, "
            f"{'stop token' if sp.stopped else 'MAX STEPS'}), alignment and mel PNGs"
            + "".join(f"\n  warning: {w}" for w in sp.warnings)
        )
    print(
        f"synthesize: {len(speeches)} text(s), {len(synth.shapes)} compiled shape(s) "
        f"{sorted(synth.shapes)}, model at step {synth.step}"
    )
    return 0


def _entry(path: str, entry: str, what: str):
    """The family entry ``entry`` of the model in ``path``, or a UserError naming the families
    that have one."""
    name = workdir.read_config(path).model.family
    fn = getattr(get_family(name), entry)
    if fn is None:
        having = " or ".join(families_with(entry))
        raise UserError(f"{what} takes a {having} workdir; {path} holds {name!r}")
    return fn


def cmd_export(args) -> int:
    meta = _entry(args.workdir, "export", "export")(args.workdir, args.out, args.dtype)
    print(
        f"export: step {meta['step']}, {meta['parameters']:,} parameters as {meta['dtype']} "
        f"-> {args.out} (sha256 {meta['sha256']})"
    )
    return 0


def cmd_import(args) -> int:
    family = get_family(args.family)
    if family.import_checkpoint is None:
        raise UserError(
            f"import: no importer for {args.family!r} checkpoints; families with one: "
            + ", ".join(families_with("import_checkpoint"))
        )
    summary = family.import_checkpoint(args.checkpoint, args.config, args.out)
    print(
        f"import: {', '.join(map(str, args.checkpoint))} -> {args.out} (a {args.family} "
        f"workdir at step {summary['step']}; "
        + ", ".join(f"{k} {v}" for k, v in summary.items() if k not in ("step", "config"))
        + ")"
    )
    return 0


def cmd_gta(args) -> int:
    gta = _entry(args.workdir, "gta", "gta")
    index = gta(args.workdir, args.out, args.split, args.batch_size, args.free_running)
    print(
        f"gta: {len(index['utterances'])} {index['kind']} mels of split {args.split!r} "
        f"(model step {index['step']}) written to {args.out}"
    )
    return 0


def _load_mel(path: Path):
    """A float log-mel ``[frames, n_mels]`` from a .npy file, or a UserError saying why not."""
    try:
        mel = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path} is not a .npy array file ({e})") from None
    if not isinstance(mel, np.ndarray):
        raise UserError(f"{path} holds several arrays (.npz); expected one .npy [frames, n_mels]")
    if not np.issubdtype(mel.dtype, np.floating):
        raise UserError(f"{path} holds {mel.dtype} values; expected a float log-mel")
    if not np.all(np.isfinite(mel)):
        raise UserError(f"{path} holds NaN or infinite values; expected a finite log-mel")
    return mel


def cmd_vocode(args) -> int:
    mel_path = args.mel
    if not mel_path.is_file():
        raise UserError(f"mel file not found: {mel_path}")
    mel = _load_mel(mel_path)
    # --workdir: a vocoder run (used as the vocoder) or any run (its front-end settings).
    config = workdir.read_config(args.workdir) if args.workdir else None
    cfg = audio.MelConfig.from_config(config.data) if config else audio.MelConfig()
    vocoder = args.vocoder
    if vocoder is None:
        is_vocoder = config is not None and get_family(config.model.family).vocoder is not None
        vocoder = f"{config.model.family}:{args.workdir}" if is_vocoder else "griffin-lim"
    if mel.ndim != 2 or mel.shape[1] != cfg.n_mels or mel.shape[0] == 0:
        raise UserError(
            f"{mel_path} holds shape {mel.shape}; expected [frames, {cfg.n_mels}] with at least "
            "one frame"
        )
    if vocoder == "griffin-lim":
        wav = griffin_lim(cfg, n_iter=args.iterations)(mel)
    else:
        wav = load_vocoder(vocoder, cfg)(mel)
    audio.save_wav(args.out, wav, cfg.sample_rate)
    print(f"vocode: {len(wav) / cfg.sample_rate:.2f} s written to {args.out}")
    return 0


def cmd_transcribe(args) -> int:
    """Each file's transcript, one ``FILE<TAB>TEXT`` line per file, by a recognizer."""
    recognizer = pretrained.load_recognizer(args.workdir)
    # Every file is read (and resampled) before any is transcribed: a bad one stops the
    # command before it prints anything.
    wavs = [audio.load_wav(f, recognizer.sample_rate) for f in args.files]
    for f, wav in zip(args.files, wavs, strict=True):
        if len(wav) < recognizer.min_samples:
            raise UserError(
                f"audio file {f} is too short to transcribe: {len(wav)} samples at "
                f"{recognizer.sample_rate} Hz, fewer than {recognizer.min_samples}"
            )
    for i in range(0, len(wavs), 16):
        for f, text in zip(
            args.files[i : i + 16], recognizer.transcribe(wavs[i : i + 16]), strict=True
        ):
            print(f"{f}\t{text}")
    return 0


def _write_rows(path: Path, rows: list[dict]) -> None:
    """Per-item scores as CSV (floats to 3 decimals), columns in the first row's order."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: f"{v:.3f}" if isinstance(v, float) else v for k, v in r.items()})


def _recognizer(name, texts: dict | None):
    """``--recognizer``: the loaded recognizer (the shipped one unless named), or None with
    ``none`` or when the audio has no text to compare with (folders of wavs); naming one for
    such audio is refused."""
    if name == "none" or (name is None and not texts):
        return None
    if not texts:
        raise UserError(
            "--recognizer scores synthesized speech against the text it speaks: give --workdir "
            "(a text-to-speech model) or --data (a corpus split), not folders of wavs"
        )
    return pretrained.load_recognizer(name or pretrained.RECOGNIZER)


def cmd_evaluate(args) -> int:
    sr, texts = args.sample_rate, None
    if args.workdir:
        config = workdir.read_config(args.workdir)
        evaluate = _entry(args.workdir, "evaluate", "evaluate --workdir")
        mel_cfg = audio.MelConfig.from_config(config.data)
        name = args.vocoder or "griffin-lim"
        request = EvalRequest(
            split=args.split,
            limit=args.limit,
            vocoder=load_vocoder(name, mel_cfg),
            vocoder_name=name,
            sentences=tuple(read_sentences(args.sentences)) if args.sentences else None,
            own_waveform=args.vocoder is None,
        )
        ev = evaluate(args.workdir, request)
        texts = ev.texts
        sr = config.data.sample_rate
        title = ev.title
        meta = {"workdir": str(args.workdir), "split": args.split, "vocoder": name, **ev.stats}
        if args.sentences:
            meta["sentences"] = str(args.sentences)
        for key, value in ev.stats.items():
            print(f"evaluate: {key} " + json.dumps(value))
        if ev.pairs is None:  # the family scored itself: its rows and statistics
            out = args.out
            out.mkdir(parents=True, exist_ok=True)
            _write_rows(out / "scores.csv", ev.rows)
            (out / "eval.json").write_text(json.dumps({"title": title, "meta": meta}, indent=2))
            print(f"evaluate: {len(ev.rows)} items scored by {title} -> {out}/eval.json")
            return 0
        pairs = ev.pairs
    elif args.reference_dir or args.synthesized_dir:
        if not (args.reference_dir and args.synthesized_dir):
            raise UserError("--reference-dir and --synthesized-dir go together")
        pairs = folder_pairs(args.reference_dir, args.synthesized_dir, sr)
        title, meta = Path(args.synthesized_dir).name, {"reference_dir": str(args.reference_dir)}
    elif args.data:
        if not args.reference:
            raise UserError(
                "with --data, pass --reference griffin-lim (the floor) or --reference "
                "hifigan:WORKDIR: copy synthesis of the split's ground-truth mels"
            )
        split = open_corpus(args.data).split(args.split)
        texts = dict(zip(split.ids, split.texts, strict=True))
        if args.reference == "griffin-lim":
            pairs = griffin_lim_pairs(split, args.limit)
            title = "Griffin-Lim (60 it.) copy-synthesis"
        else:
            vocoder = load_vocoder(args.reference, split.mel)
            pairs = copy_synthesis_pairs(split, args.limit, vocoder)
            title = f"{args.reference} (step {vocoder.step}) copy-synthesis"
        meta = {"data": str(args.data), "split": args.split, "limit": args.limit}
    else:
        raise UserError(
            "give --workdir, --reference-dir with --synthesized-dir, or --data with --reference"
        )
    recognizer = _recognizer(args.recognizer, texts)
    if recognizer is not None:
        meta["recognizer"] = str(args.recognizer or pretrained.RECOGNIZER)
    result = evaluate_pairs(
        pairs,
        sr,
        args.out,
        title,
        meta,
        args.save_audio,
        texts=texts,
        recognizer=recognizer,
        dnsmos=args.dnsmos,
    )
    print((args.out / "eval.md").read_text())
    if recognizer is not None:
        i = result["intelligibility"]
        print(
            f"evaluate: CER {i['cer']:.3f}, WER {i['wer']:.3f} over {i['utterances']} "
            f"utterances (recognizer {meta['recognizer']}, step {i['recognizer_step']})"
        )
    print(
        f"evaluate: {result['utterances']} utterances ({result['failed']} failed) in "
        f"{result['seconds']:.0f} s -> {args.out}/eval.json"
    )
    return 0


def cmd_mixtures(args) -> int:

    counts = build_mixtures(
        args.corpus,
        args.out,
        sample_rate=args.sample_rate,
        mixtures_per_utterance=args.per_utterance,
        gain_db=(-args.max_gain_db, args.max_gain_db),
        seed=args.seed,
        fractions=tuple(args.fractions),
    )
    print(f"mixtures: {counts} two-voice mixtures at {args.sample_rate} Hz -> {args.out}")
    return 0


def cmd_separate(args) -> int:
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if args.split:  # score every mixture of a split of the run's mixtures
        evaluate = _entry(args.workdir, "evaluate", "separate --split")
        ev = evaluate(args.workdir, EvalRequest(split=args.split, limit=sys.maxsize))
        _write_rows(out / "si_snr.csv", ev.rows)
        (out / "summary.json").write_text(json.dumps(ev.stats, indent=2))
        scalars = ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in ev.stats.items()
            if isinstance(v, int | float | str)
        )
        print(f"separate: {ev.title}: {scalars} -> {out}")
        return 0
    config = workdir.read_config(args.workdir)
    _, load = with_role(config.model.family, "separator", f"separate --workdir {args.workdir}")
    separator = load(args.workdir)
    mix = audio.load_wav(args.mix, separator.sample_rate)
    sources = separator(mix)
    for j, source in enumerate(sources, start=1):
        audio.save_wav(out / f"s{j}.wav", source, separator.sample_rate)
    print(f"separate: {len(sources)} sources of {len(mix) / separator.sample_rate:.2f} s -> {out}")
    return 0


def cmd_sweep(args) -> int:

    for item in args.set:  # which prefixes a sweep takes is its runner's business
        key = item.split("=", 1)[0]
        if "=" not in item or "." not in key.strip(".") or key.endswith("."):
            raise UserError(f"--set {item!r}: expected PREFIX.a.b=VALUE (e.g. student.seed=1)")
    result = run_sweep(args.spec, args.workdir, args.set)
    print((args.workdir / "report.md").read_text())
    print(f"sweep: {len(result['rows'])} runs -> {args.workdir}/report.md")
    return 0


def cmd_bench(args) -> int:

    for model in args.model:
        benchmarks.run(model, config_spec=args.config, quick=args.quick, out=args.out)
    return 0


def cmd_listen_page(args) -> int:
    systems = [listen_page.parse_system(s) for s in args.system]
    if args.workdir:
        systems = listen_page.sweep_systems(args.workdir) + systems
    if not systems:
        raise UserError("listen page needs --workdir SWEEP or at least one --system NAME=PATH")
    manifest = listen_page.build_page(
        systems,
        args.out,
        sentences_file=args.sentences,
        split=args.split,
        limit=args.limit,
        reference_dir=args.reference,
        vocoder=args.vocoder,
        title=args.title,
    )
    print(
        f"listen page: {len(manifest['sentences'])} sentences x {len(manifest['systems'])} "
        f"systems (reference: {manifest['reference_source']}) -> {args.out}/index.html"
    )
    return 0


def cmd_listen_serve(args) -> int:
    listen_server.serve(listen_design.load_test(args.test), args.host, args.port)
    return 0


def cmd_listen_results(args) -> int:
    spec = listen_design.load_test(args.test)
    out = args.out or spec.path.with_name(f"{spec.path.stem}_results")
    print(listen_results.write_results(spec, out))
    print(f"listen results: {out}/results.md (+ CSV tables, results.png)")
    return 0


def _listen_parser(sub) -> None:
    """``tts-jax listen page|serve|results``."""
    li = sub.add_parser("listen", help="samples page, MUSHRA / MOS / A-B tests, their statistics")
    verbs = li.add_subparsers(dest="listen_command", required=True)
    pg = verbs.add_parser("page", help="a static samples page of systems on the same sentences")
    pg.add_argument(
        "--workdir", type=LOCAL, help="a sweep's workdir: every run in WORKDIR/runs/ is a system"
    )
    pg.add_argument(
        "--system",
        action="append",
        default=[],
        help="NAME=PATH, repeatable: a workdir, an exported model or a folder of wavs",
    )
    pg.add_argument(
        "--out", required=True, type=LOCAL, help="the folder to write (index.html, audio, images)"
    )
    pg.add_argument(
        "--sentences",
        type=LOCAL,
        help="a text file, one sentence a line (reference: espeak speaking them)",
    )
    pg.add_argument("--split", help="a corpus split (reference: its recordings), e.g. test")
    pg.add_argument("--limit", type=_positive_int, default=5, help="at most this many sentences")
    pg.add_argument(
        "--reference", type=LOCAL, help="a folder of reference wavs named by sentence id"
    )
    pg.add_argument(
        "--vocoder", default=None, help="for synthesizers: griffin-lim (default), hifigan:W, ..."
    )
    pg.add_argument("--title", default="Samples", help="the page's title (default: Samples)")
    pg.set_defaults(out_kind="dir", func=cmd_listen_page)
    sv = verbs.add_parser("serve", help="serve a listening test defined by a TOML file")
    sv.add_argument(
        "--test", required=True, type=LOCAL, help="TEST.toml (tts_jax/listen/design.py)"
    )
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 opens it to the network)",
    )
    sv.add_argument("--port", type=_positive_int, default=8000, help="default 8000")
    sv.set_defaults(func=cmd_listen_serve)
    rs = verbs.add_parser("results", help="a test's ratings as tables with intervals and a plot")
    rs.add_argument("--test", required=True, type=LOCAL, help="the TEST.toml that was served")
    rs.add_argument(
        "--out", type=LOCAL, help="folder for the tables (default: TEST_results beside TEST.toml)"
    )
    rs.set_defaults(out_kind="dir", func=cmd_listen_results)


# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tts-jax", description="Neural speech synthesis in JAX.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("corpus", help="speak generated sentences with espeak (LJSpeech format)")
    c.add_argument("--out", required=True, type=LOCAL)
    c.add_argument("--num-utterances", type=_positive_int, default=2000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument(
        "--voice",
        action="append",
        default=[],
        help="espeak voice(s), repeatable or comma-separated (default en-us)",
    )
    c.add_argument("--workers", type=_positive_int, default=None)
    c.add_argument(
        "--words",
        type=int,
        default=0,
        help="widen the text: half of the noun/adjective/adverb slots draw from English's N "
        "most frequent words (wordfreq; e.g. 20000); 0: the grammar's own words only",
    )
    c.add_argument(
        "--extend",
        type=LOCAL,
        metavar="CORPUS",
        help="also hold CORPUS's utterances, pinned to their splits (splits.csv), and add "
        "--num-utterances new ones (use another --seed)",
    )
    c.add_argument("--force", action="store_true", help="overwrite an existing corpus")
    c.set_defaults(out_kind="dir", func=cmd_corpus)

    pr = sub.add_parser("prepare", help="build the TFDS dataset of an LJSpeech-format folder")
    pr.add_argument(
        "--data", required=True, type=_data_path, help="corpus folder, or tfds:ljspeech"
    )
    pr.add_argument("--config", default=None, help="take front-end settings from this config")
    pr.set_defaults(func=cmd_prepare)

    sub.add_parser("train", help="train: --config FILE[:VARIANT] --workdir DIR [--config.x=v]")
    cf = sub.add_parser("configs", help="list every config and variant: family, parameters, use")
    cf.set_defaults(out_kind=None, func=cmd_configs)

    s = sub.add_parser(
        "synthesize", help="text to speech (the shipped model, or a trained --workdir)"
    )
    s.add_argument(
        "--workdir",
        type=RUN,
        help="a Tacotron 2 training workdir or exported model (default: --model)",
    )
    s.add_argument(
        "--model",
        default="tacotron2-espeak",
        help="shipped model used when no --workdir is given (data/tacotron2_espeak)",
    )
    s.add_argument("--text", action="append", required=True)
    s.add_argument("--out", required=True, type=LOCAL)
    s.add_argument(
        "--vocoder",
        default=None,
        help="griffin-lim, hifigan:W, clarinet:W or wavenet:W (default: the model's own "
        "waveform for a text-to-wave model, else griffin-lim)",
    )
    s.set_defaults(out_kind="file", func=cmd_synthesize)

    x = sub.add_parser(
        "export", help="a Tacotron 2 workdir's newest checkpoint as a small exported model"
    )
    x.add_argument("--workdir", required=True, type=RUN)
    x.add_argument("--out", required=True, type=RUN)
    x.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    x.set_defaults(out_kind="dir", func=cmd_export)

    im = sub.add_parser(
        "import",
        help="a published PyTorch checkpoint as a workdir (jik876/hifi-gan, NVIDIA/tacotron2)",
    )
    im.add_argument("family", help="the model family, e.g. hifigan")
    im.add_argument(
        "--checkpoint",
        type=LOCAL,
        action="append",
        required=True,
        help="a torch.save file, repeatable (hifigan: g_XXXXXXXX and optionally do_XXXXXXXX; "
        "tacotron2: one checkpoint)",
    )
    im.add_argument(
        "--config",
        type=LOCAL,
        help="the reference's config file (hifigan: config_vN.json; tacotron2: none)",
    )
    im.add_argument("--out", required=True, type=RUN, help="the workdir to write")
    im.set_defaults(out_kind="dir", func=cmd_import)

    g = sub.add_parser("gta", help="export ground-truth-aligned mels (Tacotron 2)")
    g.add_argument("--workdir", required=True, type=RUN)
    g.add_argument("--out", required=True, type=LOCAL)
    g.add_argument("--split", default="train")
    g.add_argument("--batch-size", type=_positive_int, default=16)
    g.add_argument(
        "--free-running",
        action="store_true",
        help="the model's own synthesis of each text, as long as it decodes (distillation "
        "targets), instead of teacher-forced mels",
    )
    g.set_defaults(out_kind="dir", func=cmd_gta)

    v = sub.add_parser("vocode", help="mel (.npy, [frames, n_mels]) to waveform")
    v.add_argument("--mel", required=True, type=LOCAL)
    v.add_argument("--out", required=True, type=LOCAL)
    v.add_argument(
        "--workdir",
        type=RUN,
        default=None,
        help="a vocoder run (used as the vocoder) or any run (its front-end settings)",
    )
    v.add_argument("--vocoder", default=None, help="griffin-lim, hifigan:W, clarinet:W, wavenet:W")
    v.add_argument("--iterations", type=_positive_int, default=60, help="Griffin-Lim iterations")
    v.set_defaults(out_kind="file", func=cmd_vocode)

    tr = sub.add_parser("transcribe", help="speech to text with a trained recognizer")
    tr.add_argument(
        "files", nargs="+", type=LOCAL, metavar="FILE", help="audio files (any rate; resampled)"
    )
    tr.add_argument(
        "--workdir",
        type=_recognizer_arg,
        default=pretrained.RECOGNIZER,
        help="a recognizer's workdir or exported model (default: the shipped asr-espeak)",
    )
    tr.set_defaults(func=cmd_transcribe)

    e = sub.add_parser("evaluate", help="objective metrics with mean and 95%% intervals")
    e.add_argument(
        "--workdir",
        type=RUN,
        help="synthesize --split (or --sentences) with this run's or exported model, score it",
    )
    e.add_argument(
        "--sentences",
        type=LOCAL,
        help="with --workdir: a text file of sentences (one a line) scored against espeak "
        "speaking them, instead of a corpus split (e.g. data/heldout_sentences.txt)",
    )
    e.add_argument("--reference-dir", type=LOCAL)
    e.add_argument("--synthesized-dir", type=LOCAL)
    e.add_argument("--data", type=_data_path, help="corpus folder, for --reference griffin-lim")
    e.add_argument(
        "--reference",
        default=None,
        help="with --data: griffin-lim (the training-free floor) or a vocoder, e.g. hifigan:W",
    )
    e.add_argument(
        "--vocoder", default=None, help="with --workdir: griffin-lim (default) or e.g. hifigan:W"
    )
    e.add_argument(
        "--recognizer",
        type=_recognizer_arg,
        default=None,
        help="the speech recognizer that adds CER and WER of the synthesized speech against "
        "its text, no reference audio needed: the shipped asr-espeak (default wherever there "
        "is text), a recognizer's workdir (experiments/asr.py), or none",
    )
    e.add_argument(
        "--dnsmos",
        action="store_true",
        help="add DNSMOS P.835 and P.808 of the produced audio (needs the dnsmos extra)",
    )
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=_positive_int, default=50)
    e.add_argument("--sample-rate", type=_positive_int, default=22050)
    e.add_argument("--save-audio", type=int, default=0, help="keep this many synthesized wavs")
    e.add_argument("--out", required=True, type=LOCAL)
    e.set_defaults(out_kind="dir", func=cmd_evaluate)

    mx = sub.add_parser("mixtures", help="two-voice mixtures of a multi-voice corpus")
    mx.add_argument("--corpus", required=True, type=LOCAL)
    mx.add_argument("--out", required=True, type=LOCAL)
    mx.add_argument("--sample-rate", type=_positive_int, default=8000)
    mx.add_argument("--per-utterance", type=_positive_int, default=1, help="mixtures per utterance")
    mx.add_argument("--max-gain-db", type=float, default=5.0, help="relative level in ±dB")
    mx.add_argument("--seed", type=int, default=0)
    mx.add_argument(
        "--fractions",
        type=float,
        nargs=3,
        default=(0.9, 0.05, 0.05),
        help="train / validation / test shares of the corpus's utterances (by id hash)",
    )
    mx.set_defaults(out_kind="dir", func=cmd_mixtures)

    sp = sub.add_parser(
        "separate",
        help="separate a mixture (--mix) or score a split of the run's mixtures (--split)",
    )
    sp.add_argument("--workdir", required=True, type=RUN)
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--mix", type=LOCAL, help="a mixture .wav: writes s1.wav, s2.wav, ...")
    what.add_argument("--split", help="e.g. test: SI-SNR and SI-SNRi of every mixture (si_snr.csv)")
    sp.add_argument("--out-dir", required=True, type=LOCAL)
    sp.set_defaults(out_kind="dir", func=cmd_separate)

    sw = sub.add_parser(
        "sweep",
        help="run a sweep file (the ClariNet KL comparison, the WaveNet receptive-field "
        "ablation, Tacotron 2 distillation)",
    )
    sw.add_argument("spec", help="FILE.py[:VARIANT] defining get_sweep(variant)")
    sw.add_argument("--workdir", required=True, type=RUN, help="local, gs://... or s3://...")
    sw.add_argument(
        "--set",
        action="append",
        default=[],
        help="teacher.a.b=v or student.a.b=v: override a field of either config (repeatable)",
    )
    sw.set_defaults(func=cmd_sweep)

    b = sub.add_parser("bench", help="time jitted functions; JSON lines appended to --out")
    b.add_argument("model", nargs="+", help="one or more benchmarks, e.g. griffin_lim log_mel")
    b.add_argument("--config", default=None)
    b.add_argument("--quick", action="store_true", help="one repeat, small inputs")
    b.add_argument("--out", default="runs/bench/results.jsonl")
    b.set_defaults(func=cmd_bench)
    _listen_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _quiet_libraries()
    try:
        if argv and argv[0] == "train":
            return cmd_train(argv[1:])
        parser = _parser()
        args, extra = parser.parse_known_args(argv)
        rest, overrides = _split_overrides(extra)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        takes = args.command == "synthesize" or (args.command == "prepare" and args.config)
        if overrides and not takes:
            raise UserError(
                f"{args.command} takes no --config.* overrides (got {overrides[0]}); "
                "`tts-jax train --help` says where they go"
            )
        args.overrides = overrides
        _check_out(args)
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
