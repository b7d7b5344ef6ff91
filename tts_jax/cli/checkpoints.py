"""``tts-jax export``, ``import`` and ``gta``: checkpoints out of and into the package's
formats, through the families that offer them (:class:`tts_jax.family.Family`)."""

from __future__ import annotations

import argparse
import inspect
import textwrap

from tts_jax.cli.common import LOCAL, RUN, listing, positive_int
from tts_jax.family import families_with, get_family
from tts_jax.workdir import family_entry


def add_export(x) -> None:
    x.description = f"Families with an export: {listing(families_with('export'))}."
    x.add_argument("--workdir", required=True, type=RUN)
    x.add_argument("--out", required=True, type=RUN)
    x.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    x.set_defaults(out_kind="dir", func=cmd_export)


def cmd_export(args) -> int:
    export = family_entry(args.workdir, "export", f"export --workdir {args.workdir}")
    meta = export(args.workdir, args.out, args.dtype)
    print(
        f"export: step {meta['step']}, {meta['parameters']:,} parameters as {meta['dtype']} "
        f"-> {args.out} (sha256 {meta['sha256']})"
    )
    return 0


def _importers() -> str:
    """Each family with an importer and what its docstring says of it (``import --help``)."""
    lines = []
    for name in families_with("import_checkpoint"):
        doc = inspect.getdoc(get_family(name).import_checkpoint) or ""
        first = " ".join(doc.split("\n\n")[0].split()).replace("``", "")
        lines.append(
            textwrap.fill(first, 88, initial_indent=f"  {name}: ", subsequent_indent="    ")
        )
    return "importers:\n" + "\n".join(lines)


def add_import(im) -> None:
    im.epilog = _importers()
    im.formatter_class = argparse.RawDescriptionHelpFormatter
    im.add_argument(
        "family", help=f"the model family: {listing(families_with('import_checkpoint'))}"
    )
    im.add_argument(
        "--checkpoint",
        type=LOCAL,
        action="append",
        required=True,
        help="a torch.save file, repeatable (which files each family takes: below)",
    )
    im.add_argument(
        "--config", type=LOCAL, help="the reference's config file, for families that take one"
    )
    im.add_argument("--out", required=True, type=RUN, help="the workdir to write")
    im.set_defaults(out_kind="dir", func=cmd_import)


def cmd_import(args) -> int:
    importer = get_family(args.family).require("import_checkpoint", "import")
    summary = importer(args.checkpoint, args.config, args.out)
    print(
        f"import: {', '.join(map(str, args.checkpoint))} -> {args.out} (a {args.family} "
        f"workdir at step {summary['step']}; "
        + ", ".join(f"{k} {v}" for k, v in summary.items() if k not in ("step", "config"))
        + ")"
    )
    return 0


def add_gta(g) -> None:
    g.description = f"Families with a GTA export: {listing(families_with('gta'))}."
    g.add_argument("--workdir", required=True, type=RUN)
    g.add_argument("--out", required=True, type=LOCAL)
    g.add_argument("--split", default="train")
    g.add_argument("--batch-size", type=positive_int, default=16)
    g.add_argument(
        "--free-running",
        action="store_true",
        help="the model's own synthesis of each text, as long as it decodes (distillation "
        "targets), instead of teacher-forced mels",
    )
    g.set_defaults(out_kind="dir", func=cmd_gta)


def cmd_gta(args) -> int:
    gta = family_entry(args.workdir, "gta", f"gta --workdir {args.workdir}")
    index = gta(args.workdir, args.out, args.split, args.batch_size, args.free_running)
    print(
        f"gta: {len(index['utterances'])} {index['kind']} mels of split {args.split!r} "
        f"(model step {index['step']}) written to {args.out}"
    )
    return 0
