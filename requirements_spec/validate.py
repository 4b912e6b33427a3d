"""Data to :class:`Spec`: pydantic validation and reference checks, every error with its line."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Diagnostic, Location, Path, SpecError, format_path
from .loader import SourceMap, load_yaml_text, read_spec_text
from .models import Spec
from .references import check_references


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with the text it came from and where each node is in it."""

    spec: Spec
    source_map: SourceMap
    text: str

    @property
    def filename(self) -> str:
        """The spec's file name as given."""
        return self.source_map.filename


def load_spec(path: str | FsPath) -> LoadedSpec:
    """Read, parse and validate a spec file. Raises :class:`SpecError` with every problem."""
    text, name = read_spec_text(path)
    return parse_spec(text, name)


def parse_spec(text: str, filename: str = "<spec>") -> LoadedSpec:
    """Parse and validate spec text; raises :class:`SpecError` with every problem."""
    loaded = load_yaml_text(text, filename)
    spec = validate_data(loaded.data, loaded.source_map)
    return LoadedSpec(spec, loaded.source_map, text)


def validate_data(data: Any, source_map: SourceMap) -> Spec:
    """Validate loaded data into a :class:`Spec`: models, then references, every problem at once."""
    if not isinstance(data, dict):
        raise SpecError(
            [
                source_map.diagnostic(
                    INVALID_VALUE, (), "the spec must be a mapping of sections (version, project, serving, ...)"
                )
            ]
        )
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_diagnostics(exc, data, source_map)) from None
    problems = check_references(spec, source_map)
    if problems:
        raise SpecError(problems)
    return spec


# ---------------------------------------------------------------- pydantic errors to diagnostics
def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Path, bool]:
    """Map a pydantic ``loc`` onto the data: drop union tags; say whether the last item is present."""
    out: list[str | int] = []
    cur = data
    for n, item in enumerate(loc):
        last = n == len(loc) - 1
        in_dict = isinstance(cur, dict) and item in cur
        if in_dict or (isinstance(cur, list) and isinstance(item, int) and 0 <= item < len(cur)):
            out.append(item)
            cur = cur[item]
        elif isinstance(cur, dict) and last and isinstance(item, str):
            out.append(item)
            return tuple(out), False
        # otherwise a union member tag ('file', 'int', 'function-after[...]'): not part of the data
    return tuple(out), True


def _get(data: Any, path: Path) -> Any:
    for item in path:
        try:
            data = data[item]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(annotation) for m in _model_classes(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _allowed_keys(path: Path, data: Any) -> list[str]:
    """Field names allowed in the mapping at ``path`` (for 'did you mean')."""
    classes: list[type[BaseModel]] = [Spec]
    cur = data
    for item in path:
        if isinstance(item, int):
            cur = cur[item] if isinstance(cur, list) and item < len(cur) else None
            continue
        nxt: list[type[BaseModel]] = []
        for cls in classes:
            field = cls.model_fields.get(item)
            if field is not None:
                nxt.extend(_model_classes(field.annotation))
        classes = nxt
        cur = cur.get(item) if isinstance(cur, dict) else None
        if isinstance(cur, dict) and "kind" in cur and len(classes) > 1:
            kind = cur["kind"]
            picked = [c for c in classes if typing.get_args(c.model_fields["kind"].annotation) == (kind,)]
            classes = picked or classes
    return sorted({k for cls in classes for k in cls.model_fields})


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _message(err: Any, path: Path, data: Any) -> tuple[str, str | None]:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        name = path[-1]
        allowed = _allowed_keys(path[:-1], data)
        close = get_close_matches(str(name), allowed, n=1)
        hint = f"did you mean `{close[0]}`?" if close else ("allowed: " + ", ".join(allowed) if allowed else None)
        return f"unknown field `{name}`", hint
    if kind == "missing":
        return f"missing required field `{path[-1]}`", None
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        return f"invalid value {_shown(value)}", f"allowed values: {expected}"
    if kind == "union_tag_invalid":
        return (
            f"unknown {str(ctx.get('discriminator', 'kind')).strip(chr(39))} {ctx.get('tag')!r}",
            f"allowed values: {ctx.get('expected_tags')}",
        )
    if kind == "union_tag_not_found":
        return "missing required field `kind`", "allowed values: file, table, stream, request"
    return _value_message(kind, err, value, ctx)


def _value_message(kind: str, err: Any, value: Any, ctx: dict[str, Any]) -> tuple[str, str | None]:
    """The message of an error about a value: its type, bounds or length."""
    if kind in _TYPE_WORDS:
        hint = None
        if kind == "string_type" and isinstance(value, int | float | bool):
            hint = "quote the value to make it a string"
        return f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}", hint
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, "), None
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match the pattern {ctx.get('pattern')}", None
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {ctx.get(next(iter(ctx)), '') if ctx else ''}, got {_describe(value)}", None
    if kind == "finite_number":
        return f"expected a finite number, got {_describe(value)}", None
    if kind in ("too_short", "too_long"):
        word = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        return f"must have {word} {limit} item{'s' if limit != 1 else ''}, got {ctx.get('actual_length')}", None
    if kind in ("string_too_short", "string_too_long"):
        word = "at least" if kind == "string_too_short" else "at most"
        limit = ctx.get("min_length" if kind == "string_too_short" else "max_length")
        return f"must be {word} {limit} characters long, got {len(value) if isinstance(value, str) else '?'}", None
    return f"{err['msg']} (got {_describe(value)})", None


_BOUNDS = {
    "greater_than": "greater than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}


def _shown(value: Any) -> str:
    return _describe(value) if not isinstance(value, str) else repr(value)


def _merge(messages: list[tuple[str, str | None, str]]) -> tuple[str, str | None]:
    """One message for the errors at one path (union branches give one error each)."""
    specific = [(m, h) for m, h, kind in messages if kind not in _TYPE_WORDS]
    if specific:  # the value had a fitting type but broke a constraint: say that
        return specific[0]
    kinds = {kind for _, _, kind in messages}
    if kinds == {"int_type", "float_type"}:
        return messages[0][0].replace("an integer", "a number"), None
    texts = list(dict.fromkeys(m for m, _, _ in messages))
    return "; or ".join(texts), next((h for _, h, _ in messages if h), None)


def _diagnostics(exc: ValidationError, data: Any, source_map: SourceMap) -> list[Diagnostic]:
    grouped: dict[Path, list[tuple[str, str | None, str]]] = {}
    for err in exc.errors(include_url=False):
        path, _present = _data_path(tuple(err["loc"]), data)
        if err["type"] == "union_tag_invalid" and isinstance(_get(data, path), dict):
            path = (*path, "kind")
        message, hint = _message(err, path, data)
        grouped.setdefault(path, []).append((message, hint, err["type"]))
    # a misspelt key also makes the real one "missing": report the typo once, with its suggestion
    suggested = {
        (*path[:-1], hint.split("`")[1])
        for path, items in grouped.items()
        for _, hint, kind in items
        if kind == "extra_forbidden" and hint and hint.startswith("did you mean")
    }
    out: list[Diagnostic] = []
    for path, items in grouped.items():
        kinds = {kind for _, _, kind in items}
        if kinds == {"missing"} and path in suggested:
            continue
        message, hint = _merge(items)
        if kinds == {"extra_forbidden"}:
            line, col = source_map.where(path, key=True)
        elif kinds == {"missing"}:  # point at the mapping's own key (`serving:`), or its first line
            line, col = source_map.where(path[:-1], key=True)
        else:
            line, col = source_map.where(path)
        out.append(
            Diagnostic(_code(kinds), message, Location(source_map.filename, line, col, format_path(path)), hint=hint)
        )
    return out


#: the codes of schema problems
UNKNOWN_FIELD = "spec.unknown_field"
MISSING_FIELD = "spec.missing_field"
INVALID_VALUE = "spec.invalid_value"


def _code(kinds: set[str]) -> str:
    """The code of the errors pydantic reported at one path."""
    if kinds == {"extra_forbidden"}:
        return UNKNOWN_FIELD
    if kinds <= {"missing", "union_tag_not_found"}:
        return MISSING_FIELD
    return INVALID_VALUE
