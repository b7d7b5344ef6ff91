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

Each verb lives in a module of this package that holds ``add_VERB(parser)`` (its arguments,
with ``func`` the function that runs it) and imports what the verb needs at its top. Only the
module of the verb on the command line is imported, so ``tts-jax --help`` lists the verbs
without importing JAX, TensorFlow or a model family; a verb's own ``--help`` reads the family
registry (:func:`tts_jax.family.families_with`) to say which families it takes.

User mistakes print ``error: ...`` and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys

from tts_jax.cli.common import (
    check_out,
    quiet_libraries,
    quiet_progress_bars,
    refuse_overrides,
    split_overrides,
)
from tts_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Verb:
    name: str
    help: str  # one line in `tts-jax --help`; family-free, as the registry is not read there
    module: str  # tts_jax.cli.MODULE holds add_NAME(parser)


VERBS = (
    Verb("corpus", "speak generated sentences with espeak (LJSpeech format)", "data"),
    Verb("prepare", "build the TFDS dataset of an LJSpeech-format folder", "data"),
    Verb("train", "train: --config FILE[:VARIANT] --workdir DIR [--config.a.b=VALUE ...]", "train"),
    Verb("configs", "list every config and variant: family, parameters, use", "train"),
    Verb("synthesize", "text to speech (the shipped model, or a trained --workdir)", "speech"),
    Verb("export", "a trained model's newest checkpoint as a small exported model", "checkpoints"),
    Verb("import", "a published PyTorch checkpoint of a paper's code as a workdir", "checkpoints"),
    Verb("gta", "export ground-truth-aligned mels of a text-to-mel model", "checkpoints"),
    Verb("vocode", "mel (.npy, [frames, n_mels]) to waveform", "speech"),
    Verb("transcribe", "speech to text with a trained recognizer", "speech"),
    Verb("evaluate", "objective metrics with mean and 95%% intervals", "evaluate"),
    Verb("mixtures", "two-voice mixtures of a multi-voice corpus", "data"),
    Verb(
        "separate",
        "separate a mixture (--mix) or score a split of the run's mixtures (--split)",
        "speech",
    ),
    Verb("sweep", "run a sweep file (an experiments/*.py file with get_sweep)", "train"),
    Verb("bench", "time jitted functions; JSON lines appended to --out", "bench"),
    Verb("listen", "samples page, MUSHRA / MOS / A-B tests, their statistics", "listen"),
)


def parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command line: every verb with its one-line help, and ``verb``'s own arguments (its
    module imported; no verb's when ``verb`` is None)."""
    p = argparse.ArgumentParser(prog="tts-jax", description="Neural speech synthesis in JAX.")
    sub = p.add_subparsers(dest="command", required=True)
    for v in VERBS:
        sp = sub.add_parser(v.name, help=v.help)
        sp.set_defaults(takes_overrides=False)
        if v.name == verb:
            module = importlib.import_module(f"tts_jax.cli.{v.module}")
            getattr(module, f"add_{v.name}")(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_libraries()
    try:
        # The top-level parser has no options but --help, so a verb is the first word.
        verb = argv[0] if argv and argv[0] in {v.name for v in VERBS} else None
        p = parser(verb)
        args, extra = p.parse_known_args(argv)
        rest, args.overrides = split_overrides(extra)
        if rest:
            p.error(f"unrecognized arguments: {' '.join(rest)}")
        if not args.takes_overrides:
            refuse_overrides(args)
        check_out(args)
        quiet_progress_bars()
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
