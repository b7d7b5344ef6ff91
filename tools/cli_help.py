"""Every `tts-jax` verb's ``--help``, as docs/FIRST_HOUR.md records it.

    python tools/cli_help.py                             # print the block
    python tools/cli_help.py --write docs/FIRST_HOUR.md  # replace it there (make first-hour)

The verbs are read from the top-level help itself (its ``{corpus,prepare,...}`` group), and
a verb with verbs of its own (``listen page|serve|results``) is followed down, so a new verb
is recorded without editing this file. Help is formatted at a fixed width of 100 columns,
whatever the terminal, so the record is the same on every machine. tests/test_docs.py fails
when the page's block is not what this prints.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.report import update_readme  # noqa: E402

SECTION = "cli-help"
WIDTH = "100"
# A "{a,b,c}" line of its own under "positional arguments": the verbs of that (sub)command
# (an option's choices stand beside the option, never alone on a line).
VERBS = re.compile(r"^  \{([a-z0-9_,-]+)\}$", re.MULTILINE)


def help_text(argv: list[str]) -> str:
    """What ``tts-jax ARGV --help`` prints, formatted at WIDTH columns."""
    from tts_jax import cli

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            cli.main([*argv, "--help"])
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    return out.getvalue().rstrip() + "\n"


def all_help(argv: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """``[(argv, help text)]`` for ``tts-jax`` and, depth first, every verb under it."""
    text = help_text(list(argv))
    found = [(argv, text)]
    match = VERBS.search(text) if len(argv) < 3 else None
    for verb in match.group(1).split(",") if match else []:
        found += all_help((*argv, verb))
    return found


def block() -> str:
    parts = [
        "Written by `python tools/cli_help.py --write docs/FIRST_HOUR.md` (`make first-hour`),"
        " at 100 columns; `tests/test_docs.py` fails when the CLI's help no longer matches."
    ]
    for argv, text in all_help():
        parts.append(f"```console\n$ tts-jax {' '.join((*argv, '--help'))}\n{text}```")
    return "\n\n".join(parts)


def recorded(page: Path) -> str | None:
    """The block between the page's markers, or None when it has none."""
    begin, end = f"<!-- BEGIN report:{SECTION} -->", f"<!-- END report:{SECTION} -->"
    text = page.read_text()
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", type=Path, help="the page whose cli-help block to replace")
    args = p.parse_args()
    if args.write:
        update_readme(args.write, SECTION, block())
    else:
        print(f"<!-- BEGIN report:{SECTION} -->\n{block()}\n<!-- END report:{SECTION} -->")


if __name__ == "__main__":
    main()
