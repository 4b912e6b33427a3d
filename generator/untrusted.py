"""Reading a repository nobody vouches for (``archgen check`` in CI on a pull request, ``update``, ``new --force``).

Everything here treats the folder as hostile input:

- **No symlink leads out.** :func:`check_inside` walks every component of a relative path with ``lstat``;
  a symlink whose target is outside the root is refused (:class:`Refused`, or exit 4 via
  :func:`require_inside`). Paths read from files (the manifest) are first checked like generated paths.
- **Regular files only.** :func:`read_bytes` opens with ``O_NOFOLLOW | O_NONBLOCK`` and checks the open
  file with ``fstat``: a FIFO, a socket or a device is refused, never waited on.
- **Bounded.** Files are read and hashed in chunks, up to :data:`MAX_FILE_BYTES`; a larger file is refused.
  YAML goes through :func:`load_yaml_all` with the spec loader's limits (depth, nodes after alias expansion).
- **Never echoed.** Messages name a path, a line and a reason, never the file's contents; :func:`escape`
  makes any text (file names included) safe for a terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from requirements_spec.loader import MAX_DEPTH as SPEC_MAX_DEPTH
from requirements_spec.loader import MAX_NODES as SPEC_MAX_NODES

from .errors import UNSAFE, ArchgenError

MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any generated file; far below a planted multi-GB blob
MAX_YAML_BYTES = 8 * 1024 * 1024
MAX_YAML_DEPTH = SPEC_MAX_DEPTH  # the spec loader's limits
MAX_YAML_NODES = SPEC_MAX_NODES  # counted after alias expansion
_CHUNK = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class Refused(ValueError):
    """A file archgen will not read (a symlink leading out, a FIFO, too large, ...). The message has no contents."""


def escape(text: object) -> str:
    r"""``text`` with every control character (escape sequences, line breaks, bidi overrides) shown as ``\xNN``."""

    def one(m: re.Match[str]) -> str:
        c = m.group()
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return _CONTROL.sub(one, str(text))


def safe_relative(rel: str) -> bool:
    """Whether ``rel`` is a relative, normalised posix path (no '..', no absolute path, no control characters)."""
    if not isinstance(rel, str) or not rel or len(rel) > 4096 or _CONTROL.search(rel):
        return False
    if PurePosixPath(rel).is_absolute() or "\\" in rel:
        return False
    return not any(part in ("", ".", "..") for part in rel.split("/"))


def check_inside(root: Path, rel: str, *, names: bool = True) -> str | None:
    """Why ``root/rel`` leaves ``root`` (an unsafe path, a symlink on the way leading out), or None.

    ``names=False``: a path found on disk (not read from a file); control characters in it are allowed.
    """
    if not (safe_relative(rel) if names else safe_relative(_CONTROL.sub("_", rel))):
        return f"{escape(rel)!s} is not a relative path inside the repository"
    real_root = Path(os.path.realpath(root))
    cur = Path(root)
    for part in rel.split("/"):
        cur = cur / part
        try:
            st = os.lstat(cur)
        except OSError:
            return None  # nothing there (yet): nothing to follow
        if stat.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(cur))
            if not target.is_relative_to(real_root):
                return f"{escape(Path(rel))} is, or passes through, a symlink leading outside the repository"
    return None


def require_inside(root: Path, paths: Iterable[str], *, source: str) -> None:
    """Exit 4 when a path read from ``source`` (e.g. the manifest) is unsafe or leads outside ``root``."""
    for rel in paths:
        why = check_inside(root, rel)
        if why:
            raise ArchgenError(
                f"{source} lists a path archgen will not touch: {why}; nothing was changed",
                exit_code=UNSAFE,
                hint="restore the file from version control; archgen only writes inside the repository",
            )


# ------------------------------------------------------------------ the root being read
_ROOT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("archgen_untrusted_root", default=None)


@contextlib.contextmanager
def reading(root: Path) -> Iterator[None]:
    """Within this block, :func:`read_bytes` of a path refuses anything that leaves ``root``."""
    token = _ROOT.set(Path(os.path.abspath(root)))
    try:
        yield
    finally:
        _ROOT.reset(token)


def _open_regular(path: Path, cap: int) -> tuple[int, int]:
    root = _ROOT.get()
    if root is not None:
        absolute = Path(os.path.abspath(path))
        if absolute.is_relative_to(root) and absolute != root:
            why = check_inside(root, absolute.relative_to(root).as_posix(), names=False)
            if why:
                raise Refused(why)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if os.path.islink(path):
            raise Refused("is a symlink: not read") from None
        raise Refused(f"cannot be read ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused("is not a regular file (a FIFO, socket or device): not read")
    if st.st_size > cap:
        os.close(fd)
        raise Refused(f"is larger than {cap // (1024 * 1024)} MiB: not read")
    return fd, st.st_size


def read_bytes(path: Path, cap: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, at most ``cap`` of them (:class:`Refused` otherwise)."""
    fd, _ = _open_regular(path, cap)
    chunks: list[bytes] = []
    total = 0
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            total += len(chunk)
            if total > cap:  # it grew while being read
                raise Refused(f"is larger than {cap // (1024 * 1024)} MiB: not read")
            chunks.append(chunk)
    return b"".join(chunks)


def read_text(path: Path, cap: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file (:class:`Refused` or ``UnicodeDecodeError`` otherwise)."""
    return read_bytes(path, cap).decode("utf-8")


def sha256_file(path: Path, cap: int = MAX_FILE_BYTES) -> str:
    """The sha256 of a regular file, read in chunks (:class:`Refused` when it is not one, or too large)."""
    fd, _ = _open_regular(path, cap)
    digest = hashlib.sha256()
    total = 0
    with os.fdopen(fd, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            total += len(chunk)
            if total > cap:
                raise Refused(f"is larger than {cap // (1024 * 1024)} MiB: not read")
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------ YAML with the spec loader's limits
class YamlLimit(yaml.YAMLError):
    """A YAML document beyond the limits (too deep, too many nodes after alias expansion, too large)."""


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _expanded_size(node: yaml.Node, memo: dict[int, int], budget: int) -> int:
    """Nodes ``node`` stands for once aliases are expanded; stops counting past ``budget``."""
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    open_nodes: set[int] = set()
    while stack:
        cur, done = stack.pop()
        key = id(cur)
        if key in memo:
            continue
        if not done and key in open_nodes:
            raise YamlLimit("an alias refers to the node that contains it (a cycle)")
        children: list[yaml.Node] = []
        if isinstance(cur, yaml.SequenceNode):
            children = list(cur.value)
        elif isinstance(cur, yaml.MappingNode):
            children = [n for pair in cur.value for n in pair]
        if done:
            open_nodes.discard(key)
            memo[key] = min(budget + 1, 1 + sum(memo[id(c)] for c in children))
            continue
        if any(id(c) in open_nodes for c in children):
            raise YamlLimit("an alias refers to the node that contains it (a cycle)")
        open_nodes.add(key)
        stack.append((cur, True))
        stack.extend((c, False) for c in children if id(c) not in memo)
    return memo[id(node)]


def compose_yaml_all(text: str) -> list[yaml.Node]:
    """The node graphs of every non-empty document of ``text``, once the limits are checked."""
    if len(text) > MAX_YAML_BYTES:
        raise YamlLimit(f"larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB")
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise YamlLimit(f"nested deeper than {MAX_YAML_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    memo: dict[int, int] = {}
    total = 0
    nodes = [n for n in yaml.compose_all(text, Loader=_Loader) if n is not None]
    for node in nodes:
        total += _expanded_size(node, memo, MAX_YAML_NODES)
        if total > MAX_YAML_NODES:
            raise YamlLimit(f"more than {MAX_YAML_NODES} nodes once aliases are expanded (an alias bomb?)")
    return nodes


def load_yaml_all(text: str) -> list[Any]:
    """Every non-empty document of ``text``, built by the safe loader only after the limits are checked."""
    compose_yaml_all(text)
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def yaml_error(exc: BaseException) -> str:
    """A YAML error as a reason and a position, without the snippet of the file PyYAML would quote."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return escape(f"{exc.problem or exc.context or 'syntax error'}{where}")
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.start})"
    return escape(str(exc) if isinstance(exc, Refused | YamlLimit) else type(exc).__name__)
