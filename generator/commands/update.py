"""`archgen update DIR [--spec NEW] [--dry-run]`: regenerate after a spec change, keeping the team's edits.

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
- a new file whose path the team already uses is merged two-way, like a file without a base.

The writing is one transaction (:func:`generator.write.write.apply_update`): interrupted or failed, it
leaves the repository exactly as it was. `.archgen/` then records the new spec, so the next update
merges against what this one wrote.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from requirements_spec import load_spec
from requirements_spec.errors import SpecError
from requirements_spec.validate import LoadedSpec, parse_spec

from .. import __version__
from ..decide.architecture import Architecture
from ..errors import FINDINGS, OK, UNREADABLE, ArchgenError
from ..generate import Generation, Overlays, generate_loaded
from ..render.overlay import OverlaySource
from ..untrusted import Refused, read_bytes, require_inside
from ..write.manifest import MANIFEST, SPEC_COPY, Manifest, read_manifest, sha256
from ..write.merge import BASE, OURS, SEP, THEIRS, Merged, decode_text, has_markers, merge2, merge3
from ..write.progress import Progress
from ..write.write import apply_update, recover_interrupted, repository_lock, sigterm_interrupts

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
        return [r for r in self.rows if r.action == "conflict"]

    def add(self, path: str, action: str, note: str = "", data: bytes | None = None) -> None:
        self.rows.append(Row(path, action, note))
        if data is not None:
            self.writes[path] = data


class _Base:
    """What archgen wrote last time, rebuilt on first use from the recorded spec (rendering takes seconds)."""

    def __init__(
        self, loaded: LoadedSpec | None, manifest: Manifest, why_not: str, overlays: Overlays | None = None
    ) -> None:
        self.loaded, self.manifest, self.why_not = loaded, manifest, why_not
        self.overlays = overlays
        self._files: dict[str, bytes] | None = None

    def text(self, path: str) -> tuple[str | None, str]:
        """The base text of ``path``, or None and the reason it is unavailable."""
        if self._files is None and self.loaded is not None:
            try:
                self._files = generate_loaded(self.loaded, overlays=self.overlays).files
            except (SpecError, ArchgenError) as exc:
                self.loaded, self.why_not = None, f"the recorded spec no longer generates ({_first_line(exc)})"
        if self._files is None:
            return None, self.why_not
        data, recorded = self._files.get(path), self.manifest.file(path)
        if data is None or recorded is None or sha256(data) != recorded.sha256:
            return None, f"archgen {__version__} does not reproduce what archgen {self.manifest.archgen_version} wrote"
        text = decode_text(data)
        return text, "" if text is not None else "binary"


def _first_line(exc: Exception) -> str:
    return str(getattr(exc, "message", exc)).splitlines()[0]


def _odd(root: Path, rel: str) -> bool:
    """Something other than a regular file (a symlink, a folder) is where archgen manages a file."""
    path = root / rel
    return path.is_symlink() or (path.exists() and not path.is_file())


def _current(root: Path, rel: str) -> bytes | None:
    """The file as the team has it, or None when it is absent (or not a regular file)."""
    path = root / rel
    return None if _odd(root, rel) or not path.exists() else path.read_bytes()


def _merge_edited(up: Update, rel: str, cur: bytes, new: bytes, base: _Base, managed: bool) -> None:
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


def plan_update(root: Path, manifest: Manifest, new: Generation, base: _Base) -> Update:
    up = Update()
    old = {f.path: f for f in manifest.files}
    owned = {f.path for f in new.plan.files if f.team_owned}
    targets = (set(old) | set(new.files)) - {SPEC_COPY, MANIFEST}
    seams = set(new.arch.seams)
    for rel in sorted(targets):
        cur, data, was = _current(root, rel), new.files.get(rel), old.get(rel)
        mode_ok = cur is None or (root / rel).stat().st_mode & 0o777 == new.modes.get(rel)
        if _odd(root, rel):
            up.add(rel, "keep", "not a regular file: left alone")
        elif rel in seams and cur is not None and data is not None:
            if cur != data:
                up.add(
                    rel, "keep", f"the team's own seam (customization: {new.arch.spec.customization}): never rewritten"
                )
            else:
                up.unchanged += 1
        elif data is None:  # no longer part of the architecture
            if cur is None or was is None:
                continue
            if sha256(cur) == was.sha256:
                up.add(rel, "remove")
                up.removals.append(rel)
            else:
                up.add(rel, "keep", "no longer generated, but changed by you: no longer managed")
        elif cur is None:
            if was is None:
                up.add(rel, "new", data=data)
            elif sha256(data) != was.sha256:
                up.add(rel, "restore", "you had deleted it; archgen changed it", data)
            else:
                up.add(rel, "keep", "deleted by you; archgen has no change for it, so it stays deleted")
        elif rel in owned or (cur == data and mode_ok):  # the team's from the first generation on
            up.unchanged += 1
        elif was is not None and sha256(cur) == was.sha256:
            up.add(rel, "replace", data=data)
        elif cur == data:
            up.unchanged += 1
        else:
            _merge_edited(up, rel, cur, data, base, managed=was is not None)
    for rel in (SPEC_COPY, MANIFEST):
        if _current(root, rel) != new.files[rel]:
            up.writes[rel] = new.files[rel]
    return up


def _unresolved(root: Path, manifest: Manifest) -> list[str]:
    """Managed files that still hold the conflict markers of an earlier update."""
    out = []
    for f in manifest.files:
        cur = _current(root, f.path)
        if cur is not None and sha256(cur) != f.sha256:
            text = decode_text(cur)
            if text is not None and has_markers(text):
                out.append(f.path)
    return out


def _open(directory: Path) -> tuple[Path, Manifest, bytes | None]:
    if directory.is_symlink() or not directory.is_dir():
        raise ArchgenError(f"{directory} is not a directory", exit_code=UNREADABLE, hint="pass a generated repository")
    root = directory.resolve()
    require_inside(root, [SPEC_COPY], source=f"{directory}/{SPEC_COPY}")  # exit 4: .archgen/ leads outside
    manifest = read_manifest(root)
    if manifest is None:
        raise ArchgenError(
            f"{directory} has no {MANIFEST}: it is not a repository archgen generated",
            exit_code=UNREADABLE,
            hint="generate it with `archgen new`, or restore .archgen/ from version control",
        )
    spec_copy = root / SPEC_COPY
    try:
        recorded = read_bytes(spec_copy) if spec_copy.is_file() and not spec_copy.is_symlink() else None
    except Refused:
        recorded = None
    return root, manifest, recorded


def _old_spec(directory: Path, manifest: Manifest, recorded: bytes | None) -> tuple[LoadedSpec | None, str]:
    """The spec archgen generated from last time, or None and why it is not known."""
    if recorded is None:
        return None, f"{SPEC_COPY} is missing"
    if sha256(recorded) != manifest.spec_sha256:
        return None, f"{SPEC_COPY} was edited since archgen wrote it"
    try:
        return parse_spec(recorded.decode("utf-8"), str(directory / SPEC_COPY)), ""
    except (SpecError, UnicodeDecodeError) as exc:
        return None, f"the recorded spec no longer validates ({_first_line(exc)})"


def _decisions(old: Architecture | None, new: Architecture, why_not: str) -> str:
    from ..views.diffing import diff_architectures, diff_text

    if old is None:
        return f"decision changes unknown: {why_not}\n"
    return diff_text(diff_architectures(old, new), old, new)


def _report(up: Update, directory: Path, decisions: str, dry_run: bool) -> None:
    print(f"archgen update {directory}")
    print(decisions, end="")
    print("\nFiles")
    order = list(ACTIONS)
    for row in sorted(up.rows, key=lambda r: (order.index(r.action), r.path)):
        note = f"  ({row.note})" if row.note else ""
        print(f"  {ACTIONS[row.action]:<9} {row.path}{note}")
    tail = f"  {up.unchanged + up.edited_untouched} unchanged"
    if up.edited_untouched:
        tail += f" ({up.edited_untouched} of them changed by you, with nothing new from archgen)"
    print(tail)
    for note in up.notes:
        print(f"note: {note}")
    if dry_run:
        print(f"\ndry run: nothing was written ({len(up.writes)} files would be written, {len(up.removals)} removed)")
    elif up.writes or up.removals:
        print(f"\nUpdated {directory}: {len(up.writes)} files written, {len(up.removals)} removed.")
    else:
        print(f"\n{directory} is up to date.")
    if up.conflicts:
        verb = "would have" if dry_run else "have"
        print(
            f"{len(up.conflicts)} file(s) {verb} conflicts: edit the regions between `{OURS}` and `{THEIRS}` "
            f"(yours above `{BASE}`, archgen's new version below `{SEP}`), remove the markers, then run "
            f"`archgen check {directory}`."
        )


def run(
    directory: Path,
    spec: Path | None = None,
    dry_run: bool = False,
    overlays: list[Path] | None = None,
    trust: bool = False,
) -> int:
    with sigterm_interrupts():  # SIGTERM, like Ctrl-C, ends with exit 130 and the repository as it was
        return _run(directory, spec, dry_run, overlays, trust)


def _recorded(root: Path, manifest: Manifest, declared: str | None = None) -> list[OverlaySource]:
    """The overlays the manifest records (those ``declared`` by the spec or the command line), re-read."""
    from ..render.overlay import load_overlay

    out = []
    for rec in manifest.overlays:
        if declared is None or rec.declared == declared:
            src = load_overlay(root / rec.source, wins=rec.wins, declared=rec.declared)
            out.append(OverlaySource(rec.name, src.location, src.files, src.wins, src.declared))
    return out


def _new_overlays(
    root: Path, manifest: Manifest, loaded: LoadedSpec, spec: Path | None, cli: list[Path] | None, trust: bool
) -> Overlays | None:
    """This update's overlays: the spec's (the new spec's, relative to it; else the recorded ones), then the
    command line's (``--overlay``; else the ones `new` was given)."""
    from ..render.overlay import load_overlay, spec_overlays, unique_names

    from_spec = spec_overlays(loaded.spec, spec.parent) if spec is not None else _recorded(root, manifest, "spec")
    from_cli = [load_overlay(p) for p in cli] if cli is not None else _recorded(root, manifest, "cli")
    if not from_spec and not from_cli:
        return None
    return Overlays(unique_names(from_spec + from_cli), trust=trust, root=root)


def _base_overlays(root: Path, manifest: Manifest, trust: bool) -> Overlays | None:
    """The overlays as recorded, for the base; one that can no longer be read leaves its files without a base."""
    if not manifest.overlays:
        return None
    try:
        return Overlays(_recorded(root, manifest), trust=trust, root=root)
    except ArchgenError:
        return None


def _run(directory: Path, spec: Path | None, dry_run: bool, overlays: list[Path] | None, trust: bool) -> int:
    if directory.is_symlink() or not directory.is_dir():
        raise ArchgenError(f"{directory} is not a directory", exit_code=UNREADABLE, hint="pass a generated repository")
    if dry_run:
        return _run_locked(directory, spec, dry_run, overlays, trust)
    with repository_lock(directory.resolve()):  # a second update is refused while this one runs
        recovered = recover_interrupted(directory.resolve())  # after a hard kill: finish or roll back
        if recovered:
            print(f"note: {recovered}", file=sys.stderr)
        return _run_locked(directory, spec, dry_run, overlays, trust)


def _run_locked(directory: Path, spec: Path | None, dry_run: bool, overlays: list[Path] | None, trust: bool) -> int:
    from ..decide import decide

    root, manifest, recorded = _open(directory)
    unresolved = _unresolved(root, manifest)
    if unresolved:
        raise ArchgenError(
            f"{len(unresolved)} file(s) still hold conflict markers of an earlier update: {', '.join(unresolved)}; "
            "nothing was changed",
            exit_code=FINDINGS,
            hint="resolve them (or restore them from version control) and run archgen update again",
        )
    progress = Progress(sys.stderr)
    if spec is None and recorded is None:  # missing, a symlink, a FIFO or a device: never read or waited on
        raise ArchgenError(
            f"{directory}/{SPEC_COPY} is not a regular file archgen can read",
            exit_code=UNREADABLE,
            hint="restore it from version control, or pass the spec with --spec",
        )
    loaded = load_spec(spec if spec is not None else directory / SPEC_COPY)  # file:line:col errors, exit 65/66
    new = generate_loaded(
        loaded, progress=progress, overlays=_new_overlays(root, manifest, loaded, spec, overlays, trust)
    )
    old_loaded, why_not = _old_spec(directory, manifest, recorded)
    old_arch = decide(old_loaded) if old_loaded is not None else None
    up = plan_update(root, manifest, new, _Base(old_loaded, manifest, why_not, _base_overlays(root, manifest, trust)))
    if manifest.archgen_version != __version__:
        up.notes.append(f"the repository was generated by archgen {manifest.archgen_version}; this is {__version__}")
    if sha256(recorded or b"") != manifest.spec_sha256 and spec is not None:
        up.notes.append(f"{SPEC_COPY} had been edited; it now records {spec}")
    decisions = _decisions(old_arch, new.arch.model_copy(update={"spec_file": loaded.filename}), why_not)
    if not dry_run and (up.writes or up.removals):
        apply_update(directory, up.writes, new.modes, up.removals, progress=progress)
    _report(up, directory, decisions, dry_run)
    from ..views.docs_component import skipped

    note = skipped()  # e.g. PNG/SVG diagrams without graphviz
    if note:
        print(f"note: {note}", file=sys.stderr)
    return FINDINGS if up.conflicts else OK
