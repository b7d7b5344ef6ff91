"""Paper-size parity with jik876/hifi-gan, run by hand (the full-size files are ~350 MB):

    /tmp/torchenv/bin/python tools/jik876_fixtures.py --reference /tmp/ref/hifigan \
        --full --out /tmp/full
    python tools/jik876_parity.py /tmp/full

prints the largest |ours - reference| of every generator version's waveform and of the MPD's
and MSD's logits and feature maps (docs/import.md records them). tests/test_jik876.py checks the
same at reduced widths on every CI run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from tts_jax import torch_checkpoint as tc
from tts_jax.models import hifigan as H
from tts_jax.models.hifigan import jik876
from tts_jax.models.hifigan.train import _discriminate

F = Path(sys.argv[1])
mel = np.load(F / "mel.npy")[None]
res = {}
for v in ("v1", "v2", "v3"):
    config = jik876.our_config(jik876.read_config(F / f"config_{v}.json"))
    model = H.HiFiGANConfig.from_config(config.model)
    params = jik876.generator_params(tc.load(F / f"g_{v}")["generator"], model)
    wav = np.asarray(H.build_generator(config).apply({"params": params}, jnp.asarray(mel)))[0]
    res[f"generator {v}"] = float(np.abs(wav - np.load(F / f"wav_{v}.npy")).max())
d = tc.load(F / "do_small")
config = jik876.our_config(jik876.read_config(F / "config_v1.json"))
model = H.HiFiGANConfig.from_config(config.model)
params, stats = jik876.discriminator_params(d["mpd"], d["msd"], model)
mpd, msd = H.build_discriminators(config)
clips = jnp.asarray(np.stack([np.load(F / "y.npy"), np.load(F / "y_hat.npy")]))
logits, fmaps, _ = _discriminate(mpd, msd, params, stats, clips, False)
for di, name in enumerate(("mpd", "msd")):
    ref = np.load(F / f"{name}.npz")
    worst = 0.0
    for i, l in enumerate(logits[di]):
        for row, key in ((0, "r"), (1, "g")):
            worst = max(worst, float(np.abs(np.asarray(l[row]) - ref[f"{key}_{i}"][0]).max()))
        for j, f in enumerate(fmaps[di][i]):
            want = np.moveaxis(ref[f"fr_{i}_{j}"][0], 0, -1)
            worst = max(worst, float(np.abs(np.asarray(f[0]) - want).max()))
    res[f"{name} logits and feature maps"] = worst
print(json.dumps(res, indent=1))
