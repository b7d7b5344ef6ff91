"""Run benchmarks and write JSON lines: the same as `tts-jax bench MODEL ...`.

python tools/bench.py griffin_lim log_mel frame_lm [--quick] [--out runs/bench/results.jsonl]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_jax import bench  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--config", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="runs/bench/results.jsonl")
    args = p.parse_args()
    for model in args.models:
        bench.run(model, config_spec=args.config, quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
