"""The README's main command (`make demo`): speech first, then the whole training path.

0. the shipped Tacotron 2 (data/tacotron2_espeak) reads held-out sentences it never saw
   (data/heldout_sentences.txt): wav, alignment and mel PNGs, scored against espeak, and a
   samples page of it beside espeak                                        tts-jax listen page
1. speak a corpus of generated sentences with espeak (LJSpeech layout)   tts-jax corpus
2. build its TFDS dataset (array_record, splits, log-mels)                  tts-jax prepare
3. a short Tacotron 2 training run (`:shipped` recipe) with a progress bar  tts-jax train
4. synthesize a few sentences with it (wav + alignment and mel PNGs)        tts-jax synthesize
5. Griffin-Lim copy-synthesis of held-out utterances (the vocoder floor)    tts-jax vocode

A few-minute run does not make Tacotron 2 speak: it shows the path working. The shipped model
is that path run for longer (its card says how long); train further with the same command
and a larger --steps: it resumes.

Every step is skipped or resumed when its output already exists, so running it again
continues where it stopped. Outputs go under runs/ (override with --root).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> None:
    from tts_jax.cli import main

    print(f"\n$ tts-jax {' '.join(args)}", flush=True)
    code = main(args)
    if code:
        sys.exit(code)


def speak_first(out: Path, count: int = 3) -> None:
    """The shipped model on the first ``count`` hand-written held-out sentences."""
    from tts_jax import audio, pretrained
    from tts_jax.data.corpus import espeak_reference
    from tts_jax.data.sentences import read_sentences
    from tts_jax.eval import attention
    from tts_jax.eval.metrics import mcd_and_f0
    from tts_jax.plotting import alignment_image, mel_image, save_png

    start = time.time()
    print("\n$ python -c 'from tts_jax import pretrained; tts = pretrained.load(); ...'")
    tts = pretrained.load()
    texts = read_sentences(REPO / "data" / "heldout_sentences.txt")[:count]
    out.mkdir(parents=True, exist_ok=True)
    for i, sp in enumerate(tts.synthesize(texts)):
        base = out / f"heldout_{i:02d}"
        audio.save_wav(base.with_suffix(".wav"), sp.audio, tts.sample_rate)
        save_png(f"{base}_alignment.png", alignment_image(sp.alignment, sp.text[:80]))
        save_png(f"{base}_mel.png", mel_image({sp.text[:80]: sp.mel}))
        espeak = espeak_reference(sp.text, sample_rate=tts.sample_rate)
        mcd = mcd_and_f0(espeak, sp.audio, tts.sample_rate)["mcd_db"]
        print(
            f"  {base}.wav  {sp.text!r}\n"
            f"    {sp.seconds:.2f} s (espeak {len(espeak) / tts.sample_rate:.2f} s), "
            f"{'ended by its stop token' if sp.stopped else 'hit max decoder steps'}, "
            f"alignment focus {attention.focus(sp.alignment):.2f}, MCD vs espeak {mcd:.2f} dB"
        )
    print(f"  (+ _alignment.png and _mel.png beside each; {time.time() - start:.0f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs", help="where corpus and workdirs go")
    p.add_argument("--utterances", type=int, default=2000)
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args()

    start = time.time()
    root = Path(args.root)
    speak_first(root / "demo" / "shipped")
    page = root / "demo" / "samples_page"
    shipped = str(REPO / "data" / "tacotron2_espeak")
    run(["listen", "page", "--system", f"tacotron2={shipped}", "--out", str(page), "--limit", "3"])
    corpus = root / "corpus"
    workdir = root / "demo" / "tacotron2"
    out = root / "demo" / "samples"

    run(["corpus", "--out", str(corpus), "--num-utterances", str(args.utterances)])
    run(["prepare", "--data", str(corpus)])
    run(
        [
            "train",
            "--config",
            str(REPO / "experiments" / "tacotron2.py:shipped"),
            "--workdir",
            str(workdir),
            f"--config.data.path={corpus}",
            f"--config.train.num_steps={args.steps}",
            "--config.data.num_buckets=3",
            "--config.train.eval_every=50",
            "--config.train.checkpoint_every=50",
        ]
    )
    sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "Dr. Smith paid $3.50 for 12 apples on March 3rd.",
        "Is this the real life, or is it just fantasy?",
    ]
    synth = ["synthesize", "--workdir", str(workdir), "--out", str(root / "demo" / "tts.wav")]
    for text in sentences:
        synth += ["--text", text]
    run(synth)

    from tts_jax import audio
    from tts_jax.data.ljspeech import open_corpus
    from tts_jax.plotting import mel_image, save_png
    from tts_jax.train.summary import read_metrics

    test = open_corpus(corpus).split("test")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(min(3, len(test))):
        utt = test.ids[i]
        mel_path = out / f"{utt}.npy"
        np.save(mel_path, test.example(i)["mel"])
        run(["vocode", "--mel", str(mel_path), "--out", str(out / f"{utt}_griffin_lim.wav")])
        wav = audio.load_wav(out / f"{utt}_griffin_lim.wav", 22050)
        save_png(
            out / f"{utt}_mel.png",
            mel_image(
                {
                    f"{utt}: espeak": test.example(i)["mel"],
                    "Griffin-Lim copy-synthesis": audio.log_mel_np(wav),
                }
            ),
        )
        written.append(utt)

    evals = read_metrics(workdir, "eval")
    first, last = (evals[0], evals[-1]) if evals else ({}, {})
    print("\n" + "=" * 72)
    print(f"demo finished in {time.time() - start:.0f} s")
    print(f"  corpus         {corpus}  ({args.utterances} espeak utterances, LJSpeech layout)")
    print(f"  TFDS dataset   {corpus / 'tfds'}")
    print(f"  training run   {workdir}  (scalars in {workdir / 'metrics.jsonl'})")
    if evals:
        print(
            f"  eval mel loss  {first['after']:.3f} at step {first['step']} -> "
            f"{last['after']:.3f} at step {last['step']} (attention focus {last['focus']:.3f};"
            " an aligned model exceeds 0.5)"
        )
    print(f"  synthesized    {root / 'demo'}/tts_0[0-2].wav (+ _alignment.png, _mel.png)")
    print(f"  copy-synthesis {out}/  ({', '.join(written)}: Griffin-Lim .wav, _mel.png)")
    print(f"  shipped model  {root / 'demo' / 'shipped'}/heldout_0[0-2].wav: the speech to hear")
    print(f"  samples page   {page}/index.html (opens from disk; `tts-jax listen serve` tests it)")
    print(
        f"\n{args.steps} steps of a few minutes cannot align text and speech: their clips are\n"
        "short mumbles, and synthesize says so. The shipped model is the same recipe trained\n"
        "for longer (data/tacotron2_espeak/MODEL_CARD.md); `make demo` again resumes this run."
    )
    print("=" * 72)


if __name__ == "__main__":
    main()
