"""The README's main command (`make demo`): the whole path on the embedded default data.

1. speak a corpus of generated sentences with espeak (LJSpeech layout)   tts-jax corpus
2. build its TFDS dataset (array_record, splits, log-mels)                  tts-jax prepare
3. a short Tacotron 2 training run (`:cpu`) with a progress bar             tts-jax train
4. synthesize a few sentences (wav + alignment and mel PNGs)                tts-jax synthesize
5. Griffin-Lim copy-synthesis of held-out utterances (the vocoder floor)    tts-jax vocode

A few hundred steps do not make Tacotron 2 speak (alignment takes thousands: see the README's
results); the demo shows the whole path working. Train further with the same command and a
larger --steps: it resumes.

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs", help="where corpus and workdirs go")
    p.add_argument("--utterances", type=int, default=2000)
    p.add_argument("--steps", type=int, default=100)
    args = p.parse_args()

    start = time.time()
    root = Path(args.root)
    corpus = root / "corpus"
    workdir = root / "demo" / "tacotron2"
    out = root / "demo" / "samples"

    run(["corpus", "--out", str(corpus), "--num-utterances", str(args.utterances)])
    run(["prepare", "--data", str(corpus)])
    run(
        [
            "train",
            "--config",
            str(REPO / "experiments" / "tacotron2.py:cpu"),
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
    print(f"  training run   {workdir}  (tensorboard --logdir {workdir / 'tensorboard'})")
    if evals:
        print(
            f"  eval mel loss  {first['after']:.3f} at step {first['step']} -> "
            f"{last['after']:.3f} at step {last['step']} (attention focus {last['focus']:.3f};"
            " an aligned model exceeds 0.5)"
        )
    print(f"  synthesized    {root / 'demo'}/tts_0[0-2].wav (+ _alignment.png, _mel.png)")
    print(f"  copy-synthesis {out}/  ({', '.join(written)}: Griffin-Lim .wav, _mel.png)")
    print("=" * 72)


if __name__ == "__main__":
    main()
