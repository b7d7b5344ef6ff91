"""``tts-jax bench``: time jitted functions (:mod:`tts_jax.benchmarks`), JSON lines out."""

from __future__ import annotations

from tts_jax import benchmarks


def add_bench(b) -> None:
    b.add_argument("model", nargs="+", help="one or more benchmarks, e.g. griffin_lim log_mel")
    b.add_argument("--config", default=None)
    b.add_argument("--quick", action="store_true", help="one repeat, small inputs")
    b.add_argument("--out", default="runs/bench/results.jsonl")
    b.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    for model in args.model:
        benchmarks.run(model, config_spec=args.config, quick=args.quick, out=args.out)
    return 0
