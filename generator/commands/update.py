"""`archgen update DIR [--spec NEW] [--dry-run]`: regenerate after a spec change, keeping the team's edits.

This module loads the new and the recorded spec, generates, and reports; what happens to each file is
decided by the update engine (:mod:`generator.write.update`: replace, merge three ways, keep, remove).
The writing is one transaction (:func:`generator.write.write.apply_update`): interrupted or failed, it
leaves the repository exactly as it was. `.archgen/` then records the new spec, so the next update
merges against what this one wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path

from requirements_spec import load_spec
from requirements_spec.errors import SpecError
from requirements_spec.validate import LoadedSpec, parse_spec

from .. import __version__
from ..decide.architecture import Architecture
from ..errors import FINDINGS, OK, UNREADABLE, ArchgenError, Diagnostic, Location
from ..generate import Overlays, generate_loaded
from ..render.overlay import OverlaySource
from ..untrusted import Refused, read_bytes, require_inside
from ..write.manifest import MANIFEST, SPEC_COPY, Manifest, read_manifest, sha256
from ..write.merge import BASE, OURS, SEP, THEIRS
from ..write.progress import Progress
from ..write.update import ACTIONS, Base, Update, first_line, plan_update, unresolved
from ..write.write import apply_update, recover_interrupted, repository_lock, sigterm_interrupts

#: the code of a file the update merged with conflicts (``--format json``)
CONFLICT_CODE = "update.conflict"
CONFLICT_HINT = (
    f"edit the regions between `{OURS}` and `{THEIRS}` (yours above `{BASE}`, archgen's new version below "
    f"`{SEP}`), remove the markers"
)


#: the code of a file the update merged with conflicts (``--format json``)
CONFLICT_CODE = "update.conflict"
CONFLICT_HINT = (
    f"edit the regions between `{OURS}` and `{THEIRS}` (yours above `{BASE}`, archgen's new version below "
    f"`{SEP}`), remove the markers"
)


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
        return None, f"the recorded spec no longer validates ({first_line(exc)})"


def _decisions(old: Architecture | None, new: Architecture, why_not: str) -> str:
    from ..views.diffing import diff_architectures, diff_text

    if old is None:
        return f"decision changes unknown: {why_not}\n"
    return diff_text(diff_architectures(old, new), old, new)


def _json(up: Update, directory: Path, old: Architecture | None, new: Architecture, why_not: str, dry_run: bool) -> str:
    """The JSON document of `update --format json`: decision changes, files, and each conflict as a diagnostic."""
    from ..boundary import json_document
    from ..views.diffing import diff_architectures, diff_data

    conflicts = [
        Diagnostic(CONFLICT_CODE, f"conflicting changes: {row.note}", Location(row.path), hint=CONFLICT_HINT)
        for row in sorted(up.conflicts, key=lambda r: r.path)
    ]
    order = list(ACTIONS)
    return json_document(
        "update",
        FINDINGS if up.conflicts else OK,
        conflicts,
        directory=str(directory),
        dry_run=dry_run,
        decisions=diff_data(diff_architectures(old, new), old, new) if old is not None else None,
        decisions_unknown=why_not if old is None else None,
        files=[
            {"path": r.path, "action": r.action, "note": r.note}
            for r in sorted(up.rows, key=lambda r: (order.index(r.action), r.path))
        ],
        unchanged=up.unchanged + up.edited_untouched,
        written=len(up.writes),
        removed=len(up.removals),
        notes=up.notes,
    )


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
        print(f"{len(up.conflicts)} file(s) {verb} conflicts: {CONFLICT_HINT}, then run `archgen check {directory}`.")


def run(
    directory: Path,
    spec: Path | None = None,
    dry_run: bool = False,
    overlays: list[Path] | None = None,
    trust: bool = False,
    fmt: str = "text",
) -> int:
    """Update the repository in ``directory`` to ``spec`` (default: the recorded one); exit 1 on conflicts."""
    with sigterm_interrupts():  # SIGTERM, like Ctrl-C, ends with exit 130 and the repository as it was
        return _run(directory, spec, dry_run, overlays, trust, fmt)


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
    command line's (``--overlay``; else the ones `new` was given).
    """
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


def _run(directory: Path, spec: Path | None, dry_run: bool, overlays: list[Path] | None, trust: bool, fmt: str) -> int:
    if directory.is_symlink() or not directory.is_dir():
        raise ArchgenError(f"{directory} is not a directory", exit_code=UNREADABLE, hint="pass a generated repository")
    if dry_run:
        return _run_locked(directory, spec, dry_run, overlays, trust, fmt)
    with repository_lock(directory.resolve()):  # a second update is refused while this one runs
        recovered = recover_interrupted(directory.resolve())  # after a hard kill: finish or roll back
        if recovered:
            print(f"note: {recovered}", file=sys.stderr)
        return _run_locked(directory, spec, dry_run, overlays, trust, fmt)


def _run_locked(
    directory: Path, spec: Path | None, dry_run: bool, overlays: list[Path] | None, trust: bool, fmt: str
) -> int:
    from ..decide import decide

    root, manifest, recorded = _open(directory)
    marked = unresolved(root, manifest)
    if marked:
        raise ArchgenError(
            f"{len(marked)} file(s) still hold conflict markers of an earlier update: {', '.join(marked)}; "
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
    base_overlays = _base_overlays(root, manifest, trust)
    rebuild = (lambda: generate_loaded(old_loaded, overlays=base_overlays).files) if old_loaded is not None else None
    up = plan_update(root, manifest, new, Base(manifest, rebuild, why_not))
    if manifest.archgen_version != __version__:
        up.notes.append(f"the repository was generated by archgen {manifest.archgen_version}; this is {__version__}")
    if sha256(recorded or b"") != manifest.spec_sha256 and spec is not None:
        up.notes.append(f"{SPEC_COPY} had been edited; it now records {spec}")
    new_arch = new.arch.model_copy(update={"spec_file": loaded.filename})
    if not dry_run and (up.writes or up.removals):
        apply_update(directory, up.writes, new.modes, up.removals, progress=progress)
    from ..views.docs_component import skipped

    note = skipped()  # e.g. PNG/SVG diagrams without graphviz
    if fmt == "json":
        up.notes += [note] if note else []
        sys.stdout.write(_json(up, directory, old_arch, new_arch, why_not, dry_run))
        return FINDINGS if up.conflicts else OK
    _report(up, directory, _decisions(old_arch, new_arch, why_not), dry_run)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return FINDINGS if up.conflicts else OK
