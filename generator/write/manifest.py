"""The `.archgen/` record of a generated repository: a verbatim copy of the spec and a manifest.

``.archgen/manifest.json`` lists the archgen version, the sha256 of the spec and, for every file
archgen wrote, its sha256, mode and component, sorted by path. No timestamps, no absolute paths:
the same spec gives the same manifest byte for byte. ``archgen update`` and ``archgen check`` read
it to tell files archgen manages (and whether the team changed them) from the team's own files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import CANT_CREATE, UNSAFE, ArchgenError

RECORD_DIR = ".archgen"
SPEC_COPY = f"{RECORD_DIR}/spec.yaml"
MANIFEST = f"{RECORD_DIR}/manifest.json"
FORMAT = 1


def sha256(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ManagedFile:
    """A file archgen wrote: its path, hash, mode and component."""

    path: str
    sha256: str
    mode: int
    component: str


@dataclass(frozen=True)
class OverlayRecord:
    """A company template rendered over the repository: where it is (relative to the repository), its
    content hash, which side wins a shared path, and whether the spec or the command line named it.
    """

    name: str
    source: str
    sha256: str
    wins: str
    declared: str  # "spec" | "cli"

    def to_dict(self) -> dict[str, str]:
        """The JSON form of the overlay record."""
        return {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "wins": self.wins,
            "declared": self.declared,
        }


@dataclass(frozen=True)
class Manifest:
    """``.archgen/manifest.json``: the archgen version, the spec's hash, every managed file and overlay."""

    archgen_version: str
    project: str
    spec_sha256: str
    files: tuple[ManagedFile, ...]  # sorted by path; the manifest itself is not listed
    overlays: tuple[OverlayRecord, ...] = ()  # in the order they were applied

    def paths(self) -> set[str]:
        """Every managed path, the manifest's own included."""
        return {f.path for f in self.files} | {MANIFEST}

    def file(self, path: str) -> ManagedFile | None:
        """The record of ``path``, or None."""
        return next((f for f in self.files if f.path == path), None)

    def to_json(self) -> bytes:
        """The manifest as the bytes archgen writes."""
        data: dict[str, object] = {
            "format": FORMAT,
            "archgen_version": self.archgen_version,
            "project": self.project,
            "spec": {"path": SPEC_COPY, "sha256": self.spec_sha256},
            "files": {
                f.path: {"sha256": f.sha256, "mode": f"{f.mode:04o}", "component": f.component} for f in self.files
            },
        }
        if self.overlays:  # absent without overlays: manifests of plain repositories stay as they were
            data["overlays"] = [o.to_dict() for o in self.overlays]
        return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def build_manifest(
    project: str,
    spec_bytes: bytes,
    files: Mapping[str, bytes],
    modes: Mapping[str, int],
    components: Mapping[str, str],
    overlays: tuple[OverlayRecord, ...] = (),
) -> Manifest:
    """The manifest of ``files`` (which include the spec copy, and not the manifest itself)."""
    entries = tuple(
        ManagedFile(path=p, sha256=sha256(files[p]), mode=modes[p], component=components[p])
        for p in sorted(files)
        if p != MANIFEST
    )
    return Manifest(
        archgen_version=__version__, project=project, spec_sha256=sha256(spec_bytes), files=entries, overlays=overlays
    )


def parse_manifest(data: bytes, where: str = MANIFEST) -> Manifest:
    """Read a manifest; a malformed one (or a path leading outside) raises ArchgenError naming ``where``."""
    try:
        raw = json.loads(data.decode("utf-8"))
        files = tuple(
            ManagedFile(
                path=str(p), sha256=str(v["sha256"]), mode=int(str(v["mode"]), 8), component=str(v["component"])
            )
            for p, v in sorted(raw["files"].items())
        )
        overlays = tuple(
            OverlayRecord(
                name=str(o["name"]),
                source=str(o["source"]),
                sha256=str(o["sha256"]),
                wins=str(o["wins"]),
                declared=str(o["declared"]),
            )
            for o in raw.get("overlays", [])
        )
        return Manifest(
            archgen_version=str(raw["archgen_version"]),
            project=str(raw["project"]),
            spec_sha256=str(raw["spec"]["sha256"]),
            files=files,
            overlays=overlays,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        from ..untrusted import escape

        raise ArchgenError(
            f"{where} is not an archgen manifest ({type(exc).__name__}: {escape(exc)[:200]})",
            exit_code=CANT_CREATE,
            hint="restore it from version control, or generate into a new folder",
        ) from None


def check_manifest_paths(manifest: Manifest, where: str = MANIFEST) -> Manifest:
    """Paths read from a manifest are checked like generated paths: relative, normalised, no '..' (exit 4)."""
    from ..untrusted import escape, safe_relative

    for f in manifest.files:
        if not safe_relative(f.path) or f.path == MANIFEST:
            raise ArchgenError(
                f"{where} lists the unsafe path {escape(f.path)!r} (absolute, '..' or not normalised); "
                "nothing was changed",
                exit_code=UNSAFE,
                hint="restore the manifest from version control; archgen only writes inside the repository",
            )
    return manifest


def read_manifest(root: Path) -> Manifest | None:
    """The manifest of a generated repository, or None when the folder has none.

    The manifest is untrusted input: `.archgen/` may not lead outside ``root`` (exit 4), the file must be a
    regular file of sane size, and every path it lists must be safe and stay inside ``root`` (exit 4).
    """
    from ..untrusted import Refused, read_bytes, require_inside

    require_inside(root, [MANIFEST], source=str(root / MANIFEST))
    path = root / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = read_bytes(path, 256 * 1024 * 1024)
    except Refused as exc:
        raise ArchgenError(f"{path} {exc}", exit_code=CANT_CREATE) from None
    manifest = check_manifest_paths(parse_manifest(data, str(path)), str(path))
    require_inside(root, [f.path for f in manifest.files], source=str(path))
    return manifest
