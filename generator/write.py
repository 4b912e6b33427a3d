"""Write stage: rendered files to the output folder. The only stage that touches it.

Guarantees (each has a test in tests/test_write*.py):

- **Never outside the target.** Every path is relative and normalised (checked again here), the
  target itself must not be a symlink, and every existing folder or file on the way to a planned
  file is resolved and must lie inside the target; anything else is refused with exit 4 before
  a byte is written.
- **Atomic.** Files are staged in a sibling folder ``.<name>.archgen-tmp-*`` in the target's parent
  (same filesystem, so no EXDEV), then a new target is one ``rename``. Into an existing folder
  (``--force``, or an empty one) each staged file is moved with ``os.replace``; that commit is
  renames only, with SIGINT/SIGTERM deferred until it ends.
- **Nothing left behind.** A failed write (disk full, ...) or an interrupt removes the staging
  folder and any parent folder archgen created; the target stays as it was.
- **Never clobbers.** A non-empty target needs ``--force``; then only files archgen plans are
  replaced, files the team added are kept, a file archgen wrote before and no longer plans is
  removed only if the team did not change it, and no folder is ever removed.
- **Updates are one transaction.** :func:`apply_update` (``archgen update``) moves every file it
  replaces or removes aside before moving the new one in, and takes every step back on a failure
  or a signal: the repository ends updated, or exactly as it was.
- **Reproducible.** Modes are set explicitly (0644, 0755 for executables; folders 0755), so the
  umask does not leak into the output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from .errors import CANT_CREATE, INTERRUPTED, IO_ERROR, UNSAFE, ArchgenError
from .manifest import read_manifest, sha256
from .plan import check_relative
from .progress import Progress, null_progress

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR.parent / "templates"
STAGING_MARK = ".archgen-tmp-"
# test hook: seconds to sleep after each staged file, so a test can interrupt a write midway
DELAY_ENV = "ARCHGEN_TEST_WRITE_DELAY"
_PERMISSION_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


@dataclass(frozen=True)
class Target:
    """A checked output folder: where it really is and what is there already."""

    given: Path  # as the user wrote it (for messages)
    path: Path  # absolute, parent resolved; the target itself is not a symlink
    exists: bool
    entries: tuple[str, ...] = ()  # top-level names already in it


@dataclass
class WriteResult:
    target: Path
    new: bool  # the target did not exist before
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # files archgen wrote before and no longer plans
    stale_kept: list[str] = field(default_factory=list)  # ... which the team changed: kept
    kept: int = 0  # files in the target that archgen does not manage


# ------------------------------------------------------------------ target checks
def _refuse(message: str, code: int, hint: str | None = None) -> ArchgenError:
    return ArchgenError(message, exit_code=code, hint=hint)


def _dangerous(real: Path, spec_path: Path | None) -> str | None:
    home = Path(os.path.expanduser("~")).resolve()
    if real == Path(real.anchor):
        return "the filesystem root"
    if home == real or home.is_relative_to(real):
        return "your home folder" if home == real else f"a folder that contains your home folder ({home})"
    if spec_path is not None and spec_path.resolve().parent == real:
        return "the folder of the spec itself"
    for inside, what in ((TEMPLATES_DIR, "archgen's templates"), (PACKAGE_DIR, "archgen's own package")):
        if real == inside or real.is_relative_to(inside):
            return f"inside {what} ({inside})"
    return None


def check_target(given: Path, *, force: bool, spec_path: Path | None = None) -> Target:
    """Refuse unsafe or occupied targets before anything is written (exit 4 or 73)."""
    absolute = Path(os.path.abspath(given))
    if absolute.is_symlink():
        raise _refuse(
            f"{given} is a symlink (to {os.readlink(absolute)}); archgen does not write through symlinks",
            UNSAFE,
            "pass the real folder as -o",
        )
    real = absolute.parent.resolve() / absolute.name if absolute.name else absolute.resolve()
    danger = _dangerous(real, spec_path)
    if danger:
        raise _refuse(f"refusing to generate into {given}: it is {danger}", CANT_CREATE, "pass a new folder as -o")
    if not os.path.lexists(real):
        return Target(given=given, path=real, exists=False)
    if not real.is_dir():
        raise _refuse(f"{given} exists and is not a folder", CANT_CREATE, "pass a new folder as -o")
    try:
        entries = tuple(sorted(os.listdir(real)))
    except OSError as exc:
        raise _os_error(exc, real) from None
    if entries and not force:
        raise _refuse(
            f"{given} exists and is not empty ({len(entries)} entries); nothing was written",
            CANT_CREATE,
            "pass a new folder, or --force to replace the files archgen generates (files archgen did not write "
            "are kept)",
        )
    return Target(given=given, path=real, exists=True, entries=entries)


def check_destinations(target: Target, paths: list[str]) -> None:
    """Every planned path stays inside the target: no symlink on the way leads out (exit 4)."""
    root = target.path
    for rel in paths:
        check_relative(rel)
        if not target.exists:
            continue
        cur = root
        parts = rel.split("/")
        for n, part in enumerate(parts):
            cur = cur / part
            if not os.path.lexists(cur):
                break
            last = n == len(parts) - 1
            if cur.is_symlink():
                resolved = cur.resolve()
                if not resolved.is_relative_to(root):
                    raise _refuse(
                        f"{target.given / rel}: {cur.relative_to(root)} is a symlink leading outside the target "
                        f"(to {resolved}); nothing was written",
                        UNSAFE,
                        "remove the symlink, or generate into a new folder",
                    )
            if not last and not cur.is_dir():
                raise _refuse(
                    f"{target.given / rel}: {cur.relative_to(root)} is a file where archgen needs a folder",
                    CANT_CREATE,
                    "move it away, or generate into a new folder",
                )
            if last and cur.is_dir() and not cur.is_symlink():
                raise _refuse(
                    f"{target.given / rel} is a folder where archgen writes a file",
                    CANT_CREATE,
                    "move it away, or generate into a new folder",
                )


# ------------------------------------------------------------------ errors and signals
def _os_error(exc: OSError, path: Path | str | None = None) -> ArchgenError:
    """An OSError as exit 73 (cannot create: permissions, read-only, not a folder) or 74 (I/O)."""
    where = path or exc.filename or "the output"
    reason = exc.strerror or str(exc)
    if exc.errno in _PERMISSION_ERRNOS:
        return _refuse(
            f"cannot write in {where}: {reason}; nothing was written", CANT_CREATE, "choose a writable folder"
        )
    if exc.errno in (errno.ENOTDIR, errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY):
        return _refuse(f"cannot create files in {where}: {reason}; nothing was written", CANT_CREATE)
    return _refuse(f"I/O error while writing {where}: {reason}; nothing was left behind", IO_ERROR)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C (KeyboardInterrupt) while staging, so cleanup runs."""
    if not _on_main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_deferred(received: list[int]) -> Iterator[None]:
    """The commit (renames only) is not cut in half: SIGINT/SIGTERM are noted and acted on after it."""
    if not _on_main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ------------------------------------------------------------------ staging and commit
def _make_parents(folder: Path, created: list[Path]) -> None:
    """mkdir -p, remembering which folders this run created (removed again on failure)."""
    missing = []
    cur = folder
    while not os.path.lexists(cur):
        missing.append(cur)
        cur = cur.parent
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        created.append(d)


def _write_file(dest: Path, data: bytes, mode: int) -> None:
    """Create one new file (never through a symlink, never over an existing file)."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(dest, mode)


def _stage(staging: Path, files: Mapping[str, bytes], modes: Mapping[str, int], progress: Progress) -> None:
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    progress.start("writing", len(files))
    for n, rel in enumerate(sorted(files), start=1):
        dest = staging / rel
        if not dest.parent.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
        _write_file(dest, files[rel], modes.get(rel, 0o644))
        progress.advance(n)
        if delay:
            time.sleep(delay)
    for folder, dirs, _ in os.walk(staging):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o755)
    os.chmod(staging, 0o755)


def _same(dest: Path, data: bytes, mode: int) -> bool:
    try:
        st = dest.lstat()
        if not dest.is_file() or dest.is_symlink() or (st.st_mode & 0o777) != mode or st.st_size != len(data):
            return False
        return dest.read_bytes() == data
    except OSError:
        return False


def _commit_into(
    target: Target,
    staging: Path,
    files: Mapping[str, bytes],
    modes: Mapping[str, int],
    result: WriteResult,
    created_dirs: list[Path],
) -> None:
    """Move each staged file into an existing target; skip identical files; drop stale untouched ones."""
    root = target.path
    old = read_manifest(root)
    for rel in sorted(files):
        dest = root / rel
        if _same(dest, files[rel], modes.get(rel, 0o644)):
            result.unchanged.append(rel)
            continue
        _make_parents(dest.parent, created_dirs)
        if not dest.parent.resolve().is_relative_to(root):  # re-checked at the moment of writing
            raise _refuse(f"{target.given / rel} would be written outside the target", UNSAFE)
        (result.replaced if os.path.lexists(dest) else result.created).append(rel)
        os.replace(staging / rel, dest)
    if old is not None:
        for managed in old.files:
            if managed.path in files:
                continue
            dest = root / managed.path
            if not dest.is_file() or dest.is_symlink():
                continue
            if sha256(dest.read_bytes()) == managed.sha256:
                dest.unlink()
                result.removed.append(managed.path)
            else:
                result.stale_kept.append(managed.path)


def _count_unmanaged(root: Path, managed: set[str]) -> int:
    count = 0
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".git", ".venv")) and d != "__pycache__")
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            if rel not in managed:
                count += 1
    return count


def write_repository(
    given: Path,
    files: Mapping[str, bytes],
    modes: Mapping[str, int],
    *,
    force: bool = False,
    spec_path: Path | None = None,
    progress: Progress | None = None,
) -> WriteResult:
    """Write ``files`` (relative posix path -> bytes) as the repository at ``given``."""
    progress = progress or null_progress()
    target = check_target(given, force=force, spec_path=spec_path)
    check_destinations(target, list(files))
    root = target.path
    result = WriteResult(target=root, new=not target.exists)
    created_dirs: list[Path] = []
    staging: Path | None = None
    ok = False
    received: list[int] = []
    try:
        with sigterm_interrupts():
            try:
                _make_parents(root.parent, created_dirs)
                staging = Path(tempfile.mkdtemp(prefix=f".{root.name}{STAGING_MARK}", dir=root.parent))
            except OSError as exc:
                raise _os_error(exc, root.parent) from None
            try:
                _stage(staging, files, modes, progress)
            except OSError as exc:
                raise _os_error(exc, given) from None
            with _signals_deferred(received):
                try:
                    if target.exists:
                        _commit_into(target, staging, files, modes, result, created_dirs)
                    else:
                        os.rename(staging, root)
                        staging = None
                        result.created.extend(sorted(files))
                except OSError as exc:
                    raise _os_error(exc, given) from None
        progress.done(f"{len(result.created)} new, {len(result.replaced)} replaced, {len(result.unchanged)} unchanged")
        ok = True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not ok:
            for d in reversed(created_dirs):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
    if target.exists:
        result.kept = _count_unmanaged(root, set(files))
    if received:
        raise _refuse(
            f"interrupted after {given} was completely written (the write itself is not cut in half)", INTERRUPTED
        )
    return result


# ------------------------------------------------------------------ update: one transaction
_Step = tuple[str, Path, Path | None, int]  # (put | aside | mkdir | rmdir, path, where it was set aside, mode)


def _undo(journal: list[_Step]) -> None:
    """Take back every step of an update, newest first: the repository is as it was before."""
    for kind, path, aside, mode in reversed(journal):
        with contextlib.suppress(OSError):
            if kind == "put":
                os.unlink(path)
            elif kind == "aside" and aside is not None:
                os.replace(aside, path)
            elif kind == "mkdir":
                os.rmdir(path)
            elif kind == "rmdir":
                os.mkdir(path)
                os.chmod(path, mode)
    journal.clear()


def _commit_update(
    root: Path,
    staging: Path,
    writes: Mapping[str, bytes],
    removals: list[str],
    journal: list[_Step],
    received: list[int],
) -> None:
    """Move removed files aside (into the staging folder), then each replaced one, moving the new one in.

    Every step is noted in ``journal`` for :func:`_undo`; a signal stops the commit after the current step.
    """
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    old = staging / "old"

    def set_aside(dest: Path, rel: str) -> None:
        aside = old / rel
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.rename(dest, aside)
        journal.append(("aside", dest, aside, 0))

    for rel in sorted(removals):
        dest = root / rel
        set_aside(dest, rel)
        folder = dest.parent
        while folder != root and not os.listdir(folder):  # a folder this removal left empty goes too
            mode = stat.S_IMODE(folder.stat().st_mode)
            os.rmdir(folder)
            journal.append(("rmdir", folder, None, mode))
            folder = folder.parent
        if delay:
            time.sleep(delay)
        if received:
            return
    for rel in sorted(writes):
        dest = root / rel
        missing = []
        cur = dest.parent
        while not os.path.lexists(cur):
            missing.append(cur)
            cur = cur.parent
        for d in reversed(missing):
            os.mkdir(d, 0o755)
            journal.append(("mkdir", d, None, 0))
        if not dest.parent.resolve().is_relative_to(root):  # re-checked at the moment of writing
            raise _refuse(f"{rel} would be written outside the target", UNSAFE)
        if os.path.lexists(dest):
            set_aside(dest, rel)
        os.replace(staging / "new" / rel, dest)
        journal.append(("put", dest, None, 0))
        if delay:
            time.sleep(delay)
        if received:
            return


def apply_update(
    given: Path,
    writes: Mapping[str, bytes],
    modes: Mapping[str, int],
    removals: list[str],
    *,
    progress: Progress | None = None,
) -> None:
    """Write ``writes`` into the existing repository ``given`` and remove ``removals``, as one transaction.

    New contents are staged beside the target first. The commit moves each file it replaces or
    removes aside (into the staging folder) before moving the new one in, and notes every step;
    a failure, or a SIGINT/SIGTERM at any point (deferred during the commit, then acted on), takes
    every step back, so the repository is byte for byte as it was (exit 73/74, or 130).
    """
    progress = progress or null_progress()
    target = check_target(given, force=True)
    if not target.exists:
        raise _refuse(f"{given} does not exist", CANT_CREATE)
    check_destinations(target, [*writes, *removals])
    root = target.path
    staging: Path | None = None
    received: list[int] = []
    journal: list[_Step] = []
    try:
        with sigterm_interrupts():
            try:
                staging = Path(tempfile.mkdtemp(prefix=f".{root.name}{STAGING_MARK}", dir=root.parent))
                os.mkdir(staging / "new", 0o700)
                os.mkdir(staging / "old", 0o700)
                _stage(staging / "new", writes, modes, progress)
            except OSError as exc:
                raise _os_error(exc, given) from None
            with _signals_deferred(received):
                try:
                    _commit_update(root, staging, writes, removals, journal, received)
                except OSError as exc:
                    _undo(journal)
                    raise _os_error(exc, given) from None
                except BaseException:
                    _undo(journal)
                    raise
                if received:
                    _undo(journal)
        progress.done(f"{len(writes)} written, {len(removals)} removed")
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    if received:
        raise _refuse(f"interrupted: {given} was left exactly as it was", INTERRUPTED)
