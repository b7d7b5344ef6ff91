"""Parity with NVIDIA/tacotron2: the largest |ours - reference| of every output the fixtures
hold. tests/test_nvidia_tacotron2.py runs it on the committed reduced-width fixtures; at the
published model's size, run by hand (the files are about 110 MB):

    /tmp/torchenv/bin/python tools/nvidia_tacotron2_fixtures.py \
        --reference /tmp/ref/nvidia_tacotron2 --full --out /tmp/nvidia_full
    python tools/nvidia_tacotron2_parity.py /tmp/nvidia_full

The checkpoint goes through the importer's own path (torch_checkpoint.load, state_dict,
our_config, variables). Both teacher-forced utterances run as one padded batch, which the
reference computed one at a time: our encoder masks padding, so the batch changes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from tts_jax import audio, torch_checkpoint
from tts_jax.models import tacotron2 as T
from tts_jax.models.tacotron2 import nvidia
from tts_jax.text import TextConfig, text_to_ids


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(rows), max(len(r) for r in rows), *rows[0].shape[1:]), rows[0].dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def parity(fixtures: Path) -> dict[str, float]:
    """{output: max |ours - NVIDIA's|} for the fixtures in ``fixtures``."""
    fixtures = Path(fixtures)
    ref = np.load(fixtures / "outputs.npz")
    meta = json.loads((fixtures / "reference.json").read_text())
    sd = nvidia.state_dict(torch_checkpoint.load(fixtures / "checkpoint"))
    config = nvidia.our_config(sd)
    with config.unlocked():
        config.model.prenet_dropout = 0.0  # the reference's outputs were taken without it
    model = T.build_model(config)
    variables = nvidia.variables(sd)
    worst = {}

    def record(name, ours, theirs):
        worst[name] = max(worst.get(name, 0.0), float(np.abs(np.asarray(ours) - theirs).max()))

    ids = [ref[f"tf{u}_ids"] for u in range(2)]
    mels = [ref[f"tf{u}_mels"] for u in range(2)]
    lengths = lambda rows: np.array([len(r) for r in rows], np.int32)  # noqa: E731
    out = model.apply(variables, _pad(ids), lengths(ids), _pad(mels), lengths(mels), train=False)
    for u in range(2):
        n, t = len(ids[u]), len(mels[u])
        record("teacher-forced mel before postnet", out["mel_before"][u, :t], ref[f"tf{u}_before"])
        record("teacher-forced mel after postnet", out["mel_after"][u, :t], ref[f"tf{u}_after"])
        record("teacher-forced gate logits", out["stop_logits"][u, :t], ref[f"tf{u}_gate"])
        record("teacher-forced alignments", out["alignments"][u, :t, :n], ref[f"tf{u}_alignments"])
    steps = len(ref["free_before"])
    free = model.apply(
        variables,
        ref["free_ids"][None],
        np.array([len(ref["free_ids"])], np.int32),
        method=T.Tacotron2.infer,
        max_decoder_steps=steps,
        stop_threshold=1.0,  # as the reference's run: never stops
    )
    record(
        f"{steps} free-running steps, mel before postnet", free["mel_before"][0], ref["free_before"]
    )
    record(
        f"{steps} free-running steps, mel after postnet", free["mel_after"][0], ref["free_after"]
    )
    record(f"{steps} free-running steps, alignments", free["alignments"][0], ref["free_alignments"])
    mel_cfg = audio.MelConfig.from_config(config.data)
    record("log-mel front end", audio.log_mel_np(ref["clip"], mel_cfg), ref["clip_mel"])
    text = TextConfig.from_config(config.data.text)
    worst["text ids differing"] = float(
        sum(text_to_ids(s, text).tolist() != want for s, want in meta["sentences"].items())
    )
    return worst


if __name__ == "__main__":
    for name, value in parity(Path(sys.argv[1])).items():
        print(f"{name:<45} {value:.2e}")
