"""Writes tests/fixtures/jik876/: random-weight HiFi-GAN checkpoints in jik876/hifi-gan's own
format and that code's outputs on fixed inputs, for the parity tests (which need no torch).

Run once, in an environment with PyTorch and a checkout of the reference (neither is a
dependency of tts-jax):

    python3.11 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 librosa
    git clone https://github.com/jik876/hifi-gan /tmp/ref/hifigan
    /tmp/torchenv/bin/python tools/jik876_fixtures.py --reference /tmp/ref/hifigan

Widths are reduced (the fixtures stay small); every kernel, stride, dilation, group and
padding is the reference's. ``--full --out DIR`` writes the same at paper widths (hundreds of
MB, not for committing) for the paper-size check run by hand (docs/import.md).

Two shims let the 2020 reference run on today's libraries, changing no number: librosa's mel
filters take keyword arguments now, and ``torch.stft`` must be asked for a complex result
(the reference reads the old real view [..., 2]).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import librosa
import numpy as np
import torch
from torch import nn
from torch.nn.utils import spectral_norm, weight_norm

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "jik876"

# Reduced widths per version (the reference's upsample_initial_channel: 512, 128, 256).
SMALL_CHANNELS = {"v1": 32, "v2": 16, "v3": 32}
SMALL_MPD = (4, 8, 16, 16)  # the reference's 32, 128, 512, 1024 (then 1024 again)
SMALL_MSD = (16, 16, 32, 32, 32, 32, 32)  # the reference's 128, 128, 256, 512, 1024, 1024, 1024


class AttrDict(dict):
    def __getattr__(self, name):
        return self[name]


def small_mpd(reference, channels):
    """The reference's MultiPeriodDiscriminator, each DiscriminatorP's convs rebuilt with
    ``channels`` (kernel (5, 1), stride (3, 1), then (1, 1) for the last, as the reference)."""
    mpd = reference.MultiPeriodDiscriminator()
    for d in mpd.discriminators:
        widths = (1, *channels, channels[-1])
        d.convs = nn.ModuleList(
            weight_norm(
                nn.Conv2d(
                    widths[i],
                    widths[i + 1],
                    (5, 1),
                    (3, 1) if i < len(channels) else 1,
                    padding=(reference.get_padding(5, 1), 0),
                )
            )
            for i in range(len(channels) + 1)
        )
        d.conv_post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), 1, padding=(1, 0)))
    return mpd


def msd_layers(channels):
    """The reference's DiscriminatorS table ((out, kernel, stride, groups) per conv) with
    ``channels`` as the output widths."""
    shape = ((15, 1, 1), (41, 2, 4), (41, 2, 16), (41, 4, 16), (41, 4, 16), (41, 1, 16), (5, 1, 1))
    return [(c, k, s, g) for c, (k, s, g) in zip(channels, shape, strict=True)]


def small_msd(reference, channels):
    """The reference's MultiScaleDiscriminator with its DiscriminatorS convs rebuilt."""
    msd = reference.MultiScaleDiscriminator()
    for i, d in enumerate(msd.discriminators):
        norm = spectral_norm if i == 0 else weight_norm
        convs, c_in = [], 1
        for c, k, s, g in msd_layers(channels):
            convs.append(norm(nn.Conv1d(c_in, c, k, s, groups=g, padding=(k - 1) // 2)))
            c_in = c
        d.convs = nn.ModuleList(convs)
        d.conv_post = norm(nn.Conv1d(c_in, 1, 3, 1, padding=1))
    return msd


def arrays(tree):
    """Logits and feature maps as a flat {name: array} for np.savez."""
    out = {}
    for name, value in tree.items():
        for i, v in enumerate(value):
            if isinstance(v, list):
                for j, f in enumerate(v):
                    out[f"{name}_{i}_{j}"] = f.detach().numpy()
            else:
                out[f"{name}_{i}"] = v.detach().numpy()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, required=True, help="a jik876/hifi-gan checkout")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--full", action="store_true", help="paper widths (not for committing: hundreds of MB)"
    )
    args = p.parse_args()
    sys.path.insert(0, str(args.reference))
    import meldataset  # noqa: PLC0415 - the reference's modules, found through --reference
    import models as reference  # noqa: PLC0415

    meldataset.librosa_mel_fn = lambda sr, n_fft, n_mels, fmin, fmax: librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax
    )
    complex_stft = torch.stft
    meldataset.torch.stft = lambda *a, **k: torch.view_as_real(
        complex_stft(*a, **k, return_complex=True)
    )

    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    frames = 12
    mel = rng.normal(-5.0, 2.0, (1, 80, frames)).astype(np.float32)
    np.save(args.out / "mel.npy", mel[0].T)  # ours: [frames, n_mels]
    summary = {}
    for version in ("v1", "v2", "v3"):
        h = AttrDict(json.loads((args.reference / f"config_{version}.json").read_text()))
        if not args.full:
            h["upsample_initial_channel"] = SMALL_CHANNELS[version]
        (args.out / f"config_{version}.json").write_text(json.dumps(h, indent=1))
        gen = reference.Generator(h)
        # The reference's init (normal 0.01, weight norm g = ||v||) leaves every layer small;
        # wider random weights make the parity check sensitive to every layer.
        with torch.no_grad():
            for name, param in gen.named_parameters():
                if name.endswith("weight_v"):
                    param.normal_(0.0, 0.3 / np.sqrt(np.prod(param.shape[1:])))
                elif name.endswith("weight_g"):
                    param.uniform_(0.5, 1.5)
                elif name.endswith("bias"):
                    param.normal_(0.0, 0.1)
        gen.eval()
        torch.save({"generator": gen.state_dict()}, args.out / f"g_{version}")
        with torch.no_grad():
            wav = gen(torch.from_numpy(mel))[0, 0].numpy()
        np.save(args.out / f"wav_{version}.npy", wav)
        summary[version] = {"samples": int(wav.shape[0]), "peak": float(np.abs(wav).max())}

    # Discriminators (V1's, the same for every version) and the losses on one pair of clips.
    mpd = small_mpd(reference, SMALL_MPD) if not args.full else reference.MultiPeriodDiscriminator()
    msd = small_msd(reference, SMALL_MSD) if not args.full else reference.MultiScaleDiscriminator()
    with torch.no_grad():
        for module in (mpd, msd):
            for name, param in module.named_parameters():
                if name.endswith("bias"):
                    param.normal_(0.0, 0.1)

    # One forward in training mode moves spectral norm's u once; then eval mode freezes it,
    # and the checkpoint holds the state that eval-mode outputs use.
    def clip(n):  # a tone and a noisy copy of it, [1, 1, n]
        y = torch.from_numpy(0.5 * np.sin(np.arange(n) * 0.05)[None, None].astype(np.float32))
        return y, y + 0.1 * torch.from_numpy(rng.normal(size=(1, 1, n)).astype(np.float32))

    y, y_hat = clip(1024)  # short: the feature maps are stored
    y_long, y_long_hat = clip(8192)  # one training segment, for the mel loss
    msd.train()
    msd(y, y_hat)
    mpd.eval()
    msd.eval()
    torch.save(
        {"mpd": mpd.state_dict(), "msd": msd.state_dict(), "steps": 1234, "epoch": 5},
        args.out / "do_small",
        _use_new_zipfile_serialization=False,  # the legacy format, as the published files
    )
    for name, x in (("y", y), ("y_hat", y_hat), ("y_long", y_long), ("y_long_hat", y_long_hat)):
        np.save(args.out / f"{name}.npy", x[0, 0].numpy())
    with torch.no_grad():
        mpd_out = dict(zip(("r", "g", "fr", "fg"), mpd(y, y_hat), strict=True))
        msd_out = dict(zip(("r", "g", "fr", "fg"), msd(y, y_hat), strict=True))
        h = AttrDict(json.loads((args.reference / "config_v1.json").read_text()))

        def mel_of(x, fmax):
            return meldataset.mel_spectrogram(
                x.squeeze(1),
                h.n_fft,
                h.num_mels,
                h.sampling_rate,
                h.hop_size,
                h.win_size,
                h.fmin,
                fmax,
            )

        y_mel, y_hat_mel = mel_of(y_long, h.fmax_for_loss), mel_of(y_long_hat, h.fmax_for_loss)
        losses = {
            "mel_l1": float(torch.nn.functional.l1_loss(y_mel, y_hat_mel)),
            "feature_mpd": float(reference.feature_loss(mpd_out["fr"], mpd_out["fg"])),
            "feature_msd": float(reference.feature_loss(msd_out["fr"], msd_out["fg"])),
            "generator_mpd": float(reference.generator_loss(mpd_out["g"])[0]),
            "discriminator_msd": float(reference.discriminator_loss(msd_out["r"], msd_out["g"])[0]),
        }
        # the noisy clip: every bin holds energy, so the comparison is not of rounding noise
        np.save(args.out / "mel_y_long_hat.npy", mel_of(y_long_hat, h.fmax)[0].numpy().T)
    np.savez(args.out / "mpd.npz", **arrays(mpd_out))
    np.savez(args.out / "msd.npz", **arrays(msd_out))
    summary["losses"] = losses
    summary["small"] = {"mpd": SMALL_MPD, "msd": SMALL_MSD}
    (args.out / "outputs.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
