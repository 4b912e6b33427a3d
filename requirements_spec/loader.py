"""YAML loading that keeps the line and column of every node.

Safe by construction: the document is read as a stream of parser events and built here,
so no tag can construct an object, every alias expansion is counted (an alias bomb is
rejected after a bounded amount of work), nesting depth is capped without recursion,
duplicate keys are rejected with both lines, and exactly one document is accepted.

Plain scalars are typed only where YAML 1.2 (core schema) and PyYAML's YAML 1.1 agree:
``no``, ``on`` and ``y`` stay strings (no "Norway problem"), and so do forms the two versions
read differently (``017``, ``1e3``, ``1_000``, ``0x1f``, ``2024-01-01``). Whatever is read as a
number, boolean or null here is read the same by ``yaml.safe_load``, so ``yaml.safe_dump``
output (which quotes by PyYAML's rules) always loads back to the same values.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from .errors import Diagnostic, Location, Path, SpecError, SpecUnreadable, format_path

MAX_BYTES = 1024 * 1024  # 1 MiB: a requirements spec is a page or two, not a data set
MAX_DEPTH = 64
MAX_NODES = 200_000  # counted after alias expansion

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")  # no leading zeros: YAML 1.1 reads 017 as octal
_FLOAT = re.compile(r"^(?:[-+]?[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+][0-9]+)?$")  # a dot; a signed exponent
_TYPED_STARTS = frozenset("~nNtTfF+-.0123456789")  # first characters of every null, bool and number form
_MAX_DIGITS = 100  # far beyond any sensible value, far below Python's int-conversion limit
_SPECIAL_FLOAT = {
    **{f"{sign}{inf}": float(f"{sign or '+'}inf") for sign in ("", "+", "-") for inf in (".inf", ".Inf", ".INF")},
    **{nan: float("nan") for nan in (".nan", ".NaN", ".NAN")},
}


@dataclass(frozen=True)
class SourceMap:
    """Where each node of a loaded document came from (1-based line and column)."""

    filename: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Position of ``path``; for a missing node, the position of its nearest ancestor."""
        p = tuple(path)
        if key and p in self.keys:
            return self.keys[p]
        while p:
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))

    def line(self, path: Path) -> int:
        """The line of ``path``."""
        return self.where(path)[0]

    def location(self, path: Path, *, key: bool = False) -> Location:
        """The :class:`Location` of ``path`` (of its key with ``key``), as :meth:`where` finds it."""
        line, col = self.where(path, key=key)
        return Location(self.filename, line, col, format_path(path))

    def diagnostic(
        self,
        code: str,
        path: Path,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        related: tuple[Path, ...] = (),
    ) -> Diagnostic:
        """An error at ``path`` (its key with ``key``), involving the ``related`` paths."""
        return Diagnostic(
            code,
            message,
            self.location(path, key=key),
            hint=hint,
            related=tuple(self.location(r) for r in related),
        )


@dataclass(frozen=True)
class LoadedYaml:
    """Loaded YAML: the data, where each node came from, and the text."""

    data: Any
    source_map: SourceMap
    text: str


def _fail(
    filename: str, line: int, col: int, message: str, hint: str | None = None, *, path: Path | None = None
) -> SpecError:
    """A YAML-level problem of the spec (syntax, limits, tags, duplicate keys): code ``spec.yaml``."""
    where = "<document>" if path is None else format_path(path)
    return SpecError([Diagnostic("spec.yaml", message, Location(filename, line, col, where), hint=hint)])


def _pos(mark: Any, lines: _Lines | None = None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if lines is None else lines.at(mark.index)


# YAML also breaks lines at NEL, LS and PS, which editors (and `grep -n`) do not: in a text holding one of
# them, positions are counted from the character offset instead, with lines split at "\n" only.
_ODD_BREAKS = re.compile("[\x85\u2028\u2029]")


class _Lines:
    """Line and column of a character offset, lines split at line feeds (as an editor numbers them)."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def at(self, index: int) -> tuple[int, int]:
        i = bisect_right(self.starts, index) - 1
        return (i + 1, index - self.starts[i] + 1)

    @staticmethod
    def needed(text: str) -> _Lines | None:
        return _Lines(text) if _ODD_BREAKS.search(text) else None


def _scalar(event: Any) -> Any:
    value: str = event.value
    if event.style or not event.implicit[0]:
        return value  # quoted, or a block scalar: always a string
    if value and value[0] not in _TYPED_STARTS:
        return value  # most names: no null, bool or number starts this way
    if _NULL.match(value):
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT.match(value):
        if len(value) > _MAX_DIGITS:
            raise ValueError(f"the number {value[:12]}... has more than {_MAX_DIGITS} digits")
        return int(value)
    if value in _SPECIAL_FLOAT:
        return _SPECIAL_FLOAT[value]
    if _FLOAT.match(value):
        if len(value) > _MAX_DIGITS:
            raise ValueError(f"the number {value[:12]}... has more than {_MAX_DIGITS} digits")
        return float(value)
    return value


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = (
        *("anchor", "container", "index", "is_map", "key", "key_lines", "key_pos", "log_start", "nodes_start"),
        "path",
    )

    def __init__(
        self, container: Any, path: Path, anchor: str | None, log_start: int, nodes_start: int, is_map: bool
    ) -> None:
        self.container = container
        self.is_map = is_map
        self.path = path
        self.anchor = anchor
        self.log_start = log_start  # where this node's positions start in the builder's log
        self.nodes_start = nodes_start
        self.key: Any = _NO_KEY
        self.key_pos: tuple[int, int] = (1, 1)
        self.key_lines: dict[str, int] = {}
        self.index = 0


_NO_KEY = object()
_VALUE, _KEY = 0, 1
_SCALAR, _ALIAS, _MAPPING_START = yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent
_MAPPING_END, _SEQUENCE_END = yaml.MappingEndEvent, yaml.SequenceEndEvent
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass
class _Anchored:
    value: Any
    size: int
    log: list[tuple[int, Path, tuple[int, int]]]  # (kind, path relative to the anchor, position)


class _Builder:
    """Builds plain data from parser events, logging the position of every value and key.

    Positions go to an append-only log, so an anchor's positions are the slice of the log
    written while its node was open: registering and replaying an anchor costs the size
    of its node, never the size of the document (no quadratic blow-up on many anchors).
    """

    def __init__(self, filename: str, lines: _Lines | None = None) -> None:
        self.filename = filename
        self.lines = lines
        self.log: list[tuple[int, Path, tuple[int, int]]] = []
        self.anchors: dict[str, _Anchored] = {}
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.nodes = 0

    def fail(self, pos: tuple[int, int], message: str, hint: str | None = None, path: Path | None = None) -> SpecError:
        return _fail(self.filename, *pos, message, hint, path=path)

    def event(self, event: Any) -> None:
        # the hot loop of loading (one call per node): locals and one type test per branch
        etype = type(event)
        if etype is _MAPPING_END or etype is _SEQUENCE_END:
            self._close()
            return
        mark = event.start_mark
        pos = (mark.line + 1, mark.column + 1) if self.lines is None else self.lines.at(mark.index)
        stack = self.stack
        top = stack[-1] if stack else None
        is_key = False
        if top is None:
            path: Path = ()
        elif top.is_map:
            is_key = top.key is _NO_KEY
            path = top.path if is_key else (*top.path, top.key)
        else:
            path = (*top.path, top.index)
        tag = None if etype is _ALIAS else event.tag
        if tag is not None and tag != "!" and not (etype is _SCALAR and tag == _STR_TAG):
            raise self.fail(
                pos,
                f"YAML tags are not allowed (found {tag!r})",
                "write plain values; a spec never constructs objects",
                path=path,
            )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._count(0, pos, path)
        if len(stack) >= MAX_DEPTH:
            raise self.fail(pos, f"nesting deeper than {MAX_DEPTH} levels", "flatten the structure", path=path)
        if is_key:
            self._take_key(top, event, pos)  # type: ignore[arg-type]  # is_key implies a mapping on top
        elif etype is _SCALAR:
            self._take_scalar(event, pos, path)
        elif etype is _ALIAS:
            self._alias(event.anchor, path, pos)
        else:
            self._open(event, etype is _MAPPING_START, pos, path)

    def _take_scalar(self, event: Any, pos: tuple[int, int], path: Path) -> None:
        try:
            value = _scalar(event)
        except ValueError as exc:
            raise self.fail(pos, str(exc), "write a shorter number or quote it", path=path) from None
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchored(value, 1, [(_VALUE, (), pos)])
        self.log.append((_VALUE, path, pos))
        self._attach(value, path)

    def _open(self, event: Any, is_map: bool, pos: tuple[int, int], path: Path) -> None:
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame({} if is_map else [], path, event.anchor, len(self.log), self.nodes, is_map))
        self.log.append((_VALUE, path, pos))

    def _count(self, n: int, pos: tuple[int, int], path: Path) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise self.fail(
                pos,
                f"the document expands to more than {MAX_NODES} nodes",
                "aliases multiply nodes (an alias bomb?); write the values out or simplify the spec",
                path=path,
            )

    def _take_key(self, frame: _Frame, event: Any, pos: tuple[int, int]) -> None:
        if type(event) is not yaml.ScalarEvent:
            raise self.fail(pos, "mapping keys must be plain names, not lists, mappings or aliases", path=frame.path)
        try:
            key = _scalar(event)
        except ValueError:
            key = None
        if not isinstance(key, str) or not key:
            raise self.fail(
                pos, f"mapping key {event.value!r} is not a name", "quote it if it really is a name", path=frame.path
            )
        if key in frame.key_lines:
            raise self.fail(
                pos,
                f"duplicate key `{key}` (first at line {frame.key_lines[key]}, again at line {pos[0]})",
                "YAML would silently keep only the last one; merge the two",
                path=(*frame.path, key),
            )
        frame.key_lines[key] = pos[0]
        frame.key = key
        frame.key_pos = pos

    def _alias(self, name: str, path: Path, pos: tuple[int, int]) -> None:
        if name in self.open_anchors:
            raise self.fail(pos, f"alias *{name} refers to the node that contains it (a cycle)", path=path)
        ref = self.anchors.get(name)
        if ref is None:
            raise self.fail(pos, f"undefined alias *{name}", path=path)
        self._count(ref.size - 1, pos, path)
        self.log.append((_VALUE, path, pos))
        for kind, rel, at in ref.log:
            self.log.append((kind, path + rel, at))
        self._attach(ref.value, path)

    def _close(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            n = len(frame.path)
            self.anchors[frame.anchor] = _Anchored(
                frame.container,
                self.nodes - frame.nodes_start + 1,
                [(kind, p[n:], at) for kind, p, at in self.log[frame.log_start :]],
            )
            self.open_anchors.discard(frame.anchor)
        self._attach(frame.container, frame.path)

    def _attach(self, value: Any, path: Path) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if top.is_map:
            top.container[top.key] = value
            self.log.append((_KEY, path, top.key_pos))
            top.key = _NO_KEY
        else:
            top.container.append(value)
            top.index += 1

    def source_map(self) -> SourceMap:
        # the first position logged for a path wins (an alias before the anchor's replayed positions):
        # read the log backwards, so later assignments are the earlier entries
        log = self.log[::-1]
        values = {path: pos for kind, path, pos in log if kind == _VALUE}
        keys = {path: pos for kind, path, pos in log if kind == _KEY}
        return SourceMap(self.filename, values, keys)


def decode(raw: bytes, filename: str) -> str:
    """Bytes to text: UTF-8 only (a UTF-8 BOM is dropped), errors with their line and column."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(filename, 1, 1, "the spec is UTF-16 encoded (byte order mark found)", "save the file as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise _fail(
            filename, line, col, f"invalid UTF-8 at byte offset {exc.start}", "save the file as UTF-8"
        ) from None


def load_yaml_text(text: str, filename: str = "<spec>") -> LoadedYaml:
    """Parse one YAML document into plain data plus a :class:`SourceMap`."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _too_large(filename)
    lines = _Lines.needed(text)
    builder = _Builder(filename, lines)
    documents = 0
    framing = (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)
    handle = builder.event
    try:
        parser = _Loader(text)
        try:
            get_event = parser.get_event  # None after the stream's end
            while (event := get_event()) is not None:
                etype = type(event)
                if etype is yaml.DocumentStartEvent:
                    documents += 1
                    if documents > 1:
                        raise _fail(
                            filename,
                            *_pos(event.start_mark, lines),
                            "expected exactly one YAML document, found a second",
                            "remove the `---` separator and everything after it, or split the file",
                        )
                elif etype not in framing:
                    handle(event)
        finally:
            parser.dispose()
    except SpecError:
        raise
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, filename, text, lines) from None
    except yaml.YAMLError as exc:  # ReaderError: characters YAML does not allow
        position = getattr(exc, "position", 0) or 0
        before = text[:position]
        line = before.count("\n") + 1
        col = position - (before.rfind("\n") + 1) + 1
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise _fail(filename, line, col, f"unreadable YAML: {reason}") from None
    except RecursionError:
        raise _fail(filename, 1, 1, f"nesting deeper than {MAX_DEPTH} levels") from None
    if builder.root is None:
        raise _fail(filename, 1, 1, "the spec is empty", "start from `archgen init`")
    return LoadedYaml(builder.root, builder.source_map(), text)


def _syntax_error(exc: yaml.MarkedYAMLError, filename: str, text: str, lines: _Lines | None) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    line, col = _pos(mark, lines) if mark is not None else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    if "nesting depth" in problem:
        return _fail(filename, line, col, f"nesting deeper than {MAX_DEPTH} levels", "flatten the structure")
    hint = None
    text_lines = text.split("\n")
    if "cannot start any token" in problem and 0 < line <= len(text_lines) and "\t" in text_lines[line - 1]:
        hint = "YAML does not allow tabs for indentation; use spaces"
    return _fail(filename, line, col, f"YAML syntax error: {problem}", hint)


def _too_large(filename: str) -> SpecError:
    return _fail(
        filename,
        1,
        1,
        f"the spec is larger than {MAX_BYTES // 1024} KiB",
        "a requirements spec should be a page or two; split data out of it",
    )


def _unreadable(name: str, message: str) -> Diagnostic:
    return Diagnostic("spec.unreadable", message, Location(name, 1, 1, "<document>"))


def read_spec_text(path: str | FsPath) -> tuple[str, str]:
    """Read a spec file: (text, display name). Unreadable files raise :class:`SpecUnreadable`."""
    p = FsPath(path)
    name = str(path)
    try:
        if p.is_dir():
            raise SpecUnreadable([_unreadable(name, "is a directory, not a spec file")])
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except SpecUnreadable:
        raise
    except OSError as exc:
        raise SpecUnreadable([_unreadable(name, f"cannot read the spec: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise _too_large(name)
    return decode(raw, name), name


__all__ = ["MAX_BYTES", "LoadedYaml", "SourceMap", "decode", "load_yaml_text", "read_spec_text"]
