"""Turn evaluation and benchmark JSON into the docs' tables (numbers produced, not typed).

    python tools/report.py eval runs/eval/*/eval.json [--readme docs/PAGE.md --section NAME]
    python tools/report.py bench runs/bench/results.jsonl [--readme docs/PAGE.md --section NAME]
    python tools/report.py configs [--readme docs/training.md --section configs]

With --readme (or its other name --page), the table replaces what stands between
``<!-- BEGIN report:NAME -->`` and ``<!-- END report:NAME -->`` in that page: the README or a
page of docs/ (which page holds which block: ``grep -rn 'BEGIN report:' README.md docs``);
otherwise it is printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts_jax.eval.evaluate import markdown_table  # noqa: E402


def configs_table() -> str:
    from tts_jax.cli.train import config_table

    lines = ["| config | family | parameters | intended use |", "|---|---|---|---|"]
    for r in config_table():
        spec = f"`{r['spec']}`" + (" (default)" if r["default"] else "")
        lines.append(f"| {spec} | {r['family']} | {r['params']} | {r['use']} |")
    return "\n".join(lines)


def eval_table(paths: list[str]) -> str:
    return markdown_table([json.loads(Path(p).read_text()) for p in paths])


def bench_table(paths: list[str]) -> str:
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line]
    rows = [r for r in rows if not r.get("quick")]
    # Newest measurement per (benchmark, measure, config, variant, batch, device); a variant
    # is an ablation's setting (e.g. HiFi-GAN's upsample_method or conv_impl).
    latest = {}
    for r in rows:
        key = (r["benchmark"], r.get("measure"), r.get("config"), _variant(r), r.get("batch"))
        latest[(*key, r["device"])] = r
    lines = [
        "| benchmark | config | measure | batch | device | params | compile (s) | median (s) | "
        "x real time | steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in latest.values():
        xrt = f"{r['x_real_time']:.2f}" if "x_real_time" in r else "–"
        sps = f"{r['steps_per_s']:.2f}" if "steps_per_s" in r else "–"
        lines.append(
            f"| {r['benchmark']} | {_config_name(r.get('config'))}{_variant(r)} | "
            f"{r.get('measure', '')} | "
            f"{r.get('batch', '')} | "
            f"{r['device']} | {r.get('params', 0):,} | {r['compile_s']:.2f} | "
            f"{r['median_s']:.4f} | {xrt} | {sps} |"
        )
    return "\n".join(lines)


def _config_name(config) -> str:
    # "experiments/hifigan.py:v1" -> "hifigan.py:v1"; free-form names (which may hold a "/")
    # are kept whole.
    if not config:
        return "-"
    return config.removeprefix("experiments/")


def _variant(r: dict) -> str:
    for k in ("upsample_method", "conv_impl", "lstm_kernel_grads", "residual_stream"):
        if k in r:
            return f" ({k}={r[k]})"
    return ""


def update_readme(readme: Path, section: str, table: str) -> None:
    """Replaces the ``report:SECTION`` block of the markdown page ``readme`` with ``table``."""
    text = readme.read_text()
    begin, end = f"<!-- BEGIN report:{section} -->", f"<!-- END report:{section} -->"
    if begin not in text or end not in text:
        sys.exit(f"{readme} has no {begin} ... {end} block")
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{table}\n{end}", text))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=["eval", "bench", "configs"])
    p.add_argument("paths", nargs="*")
    p.add_argument("--readme", "--page", dest="readme", help="the page whose block to rewrite")
    p.add_argument("--section")
    args = p.parse_args()
    tables = {"eval": eval_table, "bench": bench_table, "configs": lambda _: configs_table()}
    table = tables[args.kind](args.paths)
    if args.readme:
        if not args.section:
            sys.exit("--readme/--page needs --section")
        update_readme(Path(args.readme), args.section, table)
    else:
        print(table)


if __name__ == "__main__":
    main()
