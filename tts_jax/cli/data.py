"""``tts-jax corpus``, ``prepare`` and ``mixtures``: the data a run trains on."""

from __future__ import annotations

from pathlib import Path

from tts_jax import audio
from tts_jax.cli.common import LOCAL, data_path, positive_int, refuse_overrides
from tts_jax.config import load_config
from tts_jax.data.corpus import build_corpus
from tts_jax.data.ljspeech import open_corpus
from tts_jax.data.mixtures import build_mixtures
from tts_jax.errors import UserError


def add_corpus(c) -> None:
    c.add_argument("--out", required=True, type=LOCAL)
    c.add_argument("--num-utterances", type=positive_int, default=2000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument(
        "--voice",
        action="append",
        default=[],
        help="espeak voice(s), repeatable or comma-separated (default en-us)",
    )
    c.add_argument("--workers", type=positive_int, default=None)
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


def add_prepare(pr) -> None:
    pr.add_argument("--data", required=True, type=data_path, help="corpus folder, or tfds:ljspeech")
    pr.add_argument("--config", default=None, help="take front-end settings from this config")
    pr.set_defaults(takes_overrides=True, func=cmd_prepare)


def cmd_prepare(args) -> int:
    if args.config:
        config = load_config(args.config, args.overrides)
        mel = audio.MelConfig.from_config(config.data)
        fractions = tuple(config.data.split_fractions)
        data_dir = config.data.tfds_data_dir
    else:
        refuse_overrides(args)  # they would have no config to apply to
        mel, fractions, data_dir = audio.MelConfig(), (0.95, 0.025, 0.025), None
    corpus = open_corpus(args.data, mel, fractions, tfds_data_dir=data_dir)
    for name, split in corpus.splits.items():
        hours = split.num_samples.sum() / mel.sample_rate / 3600
        print(
            f"prepare: {name:10s} {len(split):6d} utterances  {hours:6.2f} h  "
            f"frames {split.num_frames.min()}..{split.num_frames.max()}"
        )
    return 0


def add_mixtures(mx) -> None:
    mx.add_argument("--corpus", required=True, type=LOCAL)
    mx.add_argument("--out", required=True, type=LOCAL)
    mx.add_argument("--sample-rate", type=positive_int, default=8000)
    mx.add_argument("--per-utterance", type=positive_int, default=1, help="mixtures per utterance")
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
