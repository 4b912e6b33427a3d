"""docs/contributing.md: its generated sections are what the registries say now (`python -m tools.contributing`)."""

from __future__ import annotations

from tools.contributing import CHECKED_IN, DOC, ROOT, render


def test_the_generated_sections_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text, "docs/contributing.md is stale: run `python -m tools.contributing`"


def test_each_checked_in_file_names_a_test_that_exists() -> None:
    for path, _, _, test in CHECKED_IN:
        assert (ROOT / path.rstrip("/")).exists(), path
        assert (ROOT / test).is_file(), test


def test_a_stale_section_is_rewritten() -> None:
    stale = DOC.read_text(encoding="utf-8").replace("`generator/decide/waivers.py`", "`somewhere_else.py`")
    assert render(stale) == DOC.read_text(encoding="utf-8")
