"""The documentation: the site builds in strict mode, links resolve, the recorded --help is the
CLI's, and user-facing text speaks of papers, experiments and files only."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys

import pytest
from markdown.extensions.toc import slugify

from tests.conftest import REPO
from tools import cli_help

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _mkdocs_build(root, site):
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_site_builds_in_strict_mode_with_the_api_reference(tmp_path):
    done = _mkdocs_build(REPO, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    # mkdocstrings rendered the docstrings, not just the page's own text
    assert 'id="tts_jax.pretrained.load"' in api
    assert "The one exception type for user mistakes." in api


def test_a_broken_link_or_anchor_fails_the_build(tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(REPO / "tts_jax", root / "tts_jax")  # the API reference reads it
    page = root / "docs" / "index.md"
    original = page.read_text()
    for broken in ("[gone](no_such_page.md)", "[gone](data.md#no-such-heading)"):
        page.write_text(f"{original}\n{broken}\n")
        done = _mkdocs_build(root, tmp_path / "site")
        assert done.returncode != 0 and "no_such" in done.stderr.replace("no-such", "no_such")


def _headings(page) -> set[str]:
    """The anchors mkdocs gives the headings of a markdown page (code blocks skipped)."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slugify(h.strip(), "-") for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_every_relative_link_of_the_readme_resolves():
    text = re.sub(r"```.*?```", "", (REPO / "README.md").read_text(), flags=re.DOTALL)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert len(relative) > 20
    for link in relative:
        path, _, anchor = link.partition("#")
        target = REPO / path
        assert target.is_file(), f"README.md links to {link}: no such file"
        if anchor:
            assert anchor in _headings(target), f"README.md links to {link}: no such heading"


def test_first_hour_records_the_clis_help():
    """docs/FIRST_HOUR.md's last section is every verb's --help as the CLI prints it now."""
    recorded = cli_help.recorded(REPO / "docs" / "FIRST_HOUR.md")
    assert recorded is not None, "docs/FIRST_HOUR.md has no report:cli-help block"
    current = cli_help.block()
    assert "$ tts-jax listen page --help" in current  # nested verbs are followed
    assert recorded == current, (
        "the CLI's --help changed: regenerate the record with `make first-hour` "
        "(python tools/cli_help.py --write docs/FIRST_HOUR.md)"
    )


# What only the people who built this would understand: numbers of the design notes' seed
# files, issue numbers, words of a work log, paths of the machine a run was measured on.
PRIVATE = {
    "a seed file's number": r"\bseed \d{3}\b",
    "an issue number": r"\bissues? #?\d+|(?<![\w&/#])#\d+\b",
    "a work-log word": r"\bsessions?\b|\bthis turn\b|\bwork[- ]log\b",
    "a machine path": r"(?<![\w.])/(work|home|root|Users)/",
}


def _user_facing() -> list[tuple[str, str]]:
    texts = [(str(p.relative_to(REPO)), p.read_text()) for p in PAGES]
    texts += [(str(p.relative_to(REPO)), p.read_text()) for p in sorted(REPO.glob("data/**/*.md"))]
    for path in sorted((REPO / "experiments").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        texts.append((f"{path.relative_to(REPO)} (docstring)", doc))
    return texts


@pytest.mark.parametrize("what", PRIVATE)
def test_user_facing_text_has_no_private_language(what):
    found = [
        f"{name}: {m.group(0)!r} in {text[max(0, m.start() - 40) : m.end() + 40]!r}"
        for name, text in _user_facing()
        for m in re.finditer(PRIVATE[what], text)
    ]
    assert not found, f"{what} in user-facing text:\n" + "\n".join(found)


def test_the_private_language_patterns_catch_what_they_are_for():
    caught = {
        "a seed file's number": "the loss of seed 000",
        "an issue number": "measured in issue 4 and #31",
        "a work-log word": "measured in this session",
        "a machine path": "the run in /work/runs/x",
    }
    for what, text in caught.items():
        assert re.search(PRIVATE[what], text), what
    for fine in ("--seed 0", "seeds 0 and 1", "docs/x.md#nvidiatacotron2", "runs/work/x"):
        assert not any(re.search(p, fine) for p in PRIVATE.values()), fine


def test_every_report_block_is_in_one_place_and_closed():
    """The generators (tools/report.py and the experiment reports) rewrite a block by name."""
    seen = {}
    for page in PAGES:
        text = page.read_text()
        begins = re.findall(r"<!-- BEGIN report:([\w-]+) -->", text)
        ends = re.findall(r"<!-- END report:([\w-]+) -->", text)
        assert begins == ends, page
        for name in begins:
            assert name not in seen, f"report:{name} in {seen.get(name)} and {page}"
            seen[name] = page
    assert {"configs", "shipped", "vs_reference", "bench", "cli-help"} <= set(seen)


def test_every_figure_of_docs_is_shown_on_a_page():
    text = "\n".join(p.read_text() for p in PAGES)
    unused = [p.name for p in sorted((REPO / "docs").glob("*.png")) if p.name not in text]
    assert not unused, f"figures no page shows: {unused}"


def _sections_written_by(script: str) -> set[str]:
    """The report blocks a generator script rewrites by a fixed name."""
    text = (REPO / script).read_text()
    fixed = re.findall(r'update_readme\([^)]*?"([\w-]+)"', text)
    return set(fixed) | set(re.findall(r"BEGIN report:([\w-]+)", text))


def test_every_documented_generator_command_names_a_page_that_holds_its_block():
    """``--readme PAGE [--section NAME]`` wherever a command is documented (pages, and the
    generators' own docstrings): the page has the block the command rewrites, so moving a
    block without its commands fails here."""
    sources = [*PAGES, *sorted(REPO.glob("tools/*.py")), *sorted(REPO.glob("experiments/*.py"))]
    checked = 0
    for source in sources:
        text = source.read_text()
        for m in re.finditer(r"--readme\s+([\w./]+\.md)(?:\s+--section\s+([\w-]+))?", text):
            page, section = m.group(1), m.group(2)
            if "PAGE" in page:
                continue  # a placeholder in a usage line
            if section:
                sections = {section}
            else:
                scripts = re.findall(r"(?:tools|experiments)/\w+\.py", text[: m.start()][-400:])
                script = scripts[-1] if scripts else str(source.relative_to(REPO))
                sections = _sections_written_by(script)
                assert sections, f"{source.name}: which block does {m.group(0)!r} rewrite?"
            for name in sections:
                assert f"<!-- BEGIN report:{name} -->" in (REPO / page).read_text(), (
                    f"{source.relative_to(REPO)}: {m.group(0)!r}, but {page} has no "
                    f"report:{name} block"
                )
                checked += 1
    assert checked >= 10
