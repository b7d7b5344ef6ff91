"""Write a shipped model's MODEL_CARD.md from what was measured (numbers produced, not typed).

    python tools/model_card.py --model data/tacotron2_espeak --workdir runs/tacotron2_shipped \
        --eval runs/eval/shipped_test/eval.json --eval runs/eval/shipped_sentences/eval.json \
        --floor runs/eval/griffin_lim/eval.json [--readme docs/tacotron2.md]

The card states the file and its sha256, the recipe (corpus command and seed, config, steps,
training time and machine), and the held-out scores of each ``--eval`` (``tts-jax evaluate
--workdir MODEL``) next to the Griffin-Lim copy-synthesis floor. With ``--readme`` the scores
table also replaces the ``report:shipped`` block of that page (docs/tacotron2.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "experiments"))

from tools.report import update_readme  # noqa: E402


def machine(cores: int) -> str:
    name = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{cores} core{'s' if cores > 1 else ''} of an {name} ({platform.machine()}), no GPU"


def scores_table(evals: list[dict], floor: dict | None) -> str:
    lines = [
        "| model + vocoder, held-out set | n | ended by stop token | focus | duration / espeak's | "
        "MCD (dB) ↓ | PESQ-WB ↑ | STOI ↑ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in evals:
        a, s = e["meta"]["attention"], e["summary"]
        lines.append(
            f"| {e['title']} | {e['utterances']} | "
            f"{100 * a['stopped_by_token']:.0f} % | {a['focus']:.3f} | "
            f"{a['duration_ratio']:.3f} | {s['mcd_db']['mean']:.2f} ± {s['mcd_db']['ci95']:.2f} | "
            f"{s['pesq_wb']['mean']:.2f} | {s['stoi']['mean']:.3f} |"
        )
    if floor:
        s = floor["summary"]
        lines.append(
            f"| Griffin-Lim copy-synthesis of the test split (the floor) | {floor['utterances']} "
            f"| – | – | 1 | {s['mcd_db']['mean']:.2f} ± {s['mcd_db']['ci95']:.2f} | "
            f"{s['pesq_wb']['mean']:.2f} | {s['stoi']['mean']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--workdir", required=True, type=Path, help="the training run it came from")
    p.add_argument("--eval", action="append", default=[], help="eval.json of the model")
    p.add_argument("--floor", help="eval.json of Griffin-Lim copy-synthesis")
    p.add_argument("--readme", type=Path)
    p.add_argument("--cores", type=int, default=2, help="CPU cores the training run had")
    p.add_argument("--note", default="", help="a remark on how the run used the machine")
    args = p.parse_args()

    from tacotron2_report import training_minutes

    meta = json.loads((args.model / "model.json").read_text())
    config = json.loads((args.model / "config.json").read_text())
    blob = args.model / "variables.msgpack"
    minutes = [m for s, m in training_minutes(args.workdir).items() if s <= meta["step"]]
    evals = [json.loads(Path(e).read_text()) for e in args.eval]
    floor = json.loads(Path(args.floor).read_text()) if args.floor else None
    table = scores_table(evals, floor)
    m, d, t = config["model"], config["data"], config["train"]
    size = blob.stat().st_size / 2**20
    trained = minutes[-1] if minutes else float("nan")
    max_seconds = m["max_decoder_steps"] * m["reduction"] * d["hop_length"] / d["sample_rate"]
    facts = [
        ("file", f"`data/{args.model.name}/{blob.name}`, {size:.1f} MiB, {meta['dtype']}"),
        ("sha256", f"`{meta['sha256']}`"),
        (
            "model",
            f"Tacotron 2 (Shen et al. 2018) at the `:cpu` size: {meta['parameters']:,} "
            f"parameters, r = {m['reduction']}, {m['decoder_lstm_layers']} x "
            f"{m['decoder_lstm_units']} decoder LSTMs, {m['attention_dim']}-dim "
            "location-sensitive attention",
        ),
        (
            "input",
            f"`{d['text']['frontend']}` symbols from espeak-ng ({d['text']['voice']}) after the "
            "English cleaners: any English text",
        ),
        ("output", "80-bin log-mel, 22,050 Hz, hop 256; vocoder Griffin-Lim (60 iterations)"),
        (
            "recipe",
            "`experiments/tacotron2.py:shipped` (full config: `config.json` beside this card): "
            f"guided attention weight {m['guided_attention_weight']:g} "
            f"(g {m['guided_attention_g']:g}), forget-gate bias {m['lstm_forget_bias']:g}, "
            f"Adam {config['optim']['learning_rate']:g}, batch {t['batch_size']}, "
            f"seed {config['seed']}",
        ),
        (
            "corpus",
            "`tts-jax corpus --out runs/corpus --num-utterances 2000 --seed 0`: generated "
            "sentences spoken by espeak-ng en-us at 160 words/min (2.3 h); 1,900 train / 50 "
            "validation / 50 test utterances by id hash; training skips those longer than "
            f"{d['max_frames']} frames",
        ),
        (
            "training",
            f"{meta['step']:,} steps, {trained:.0f} minutes of wall time (compilation and "
            f"evaluation included) on {machine(args.cores)}"
            + (f"; {args.note}" if args.note else ""),
        ),
        ("source", f"workdir `{meta['source']}`, `tts-jax export --dtype {meta['dtype']}`"),
    ]
    header = "\n".join(f"| {k} | {v} |" for k, v in facts)
    card = f"""# Tacotron 2, espeak voice: the model shipped with tts-jax

| | |
|---|---|
{header}

## Held-out scores

Against espeak-ng's own reading of each sentence (`tts-jax evaluate --workdir
data/tacotron2_espeak [--sentences data/heldout_sentences.txt]`): the corpus test split
(generated sentences, same vocabulary as training), and 30 sentences written by hand, most
of whose words never occur in the corpus. Focus is the mean largest attention weight of the
free-running alignment; duration is the total synthesized time over espeak's. An
`export_fp32` row is the same checkpoint exported as float32: float16 storage is kept only
where it scores the same.

{table}

## Use and limits

* The voice is espeak's: the model learnt from espeak-ng's synthetic recordings and can at
  best approach them; Griffin-Lim adds its own phasiness (the floor row).
* English only, through espeak's phonemiser; texts longer than {m["max_text_length"]} symbols
  are refused, and decoding stops at {m["max_decoder_steps"]} steps ({max_seconds:.1f} s).
* Retrain it with `make shipped` (corpus, training, export).
"""
    (args.model / "MODEL_CARD.md").write_text(card)
    print(card)
    if args.readme:
        update_readme(args.readme, "shipped", table)


if __name__ == "__main__":
    main()
