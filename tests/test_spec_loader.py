"""The YAML layer: safe loading, the line index, scalar typing, limits that hold under attack."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
import yaml

from requirements_spec import SpecError, SpecUnreadable
from requirements_spec.loader import MAX_BYTES, MAX_DEPTH, decode, load_yaml_text, read_spec_text


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, "s.yaml")
    assert len(info.value.diagnostics) == 1
    return info.value


# ---------------------------------------------------------------- positions
def test_source_map_has_the_position_of_every_value_and_key() -> None:
    text = "a:\n  b: 1\n  c: [x, {d: 2}]\nlist:\n  - name: one\n  -   name: two\n"
    loaded = load_yaml_text(text, "s.yaml")
    smap = loaded.source_map
    assert loaded.data == {"a": {"b": 1, "c": ["x", {"d": 2}]}, "list": [{"name": "one"}, {"name": "two"}]}
    assert smap.where(("a", "b")) == (2, 6)
    assert smap.where(("a", "b"), key=True) == (2, 3)
    assert smap.where(("a", "c", 1, "d")) == (3, 14)
    assert smap.where(("list", 1, "name")) == (6, 13)
    assert smap.where(("list", 1, "name"), key=True) == (6, 7)
    # a missing node: its nearest ancestor
    assert smap.where(("list", 1, "missing")) == (6, 7)
    assert smap.where(("nowhere",)) == (1, 1)


def test_positions_under_an_alias_point_into_the_anchor_and_the_alias_itself() -> None:
    text = "base: &b\n  x: 1\n  y: 2\ncopy: *b\n"
    loaded = load_yaml_text(text, "s.yaml")
    assert loaded.data["copy"] == {"x": 1, "y": 2}
    assert loaded.source_map.where(("copy",)) == (4, 7)
    assert loaded.source_map.where(("copy", "y")) == (3, 6)


def test_crlf_line_endings_and_utf8_bom_are_fine() -> None:
    raw = b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: two\r\n"
    loaded = load_yaml_text(decode(raw, "s.yaml"), "s.yaml")
    assert loaded.data == {"a": 1, "b": {"c": "two"}}
    assert loaded.source_map.where(("b", "c")) == (3, 6)


@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029"])
def test_positions_count_lines_as_editors_do_when_yaml_sees_more_breaks(brk: str) -> None:
    # YAML breaks lines at NEL, LS and PS too; an editor (and the user) does not
    text = f'a: "one{brk}two"\nb:\n  c: 3\n'
    loaded = load_yaml_text(text, "s.yaml")
    assert loaded.source_map.where(("b", "c")) == (3, 6)
    with pytest.raises(SpecError) as err:
        load_yaml_text(f"a: 1 {brk}\nb: [\n", "s.yaml")
    (diag,) = err.value.diagnostics
    assert 1 <= diag.line <= 3, diag


# ---------------------------------------------------------------- scalar typing
@pytest.mark.parametrize(
    ("plain", "value"),
    [
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("true", True),
        ("False", False),
        ("null", None),
        ("~", None),
        ("42", 42),
        ("-7", -7),
        ("1.10", 1.1),
        ("1.5e+3", 1500.0),
        (".5", 0.5),
        ("017", "017"),  # YAML 1.1 reads octal 15
        ("1e3", "1e3"),  # YAML 1.1 reads a string, 1.2 a number: ambiguous, kept a string
        ("1_000", "1_000"),
        ("0x1f", "0x1f"),
        ("12:30", "12:30"),  # YAML 1.1 sexagesimal 750
        ("2024-01-01", "2024-01-01"),  # not a date object
        ("@daily", None),  # `@` cannot start a plain scalar: a syntax error, see below
    ],
)
def test_plain_scalars_follow_the_safe_subset(plain: str, value: object) -> None:
    if plain.startswith("@"):
        _error(f"a: {plain}\n")
        return
    assert load_yaml_text(f"a: {plain}\n").data == {"a": value}


@pytest.mark.parametrize("plain", [".inf", "-.Inf", ".NaN"])
def test_special_floats_load_and_are_rejected_later_by_the_models(plain: str) -> None:
    value = load_yaml_text(f"a: {plain}\n").data["a"]
    assert isinstance(value, float) and not math.isfinite(value)


def test_every_non_string_scalar_means_the_same_to_pyyaml() -> None:
    """What we type, PyYAML types the same way, so `yaml.safe_dump` output always reads back."""
    samples = ["0", "+1", "-0", "10", "3.", "3.25", "-2.5e-3", ".5", "true", "TRUE", "Null", "", "~"]
    for plain in samples:
        ours = load_yaml_text(f"a: {plain}\nb: 1\n").data["a"]
        theirs = yaml.safe_load(f"a: {plain}\n")["a"]
        assert ours == theirs and type(ours) is type(theirs), plain


def test_quoted_and_block_scalars_are_always_strings() -> None:
    data = load_yaml_text("a: '1'\nb: \"true\"\nc: |\n  42\nd: !!str 7\n").data
    assert data == {"a": "1", "b": "true", "c": "42\n", "d": "7"}


# ---------------------------------------------------------------- rejected constructs
@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system [echo PWNED]\n",
        "a: !!python/name:os.system\n",
        "!!python/object/new:os.system [echo PWNED]\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x}\n",
        "a: !!timestamp 2024-01-01\n",
        "a: !custom thing\n",
        "a: !!map {b: 1}\n",
    ],
)
def test_tags_are_rejected(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    error = _error(text)
    assert "YAML tags are not allowed" in error.diagnostics[0].message
    assert list(tmp_path.iterdir()) == []


def test_duplicate_keys_name_both_lines() -> None:
    error = _error("a: 1\nb:\n  c: 1\n  d: 2\n  c: 3\n")
    diag = error.diagnostics[0]
    assert (diag.line, diag.column, diag.path) == (5, 3, "b.c")
    assert "line 3" in diag.message and "line 5" in diag.message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: 1\n---\nb: 2\n", "exactly one YAML document"),
        ("? [a, b]\n: c\n", "plain names"),
        ("1: a\n", "not a name"),
        ("a: &x 1\nb: *y\n", "alias"),
        ("a: &a [1, *a]\n", "cycle"),
        ("a: &a {b: *a}\n", "cycle"),
        ("a: b\x00\n", "control characters"),
        ("a: [1, 2\n", "YAML syntax error"),
        ("a: 1\n b: 2\n", "YAML syntax error"),
        ("a: " + "9" * 200 + "\n", "more than 100 digits"),
    ],
)
def test_malformed_documents_give_one_clean_error(text: str, fragment: str) -> None:
    assert fragment in _error(text).render()


def test_empty_documents() -> None:
    for text in ("", "\n\n", "# only a comment\n", "null\n", "~\n", "---\n...\n"):
        assert "the spec is empty" in _error(text).render()


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 2000 + "]" * 2000 + "\n",
        "a:\n  " + "- " * 2000 + "x\n",
        "a: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
        "".join(" " * i + "k:\n" for i in range(1000)) + " " * 1000 + "k: 1\n",
    ],
)
def test_deep_nesting_is_a_clean_error(text: str) -> None:
    error = _error(text)
    assert "nesting deeper than" in error.diagnostics[0].message


def test_depth_limit_is_exact() -> None:
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert load_yaml_text(f"a: {ok}\n").data["a"] is not None
    _error(f"a: {'[' * MAX_DEPTH}{']' * MAX_DEPTH}\n")


def test_alias_bomb_is_rejected_quickly() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    started = time.perf_counter()
    error = _error("\n".join(lines) + "\n")
    assert time.perf_counter() - started < 1.0
    assert "expands to more than" in error.diagnostics[0].message


def _anchors(n: int) -> str:
    return "".join(f"- &a{i} {{x: {i}}}\n- *a{i}\n" for i in range(n))


def _fastest_load_s(text: str, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        load_yaml_text(text)
        best = min(best, time.perf_counter() - started)
    return best


def test_many_anchors_load_in_linear_time() -> None:
    """Registering an anchor must not rescan the document (it did: 8,000 anchors took 19 s). Four times the anchors
    take about four times as long (a rescan makes it sixteen); the fastest of three runs, compared in one run, so a
    busy machine slows both sides alike."""
    small, large = _fastest_load_s(_anchors(3_750)), _fastest_load_s(_anchors(15_000))
    assert large < 8 * small, (small, large)
    loaded = load_yaml_text(_anchors(15_000))
    assert loaded.data[-1] == {"x": 14_999}
    assert loaded.source_map.where((29_999, "x")) == (29_999, 15)  # in the anchor it copies


def test_size_cap_counts_bytes_not_characters() -> None:
    text = "a: '" + "é" * (MAX_BYTES // 2) + "'\n"  # 2 bytes each: just over the cap
    assert "larger than" in _error(text).render()


# ---------------------------------------------------------------- files and encodings
def test_read_spec_text_rejects_missing_directories_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(SpecUnreadable) as missing:
        read_spec_text(tmp_path / "nope.yaml")
    assert missing.value.exit_code == 66
    with pytest.raises(SpecUnreadable) as directory:
        read_spec_text(tmp_path)
    assert "directory" in directory.value.render()
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(SpecError) as oversized:
        read_spec_text(big)
    assert oversized.value.exit_code == 65 and "larger than" in oversized.value.render()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_exit_66(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\n")
    spec.chmod(0)
    with pytest.raises(SpecUnreadable):
        read_spec_text(spec)


@pytest.mark.parametrize(
    ("raw", "where", "fragment"),
    [
        (b"a: 1\nb: caf\xe9\n", (2, 7), "invalid UTF-8 at byte offset 11"),
        (b"\xff\xfea\x00:\x00", (1, 1), "UTF-16"),
        (b"\xfe\xff\x00a\x00:", (1, 1), "UTF-16"),
    ],
)
def test_bad_encodings(raw: bytes, where: tuple[int, int], fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        decode(raw, "s.yaml")
    diag = info.value.diagnostics[0]
    assert (diag.line, diag.column) == where
    assert fragment in diag.message
