"""The update engine: what `archgen update` does to each file, decided before anything is written.

For every file it compares three versions: what archgen wrote last time (the *base*, rebuilt from the
recorded spec `.archgen/spec.yaml`; the manifest's hash proves it is the same), what the team has
now, and what archgen writes now:

- a file the team never changed (its hash is the manifest's) is replaced; one that no longer belongs
  to the architecture is removed;
- a file the team changed is merged three ways (:mod:`generator.write.merge`); where both sides changed
  the same lines, conflict markers go into the file and the file is listed (exit 1). A binary file
  the team changed is kept as the team has it. Where the base cannot be rebuilt (another archgen
  version, an edited `.archgen/spec.yaml`), the merge is two-way: every difference is marked;
- a file that no longer belongs but that the team changed is kept, and no longer managed;
- a new file whose path the team already uses is merged two-way, like a file without a base;
- a file the team owns (a seam of ``customization``, a file team-owned from the first generation) is
  never rewritten.

:func:`plan_update` returns the :class:`Update`; :func:`generator.write.write.apply_update` writes it as one
transaction. The command (:mod:`generator.commands.update`) loads the specs, generates, and reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..errors import ArchgenError
from .manifest import MANIFEST, SPEC_COPY, ManagedFile, Manifest, sha256
from .merge import Merged, decode_text, has_markers, merge2, merge3

if TYPE_CHECKING:
    from ..generate import Generation

# the order of the file listing, with the word shown for each action
ACTIONS = {
    "new": "new",
    "replace": "replaced",
    "merge": "merged",
    "conflict": "CONFLICT",
    "restore": "restored",
    "remove": "removed",
    "keep": "kept",
}


@dataclass(frozen=True)
class Row:
    """One line of the file listing: the path, what happens to it (a key of ``ACTIONS``) and why."""

    path: str
    action: str  # a key of ACTIONS
    note: str = ""


@dataclass
class Update:
    """What an update does to each file, before anything is written."""

    rows: list[Row] = field(default_factory=list)
    writes: dict[str, bytes] = field(default_factory=dict)
    removals: list[str] = field(default_factory=list)
    unchanged: int = 0
    edited_untouched: int = 0  # files the team changed and archgen does not change: left as they are
    notes: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Row]:
        """The files merged with conflict markers."""
        return [r for r in self.rows if r.action == "conflict"]

    def add(self, path: str, action: str, note: str = "", data: bytes | None = None) -> None:
        """Record what happens to ``path``; ``data``: the bytes to write there."""
        self.rows.append(Row(path, action, note))
        if data is not None:
            self.writes[path] = data


class Base:
    """What archgen wrote last time, rebuilt on first use by ``rebuild`` (rendering takes seconds).

    ``rebuild`` is None when the recorded spec cannot be read; ``why_not`` says why.
    """

    def __init__(self, manifest: Manifest, rebuild: Callable[[], dict[str, bytes]] | None, why_not: str) -> None:
        self.manifest, self.rebuild, self.why_not = manifest, rebuild, why_not
        self._files: dict[str, bytes] | None = None

    def text(self, path: str) -> tuple[str | None, str]:
        """The base text of ``path``, or None and the reason it is unavailable."""
        if self._files is None and self.rebuild is not None:
            try:
                self._files = self.rebuild()
            except ArchgenError as exc:
                self.rebuild, self.why_not = None, f"the recorded spec no longer generates ({first_line(exc)})"
        if self._files is None:
            return None, self.why_not
        data, recorded = self._files.get(path), self.manifest.file(path)
        if data is None or recorded is None or sha256(data) != recorded.sha256:
            return None, f"archgen {__version__} does not reproduce what archgen {self.manifest.archgen_version} wrote"
        text = decode_text(data)
        return text, "" if text is not None else "binary"


def first_line(exc: Exception) -> str:
    """The first line of an error's message."""
    return str(getattr(exc, "message", exc)).splitlines()[0]


def _odd(root: Path, rel: str) -> bool:
    """Something other than a regular file (a symlink, a folder) is where archgen manages a file."""
    path = root / rel
    return path.is_symlink() or (path.exists() and not path.is_file())


def _current(root: Path, rel: str) -> bytes | None:
    """The file as the team has it, or None when it is absent (or not a regular file)."""
    path = root / rel
    return None if _odd(root, rel) or not path.exists() else path.read_bytes()


@dataclass(frozen=True)
class _Sides:
    """One file's versions: as the manifest recorded it, as the team has it, as archgen writes it now."""

    rel: str
    was: ManagedFile | None
    cur: bytes | None
    data: bytes | None


def plan_update(root: Path, manifest: Manifest, new: Generation, base: Base) -> Update:
    """What the update does to each file, decided before anything is written (see the module's rules)."""
    up = Update()
    old = {f.path: f for f in manifest.files}
    owned = {f.path for f in new.plan.files if f.team_owned}
    seams = set(new.arch.seams)
    for rel in sorted((set(old) | set(new.files)) - {SPEC_COPY, MANIFEST}):
        f = _Sides(rel, old.get(rel), _current(root, rel), new.files.get(rel))
        if _odd(root, rel):
            up.add(rel, "keep", "not a regular file: left alone")
        elif rel in seams and f.cur is not None and f.data is not None:
            _seam(up, f, new.arch.spec.customization)
        elif f.data is None:
            _no_longer_generated(up, f)
        elif f.cur is None:
            _deleted_by_the_team(up, f, f.data)
        else:
            mode_ok = (root / rel).stat().st_mode & 0o777 == new.modes.get(rel)
            _present(up, f, f.cur, f.data, base, unchanged=rel in owned or (f.cur == f.data and mode_ok))
    for rel in (SPEC_COPY, MANIFEST):
        if _current(root, rel) != new.files[rel]:
            up.writes[rel] = new.files[rel]
    return up


def _seam(up: Update, f: _Sides, customization: str) -> None:
    """A seam of the team's (``customization``) is never rewritten."""
    if f.cur != f.data:
        up.add(f.rel, "keep", f"the team's own seam (customization: {customization}): never rewritten")
    else:
        up.unchanged += 1


def _no_longer_generated(up: Update, f: _Sides) -> None:
    """Removed when the team left it as archgen wrote it; kept, no longer managed, when the team changed it."""
    if f.cur is None or f.was is None:
        return
    if sha256(f.cur) == f.was.sha256:
        up.add(f.rel, "remove")
        up.removals.append(f.rel)
    else:
        up.add(f.rel, "keep", "no longer generated, but changed by you: no longer managed")


def _deleted_by_the_team(up: Update, f: _Sides, data: bytes) -> None:
    """New, or deleted by the team: restored only when archgen changed it since."""
    if f.was is None:
        up.add(f.rel, "new", data=data)
    elif sha256(data) != f.was.sha256:
        up.add(f.rel, "restore", "you had deleted it; archgen changed it", data)
    else:
        up.add(f.rel, "keep", "deleted by you; archgen has no change for it, so it stays deleted")


def _present(up: Update, f: _Sides, cur: bytes, data: bytes, base: Base, *, unchanged: bool) -> None:
    """Replaced when the team left it as archgen wrote it; merged when the team changed it."""
    if unchanged:  # the team's from the first generation on, or already what archgen writes
        up.unchanged += 1
    elif f.was is not None and sha256(cur) == f.was.sha256:
        up.add(f.rel, "replace", data=data)
    elif cur == data:
        up.unchanged += 1
    else:
        _merge_edited(up, f.rel, cur, data, base, managed=f.was is not None)


def _merge_edited(up: Update, rel: str, cur: bytes, new: bytes, base: Base, managed: bool) -> None:
    """The team changed ``rel`` (or wrote it themselves) and archgen writes something else now."""
    ours, theirs = decode_text(cur), decode_text(new)
    if ours is None or theirs is None:
        up.add(rel, "keep", "binary, changed by you: archgen's new version was not applied")
        return
    if managed:
        base_text, why = base.text(rel)
    else:
        base_text, why = None, "archgen did not write your file"
    merged: Merged = merge3(base_text, ours, theirs) if base_text is not None else merge2(ours, theirs)
    if merged.text == ours:
        up.edited_untouched += 1
        return
    data = merged.text.encode("utf-8")
    if merged.conflicts:
        note = f"{merged.conflicts} conflicting region(s)"
        if base_text is None:
            note += f"; two-way, without a base ({why}): every difference is marked"
        up.add(rel, "conflict", note, data)
    else:
        up.add(rel, "merge", "your changes and archgen's", data)


def unresolved(root: Path, manifest: Manifest) -> list[str]:
    """Managed files that still hold the conflict markers of an earlier update."""
    out = []
    for f in manifest.files:
        cur = _current(root, f.path)
        if cur is not None and sha256(cur) != f.sha256:
            text = decode_text(cur)
            if text is not None and has_markers(text):
                out.append(f.path)
    return out
