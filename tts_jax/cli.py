"""``tts-jax``: the command line.

    tts-jax corpus     --out DIR --num-utterances N [--seed S] [--voice V ...]
    tts-jax prepare    --data DIR [--config FILE[:VARIANT]]
    tts-jax train      --config FILE[:VARIANT] --workdir DIR [--config.a.b=VALUE ...]
    tts-jax synthesize --text "..." [--text "..."] --out OUT.wav [--workdir DIR]
    tts-jax export     --workdir DIR --out DIR [--dtype float16]
    tts-jax gta        --workdir DIR --out DIR [--split train]
    tts-jax vocode     --mel MEL.npy --out OUT.wav [--workdir DIR]
    tts-jax evaluate   --workdir W [--vocoder V] [--split S | --sentences F] [--limit N] --out DIR
    tts-jax evaluate   --reference-dir A --synthesized-dir B --out DIR
    tts-jax evaluate   --data CORPUS --reference griffin-lim [--split test] [--limit 50] --out DIR
    tts-jax bench      MODEL [--config FILE[:VARIANT]] [--quick] [--out FILE.jsonl]

User mistakes print ``error: ...`` and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

from tts_jax.errors import UserError


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _check_out(args) -> None:
    """``--out`` must be a file path for verbs that write one file, a folder path otherwise."""
    out = getattr(args, "out", None) or getattr(args, "out_dir", None)
    kind = getattr(args, "out_kind", None)
    if not out or kind is None:
        return
    if kind == "file" and Path(out).is_dir():
        raise UserError(f"--out {out} is a folder; expected a file name such as out.wav")
    if kind == "dir" and Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out {out} is an existing file; expected a folder")


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()


PROJECT = Path(__file__).resolve().parents[1]  # the clone tts-jax is installed from


def resolve_config_path(spec: str) -> str:
    """``FILE.py[:VARIANT]`` with FILE found relative to the current directory, else to the
    project folder (so ``experiments/NAME.py`` works from anywhere with an editable install)."""
    path, sep, variant = spec.partition(":")
    for candidate in (Path(path), PROJECT / path):
        if candidate.is_file():
            return f"{candidate}{sep}{variant}"
    raise UserError(
        f"config file not found: {path} (looked in {Path.cwd()} and {PROJECT}; expected "
        "experiments/NAME.py[:VARIANT])"
    )


def _explain_override(spec: str, override: str) -> str | None:
    """Why ``--config.a.b=VALUE`` does not fit the config, in words (or None)."""
    key, _, value = override[len("--config.") :].partition("=")
    try:
        base = load_config(spec)
    except UserError:
        return None
    node = base
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            return None  # ml_collections already names the nearest keys
        node = node[part]
    expected = type(node).__name__
    if expected in ("int", "float", "bool", "str"):
        return f"--config.{key} expects type {expected} (it is {node!r}), got {value!r}"
    return None


def load_config(spec: str, overrides: list[str] = ()):
    """``FILE.py[:VARIANT]`` plus ``--config.a.b=value`` overrides -> a locked ConfigDict.

    Uses ml_collections' own config-file flag, so overrides are type-checked against the
    config's fields.
    """
    from absl import flags
    from ml_collections import config_flags

    spec = resolve_config_path(spec)
    path = spec.split(":", 1)[0]
    argv = ["tts-jax", f"--config={spec}", *overrides]
    fv = flags.FlagValues()
    try:
        # sys_argv: the flag looks for its overrides there (by default in sys.argv).
        config_flags.DEFINE_config_file(
            "config", None, "experiment config", flag_values=fv, sys_argv=argv
        )
        fv(argv)
        return fv.config
    except (flags.Error, ValueError, KeyError, AttributeError, TypeError) as e:
        reason = _plain_message(e)
        if "invalid literal" in reason or "could not convert" in reason:  # a value of bad type
            for o in overrides:
                if o.partition("=")[0] + "=" in reason:  # the override absl names
                    reason = _explain_override(spec, o) or reason
        raise UserError(f"bad config or override ({spec}): {reason}") from None
    except (SyntaxError, NameError, ImportError) as e:
        syntax = isinstance(e, SyntaxError)
        where = f" line {e.lineno}" if syntax and e.lineno else ""
        reason = e.msg if syntax else str(e)
        raise UserError(
            f"config file {path}{where} cannot be run: {type(e).__name__}: {reason}"
        ) from None


def _plain_message(e: Exception) -> str:
    """The useful words of an absl / ml_collections error (which may embed a traceback or the
    repr of a KeyError) on one line."""
    text = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
    if text[:1] in "'\"" and text[-1:] == text[:1]:
        try:
            text = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            pass
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        lines = lines[-1:]
    return " ".join(lines)


OVERRIDES_HELP = (
    "Any config field can be overridden: --config.a.b=VALUE (with '=', e.g. "
    "--config.train.num_steps=500 --config.optim.learning_rate=3e-4); the fields are the "
    "config file's (tts_jax/config.py has those every config shares)."
)


def config_catalog() -> list[dict]:
    """Every variant of every experiment config (``experiments/*.py`` with an INTENDED_USE
    table, read from the project folder): spec, whether it is the file's default, its use."""
    import importlib.util
    import inspect

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
    from tts_jax.train.family import get_family

    rows = []
    for row in config_catalog():
        config = load_config(row["spec"])
        family = get_family(config.model.family)
        params = _format_params(family.param_count(config)) if family.param_count else "?"
        rows.append({**row, "family": config.model.family, "params": params})
    return rows


def cmd_configs(args) -> int:
    for row in config_table():
        mark = "*" if row["default"] else " "
        print(f"{row['spec']:<34}{mark} {row['family']:<11} {row['params']:<34} {row['use']}")
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
    from tts_jax.data.corpus import build_corpus

    out = Path(args.out)
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
    from tts_jax.audio import MelConfig
    from tts_jax.data.ljspeech import open_corpus

    if args.config:
        config = load_config(args.config, args.overrides)
        mel = MelConfig.from_config(config.data)
        fractions = tuple(config.data.split_fractions)
        data_dir = config.data.tfds_data_dir
    else:
        mel, fractions, data_dir = MelConfig(), (0.95, 0.025, 0.025), None
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
    parser.add_argument("--workdir", required=True)
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
        from tts_jax.train import distributed

        distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, args.heartbeat_seconds
        )
    elif args.coordinator or args.num_processes or args.process_id is not None:
        raise UserError("--coordinator, --num-processes and --process-id need --distributed")
    from tts_jax.train.loop import train_and_evaluate

    state = train_and_evaluate(config, args.workdir)
    print(f"train: workdir {args.workdir} at step {int(state.step)}")
    return 0


def load_workdir_config(workdir: str | Path):
    """The resolved config a training run saved in its workdir."""
    from ml_collections import ConfigDict

    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise UserError(f"{workdir} is not a training workdir: {path} is missing")
    return ConfigDict(json.loads(path.read_text()))


def cmd_synthesize(args) -> int:
    from tts_jax.pretrained import model_path
    from tts_jax.train.family import get_family

    if args.workdir is None:  # the shipped model
        args.workdir = str(model_path(args.model))
    config = load_workdir_config(args.workdir)
    family = get_family(config.model.family)
    if family.synthesize is None:
        raise UserError(
            f"the model in {args.workdir} (family {config.model.family!r}) does not turn text "
            "into speech; train a text-to-mel model such as experiments/tacotron2.py"
        )
    family.synthesize(config, args)
    return 0


def cmd_export(args) -> int:
    from tts_jax.models.tacotron2 import export

    config = load_workdir_config(args.workdir)
    if config.model.family != "tacotron2":
        raise UserError(
            f"export takes a Tacotron 2 workdir; {args.workdir} holds {config.model.family!r}"
        )
    meta = export(args.workdir, args.out, args.dtype)
    print(
        f"export: step {meta['step']}, {meta['parameters']:,} parameters as {meta['dtype']} "
        f"-> {args.out} (sha256 {meta['sha256']})"
    )
    return 0


def cmd_gta(args) -> int:
    from tts_jax.models.tacotron2 import export_gta

    config = load_workdir_config(args.workdir)
    if config.model.family != "tacotron2":
        raise UserError(
            f"gta needs a Tacotron 2 workdir; {args.workdir} holds {config.model.family!r}"
        )
    index = export_gta(args.workdir, args.out, args.split, args.batch_size)
    print(
        f"gta: {len(index['utterances'])} teacher-forced mels of split {args.split!r} "
        f"(model step {index['step']}) written to {args.out}"
    )
    return 0


def _load_mel(path: Path):
    """A float log-mel ``[frames, n_mels]`` from a .npy file, or a UserError saying why not."""
    import numpy as np

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
    import numpy as np

    from tts_jax import audio

    mel_path = Path(args.mel)
    if not mel_path.is_file():
        raise UserError(f"mel file not found: {mel_path}")
    mel = _load_mel(mel_path)
    # --workdir: a vocoder run (used as the vocoder) or any run (its front-end settings).
    config = load_workdir_config(args.workdir) if args.workdir else None
    cfg = audio.MelConfig.from_config(config.data) if config else audio.MelConfig()
    vocoder = args.vocoder
    if vocoder is None:
        family = config.model.family if config is not None else None
        is_vocoder = family in ("hifigan", "clarinet", "wavenet")
        vocoder = f"{family}:{args.workdir}" if is_vocoder else "griffin-lim"
    if mel.ndim != 2 or mel.shape[1] != cfg.n_mels:
        raise UserError(f"{mel_path} holds shape {mel.shape}; expected [frames, {cfg.n_mels}]")
    if vocoder == "griffin-lim":
        wav = np.asarray(audio.mel_to_audio(mel, cfg, n_iter=args.iterations))
    else:
        from tts_jax.vocoders import load_vocoder

        wav = load_vocoder(vocoder, cfg)(mel)
    audio.save_wav(args.out, wav, cfg.sample_rate)
    print(f"vocode: {len(wav) / cfg.sample_rate:.2f} s written to {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from tts_jax.eval.evaluate import (
        copy_synthesis_pairs,
        evaluate_pairs,
        folder_pairs,
        griffin_lim_pairs,
    )

    sr = args.sample_rate
    if args.workdir:
        config = load_workdir_config(args.workdir)
        family = config.model.family
        vocoder = args.vocoder or "griffin-lim"
        sr = config.data.sample_rate
        meta = {"workdir": args.workdir, "split": args.split, "vocoder": vocoder}
        if family == "tacotron2":
            from tts_jax.eval.attention import diagnostics_summary
            from tts_jax.models.tacotron2 import heldout_synthesis, read_sentences

            sentences = read_sentences(args.sentences) if args.sentences else None
            pairs, diag, synth = heldout_synthesis(
                args.workdir, args.split, args.limit, vocoder, sentences
            )
            held_out = f"{Path(args.sentences).name}" if sentences else f"{args.split} split"
            title = f"{Path(args.workdir).name} (step {synth.step}) + {vocoder}, {held_out}"
            attention = diagnostics_summary(diag)
            attention["duration_ratio"] = attention["seconds"] / attention["reference_seconds"]
            meta.update(attention=attention, sentences=args.sentences)
            print("evaluate: attention and duration " + json.dumps(attention))
        elif family == "vqvae":
            from tts_jax.models.vqvae import heldout_reconstruction

            pairs, stats = heldout_reconstruction(args.workdir, args.split, args.limit, vocoder)
            title = f"{Path(args.workdir).name} (step {stats['step']}) reconstruction + {vocoder}"
            meta["mel"] = stats
            print("evaluate: mel reconstruction " + json.dumps(stats))
        else:
            raise UserError(
                f"evaluate --workdir knows text-to-speech (tacotron2) and VQ-VAE workdirs; "
                f"{args.workdir} holds {family!r} (score vocoders with --data and --reference, "
                f"Conv-TasNet with `tts-jax separate --split`)"
            )
    elif args.reference_dir or args.synthesized_dir:
        if not (args.reference_dir and args.synthesized_dir):
            raise UserError("--reference-dir and --synthesized-dir go together")
        pairs = folder_pairs(args.reference_dir, args.synthesized_dir, sr)
        title, meta = Path(args.synthesized_dir).name, {"reference_dir": args.reference_dir}
    elif args.data:
        if not args.reference:
            raise UserError(
                "with --data, pass --reference griffin-lim (the floor) or --reference "
                "hifigan:WORKDIR: copy synthesis of the split's ground-truth mels"
            )
        from tts_jax.data.ljspeech import open_corpus

        split = open_corpus(args.data).split(args.split)
        if args.reference == "griffin-lim":
            pairs = griffin_lim_pairs(split, args.limit)
            title = "Griffin-Lim (60 it.) copy-synthesis"
        else:
            from tts_jax.vocoders import load_vocoder

            vocoder = load_vocoder(args.reference, split.mel)
            pairs = copy_synthesis_pairs(split, args.limit, vocoder)
            title = f"{args.reference} (step {vocoder.step}) copy-synthesis"
        meta = {"data": args.data, "split": args.split, "limit": args.limit}
    else:
        raise UserError(
            "give --workdir, --reference-dir with --synthesized-dir, or --data with --reference"
        )
    result = evaluate_pairs(pairs, sr, args.out, title, meta, save_audio=args.save_audio)
    print((Path(args.out) / "eval.md").read_text())
    print(
        f"evaluate: {result['utterances']} utterances ({result['failed']} failed) in "
        f"{result['seconds']:.0f} s -> {args.out}/eval.json"
    )
    return 0


def cmd_mixtures(args) -> int:
    from tts_jax.data.mixtures import build_mixtures

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
    from tts_jax import audio
    from tts_jax.data.mixtures import sample_rate_of
    from tts_jax.models.conv_tasnet import evaluate_split, separate
    from tts_jax.vocoders import workdir_config

    config = workdir_config(args.workdir, None, "conv_tasnet")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.split:
        from tts_jax.data.mixtures import voice_pairs
        from tts_jax.eval.metrics import summarize

        result = evaluate_split(args.workdir, args.split, config)
        pairs = voice_pairs(config.data.mixtures, args.split)
        with open(out / "si_snr.csv", "w") as f:
            f.write("id,voices,seconds,si_snr,si_snri\n")
            for r in result["rows"]:
                f.write(
                    f"{r['id']},{pairs.get(r['id'], '')},{r['seconds']:.3f},"
                    f"{r['si_snr']:.3f},{r['si_snri']:.3f}\n"
                )
        summary = {k: v for k, v in result.items() if k != "rows"}
        if pairs:  # SI-SNRi per pair of voices: which pairs the model cannot tell apart
            by_pair = {}
            for r in result["rows"]:
                by_pair.setdefault(pairs[r["id"]], []).append(r["si_snri"])
            summary["si_snri_by_voices"] = {k: summarize(v) for k, v in sorted(by_pair.items())}
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(
            f"separate: {summary['mixtures']} {args.split} mixtures (step {summary['step']}), "
            f"SI-SNR {summary['si_snr']:.2f} ± {summary['si_snr_ci95']:.2f} dB, "
            f"SI-SNRi {summary['si_snri']:.2f} ± {summary['si_snri_ci95']:.2f} dB -> {out}"
        )
        return 0
    mix = audio.load_wav(args.mix, sample_rate_of(config.data.mixtures))
    sources, sr = separate(args.workdir, mix, config)
    for j, s in enumerate(sources, start=1):
        audio.save_wav(out / f"s{j}.wav", s, sr)
    print(f"separate: {len(sources)} sources of {len(mix) / sr:.2f} s written to {out}")
    return 0


def cmd_sweep(args) -> int:
    from tts_jax.sweep import run_sweep

    for item in args.set:
        key = item.split("=", 1)[0]
        if "=" not in item or not key.startswith(("teacher.", "student.")) or key.endswith("."):
            raise UserError(f"--set {item!r}: expected teacher.a.b=VALUE or student.a.b=VALUE")
    result = run_sweep(args.spec, args.workdir, args.set)
    print(Path(args.workdir, "report.md").read_text())
    print(f"sweep: {len(result['rows'])} runs -> {args.workdir}/report.md")
    return 0


def cmd_bench(args) -> int:
    from tts_jax import bench

    bench.run(args.model, config_spec=args.config, quick=args.quick, out=args.out)
    return 0


# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tts-jax", description="Neural speech synthesis in JAX.")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("corpus", help="speak generated sentences with espeak (LJSpeech format)")
    c.add_argument("--out", required=True)
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
        metavar="CORPUS",
        help="also hold CORPUS's utterances, pinned to their splits (splits.csv), and add "
        "--num-utterances new ones (use another --seed)",
    )
    c.add_argument("--force", action="store_true", help="overwrite an existing corpus")
    c.set_defaults(out_kind="dir", func=cmd_corpus)

    pr = sub.add_parser("prepare", help="build the TFDS dataset of an LJSpeech-format folder")
    pr.add_argument("--data", required=True, help="corpus folder, or tfds:ljspeech")
    pr.add_argument("--config", default=None, help="take front-end settings from this config")
    pr.set_defaults(func=cmd_prepare)

    sub.add_parser("train", help="train: --config FILE[:VARIANT] --workdir DIR [--config.x=v]")
    cf = sub.add_parser("configs", help="list every config and variant: family, parameters, use")
    cf.set_defaults(out_kind=None, func=cmd_configs)

    s = sub.add_parser(
        "synthesize", help="text to speech (the shipped model, or a trained --workdir)"
    )
    s.add_argument(
        "--workdir", help="a Tacotron 2 training workdir or exported model (default: --model)"
    )
    s.add_argument(
        "--model",
        default="tacotron2-espeak",
        help="shipped model used when no --workdir is given (data/tacotron2_espeak)",
    )
    s.add_argument("--text", action="append", required=True)
    s.add_argument("--out", required=True)
    s.add_argument(
        "--vocoder", default="griffin-lim", help="griffin-lim, hifigan:W, clarinet:W or wavenet:W"
    )
    s.set_defaults(out_kind="file", func=cmd_synthesize)

    x = sub.add_parser(
        "export", help="a Tacotron 2 workdir's newest checkpoint as a small exported model"
    )
    x.add_argument("--workdir", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    x.set_defaults(out_kind="dir", func=cmd_export)

    g = sub.add_parser("gta", help="export ground-truth-aligned mels (Tacotron 2)")
    g.add_argument("--workdir", required=True)
    g.add_argument("--out", required=True)
    g.add_argument("--split", default="train")
    g.add_argument("--batch-size", type=_positive_int, default=16)
    g.set_defaults(out_kind="dir", func=cmd_gta)

    v = sub.add_parser("vocode", help="mel (.npy, [frames, n_mels]) to waveform")
    v.add_argument("--mel", required=True)
    v.add_argument("--out", required=True)
    v.add_argument(
        "--workdir",
        default=None,
        help="a vocoder run (used as the vocoder) or any run (its front-end settings)",
    )
    v.add_argument("--vocoder", default=None, help="griffin-lim, hifigan:W, clarinet:W, wavenet:W")
    v.add_argument("--iterations", type=_positive_int, default=60, help="Griffin-Lim iterations")
    v.set_defaults(out_kind="file", func=cmd_vocode)

    e = sub.add_parser("evaluate", help="objective metrics with mean and 95%% intervals")
    e.add_argument(
        "--workdir",
        help="synthesize --split (or --sentences) with this run's or exported model, score it",
    )
    e.add_argument(
        "--sentences",
        help="with --workdir: a text file of sentences (one a line) scored against espeak "
        "speaking them, instead of a corpus split (e.g. data/heldout_sentences.txt)",
    )
    e.add_argument("--reference-dir")
    e.add_argument("--synthesized-dir")
    e.add_argument("--data", help="corpus folder, for --reference griffin-lim")
    e.add_argument(
        "--reference",
        default=None,
        help="with --data: griffin-lim (the training-free floor) or a vocoder, e.g. hifigan:W",
    )
    e.add_argument(
        "--vocoder", default=None, help="with --workdir: griffin-lim (default) or e.g. hifigan:W"
    )
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=_positive_int, default=50)
    e.add_argument("--sample-rate", type=_positive_int, default=22050)
    e.add_argument("--save-audio", type=int, default=0, help="keep this many synthesized wavs")
    e.add_argument("--out", required=True)
    e.set_defaults(out_kind="dir", func=cmd_evaluate)

    mx = sub.add_parser("mixtures", help="two-voice mixtures of a multi-voice corpus")
    mx.add_argument("--corpus", required=True)
    mx.add_argument("--out", required=True)
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
    sp.add_argument("--workdir", required=True)
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--mix", help="a mixture .wav: writes s1.wav, s2.wav, ...")
    what.add_argument("--split", help="e.g. test: SI-SNR and SI-SNRi of every mixture (si_snr.csv)")
    sp.add_argument("--out-dir", required=True)
    sp.set_defaults(out_kind="dir", func=cmd_separate)

    sw = sub.add_parser("sweep", help="run a sweep file (e.g. the ClariNet KL comparison)")
    sw.add_argument("spec", help="FILE.py[:VARIANT] defining get_sweep(variant)")
    sw.add_argument("--workdir", required=True)
    sw.add_argument(
        "--set",
        action="append",
        default=[],
        help="teacher.a.b=v or student.a.b=v: override a field of either config (repeatable)",
    )
    sw.set_defaults(func=cmd_sweep)

    b = sub.add_parser("bench", help="time jitted functions; JSON lines appended to --out")
    b.add_argument("model")
    b.add_argument("--config", default=None)
    b.add_argument("--quick", action="store_true", help="one repeat, small inputs")
    b.add_argument("--out", default="runs/bench/results.jsonl")
    b.set_defaults(func=cmd_bench)
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
