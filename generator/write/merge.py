"""Line-based three-way merge (diff3) for `archgen update`, in pure Python (no git needed).

``base`` is what archgen wrote last time, ``ours`` what the team has now, ``theirs`` what archgen
writes now. Regions that only one side changed take that side; regions both sides changed the same
way take it once; regions both sides changed differently become a conflict, marked like git's
``merge.conflictStyle=diff3``::

    <<<<<<< yours
    (the team's lines)
    ||||||| archgen-previous
    (what archgen wrote last time)
    =======
    (what archgen writes now)
    >>>>>>> archgen-new

The three-way merge is the ``merge3`` library's (the diff3 algorithm of bzr/breezy); this module only
counts the conflicts and lays out the markers. Without a base (:func:`merge2`) every region where the
two sides differ is a conflict, without the ``|||||||`` section: that two-way case is not what a
three-way merge library does, so it is written here on :class:`difflib.SequenceMatcher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from merge3 import Merge3

OURS = "<<<<<<< yours"
BASE = "||||||| archgen-previous"
SEP = "======="
THEIRS = ">>>>>>> archgen-new"


@dataclass(frozen=True)
class Merged:
    """The result of a merge: the text, and how many conflict regions it marks."""

    text: str
    conflicts: int  # conflict regions marked in ``text``

    @property
    def clean(self) -> bool:
        """No conflict."""
        return self.conflicts == 0


def decode_text(data: bytes) -> str | None:
    """The text of a file archgen can merge, or None for binary data (a NUL byte, or not UTF-8)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _block(lines: Sequence[str]) -> list[str]:
    """Lines placed before a marker: the last one gets its newline, so the marker starts a line."""
    out = list(lines)
    if out and not out[-1].endswith("\n"):
        out[-1] += "\n"
    return out


def _conflict(ours: Sequence[str], base: Sequence[str] | None, theirs: Sequence[str]) -> list[str]:
    out = [OURS + "\n", *_block(ours)]
    if base is not None:
        out += [BASE + "\n", *_block(base)]
    return [*out, SEP + "\n", *_block(theirs), THEIRS + "\n"]


def _matches(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int, int]]:
    return [(m.a, m.b, m.size) for m in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()]


def merge3(base: str, ours: str, theirs: str) -> Merged:
    """Merge the team's changes (base -> ours) with archgen's (base -> theirs)."""
    if ours == theirs or theirs == base:
        return Merged(ours, 0)
    if ours == base:
        return Merged(theirs, 0)
    z, a, b = base.splitlines(keepends=True), ours.splitlines(keepends=True), theirs.splitlines(keepends=True)
    out: list[str] = []
    conflicts = 0
    for group in Merge3(z, a, b).merge_groups():
        if group[0] == "conflict":
            _, zc, ac, bc = group
            out += _conflict(ac, zc, bc)
            conflicts += 1
        else:  # unchanged, changed alike, or changed by one side only
            out += group[1]
    return Merged("".join(out), conflicts)


def merge2(ours: str, theirs: str) -> Merged:
    """Without a base: keep what both sides share and mark every difference as a conflict."""
    if ours == theirs:
        return Merged(ours, 0)
    a, b = ours.splitlines(keepends=True), theirs.splitlines(keepends=True)
    out: list[str] = []
    conflicts = 0
    ia = ib = 0
    for as_, bs, length in _matches(a, b):
        if a[ia:as_] or b[ib:bs]:
            out += _conflict(a[ia:as_], None, b[ib:bs])
            conflicts += 1
        out += a[as_ : as_ + length]
        ia, ib = as_ + length, bs + length
    return Merged("".join(out), conflicts)


def has_markers(text: str) -> bool:
    """Whether ``text`` still holds conflict markers of a previous update (unresolved)."""
    lines = {line.rstrip("\r") for line in text.splitlines()}
    return OURS in lines and THEIRS in lines
