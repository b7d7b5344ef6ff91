"""The Python blocks of the README and of docs/*.md run as written (from a scratch directory)."""

import re

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCKS = [
    (page.relative_to(REPO), i, block)
    for page in PAGES
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL))
]


def test_the_readme_and_the_api_page_have_python_examples():
    pages = {str(page) for page, _, _ in BLOCKS}
    assert {"README.md", "docs/api.md"} <= pages


@pytest.mark.parametrize("page, index, block", BLOCKS, ids=[f"{p}:{i}" for p, i, _ in BLOCKS])
def test_python_block_runs(page, index, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, f"{page} python block {index}", "exec"), namespace)  # noqa: S102
    if "wav" in namespace:
        assert len(namespace["wav"]) > 22050 // 2  # half a second of speech at least
