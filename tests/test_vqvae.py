"""VQ-VAE: nearest code against brute force, straight-through gradient, EMA update by hand
and across devices, perplexity, and a reconstruction loss that falls."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.conftest import REPO
from tts_jax.models import vqvae as V


def test_quantizer_returns_the_nearest_code():
    rng = np.random.default_rng(0)
    codebook = rng.normal(size=(50, 8)).astype(np.float32)
    z = rng.normal(size=(300, 8)).astype(np.float32)
    brute = np.argmin(((z[:, None, :] - codebook[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(V.nearest_code(jnp.asarray(z), jnp.asarray(codebook)), brute)
    vq = V.VectorQuantizer(50, 8, ema=False)
    params = {"params": {"codebook": jnp.asarray(codebook)}}
    z_q, info = vq.apply(params, jnp.asarray(z).reshape(3, 100, 8))
    np.testing.assert_array_equal(info["indices"].reshape(-1), brute)
    np.testing.assert_allclose(z_q.reshape(-1, 8), codebook[brute], atol=1e-6)


@pytest.mark.slow
def test_straight_through_gradient_is_the_identity():
    vq = V.VectorQuantizer(16, 4, ema=False)
    z = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 4))
    params = vq.init(jax.random.PRNGKey(1), z)
    w = jax.random.normal(jax.random.PRNGKey(2), z.shape)
    grad = jax.grad(lambda z: jnp.sum(w * vq.apply(params, z)[0]))(z)
    np.testing.assert_allclose(grad, w, atol=1e-6)
    # The codebook loss moves codes, the commitment loss moves the encoder output only.
    g_code = jax.grad(lambda p: vq.apply(p, z)[1]["codebook_loss"])(params)["params"]["codebook"]
    assert float(jnp.max(jnp.abs(g_code))) > 0
    g_z = jax.grad(lambda z: vq.apply(params, z)[1]["codebook_loss"])(z)
    assert float(jnp.max(jnp.abs(g_z))) == 0.0


def test_ema_update_by_hand():
    decay, eps = 0.9, 1e-5
    size = np.array([2.0, 0.0, 1.0])
    sums = np.array([[2.0, 2.0], [0.0, 0.0], [1.0, -1.0]])
    counts = np.array([1.0, 0.0, 2.0])
    batch_sums = np.array([[4.0, 0.0], [0.0, 0.0], [2.0, 2.0]])
    new_size, new_sum, codebook = V.ema_update(
        jnp.asarray(size),
        jnp.asarray(sums),
        jnp.asarray(counts),
        jnp.asarray(batch_sums),
        decay,
        eps,
    )
    want_size = [0.9 * 2 + 0.1 * 1, 0.0, 0.9 * 1 + 0.1 * 2]  # [1.9, 0, 1.1]
    want_sum = [[0.9 * 2 + 0.4, 1.8], [0.0, 0.0], [0.9 + 0.2, -0.9 + 0.2]]
    np.testing.assert_allclose(new_size, want_size, rtol=1e-6)
    np.testing.assert_allclose(new_sum, want_sum, rtol=1e-6)
    n = 3.0
    smoothed = (np.array(want_size) + eps) / (n + 3 * eps) * n
    np.testing.assert_allclose(codebook, np.array(want_sum) / smoothed[:, None], rtol=1e-5)


def test_ema_quantizer_updates_its_codebook_only_in_training():
    vq = V.VectorQuantizer(8, 2, ema=True, decay=0.5)
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 10, 2))
    variables = vq.init(jax.random.PRNGKey(1), z)
    _, frozen = vq.apply(variables, z, train=False, mutable=["vq_stats"])
    np.testing.assert_array_equal(frozen["vq_stats"]["codebook"], variables["vq_stats"]["codebook"])
    (_, info), updated = vq.apply(variables, z, train=True, mutable=["vq_stats"])
    idx = np.asarray(info["indices"]).reshape(-1)
    flat = np.asarray(z).reshape(-1, 2)
    used = np.unique(idx)
    # A used code moved halfway (decay 0.5) towards the mean of its vectors, as sums go.
    k = used[0]
    want_sum = 0.5 * np.asarray(variables["vq_stats"]["ema_sum"][k]) + 0.5 * flat[idx == k].sum(0)
    np.testing.assert_allclose(updated["vq_stats"]["ema_sum"][k], want_sum, rtol=1e-5)


@pytest.mark.parametrize("ema", [False, True])
def test_masked_frames_are_invisible_to_the_quantizer(ema):
    # A batch padded with junk frames under mask 0 gives the same losses, histogram and
    # EMA statistics as the real frames alone.
    vq = V.VectorQuantizer(8, 3, ema=ema, decay=0.9)
    real = jax.random.normal(jax.random.PRNGKey(0), (1, 20, 3))
    junk = 5.0 + jax.random.normal(jax.random.PRNGKey(1), (1, 12, 3))
    padded = jnp.concatenate([real, junk], axis=1)
    mask = jnp.concatenate([jnp.ones((1, 20)), jnp.zeros((1, 12))], axis=1)
    variables = vq.init(jax.random.PRNGKey(2), real)
    mutable = ["vq_stats"] if ema else False
    out_real = vq.apply(variables, real, train=True, mutable=mutable)
    out_pad = vq.apply(variables, padded, mask, train=True, mutable=mutable)
    (_, info_real), (_, info_pad) = (out_real, out_pad) if not ema else (out_real[0], out_pad[0])
    for key in ("codebook_loss", "commitment_loss", "perplexity", "counts"):
        np.testing.assert_allclose(info_pad[key], info_real[key], rtol=1e-5, atol=1e-7)
    assert float(jnp.sum(info_pad["counts"])) == 20.0
    if ema:
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), out_pad[1], out_real[1]
        )
    # ... and without the mask the junk frames do count.
    _, unmasked = vq.apply(variables, padded, train=False)
    assert float(jnp.sum(unmasked["counts"])) == 32.0


def test_perplexity_is_the_exponentiated_code_entropy():
    codebook = jnp.eye(4, dtype=jnp.float32)
    z = jnp.asarray(np.eye(4)[[0, 0, 1, 2]], jnp.float32)[None]  # codes 0, 0, 1, 2
    _, info = V.VectorQuantizer(4, 4, ema=False).apply({"params": {"codebook": codebook}}, z)
    p = np.array([0.5, 0.25, 0.25])
    assert float(info["perplexity"]) == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)


_EMA_DEVICES = """
import jax, jax.numpy as jnp, numpy as np
from tts_jax.models.vqvae import VectorQuantizer
from tts_jax.train import mesh as M
vq = VectorQuantizer(16, 4, ema=True)
z = jax.random.normal(jax.random.PRNGKey(0), (8, 12, 4))
variables = vq.init(jax.random.PRNGKey(1), z)
step = jax.jit(lambda v, z: vq.apply(v, z, train=True, mutable=["vq_stats"])[1])
one = step(variables, z)
mesh = M.make_mesh()
sharded = jax.device_put(z, M.data_sharding(mesh))
four = step(variables, sharded)
assert len(sharded.sharding.device_set) == 4
for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("same")
"""


@pytest.mark.slow
def test_ema_statistics_are_global_under_data_parallelism():
    import os

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", _EMA_DEVICES],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "same" in out.stdout


@pytest.mark.parametrize("model_cls", [V.VQVAE, V.VQVAE2])
@pytest.mark.parametrize("ema", [False, True])
@pytest.mark.slow
def test_reconstruction_loss_falls_on_a_fixed_batch(model_cls, ema):
    model = model_cls(n_mels=16, hidden=32, num_codes=32, code_dim=8, downsample=2, ema=ema)
    t = jnp.linspace(0, 6, 32)
    mels = jnp.stack([jnp.sin(t[:, None] * (1 + jnp.arange(16))[None] / 8 + p) for p in (0, 1)])
    mask = jnp.ones(mels.shape[:2])
    variables = model.init(jax.random.PRNGKey(0), mels)
    params, stats = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    tx = optax.adam(3e-3)
    opt = tx.init(params)

    @jax.jit
    def step(params, stats, opt):
        def loss_fn(params):
            (recon, info), new = model.apply(
                {"params": params, **stats}, mels, train=True, mutable=list(stats)
            )
            total, rec = V.vq_loss(recon, mels, mask, info)
            return total, (rec, new, info)

        (_, (rec, new, info)), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(g, opt)
        return optax.apply_updates(params, updates), dict(new), opt, rec, info

    recs = []
    for _ in range(60):
        params, stats, opt, rec, info = step(params, stats, opt)
        recs.append(float(rec))
    assert recon_shape_ok(model, params, stats, mels)
    assert recs[-1] < 0.5 * recs[0], recs[::10]
    assert float(info["perplexity"]) >= 1.0


def recon_shape_ok(model, params, stats, mels) -> bool:
    recon, _ = model.apply({"params": params, **stats}, mels)
    return recon.shape == mels.shape


@pytest.mark.slow
def test_vqvae2_with_ema_trains_through_the_shared_trainer(tmp_path, corpus_dir):
    from tts_jax.config import load_config
    from tts_jax.train.loop import train_and_evaluate
    from tts_jax.train.summary import read_metrics

    config = load_config(
        str(REPO / "experiments" / "vqvae.py:tiny"),
        [f"--config.data.path={corpus_dir}", "--config.model.levels=2", "--config.model.ema=True"],
    )
    state = train_and_evaluate(config, tmp_path / "w")
    assert int(state.step) == 4
    # The EMA codebooks are state (not parameters) and were updated by training.
    stats = state.model_state["vq_stats"]
    assert set(stats) == {"vq_top", "vq_bottom"}
    paths = [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(state.params)[0]
    ]
    assert paths and not any("codebook" in p for p in paths)
    rows = read_metrics(tmp_path / "w", "eval")
    assert rows and np.isfinite(rows[-1]["reconstruction"]) and rows[-1]["perplexity"] >= 1.0

    # Held-out reconstruction through Griffin-Lim: every real frame is scored (the padding to
    # frame buckets is not), and both levels' code histograms give a perplexity in [1, used].
    from tts_jax.cli import main
    from tts_jax.data.inputs import corpus_from_config

    assert (
        main(
            [
                "evaluate",
                "--workdir",
                str(tmp_path / "w"),
                "--limit",
                "3",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "ev" / "eval.json").read_text())
    mel = result["meta"]["mel"]
    test = corpus_from_config(config).split("test")
    n = min(3, len(test))
    assert result["utterances"] == n
    assert mel["frames"] == sum(len(test.example(i)["mel"]) for i in range(n))
    assert 1.0 <= mel["perplexity"] <= mel["codes_used"] <= mel["num_codes"]
    assert 1.0 <= mel["perplexity_top"] <= mel["codes_used_top"]
    assert np.isfinite(mel["mse"]) and mel["mean_mel_mse"] > 0
