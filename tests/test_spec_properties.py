"""Properties of the spec language that must hold for every input.

- every valid spec dumped to YAML reads back to an equal ``Spec`` (with and without defaults);
- no text and no bytes make the loader raise anything but ``SpecError`` (the tomli contract),
  and every diagnostic points inside the file.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from requirements_spec import SpecError, parse_spec, presets
from requirements_spec.loader import decode
from requirements_spec.models import Spec
from tests.strategies import spec_yaml, valid_specs

SETTINGS = settings(max_examples=settings().max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REFERENCE_LINES = presets.text("reference").splitlines(keepends=True)
REALTIME_LINES = presets.text("realtime").splitlines(keepends=True)


def _parse_or_spec_error(text: str) -> None:
    try:
        loaded = parse_spec(text, "fuzz.yaml")
    except SpecError as exc:
        assert exc.diagnostics, "a SpecError without diagnostics"
        # lines as YAML and editors count them (CR, LF, CRLF, NEL, LS, PS), plus the end-of-stream line
        last_line = len(re.split(r"\r\n|[\r\n\x85\u2028\u2029]", text)) + 1
        for diag in exc.diagnostics:
            assert 1 <= diag.line <= last_line and diag.column >= 1, diag
            assert diag.file == "fuzz.yaml" and diag.message
        assert exc.render().endswith("found")
    else:
        assert isinstance(loaded.spec, Spec)


@SETTINGS
@given(valid_specs(), st.booleans())
def test_valid_specs_round_trip_through_yaml(spec: Spec, exclude_defaults: bool) -> None:
    text = spec_yaml(spec, exclude_defaults=exclude_defaults)
    assert parse_spec(text, "spec.yaml").spec == spec


@SETTINGS
@given(valid_specs(features=True, max_models=2))
def test_specs_with_feature_stores_round_trip(spec: Spec) -> None:
    assert spec.features is not None
    assert parse_spec(spec_yaml(spec), "spec.yaml").spec == spec


@SETTINGS
@given(st.text(max_size=300))
@example(text="::\r0")  # a lone CR is a line break to YAML: the error points at line 3 of 2 (end of stream)
def test_arbitrary_text_raises_only_spec_error(text: str) -> None:
    _parse_or_spec_error(text)


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_spec_error(raw: bytes) -> None:
    try:
        text = decode(raw, "fuzz.yaml")
    except SpecError:
        return
    _parse_or_spec_error(text)


_YAML_BITS = st.sampled_from(
    ["- ", ": ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ", "? ", "|\n", ">-\n", "'", '"', "#", "\n", "  ", "\t"]
)


@SETTINGS
@given(st.lists(st.one_of(_YAML_BITS, st.text(max_size=5)), max_size=60).map("".join))
def test_yaml_shaped_text_raises_only_spec_error(text: str) -> None:
    _parse_or_spec_error(text)


@st.composite
def _mutated_specs(draw: st.DrawFn) -> str:
    """A real spec with lines dropped, repeated, swapped or edited: near-valid input."""
    lines = list(draw(st.sampled_from([REFERENCE_LINES, REALTIME_LINES])))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["drop", "repeat", "swap", "indent", "dedent", "edit"]))
        if op == "drop":
            del lines[i]
        elif op == "repeat":
            lines.insert(i, lines[i])
        elif op == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip()
        elif op == "edit":
            line = lines[i]
            j = draw(st.integers(0, max(0, len(line) - 1)))
            lines[i] = line[:j] + draw(st.text(max_size=4)) + line[j + 1 :]
        if not lines:
            break
    return "".join(lines)


@SETTINGS
@given(_mutated_specs())
def test_mutated_real_specs_raise_only_spec_error(text: str) -> None:
    _parse_or_spec_error(text)
