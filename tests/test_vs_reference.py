"""tools/vs_reference.py without PyTorch: its case registry, our side's worker speaking the
driver's protocol, and the table written into a README section. (The reference side needs a
torch environment and the references' checkouts, which the suite does not have.)"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tools import vs_reference as V


def test_an_unknown_case_is_refused_with_the_list_of_cases():
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "vs_reference.py"), "--case", "hifigan-v4"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert "unknown case 'hifigan-v4'" in out.stderr
    assert all(name in out.stderr for name in V.CASES)
    with pytest.raises(ValueError, match="the cases are tacotron2-train"):
        V.get_case("nope")


@pytest.mark.parametrize("name", list(V.CASES))
def test_each_case_shrinks_under_quick_and_names_its_shape(name):
    """Both sides of a case run at the same sizes; --quick shrinks some and grows none."""
    case = V.get_case(name)
    full, quick = case.sizes(False), case.sizes(True)
    assert full.keys() == quick.keys()
    assert all(quick[k] <= full[k] for k in full) and any(quick[k] < full[k] for k in full)
    assert callable(case.ours) and callable(case.reference)
    assert V.shape(full)  # the table can describe the row


@pytest.mark.slow
def test_our_worker_answers_timed_runs(tmp_path):
    """The driver's protocol with our side of a real case (HiFi-GAN V3's generator on 1 s of
    mel): `ready FLOPS`, then one duration per `run` line."""
    args = argparse.Namespace(
        threads=2, nvidia="unused", jik876="unused", clarinet="unused", quick=True
    )
    proc = V.start(sys.executable, "ours", "hifigan-v3", args)
    try:
        assert proc.flops > 1e6  # XLA counted the generator's FLOPs
        times = [V.ask(proc) for _ in range(2)]
        assert all(0 < t < 60 for t in times)
    finally:
        proc.stdin.close()
        proc.wait()
    assert proc.returncode == 0


@pytest.mark.slow
def test_render_writes_the_table_into_the_readme_section(tmp_path):
    """--render re-tabulates a run's JSON lines (the newest row per case, quick rows left out)
    into the README's vs_reference section, through tools/report.py's writer."""
    row = {
        "case": "hifigan-v1",
        **V.sizes("hifigan-v1", False),
        "ours_median_s": 1.0,
        "reference_median_s": 2.0,
        "ratio": 2.0,
        "ratio_min": 1.5,
        "ratio_max": 2.5,
        "ours_gflops": 10.0,
        "gemm_gflops": 100.0,
        "share_of_gemm": 0.1,
        "reference_retained_median_s": 1.8,
        "ratio_both_retained": 1.8,
        "ours_system_malloc_median_s": 1.2,
        "policy_speedup": 1.2,
        "device": "CPU (test), 2 threads",
        "quick": False,
    }
    runs = tmp_path / "runs.jsonl"
    older = {**row, "ratio": 9.0}
    runs.write_text("\n".join(json.dumps(r) for r in (older, row, {**row, "quick": True})))
    readme = tmp_path / "README.md"
    readme.write_text(
        "# title\n<!-- BEGIN report:vs_reference -->\nold\n<!-- END report:vs_reference -->\nend\n"
    )
    out = subprocess.run(
        [sys.executable, "tools/vs_reference.py", "--render", str(runs), "--readme", str(readme)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- END report:vs_reference -->\nend\n")
    assert "| hifigan-v1 | 861 mel frames | 1.000 | 2.000 | **2.00x** | 1.50–2.50 |" in text
    assert "9.00x" not in text  # the newer row of the case replaced the older
