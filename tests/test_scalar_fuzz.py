"""Scalars are validated as whole strings, and whatever `validate` accepts, the later stages take.

A corpus of tricky scalars (empty, line breaks, NEL, U+2028, non-ASCII digits, huge numbers, wrong types,
terminal escapes) is put in every scalar position of the reference spec; for each spec the validator
accepts, `plan`, `new` and `check` must never end in an internal error (exit 70).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from generator.cli import app
from generator.errors import INTERNAL
from requirements_spec.errors import SpecError
from requirements_spec.types import check_cron, check_duration, check_name, check_relative_path, check_text
from requirements_spec.validate import parse_spec

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "requirements_spec" / "presets" / "reference.yaml"
REF = yaml.safe_load(REFERENCE.read_text())

LINE_BREAKS = ["\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "\x0b", "\x0c"]
TRICKY: list[Any] = [
    "",
    " ",
    "\t",
    *(f"ranker{b}" for b in LINE_BREAKS),
    *(f"rank{b}er" for b in LINE_BREAKS),
    "\x1b[31mred\x1b[0m",
    "\x00",
    "\u202eevil",
    "١٢٣",  # Arabic-Indic digits
    "𝟙h",  # mathematical digit one
    "1ｈ",  # fullwidth h
    "1h\n",
    "30s\u2028",
    "0 * * * *\n",
    "0\u2028* * * *",
    "٣ * * * *",
    "0 ５ * * *",
    "*/٥ * * * *",
    "0 0 * * *\x85",
    "\u212a",  # Kelvin sign: lowercases to k
    "ı",
    "a" * 300,
    "../escape",
    "/etc/passwd",
    "{{ 7 * 7 }}",
    "$(touch /tmp/pwned)",
    "ranker",
    10**30,
    -(10**30),
    2**63,
    -1,
    0,
    1e308,
    -0.0,
    0.1,
    True,
    None,
    [],
    {},
    ["a", 1],
]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))]
    return [path]


LEAVES = _leaves(REF)


def _mutated(path: tuple[Any, ...], value: Any) -> str:
    doc = copy.deepcopy(REF)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------------ whole-string validation
@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[repr(b) for b in LINE_BREAKS])
def test_line_breaks_are_refused_in_names_durations_crons_and_paths(brk: str) -> None:
    for check, good in (
        (check_name, "ranker"),
        (check_duration, "1h"),
        (check_cron, "0 * * * *"),
        (check_relative_path, "data/x.parquet"),
    ):
        assert check(good) == good
        for bad in (good + brk, brk + good, good[:1] + brk + good[1:]):
            with pytest.raises(ValueError):
                check(bad)


@pytest.mark.parametrize(
    "value", ["٣ * * * *", "0 ５ * * *", "*/٥ * * * *", "0 0 ١ * *", "0\t0 * * *", "0 0 * * *\x85"]
)
def test_cron_fields_take_ascii_digits_and_spaces_only(value: str) -> None:
    with pytest.raises(ValueError):
        check_cron(value)


@pytest.mark.parametrize("value", ["١h", "𝟙h", "1ｈ", "1h ", " 1h", "99999999h"])
def test_durations_take_ascii_digits_only(value: str) -> None:
    with pytest.raises(ValueError):
        check_duration(value)


@pytest.mark.parametrize("value", ["\x1b[2J", "a\x85b", "a\u2028b", "a\u2029b", "\x9b31m"])
def test_free_text_refuses_controls_and_the_line_breaks_yaml_knows(value: str) -> None:
    with pytest.raises(ValueError):
        check_text(value)
    assert check_text("two\nlines, tabs\tand ünïcödé") == "two\nlines, tabs\tand ünïcödé"


def test_a_block_scalar_name_is_refused_with_its_place(tmp_path: Path) -> None:
    text = REFERENCE.read_text().replace("- name: ranker\n", "- name: |\n        ranker\n", 1)
    assert text != REFERENCE.read_text()
    with pytest.raises(SpecError) as info:
        parse_spec(text, "block.yaml")
    assert "not a valid name" in info.value.render()


# ------------------------------------------------------------------ what validates, runs
def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _accepted(text: str) -> bool:
    try:
        parse_spec(text, "fuzz.yaml")
    except SpecError:
        return False
    return True


def _stages(text: str, *, with_check: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec" / "fuzz.yaml"
        spec.parent.mkdir()
        spec.write_text(text, encoding="utf-8")
        code, output = _run("plan", str(spec))
        assert code in (0, 65), output
        code, output = _run("new", str(spec), "-o", str(Path(tmp) / "repo"))
        assert code not in (INTERNAL, 1), output
        if with_check and code == 0:
            code, output = _run("check", str(Path(tmp) / "repo"))
            assert code != INTERNAL, output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LEAVES), st.sampled_from(TRICKY))
def test_every_accepted_mutation_plans_and_generates(path: tuple[Any, ...], value: Any) -> None:
    text = _mutated(path, value)
    if _accepted(text):
        _stages(text, with_check=False)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LEAVES), st.sampled_from([v for v in TRICKY if isinstance(v, int | float)] + ["ranker2"]))
def test_every_accepted_mutation_passes_through_check(path: tuple[Any, ...], value: Any) -> None:
    text = _mutated(path, value)
    if _accepted(text):
        _stages(text, with_check=True)
