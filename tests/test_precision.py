"""Mixed precision (``train.compute_dtype="bfloat16"``): for every family, one training step
from the same state on the same batch gives the float32 step's loss and gradient norm within
a stated tolerance, and the parameters and optimiser state stay float32.

Tolerances: bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2 %). Measured on
these tiny models (2-core x86 CPU, `pytest -s` prints them): losses within 0.5 % of float32,
gradient norms within 3.3 % (text-to-wave -3.22 %, Tacotron 2 +2.96 %, Conv-TasNet +2.95 %,
HiFi-GAN +2.30 %).
We allow 2 % and 6 %: a step that ran in the wrong dtype, drew other noise or lost a term
misses by far more.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import REPO, tiny_spec
from tts_jax.config import load_config
from tts_jax.family import family_names, get_family
from tts_jax.train.precision import cast_floating, like

TOLERANCE = {"loss": 0.02, "grad_norm": 0.06}


def _config(spec, **overrides):
    config = load_config(str(REPO / spec))
    with config.unlocked():
        for key, value in overrides.items():
            node = config
            *parents, leaf = key.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
    return config


def _steps(config, state, batch):
    family = get_family(config.model.family)
    out = {}
    for dtype in ("float32", "bfloat16"):
        with config.unlocked():
            config.train.compute_dtype = dtype
        out[dtype] = jax.jit(family.train_step(config))(state, batch)
    return out


def _check(config, state, batch):
    out = _steps(config, state, batch)
    (_, m32), (s16, m16) = out["float32"], out["bfloat16"]
    # The loss and every gradient norm (HiFi-GAN has the generator's and the discriminators').
    norms = sorted(k for k in m32 if k.endswith("grad_norm"))
    assert norms, sorted(m32)
    for key in ("loss", *norms):
        tolerance = TOLERANCE["loss" if key == "loss" else "grad_norm"]
        a, b = float(m32[key]), float(m16[key])
        print(f"{config.model.family} {key}: float32 {a:.6g} bfloat16 {b:.6g} ({b / a - 1:+.2%})")
        assert np.isfinite(b) and abs(b - a) <= tolerance * abs(a), (key, a, b)
    assert float(m16.get("skipped", 0.0)) == 0.0
    # Parameters and optimiser state keep their float32 (the update is not done in bf16).
    dtypes = {x.dtype for x in jax.tree.leaves(s16) if jnp.issubdtype(x.dtype, jnp.floating)}
    assert dtypes == {jnp.dtype(jnp.float32)}, dtypes
    # The bf16 step did compute in bf16: its loss differs from the float32 one.
    assert float(m16["loss"]) != float(m32["loss"])


def _from_corpus(spec, corpus_dir, tmp_path):
    """(config, state, batch): the family's first training batch of the test corpus."""
    config = _config(spec, **{"data.path": str(corpus_dir)})
    family = get_family(config.model.family)
    batch = next(family.make_data(config, 0, 1).train)
    return config, family.init_state(config, jax.random.key(0), batch), batch


def _conv_tasnet(spec, corpus_dir, tmp_path):
    """Random two-source mixtures (the corpus has one voice; mixtures need several)."""
    config = _config(spec)
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((2, 2, 4000)).astype(np.float32) * 0.1
    batch = {"mixture": sources.sum(1), "sources": sources}
    return config, get_family("conv_tasnet").init_state(config, jax.random.key(0), batch), batch


def _clarinet(spec, corpus_dir, tmp_path):
    """The student against a random tiny teacher (only its config is read from a workdir)."""
    from tts_jax.models import clarinet as CL

    teacher_config = _config(tiny_spec("wavenet"))
    (tmp_path / "config.json").write_text(json.dumps(teacher_config.to_dict()))
    config = _config(spec, **{"model.teacher_workdir": str(tmp_path)})
    rng = np.random.default_rng(0)
    hop = config.data.hop_length
    batch = {
        "audio": (0.1 * rng.standard_normal((2, 8 * hop))).astype(np.float32),
        "mels": rng.uniform(-8, 0, (2, 8, config.data.n_mels)).astype(np.float32),
    }
    state = CL.state_with_random_teacher(config, teacher_config, jax.random.key(0), batch)
    return config, state, batch


# Families whose batch is not the test corpus's; every other family trains on the corpus.
SETUP = {"conv_tasnet": _conv_tasnet, "clarinet": _clarinet}


@pytest.mark.slow
@pytest.mark.parametrize("name", family_names())
def test_bfloat16_step_matches_float32(name, corpus_dir, tmp_path):
    """Every family under tts_jax.models, at its :tiny config."""
    config, state, batch = SETUP.get(name, _from_corpus)(tiny_spec(name), corpus_dir, tmp_path)
    _check(config, state, batch)


def test_cast_helpers_keep_integers_and_restore_dtypes():
    tree = {"w": jnp.ones(3), "ids": jnp.arange(3), "mask": jnp.array([True, False])}
    low = cast_floating(tree, jnp.bfloat16)
    assert low["w"].dtype == jnp.bfloat16
    assert low["ids"].dtype == tree["ids"].dtype and low["mask"].dtype == jnp.bool_
    assert like(low, tree)["w"].dtype == jnp.float32
