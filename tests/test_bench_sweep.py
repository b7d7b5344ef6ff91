"""tools/bench_sweep.py --quick: stacked against sequential sweeps, one worker process per
fake-device count; the JSON's structure, and that both modes trained the same runs to the same
losses (a stack that mixed up its runs, or fed them other batches, would fail here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tts_jax import benchmarks

REPO = Path(__file__).resolve().parents[1]


def test_the_sweep_benchmark_is_registered():
    benchmarks._register_builtin()
    assert "sweep" in benchmarks.BENCHMARKS


@pytest.mark.slow
def test_quick_sweep_benchmark_writes_json_and_table(tmp_path):
    out, page = tmp_path / "sweeps.json", tmp_path / "sweeps.md"
    cmd = [sys.executable, "tools/bench_sweep.py", "--quick", "--json", out, "--table", page]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=900)
    result = json.loads(out.read_text())
    assert result["complete"] is True and result["plan"] == "quick"
    assert re.fullmatch(r"[0-9a-f]{40}", result["commit"])
    assert result["machine"]["cpu_count"] >= 1 and len(result["load_before"]) == 3
    rows = result["rows"]
    assert [(r["config"], r["devices"]) for r in rows] == [("clarinet:tiny", 2)]
    for r in rows:
        for mode in ("sequential", "stacked"):
            m = r[mode]
            assert m["wall_s"] > m["compile_s"] > 0 and m["step_s"] > 0
            assert np.shape(m["losses"]) == (r["runs"], r["steps"])
        seq, st = np.asarray(r["sequential"]["losses"]), np.asarray(r["stacked"]["losses"])
        assert np.all(np.isfinite(seq))
        # The same runs to the same losses (vmap may reorder float sums) ...
        np.testing.assert_allclose(st, seq, rtol=1e-5)
        # ... and they are different runs (other objectives and seeds), not one run twice.
        assert abs(seq[0, 0] - seq[1, 0]) > 1e-3 * abs(seq[0, 0])
        assert r["loss_max_rel_diff"] < 1e-5
        expected = r["sequential"]["wall_s"] / r["stacked"]["wall_s"]
        assert r["wall_ratio"] == pytest.approx(expected)
    # Two runs on two devices: one run per device.
    assert rows[0]["stack_mesh"] == {"run": 2, "data": 1}
    assert rows[0]["layout_mode"] == "stack"
    table = page.read_text()
    assert result["commit"][:12] in table
    assert table.count("| clarinet:tiny | 2 |") == 1
