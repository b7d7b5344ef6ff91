"""ClariNet student: Algorithm 1's accumulated Gaussian against the flows composed step by
step, parallelism / causality by perturbation and by jvp, and the objectives' definitions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tts_jax import distributions as D
from tts_jax.models import clarinet as CL


def _student():
    student = CL.Student(
        flows=3,
        layers=3,
        residual_channels=8,
        gate_channels=8,
        skip_channels=8,
        kernel_size=3,
        front_kernel=4,
        upsample_strides=(4, 4),
    )
    mel = jax.random.uniform(jax.random.PRNGKey(0), (2, 4, 80))
    z = jax.random.normal(jax.random.PRNGKey(1), (2, 64))
    params = student.init(jax.random.PRNGKey(2), z, mel)["params"]

    # The last layer of every flow starts at zero (identity flows); move it so that the
    # flows do something.
    def perturb(path, x):
        key = jax.random.PRNGKey(abs(hash(jax.tree_util.keystr(path))) % 2**31)
        return x + 0.05 * jax.random.normal(key, x.shape)

    params = jax.tree_util.tree_map_with_path(perturb, params)
    cond = student.apply({"params": params}, mel, method=CL.Student.upsample)
    return student, params, z, cond


@pytest.mark.slow
def test_accumulated_gaussian_equals_the_flows_composed_step_by_step():
    student, params, z, cond = _student()
    x, mu_q, log_q = student.apply({"params": params}, z, cond, method=CL.Student.transform)
    maps = student.apply({"params": params}, z, cond, method=CL.Student.flow_maps)
    # Compose the affine maps z -> z * s_i + m_i by hand, with numpy, in linear scale.
    mu, sigma, cur = np.zeros(z.shape), np.ones(z.shape), np.asarray(z, np.float64)
    for z_in, m, log_s in maps:
        np.testing.assert_allclose(z_in, cur, atol=1e-5)  # each flow saw the previous output
        s = np.exp(np.asarray(log_s, np.float64))
        mu, sigma = mu * s + np.asarray(m), sigma * s
        cur = cur * s + np.asarray(m)
    np.testing.assert_allclose(mu_q, mu, atol=1e-5)
    np.testing.assert_allclose(np.exp(log_q), sigma, rtol=1e-5)
    np.testing.assert_allclose(x, cur, atol=1e-5)
    # And x is that Gaussian's reparameterised sample of z.
    np.testing.assert_allclose(x, mu_q + np.exp(log_q) * z, atol=1e-5)
    assert float(jnp.std(log_q)) > 1e-3  # the flows are not the identity


def test_student_output_at_t_does_not_depend_on_later_noise():
    student, params, z, cond = _student()

    def run(z):
        return student.apply({"params": params}, z, cond, method=CL.Student.transform)

    t = 30
    x, mu_q, log_q = run(z)
    for pos in (t + 1, t + 20):
        x2, mu2, log2 = run(z.at[:, pos].add(1.0))
        np.testing.assert_array_equal(x2[:, : t + 1], x[:, : t + 1])
    # mu_q, sigma_q at t depend on z_<t only; x_t also on z_t.
    x3, mu3, log3 = run(z.at[:, t].add(1.0))
    np.testing.assert_array_equal(mu3[:, : t + 1], mu_q[:, : t + 1])
    np.testing.assert_array_equal(log3[:, : t + 1], log_q[:, : t + 1])
    assert not np.allclose(x3[:, t], x[:, t])
    assert not np.allclose(mu3[:, t + 1], mu_q[:, t + 1])  # and z_t does reach t + 1


@pytest.mark.slow
def test_jacobian_of_the_student_is_lower_triangular():
    student, params, z, cond = _student()
    z1 = z[:1, :24]
    c1 = cond[:1, :24]

    def x_of(z):
        return student.apply({"params": params}, z, c1, method=CL.Student.transform)[0][0]

    jac = jax.jacfwd(x_of)(z1)[:, 0, :]  # [T, T]: d x_t / d z_s
    assert float(jnp.max(jnp.abs(jnp.triu(jac, k=1)))) == 0.0
    # The diagonal is sigma_q: x_t = mu_q(z_<t) + sigma_q(z_<t) z_t.
    _, _, log_q = student.apply({"params": params}, z1, c1, method=CL.Student.transform)
    np.testing.assert_allclose(jnp.diag(jac), jnp.exp(log_q[0]), rtol=1e-4)


def _config(objective, stft=0.0):
    from ml_collections import ConfigDict

    return ConfigDict(
        {
            "model": {
                "objective": objective,
                "reg_weight": 4.0,
                "mc_samples": 64,
                "stft_weight": stft,
                "log_scale_min": -7.0,
                "student_log_scale_min": -7.0,
            }
        }
    )


@pytest.mark.parametrize("objective", CL.OBJECTIVES)
def test_objectives_are_their_definitions(objective):
    rng = np.random.default_rng(0)
    mu_q, mu_p = (jnp.asarray(rng.normal(size=(2, 50)), jnp.float32) for _ in range(2))
    log_q, log_p = (jnp.asarray(rng.uniform(-3, 0, (2, 50)), jnp.float32) for _ in range(2))
    config = _config(objective)
    terms = CL.distillation_terms(config, mu_q, log_q, mu_p, log_p, jax.random.PRNGKey(0))
    loss = float(CL.objective(config, terms))
    kl_qp = float(jnp.mean(D.gaussian_kl(mu_q, log_q, mu_p, log_p)))
    kl_pq = float(jnp.mean(D.gaussian_kl(mu_p, log_p, mu_q, log_q)))
    reg = float(jnp.mean((log_p - log_q) ** 2))
    want = {
        "reverse": kl_qp,
        "reverse_reg": kl_qp + 4 * reg,
        "forward_reg": kl_pq + 4 * reg,
        "reverse_mc": kl_qp,  # in expectation
    }[objective]
    tol = 0.1 * kl_qp if objective == "reverse_mc" else 1e-5 * abs(want)
    assert loss == pytest.approx(want, abs=tol)


@pytest.mark.slow
def test_toy_sweep_runs_end_to_end_resumes_and_feeds_the_vocoders(
    tmp_path, corpus_dir, monkeypatch
):
    """The sweep command of docs/clarinet.md as a user types it: from a directory outside the
    repository, with a relative workdir, config file and corpus path."""
    import json
    import os

    import soundfile as sf

    from tts_jax.cli import main

    monkeypatch.chdir(tmp_path)
    work = tmp_path / "sweep"
    data = f"data.path={os.path.relpath(corpus_dir, tmp_path)}"
    args = [
        "sweep",
        "experiments/clarinet_kl.py:tiny",
        "--workdir",
        "sweep",
        "--set",
        f"teacher.{data}",
        "--set",
        f"student.{data}",
        "--set",
        "student.train.num_steps=2",
    ]
    assert main(args) == 0
    rows = list((work / "runs").glob("*/done.json"))
    assert len(rows) == 5  # every variant, one seed at toy size
    report = (work / "report.md").read_text()
    for name in ("reverse", "reverse_reg+stft", "forward_reg+stft", "reverse_mc+stft"):
        assert f"| {name} |" in report
    # The five students build the same shapes: one program (stacked by default).
    assert "trained.** reverse-seed0, reverse+stft-seed0, reverse_reg+stft-seed0, " in report
    assert ": 5 runs in 1 program on 1 device." in report
    assert (work / "curves.png").stat().st_size > 1000
    assert (work / "log_scales.png").stat().st_size > 1000
    csv_lines = (work / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 6 and csv_lines[0].startswith("variant,seed,kl_final")
    row = json.loads(rows[0].read_text())
    assert all(np.isfinite(row[k]) for k in ("kl_final", "heldout_kl", "heldout_teacher_nll"))
    # The teacher's NLL of the recordings on the same windows is the report's reference.
    reference = json.loads((work / "teacher_heldout.json").read_text())
    assert np.isfinite(reference["teacher_nll_of_recordings"])
    assert f"NLL of {reference['teacher_nll_of_recordings']:.3f} nats" in report

    # A second call finds every run done and trains nothing.
    before = {p: os.stat(p).st_mtime_ns for p in rows}
    assert main(args) == 0
    assert {p: os.stat(p).st_mtime_ns for p in rows} == before

    # The sweep's samples page: every run vocodes the test split's mels beside the recording,
    # with the metrics its done.json recorded.
    page = tmp_path / "page"
    assert main(["listen", "page", "--workdir", str(work), "--out", str(page), "--limit", "2"]) == 0
    manifest = json.loads((page / "samples.json").read_text())
    assert sorted(manifest["systems"]) == sorted(p.parent.name for p in rows)
    assert manifest["reference_source"].startswith("the corpus's recordings (test split)")
    for system, files in manifest["audio"].items():
        for rel in files.values():
            assert sf.info(str(page / rel)).frames > 256, (system, rel)
    index = (page / "index.html").read_text()
    assert f"{row['kl_final']:.4g}" in index and "clarinet vocoder" in index

    # The student and the teacher as vocoders of a mel.
    mel = np.zeros((5, 80), np.float32) - 5.0
    np.save(tmp_path / "mel.npy", mel)
    run = next((work / "runs").glob("reverse_reg+stft-seed0"))
    for workdir in (run, work / "teacher"):
        out = tmp_path / f"{workdir.name}.wav"
        assert (
            main(
                [
                    "vocode",
                    "--mel",
                    str(tmp_path / "mel.npy"),
                    "--workdir",
                    str(workdir),
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        assert sf.info(str(out)).frames == 5 * 256


@pytest.mark.parametrize("objective", CL.OBJECTIVES)
@pytest.mark.parametrize("stft", [0.0, 1.0])
def test_objective_weights_give_each_objectives_loss(objective, stft):
    """The weight vector over TERMS (what lets a stack mix objectives without a branch) gives
    the loss each objective was defined by, STFT term included."""
    rng = np.random.default_rng(1)
    mu_q, mu_p = (jnp.asarray(rng.normal(size=(2, 50)), jnp.float32) for _ in range(2))
    log_q, log_p = (jnp.asarray(rng.uniform(-3, 0, (2, 50)), jnp.float32) for _ in range(2))
    frame = jnp.float32(0.37)
    config = _config(objective, stft)
    key = jax.random.PRNGKey(3)
    # Every term drawn (as in a stack with a Monte-Carlo run) and only the objective's own.
    every = CL.distillation_terms(config, mu_q, log_q, mu_p, log_p, key, monte_carlo=True)
    own = CL.distillation_terms(config, mu_q, log_q, mu_p, log_p, key)
    assert ("kl_reverse_mc" in own) == (objective == "reverse_mc")
    t = {k: float(v) for k, v in every.items()}
    by_definition = {
        "reverse": t["kl_reverse"],
        "reverse_reg": t["kl_reverse"] + 4.0 * t["log_scale_reg"],
        "forward_reg": t["kl_forward"] + 4.0 * t["log_scale_reg"],
        "reverse_mc": t["kl_reverse_mc"],
    }[objective] + stft * float(frame)
    weights = CL.objective_weights(config)
    assert weights.shape == (len(CL.TERMS),) and weights[-1] == stft
    for terms in (every, own):
        distill, total = CL.weighted_objective(weights, dict(terms, stft=frame))
        assert float(total) == pytest.approx(by_definition, rel=1e-6)
        assert float(distill) == pytest.approx(by_definition - stft * float(frame), rel=1e-6)
