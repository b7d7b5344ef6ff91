"""Checkpoint save and restore: a local disk against a GCS-compatible server on localhost.

    python tools/bucket_io.py [--config experiments/tacotron2.py:paper] [--rounds 5] \
        [--out runs/bench/bucket_io.jsonl] [--markdown docs/object_storage.md]

One train state (the config's family, initialised once) is saved with the trainer's own
checkpoint manager (tts_jax.workdir.checkpoint_manager) and restored into the same target,
alternately to a local folder and to fake-gcs-server (tools/gcs_emulator.py, its filesystem
backend on the same disk), each round a new step. Writes one JSON line per place and the
table in ``--markdown``'s ``bucket-io`` block, with the date, commit and machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.gcs_emulator import GCSServer  # noqa: E402
from tools.report import update_readme  # noqa: E402


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def measure(config_spec: str, rounds: int, scratch: Path) -> list[dict]:
    server = GCSServer(scratch / "objects")
    server.start()
    os.environ.update(server.env)
    try:
        import jax
        import numpy as np
        import orbax.checkpoint as ocp

        from tts_jax.config import load_config
        from tts_jax.family import get_family
        from tts_jax.workdir import checkpoint_manager, restore_state

        config = load_config(config_spec)
        family = get_family(config.model.family)
        state = jax.jit(lambda r: family.init_state(config, r, family.example_batch(config)))(
            jax.random.PRNGKey(0)
        )
        nbytes = sum(x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes"))
        places = {"local disk": str(scratch / "local"), "fake-gcs-server": server.bucket("bench")}
        times = {p: {"save": [], "restore": []} for p in places}
        for step in range(1, rounds + 1):
            for place, root in places.items():
                mgr = checkpoint_manager(root, 2)
                t0 = time.perf_counter()
                mgr.save(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave({"index": 0})
                    ),
                    force=True,
                )
                mgr.wait_until_finished()
                times[place]["save"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                back, _ = restore_state(mgr, state, step)
                jax.block_until_ready(back)
                times[place]["restore"].append(time.perf_counter() - t0)
                mgr.close()
                for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(back), strict=True):
                    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    finally:
        server.stop()
    stamp = {
        "config": config_spec,
        "state_mb": nbytes / 1e6,
        "rounds": rounds,
        "commit": _commit(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return [
        {
            **stamp,
            "place": place,
            "save_median_s": statistics.median(t["save"]),
            "restore_median_s": statistics.median(t["restore"]),
            "save_s": t["save"],
            "restore_s": t["restore"],
        }
        for place, t in times.items()
    ]


def table(rows: list[dict]) -> str:
    local = next(r for r in rows if r["place"] == "local disk")
    lines = [
        f"{rows[0]['config']}: a {rows[0]['state_mb']:.0f} MB train state, {rows[0]['rounds']} "
        f"rounds, measured {rows[0]['time'][:10]} at commit {rows[0]['commit']} on "
        f"{rows[0]['cpus']} CPU cores.",
        "",
        "| place | save (s) | restore (s) | save / local | restore / local |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['place']} | {r['save_median_s']:.2f} | {r['restore_median_s']:.2f} | "
            f"{r['save_median_s'] / local['save_median_s']:.2f}x | "
            f"{r['restore_median_s'] / local['restore_median_s']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/tacotron2.py:paper")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default="runs/bench/bucket_io.jsonl")
    p.add_argument("--markdown", help="a file with a bucket-io report block to fill")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bucket_io_") as scratch:
        rows = measure(args.config, args.rounds, Path(scratch))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(table(rows))
    if args.markdown:
        update_readme(Path(args.markdown), "bucket-io", table(rows))


if __name__ == "__main__":
    main()
