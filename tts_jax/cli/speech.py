"""``tts-jax synthesize``, ``vocode``, ``transcribe`` and ``separate``: a trained model in one
of its roles (:data:`tts_jax.family.ROLES`) on the user's text or audio."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from tts_jax import audio, pretrained, vocoders, workdir
from tts_jax.cli.common import LOCAL, RUN, listing, positive_int, write_rows
from tts_jax.errors import UserError
from tts_jax.family import EvalRequest, families_with, get_family
from tts_jax.inference import griffin_lim
from tts_jax.paths import run_path
from tts_jax.plotting import alignment_image, mel_image, save_png
from tts_jax.pretrained import TTS, model_path
from tts_jax.vocoders import load_vocoder


def add_synthesize(s) -> None:
    s.add_argument(
        "--workdir",
        type=RUN,
        help="a training workdir or exported model of a synthesizer "
        f"({listing(families_with('synthesizer'))}; default: --model)",
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
        help=f"{listing(vocoders.kinds())} (default: the model's own waveform for a "
        "text-to-wave model, else griffin-lim)",
    )
    s.set_defaults(out_kind="file", takes_overrides=True, func=cmd_synthesize)


def cmd_synthesize(args) -> int:
    """Wavs, alignment and mel PNGs for each ``--text``; a warning for every clip that hit
    max_decoder_steps or is implausibly short for its text."""
    path = args.workdir or run_path(model_path(args.model))  # default: the shipped model
    load = workdir.family_entry(path, "synthesizer", f"synthesize --workdir {path}")
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


def add_vocode(v) -> None:
    v.add_argument("--mel", required=True, type=LOCAL)
    v.add_argument("--out", required=True, type=LOCAL)
    v.add_argument(
        "--workdir",
        type=RUN,
        default=None,
        help="a vocoder run (used as the vocoder) or any run (its front-end settings)",
    )
    v.add_argument("--vocoder", default=None, help=listing(vocoders.kinds()))
    v.add_argument("--iterations", type=positive_int, default=60, help="Griffin-Lim iterations")
    v.set_defaults(out_kind="file", func=cmd_vocode)


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


def recognizer_arg(text: str):
    """``--recognizer``: a shipped recognizer's name, ``none``, or a recognizer's run."""
    return text if text in ("none", *pretrained.SHIPPED) else RUN(text)


def add_transcribe(tr) -> None:
    tr.add_argument(
        "files", nargs="+", type=LOCAL, metavar="FILE", help="audio files (any rate; resampled)"
    )
    tr.add_argument(
        "--workdir",
        type=recognizer_arg,
        default=pretrained.RECOGNIZER,
        help="a recognizer's workdir or exported model "
        f"({listing(families_with('recognizer'))}; default: the shipped {pretrained.RECOGNIZER})",
    )
    tr.set_defaults(func=cmd_transcribe)


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
    for f, text in zip(args.files, recognizer.transcribe(wavs), strict=True):
        print(f"{f}\t{text}")
    return 0


def add_separate(sp) -> None:
    sp.description = f"Separator families: {listing(families_with('separator'))}."
    sp.add_argument("--workdir", required=True, type=RUN)
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--mix", type=LOCAL, help="a mixture .wav: writes s1.wav, s2.wav, ...")
    what.add_argument("--split", help="e.g. test: SI-SNR and SI-SNRi of every mixture (si_snr.csv)")
    sp.add_argument("--out-dir", required=True, type=LOCAL)
    sp.set_defaults(out_kind="dir", func=cmd_separate)


def cmd_separate(args) -> int:
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if args.split:  # score every mixture of a split of the run's mixtures
        evaluate = workdir.family_entry(args.workdir, "evaluate", "separate --split")
        ev = evaluate(args.workdir, EvalRequest(split=args.split, limit=sys.maxsize))
        write_rows(out / "si_snr.csv", ev.rows)
        (out / "summary.json").write_text(json.dumps(ev.stats, indent=2))
        scalars = ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in ev.stats.items()
            if isinstance(v, int | float | str)
        )
        print(f"separate: {ev.title}: {scalars} -> {out}")
        return 0
    what = f"separate --workdir {args.workdir}"
    separator = workdir.family_entry(args.workdir, "separator", what)(args.workdir)
    mix = audio.load_wav(args.mix, separator.sample_rate)
    sources = separator(mix)
    for j, source in enumerate(sources, start=1):
        audio.save_wav(out / f"s{j}.wav", source, separator.sample_rate)
    print(f"separate: {len(sources)} sources of {len(mix) / separator.sample_rate:.2f} s -> {out}")
    return 0
