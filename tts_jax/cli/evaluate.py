"""``tts-jax evaluate``: objective metrics of a trained model, of two folders of wavs, or of a
copy-synthesis floor."""

from __future__ import annotations

import json
from pathlib import Path

from tts_jax import audio, pretrained, vocoders, workdir
from tts_jax.cli.common import LOCAL, RUN, data_path, listing, positive_int, write_rows
from tts_jax.cli.speech import recognizer_arg
from tts_jax.data.ljspeech import open_corpus
from tts_jax.data.sentences import read_sentences
from tts_jax.errors import UserError
from tts_jax.eval.evaluate import (
    copy_synthesis_pairs,
    evaluate_pairs,
    folder_pairs,
    griffin_lim_pairs,
)
from tts_jax.family import EvalRequest, families_with
from tts_jax.vocoders import load_vocoder


def add_evaluate(e) -> None:
    e.description = f"Families with an evaluation: {listing(families_with('evaluate'))}."
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
    e.add_argument("--data", type=data_path, help="corpus folder, for --reference griffin-lim")
    kinds = vocoders.kinds()
    e.add_argument(
        "--reference",
        default=None,
        help="with --data: griffin-lim (the training-free floor) or a trained vocoder: "
        + listing(k for k in kinds if k != "griffin-lim"),
    )
    e.add_argument(
        "--vocoder", default=None, help=f"with --workdir: {listing(kinds)} (default griffin-lim)"
    )
    e.add_argument(
        "--recognizer",
        type=recognizer_arg,
        default=None,
        help="the speech recognizer that adds CER and WER of the synthesized speech against "
        f"its text, no reference audio needed: the shipped {pretrained.RECOGNIZER} (default "
        "wherever there is text), a recognizer's workdir (experiments/asr.py; families: "
        f"{listing(families_with('recognizer'))}), or none",
    )
    e.add_argument(
        "--dnsmos",
        action="store_true",
        help="add DNSMOS P.835 and P.808 of the produced audio (needs the dnsmos extra)",
    )
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=positive_int, default=50)
    e.add_argument("--sample-rate", type=positive_int, default=22050)
    e.add_argument("--save-audio", type=int, default=0, help="keep this many synthesized wavs")
    e.add_argument("--out", required=True, type=LOCAL)
    e.set_defaults(out_kind="dir", func=cmd_evaluate)


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
        evaluate = workdir.family_entry(args.workdir, "evaluate", "evaluate --workdir")
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
            write_rows(out / "scores.csv", ev.rows)
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
