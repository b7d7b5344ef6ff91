"""Writes tests/fixtures/nvidia_tacotron2/: a random-weight Tacotron 2 checkpoint in
NVIDIA/tacotron2's own format (``{'state_dict': ...}``) and that code's outputs on fixed
inputs, for the parity tests (which need no torch).

Run once, in an environment with PyTorch and a checkout of the reference (neither is a
dependency of tts-jax):

    python3.11 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 librosa unidecode inflect
    git clone https://github.com/NVIDIA/tacotron2 /tmp/ref/nvidia_tacotron2
    /tmp/torchenv/bin/python tools/nvidia_tacotron2_fixtures.py \
        --reference /tmp/ref/nvidia_tacotron2

Widths are reduced (the fixture stays small); every kernel, layer count and the symbol table
are the reference's. ``--full --out DIR`` writes the same at the published model's sizes
(about 110 MB, not for committing) for the paper-size check (tools/nvidia_tacotron2_parity.py).

Outputs are computed in eval mode with the prenet's always-on dropout switched off, one
utterance at a time (the reference's convolutions read padding symbols in a padded batch; one
utterance has none), so that they are deterministic.

Shims let the 2019 reference run on today's libraries, changing no number: librosa's mel
filters and ``pad_center`` take keyword arguments now, and ``get_mask_from_lengths`` builds its
index on the GPU (here on the CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from torch.nn import functional as F

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "nvidia_tacotron2"

SENTENCES = (
    "Printing, in the only sense with which we are at present concerned.",
    "Dr. Smith paid $3.50 on March 3, 1984.",
    "In 2005, Mrs. Jones gave 1,250,000 pounds to St. Paul's.",
    "Turn left on {HH AW1 S S T AH0 N} Street.",
    'Café   naïve, déjà vu -- "quoted" [bracketed]!',
)


def hparams(full: bool) -> dict:
    """NVIDIA/tacotron2's hparams.py model section (which needs TensorFlow 1 to import), with
    reduced widths unless ``full``."""
    h = dict(
        n_mel_channels=80,
        n_frames_per_step=1,
        symbols_embedding_dim=512,
        encoder_kernel_size=5,
        encoder_n_convolutions=3,
        encoder_embedding_dim=512,
        attention_rnn_dim=1024,
        decoder_rnn_dim=1024,
        prenet_dim=256,
        max_decoder_steps=1000,
        gate_threshold=0.5,
        p_attention_dropout=0.1,
        p_decoder_dropout=0.1,
        attention_dim=128,
        attention_location_n_filters=32,
        attention_location_kernel_size=31,
        postnet_embedding_dim=512,
        postnet_kernel_size=5,
        postnet_n_convolutions=5,
        mask_padding=True,
        fp16_run=False,
    )
    if not full:
        h.update(
            symbols_embedding_dim=16,
            encoder_embedding_dim=16,
            attention_rnn_dim=16,
            decoder_rnn_dim=16,
            prenet_dim=16,
            attention_dim=8,
            attention_location_n_filters=4,
            postnet_embedding_dim=8,
        )
    return h


class HParams(dict):
    def __getattr__(self, name):
        return self[name]


def load_reference(path: Path):
    sys.path.insert(0, str(path))
    import layers
    import stft
    import utils

    layers.librosa_mel_fn = lambda sr, n_fft, n_mels, fmin, fmax: librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax
    )
    stft.pad_center = lambda data, size: librosa.util.pad_center(data, size=size)

    def mask_from_lengths(lengths):
        return torch.arange(int(lengths.max()))[None, :] < lengths[:, None]

    utils.get_mask_from_lengths = mask_from_lengths
    import model
    import text

    model.get_mask_from_lengths = mask_from_lengths

    def prenet_without_dropout(self, x):
        for linear in self.layers:
            x = F.relu(linear(x))
        return x

    model.Prenet.forward = prenet_without_dropout
    return model, layers, text


def randomise_batch_norm(net: torch.nn.Module, gen: torch.Generator) -> None:
    """Running statistics and affine parameters away from their identity initialisation, so
    that the import of every one of them is tested."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.weight.data = 1.0 + 0.2 * torch.randn(n, generator=gen)
            m.bias.data = 0.1 * torch.randn(n, generator=gen)
            m.running_mean.data = 0.1 * torch.randn(n, generator=gen)
            m.running_var.data = 0.5 + torch.rand(n, generator=gen)
    for name, p in net.named_parameters():
        if "bias" in name and "postnet" not in name and "encoder.convolutions" not in name:
            p.data = 0.1 * torch.randn(p.shape, generator=gen)  # LSTM and projection biases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, required=True, help="an NVIDIA/tacotron2 checkout")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--full", action="store_true", help="the published model's sizes")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model_mod, layers, text = load_reference(args.reference)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)

    h = HParams(hparams(args.full), n_symbols=len(text.symbols))
    net = model_mod.Tacotron2(h)
    randomise_batch_norm(net, gen)
    net.eval()
    torch.save({"state_dict": net.state_dict(), "iteration": 0}, args.out / "checkpoint")

    out = {
        "hparams": hparams(args.full),
        "symbols": list(text.symbols),
        "sentences": {s: text.text_to_sequence(s, ["english_cleaners"]) for s in SENTENCES},
    }
    arrays = {}
    # Teacher forcing, one utterance at a time: two texts of different lengths, random mels.
    frames = 10
    with torch.no_grad():
        for u, sentence in enumerate(SENTENCES[:2]):
            ids = torch.tensor([text.text_to_sequence(sentence, ["english_cleaners"])])
            n = ids.shape[1]
            mels = torch.randn(1, h.n_mel_channels, frames, generator=gen) - 4.0
            before, after, gate, align = net(
                (ids, torch.tensor([n]), mels, n, torch.tensor([frames]))
            )
            arrays[f"tf{u}_ids"] = ids[0].numpy()
            arrays[f"tf{u}_mels"] = mels[0].numpy().T  # ours: [frames, n_mels]
            arrays[f"tf{u}_before"] = before[0].numpy().T
            arrays[f"tf{u}_after"] = after[0].numpy().T
            arrays[f"tf{u}_gate"] = gate[0].numpy()
            arrays[f"tf{u}_alignments"] = align[0].numpy()
        # Free-running inference for 20 steps (a threshold above 1 never stops it).
        ids = torch.tensor([text.text_to_sequence(SENTENCES[0], ["english_cleaners"])])
        net.decoder.max_decoder_steps = 20
        net.decoder.gate_threshold = 1.0
        before, after, gate, align = net.inference(ids)
        arrays["free_ids"] = ids[0].numpy()
        arrays["free_before"] = before[0].numpy().T
        arrays["free_after"] = after[0].numpy().T
        arrays["free_gate"] = gate[0].numpy()
        arrays["free_alignments"] = align[0].numpy()
        # The mel front end on a 0.1 s clip (a chirp plus noise, inside [-1, 1]).
        t = np.arange(2205) / 22050
        clip = 0.5 * np.sin(2 * np.pi * (200 + 2000 * t) * t)
        clip = clip + 0.05 * np.random.default_rng(0).standard_normal(t.shape)
        clip = clip.astype(np.float32)
        stft = layers.TacotronSTFT()
        arrays["clip"] = clip
        arrays["clip_mel"] = stft.mel_spectrogram(torch.from_numpy(clip)[None])[0].numpy().T
    np.savez(args.out / "outputs.npz", **arrays)
    (args.out / "reference.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    for f in sorted(args.out.iterdir()):
        print(f"{f.stat().st_size:>10,}  {f}")


if __name__ == "__main__":
    main()
