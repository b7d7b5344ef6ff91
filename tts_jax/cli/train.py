"""``tts-jax train``, ``configs`` and ``sweep``: runs of the experiment configs."""

from __future__ import annotations

import argparse
import textwrap

from tts_jax.cli.common import RUN, positive_int
from tts_jax.config import config_catalog, load_config, sweep_files
from tts_jax.errors import UserError
from tts_jax.family import get_family
from tts_jax.sweep import run_sweep
from tts_jax.train import distributed
from tts_jax.train.loop import train_and_evaluate

OVERRIDES_HELP = (
    "Any config field can be overridden: --config.a.b=VALUE (with '=', e.g. "
    "--config.train.num_steps=500 --config.optim.learning_rate=3e-4); the fields are the "
    "config file's (tts_jax/config.py has those every config shares)."
)


def _catalog_help() -> str:
    lines = [f"  {r['spec']:<34} {r['use']}" for r in config_catalog()]
    return "configs (`tts-jax configs` adds their families and parameter counts):\n" + "\n".join(
        lines
    )


def add_train(parser) -> None:
    parser.epilog = textwrap.fill(OVERRIDES_HELP, 88) + "\n\n" + _catalog_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", required=True, help="experiments/NAME.py[:VARIANT]")
    parser.add_argument("--workdir", required=True, type=RUN, help="local, gs://... or s3://...")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-host run (same command on every host; see tts_jax/train/distributed.py)",
    )
    parser.add_argument("--coordinator", help="with --distributed: HOST:PORT of process 0")
    parser.add_argument("--num-processes", type=positive_int, help="with --distributed")
    parser.add_argument("--process-id", type=int, help="with --distributed: 0 .. N-1")
    parser.add_argument(
        "--heartbeat-seconds",
        type=positive_int,
        default=100,
        help="with --distributed: a process silent this long ends the run on every host",
    )
    parser.set_defaults(takes_overrides=True, func=cmd_train)


def cmd_train(args) -> int:
    config = load_config(args.config, args.overrides)
    if args.distributed:
        distributed.initialize(
            args.coordinator, args.num_processes, args.process_id, args.heartbeat_seconds
        )
    elif args.coordinator or args.num_processes or args.process_id is not None:
        raise UserError("--coordinator, --num-processes and --process-id need --distributed")

    state = train_and_evaluate(config, args.workdir)
    print(f"train: workdir {args.workdir} at step {int(state.step)}")
    return 0


def _format_params(parts: dict[str, int]) -> str:
    """``{"generator": 13926017, "discriminators": 70724591}`` -> '13.93 M (+ discriminators
    70.72 M)': the first part is the model that is used after training."""

    def size(n: int) -> str:
        return f"{n / 1e6:.2f} M" if n >= 10_000 else f"{n / 1e3:.1f} k"

    (_, head), *rest = parts.items()
    extra = ", ".join(f"{k} {size(v)}" for k, v in rest)
    return size(head) + (f" (+ {extra})" if extra else "")


def config_table() -> list[dict]:
    """:func:`tts_jax.config.config_catalog` rows with each variant's family and parameter
    count."""
    rows = []
    for row in config_catalog():
        config = load_config(row["spec"])
        family = get_family(config.model.family)
        params = _format_params(family.param_count(config)) if family.param_count else "?"
        rows.append({**row, "family": config.model.family, "params": params})
    return rows


def add_configs(parser) -> None:
    parser.set_defaults(out_kind=None, func=cmd_configs)


def cmd_configs(args) -> int:
    rows = config_table()
    width = max(len(row["spec"]) for row in rows) + 1
    for row in rows:
        mark = "*" if row["default"] else " "
        print(f"{row['spec']:<{width}}{mark} {row['family']:<11} {row['params']:<34} {row['use']}")
    print("* the file's default variant (FILE.py alone); parameters are the trained ones")
    return 0


def add_sweep(sw) -> None:
    sw.description = "The sweep files: " + ", ".join(sweep_files()) + "."
    sw.add_argument("spec", help="FILE.py[:VARIANT] defining get_sweep(variant)")
    sw.add_argument("--workdir", required=True, type=RUN, help="local, gs://... or s3://...")
    sw.add_argument(
        "--set",
        action="append",
        default=[],
        help="teacher.a.b=v or student.a.b=v: override a field of either config (repeatable)",
    )
    sw.add_argument(
        "--sequential",
        action="store_true",
        help="train the runs one after another, each over every device, instead of stacking "
        "the runs that build the same shapes into one program (docs/sweeps.md)",
    )
    sw.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    for item in args.set:  # which prefixes a sweep takes is its runner's business
        key = item.split("=", 1)[0]
        if "=" not in item or "." not in key.strip(".") or key.endswith("."):
            raise UserError(f"--set {item!r}: expected PREFIX.a.b=VALUE (e.g. student.seed=1)")
    result = run_sweep(args.spec, args.workdir, args.set, args.sequential)
    print((args.workdir / "report.md").read_text())
    print(f"sweep: {len(result['rows'])} runs -> {args.workdir}/report.md")
    return 0
