"""YAML loading that keeps the line and column of every node.

Safe by construction: the document is read as a stream of parser events and built here,
so no tag can construct an object, every alias expansion is counted (an alias bomb is
rejected after a bounded amount of work), nesting depth is capped without recursion,
duplicate keys are rejected with both lines, and exactly one document is accepted.

Scalars are typed by the YAML 1.2 core schema only: ``no``, ``on`` and ``y`` stay strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from .errors import Diagnostic, Path, SpecError, SpecUnreadable, format_path

MAX_BYTES = 1024 * 1024  # 1 MiB: a requirements spec is a page or two, not a data set
MAX_DEPTH = 64
MAX_NODES = 200_000  # counted after alias expansion

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOAT = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}


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
        return self.where(path)[0]

    def diagnostic(
        self, path: Path, message: str, hint: str | None = None, *, key: bool = False, severity: str = "error"
    ) -> Diagnostic:
        line, col = self.where(path, key=key)
        return Diagnostic(
            line=line,
            column=col,
            file=self.filename,
            path=format_path(path),
            message=message,
            hint=hint,
            severity=severity,
        )


@dataclass(frozen=True)
class LoadedYaml:
    data: Any
    source_map: SourceMap
    text: str


def _fail(filename: str, line: int, col: int, message: str, hint: str | None = None) -> SpecError:
    return SpecError([Diagnostic(line=line, column=col, file=filename, path="<document>", message=message, hint=hint)])


def _pos(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _scalar(event: Any) -> Any:
    value: str = event.value
    if event.style or not event.implicit[0]:
        return value  # quoted, or a block scalar: always a string
    if _NULL.match(value):
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT.match(value):
        return int(value)
    if value in _SPECIAL_FLOAT:
        return _SPECIAL_FLOAT[value]
    if _FLOAT.match(value):
        return float(value)
    return value


class _Frame:
    __slots__ = ("anchor", "container", "index", "key", "key_lines", "key_pos", "path", "start")

    def __init__(self, container: Any, path: Path, start: tuple[int, int], anchor: str | None) -> None:
        self.container = container
        self.path = path
        self.start = start
        self.anchor = anchor
        self.key: Any = _NO_KEY
        self.key_pos: tuple[int, int] = start
        self.key_lines: dict[str, int] = {}
        self.index = 0


_NO_KEY = object()


@dataclass
class _Anchored:
    value: Any
    size: int
    values: dict[Path, tuple[int, int]]
    keys: dict[Path, tuple[int, int]]


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
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise _fail(
            filename,
            1,
            1,
            f"the spec is larger than {MAX_BYTES // 1024} KiB",
            "a requirements spec should be a page or two; split data out of it",
        )
    values: dict[Path, tuple[int, int]] = {}
    keys: dict[Path, tuple[int, int]] = {}
    anchors: dict[str, _Anchored] = {}
    open_anchors: set[str] = set()
    anchor_starts: dict[str, tuple[int, int, int]] = {}  # name -> (node count at start, depth, -)
    stack: list[_Frame] = []
    root: Any = None
    have_root = False
    documents = 0
    nodes = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            etype = type(event)
            if etype is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    line, col = _pos(event.start_mark)
                    raise _fail(
                        filename,
                        line,
                        col,
                        "expected exactly one YAML document, found a second",
                        "remove the `---` separator and everything after it, or split the file",
                    )
                continue
            if etype in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent):
                continue
            if etype in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                frame = stack.pop()
                value = frame.container
                if frame.anchor is not None:
                    _register_anchor(
                        frame.anchor, frame.path, value, nodes, anchor_starts, anchors, open_anchors, values, keys
                    )
                _attach(stack, value, frame.path, frame.start, filename, values, keys)
                if not stack:
                    root, have_root = value, True
                continue

            # a node starts here: a scalar, an alias, or a collection
            pos = _pos(event.start_mark)
            tag = getattr(event, "tag", None)
            if tag not in (None, "!") and not (etype is yaml.ScalarEvent and tag == "tag:yaml.org,2002:str"):
                raise _fail(
                    filename,
                    *pos,
                    f"YAML tags are not allowed (found {tag!r})",
                    "write plain values; a spec never constructs objects",
                )
            nodes += 1
            if nodes > MAX_NODES:
                raise _fail(
                    filename,
                    *pos,
                    f"the document expands to more than {MAX_NODES} nodes",
                    "aliases multiply nodes; write the values out or simplify the spec",
                )
            if len(stack) >= MAX_DEPTH:
                raise _fail(filename, *pos, f"nesting deeper than {MAX_DEPTH} levels")

            if stack and stack[-1].key is _NO_KEY and isinstance(stack[-1].container, dict):
                _take_key(stack[-1], event, pos, filename)
                continue

            path = _child_path(stack)
            if etype is yaml.AliasEvent:
                name = event.anchor
                if name in open_anchors:
                    raise _fail(filename, *pos, f"alias *{name} refers to the node that contains it")
                if name not in anchors:
                    raise _fail(filename, *pos, f"undefined alias *{name}")
                ref = anchors[name]
                nodes += ref.size - 1
                if nodes > MAX_NODES:
                    raise _fail(
                        filename,
                        *pos,
                        f"the document expands to more than {MAX_NODES} nodes",
                        "aliases multiply nodes (an alias bomb?); write the values out",
                    )
                for rel, p in ref.values.items():
                    values[path + rel] = p
                for rel, p in ref.keys.items():
                    keys[path + rel] = p
                _attach(stack, ref.value, path, pos, filename, values, keys)
                if not stack:
                    root, have_root = ref.value, True
                continue
            anchor = getattr(event, "anchor", None)
            if etype is yaml.ScalarEvent:
                value = _scalar(event)
                if anchor is not None:
                    anchors[anchor] = _Anchored(value, 1, {(): pos}, {})
                _attach(stack, value, path, pos, filename, values, keys)
                if not stack:
                    root, have_root = value, True
                continue
            container: Any = {} if etype is yaml.MappingStartEvent else []
            if anchor is not None:
                open_anchors.add(anchor)
                anchor_starts[anchor] = (nodes, len(stack), 0)
            values[path] = pos
            stack.append(_Frame(container, path, pos, anchor))
    except SpecError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise _fail(filename, line, col, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:  # ReaderError: characters YAML does not allow
        position = getattr(exc, "position", 0) or 0
        before = text[:position]
        line = before.count("\n") + 1
        col = position - (before.rfind("\n") + 1) + 1
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise _fail(filename, line, col, f"unreadable YAML: {reason}") from None
    except RecursionError:
        raise _fail(filename, 1, 1, "nesting too deep") from None
    if not have_root or root is None:
        raise _fail(filename, 1, 1, "the spec is empty", "start from `archgen init`")
    return LoadedYaml(root, SourceMap(filename, values, keys), text)


def _child_path(stack: list[_Frame]) -> Path:
    if not stack:
        return ()
    top = stack[-1]
    if isinstance(top.container, dict):
        return top.path + (top.key,)
    return top.path + (top.index,)


def _take_key(frame: _Frame, event: Any, pos: tuple[int, int], filename: str) -> None:
    if type(event) is not yaml.ScalarEvent:
        raise _fail(filename, *pos, "mapping keys must be plain names, not lists, mappings or aliases")
    key = _scalar(event)
    if not isinstance(key, str):
        raise _fail(filename, *pos, f"mapping key {event.value!r} is not a name", "quote it if it really is a name")
    if key in frame.key_lines:
        raise _fail(
            filename,
            *pos,
            f"duplicate key {key!r} (first defined at line {frame.key_lines[key]})",
            "YAML would silently keep only the last one; merge the two",
        )
    frame.key_lines[key] = pos[0]
    frame.key = key
    frame.key_pos = pos


def _attach(
    stack: list[_Frame],
    value: Any,
    path: Path,
    pos: tuple[int, int],
    filename: str,
    values: dict[Path, tuple[int, int]],
    keys: dict[Path, tuple[int, int]],
) -> None:
    values.setdefault(path, pos)
    if not stack:
        return
    top = stack[-1]
    if isinstance(top.container, dict):
        top.container[top.key] = value
        keys[path] = top.key_pos
        top.key = _NO_KEY
    else:
        top.container.append(value)
        top.index += 1


def _register_anchor(
    name: str,
    path: Path,
    value: Any,
    nodes_now: int,
    anchor_starts: dict[str, tuple[int, int, int]],
    anchors: dict[str, _Anchored],
    open_anchors: set[str],
    values: dict[Path, tuple[int, int]],
    keys: dict[Path, tuple[int, int]],
) -> None:
    start_nodes = anchor_starts.pop(name)[0]
    n = len(path)
    rel_values = {p[n:]: v for p, v in values.items() if p[:n] == path}
    rel_keys = {p[n:]: v for p, v in keys.items() if p[:n] == path and len(p) > n}
    anchors[name] = _Anchored(value, nodes_now - start_nodes + 1, rel_values, rel_keys)
    open_anchors.discard(name)


def read_spec_text(path: str | FsPath) -> tuple[str, str]:
    """Read a spec file: (text, display name). Unreadable files raise :class:`SpecUnreadable`."""
    p = FsPath(path)
    name = str(path)
    try:
        if p.is_dir():
            raise SpecUnreadable([Diagnostic(1, 1, name, "<document>", "is a directory, not a spec file")])
        with p.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except SpecUnreadable:
        raise
    except OSError as exc:
        raise SpecUnreadable([Diagnostic(1, 1, name, "<document>", f"cannot read the spec: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise _fail(
            name,
            1,
            1,
            f"the spec is larger than {MAX_BYTES // 1024} KiB",
            "a requirements spec should be a page or two; split data out of it",
        )
    return decode(raw, name), name


__all__ = ["MAX_BYTES", "LoadedYaml", "SourceMap", "decode", "load_yaml_text", "read_spec_text"]
