"""Write stage: rendered files to the output folder. The only stage that touches it.

Guarantees (each has a test in tests/test_write*.py):

- **Never outside the target.** Every path is relative and normalised (checked again here), the
  target itself must not be a symlink, and every existing folder or file on the way to a planned
  file is resolved and must lie inside the target; anything else is refused with exit 4 before
  a byte is written.
- **Atomic.** Files are staged in a sibling folder ``.<name>.archgen-tmp-*`` in the target's parent
  (same filesystem, so no EXDEV), then a new target is one ``rename``. Into an existing folder
  (``--force``, or an empty one) the write is one transaction, as for ``archgen update``: under the
  repository lock, every file replaced or removed is moved aside first and every step is journaled,
  so a failure or signal takes it all back, and after a hard kill the next run rolls it back.
- **Nothing left behind.** A failed write (disk full, ...) or an interrupt removes the staging
  folder and any parent folder archgen created; the target stays as it was.
- **Never clobbers.** A non-empty target needs ``--force``; then only files archgen plans are
  replaced, and only where the manifest says archgen wrote them (or they are identical: a differing file
  archgen did not write is refused, exit 73); files the team added are kept; paths read from the manifest
  are checked like planned ones (exit 4); a file archgen wrote before and no longer plans is
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
import glob
import json
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

from ..errors import CANT_CREATE, INTERRUPTED, IO_ERROR, UNSAFE, ArchgenError
from ..plan.plan import check_relative
from ..resources import PACKAGE_DIR, TEMPLATES
from ..untrusted import Refused, escape, read_bytes, safe_relative, sha256_file
from .manifest import read_manifest
from .progress import Progress, null_progress

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
    """What writing a repository did: created, replaced, unchanged, removed and kept files."""

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
    for inside, what in ((TEMPLATES, "archgen's templates"), (PACKAGE_DIR, "archgen's own package")):
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


def _plan_into(
    target: Target, files: Mapping[str, bytes], modes: Mapping[str, int], result: WriteResult
) -> dict[str, bytes]:
    """What ``new --force`` changes in an existing target: the files to write (others are identical), the
    files archgen wrote before and no longer plans (``result.removed``, untouched) or that the team changed
    (``result.stale_kept``). A differing file the manifest does not say archgen wrote is refused (exit 73).
    """
    root = target.path
    old = read_manifest(root)  # paths checked: relative, inside the target (exit 4)
    managed = old.paths() if old is not None else set()
    writes: dict[str, bytes] = {}
    foreign: list[str] = []
    for rel in sorted(files):
        dest = root / rel
        if _same(dest, files[rel], modes.get(rel, 0o644)):
            result.unchanged.append(rel)
            continue
        if os.path.lexists(dest):
            if rel not in managed and not _same_content(dest, files[rel]):
                foreign.append(rel)
                continue
            result.replaced.append(rel)
        else:
            result.created.append(rel)
        writes[rel] = files[rel]
    if foreign:
        shown = ", ".join(escape(p) for p in foreign[:10]) + (
            f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
        )
        raise _refuse(
            f"{target.given}: {len(foreign)} file(s) archgen did not write would be overwritten: {shown}; "
            "nothing was written",
            CANT_CREATE,
            "move them away, or generate into a new folder (`archgen update` merges a repository archgen generated)",
        )
    if old is not None:
        for f in old.files:
            if f.path in files:
                continue
            dest = root / f.path
            if not dest.is_file() or dest.is_symlink():
                continue
            try:
                same = sha256_file(dest) == f.sha256
            except Refused:
                same = False
            (result.removed if same else result.stale_kept).append(f.path)
    return writes


def _same_content(dest: Path, data: bytes) -> bool:
    try:
        return (
            dest.is_file() and not dest.is_symlink() and dest.stat().st_size == len(data) and read_bytes(dest) == data
        )
    except (OSError, Refused):
        return False


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
    """Write ``files`` (relative posix path -> bytes) as the repository at ``given``.

    A new target is staged and renamed into place. An existing one (``--force``, or empty) is changed as
    one journaled transaction under the repository lock, like ``archgen update``: all of it, or nothing.
    """
    progress = progress or null_progress()
    target = check_target(given, force=force, spec_path=spec_path)
    check_destinations(target, list(files))
    root = target.path
    result = WriteResult(target=root, new=not target.exists)
    if target.exists:
        with repository_lock(root):
            recover_interrupted(root)
            writes = _plan_into(target, files, modes, result)
            _transaction(given, root, writes, modes, result.removed, progress=progress, prune=False)
        result.kept = _count_unmanaged(root, set(files))
        return result
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
                    os.rename(staging, root)
                    staging = None
                    result.created.extend(sorted(files))
                except OSError as exc:
                    raise _os_error(exc, given) from None
        progress.done(f"{len(result.created)} new")
        ok = True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not ok:
            for d in reversed(created_dirs):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
    if received:
        raise _refuse(
            f"interrupted after {given} was completely written (the write itself is not cut in half)", INTERRUPTED
        )
    return result


# ------------------------------------------------------------------ one transaction, with a lock and a journal
_Step = tuple[str, str, int]  # (put | aside | mkdir | rmdir, path relative to the root, mode)
JOURNAL = "journal"  # in the staging folder: one JSON line per step, written before the step is taken
_COMMITTED = "committed"
_held: set[str] = set()  # roots this process holds the lock of (the lock is re-entrant within a process)


@contextlib.contextmanager
def repository_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the repository folder (``flock`` on the folder itself: no lock file is left behind).

    A second ``archgen update`` or ``new --force`` on the same folder is refused (exit 73) while one runs;
    the lock goes with the process, so a hard kill never leaves a stale lock.
    """
    key = os.path.realpath(root)
    if key in _held:
        yield
        return
    import fcntl

    try:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise _os_error(exc, root) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refuse(
                f"another archgen command is writing {root}; nothing was changed",
                CANT_CREATE,
                "wait for it to finish, then run this command again",
            ) from None
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)


def _journal_note(fd: int, kind: str, rel: str, mode: int = 0) -> None:
    os.write(fd, (json.dumps([kind, rel, mode]) + "\n").encode("utf-8"))


def _read_journal(path: Path) -> tuple[list[_Step], bool]:
    steps: list[_Step] = []
    committed = False
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                kind, rel, mode = json.loads(line)
            except ValueError:
                break  # a line cut short by the kill: its step was not taken
            if kind == _COMMITTED:
                committed = True
            elif kind in ("put", "aside", "mkdir", "rmdir") and isinstance(rel, str) and safe_relative(rel):
                steps.append((kind, rel, int(mode)))
    return steps, committed


def _undo(root: Path, staging: Path, steps: list[_Step]) -> None:
    """Take back the steps of a transaction, newest first; each undo checks what was really done (idempotent)."""
    for kind, rel, mode in reversed(steps):
        path = root / rel
        with contextlib.suppress(OSError):
            if kind == "put":
                if not os.path.lexists(staging / "new" / rel) and os.path.lexists(path):
                    os.unlink(path)
            elif kind == "aside":
                if os.path.lexists(staging / "old" / rel):
                    os.replace(staging / "old" / rel, path)
            elif kind == "mkdir":
                os.rmdir(path)
            elif kind == "rmdir" and not os.path.lexists(path):
                os.mkdir(path)
                os.chmod(path, mode)
    steps.clear()


def recover_interrupted(root: Path) -> str | None:
    """Finish or roll back a transaction on ``root`` that a hard kill cut short; what was done, or None.

    A transaction whose journal ends with its commit mark is complete: only its staging folder is left to
    remove. Any other journal is rolled back step by step, so the repository is as it was before.
    Call with :func:`repository_lock` held.
    """
    done = []
    for staging in sorted(root.parent.glob(f".{glob.escape(root.name)}{STAGING_MARK}*")):
        journal = staging / JOURNAL
        if staging.is_symlink() or not journal.is_file():
            continue
        steps, committed = _read_journal(journal)
        if committed:
            done.append("finished an interrupted update")
        else:
            _undo(root, staging, steps)
            done.append(f"rolled back an interrupted update ({len(steps)} steps)")
        shutil.rmtree(staging, ignore_errors=True)
    return "; ".join(done) or None


@dataclass
class _Commit:
    """The steps of one commit, each written to the journal before it is taken and kept in ``steps`` for
    :func:`_undo`: a removed or replaced file is moved aside into the staging folder first.
    """

    root: Path
    staging: Path
    journal: int
    steps: list[_Step]

    def note(self, kind: str, rel: str, mode: int = 0) -> None:
        """Journal the step, then keep it for :func:`_undo`."""
        _journal_note(self.journal, kind, rel, mode)
        self.steps.append((kind, rel, mode))

    def set_aside(self, dest: Path, rel: str) -> None:
        """Move ``dest`` aside into the staging folder (``aside``)."""
        aside = self.staging / "old" / rel
        aside.parent.mkdir(parents=True, exist_ok=True)
        self.note("aside", rel)
        os.rename(dest, aside)

    def remove(self, rel: str, *, prune: bool) -> None:
        """Set ``rel`` aside; with ``prune``, each folder the removal left empty goes too (``rmdir``)."""
        dest = self.root / rel
        self.set_aside(dest, rel)
        folder = dest.parent
        while prune and folder != self.root and not os.listdir(folder):
            mode = stat.S_IMODE(folder.stat().st_mode)
            self.note("rmdir", folder.relative_to(self.root).as_posix(), mode)
            os.rmdir(folder)
            folder = folder.parent

    def put(self, rel: str) -> None:
        """Make the missing folders (``mkdir``), set an existing file aside, move the staged one in (``put``)."""
        dest = self.root / rel
        missing = []
        cur = dest.parent
        while not os.path.lexists(cur):
            missing.append(cur)
            cur = cur.parent
        for d in reversed(missing):
            self.note("mkdir", d.relative_to(self.root).as_posix())
            os.mkdir(d, 0o755)
        if not dest.parent.resolve().is_relative_to(self.root):  # re-checked at the moment of writing
            raise _refuse(f"{rel} would be written outside the target", UNSAFE)
        if os.path.lexists(dest):
            self.set_aside(dest, rel)
        self.note("put", rel)
        os.replace(self.staging / "new" / rel, dest)


def _commit_steps(
    root: Path,
    staging: Path,
    writes: Mapping[str, bytes],
    removals: list[str],
    steps: list[_Step],
    received: list[int],
    journal: int,
    prune: bool,
) -> None:
    """Move removed files aside (into the staging folder), then each replaced one, moving the new one in.

    Every step is written to the journal before it is taken and kept in ``steps`` for :func:`_undo`;
    a signal stops the commit after the current step.
    """
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    commit = _Commit(root, staging, journal, steps)

    def stop() -> bool:
        if delay:
            time.sleep(delay)
        return bool(received)

    for rel in sorted(removals):
        commit.remove(rel, prune=prune)
        if stop():
            return
    for rel in sorted(writes):
        commit.put(rel)
        if stop():
            return
    _journal_note(journal, _COMMITTED, "")


def _transaction(
    given: Path,
    root: Path,
    writes: Mapping[str, bytes],
    modes: Mapping[str, int],
    removals: list[str],
    *,
    progress: Progress,
    prune: bool,
) -> None:
    """Stage ``writes`` beside ``root``, then commit them and ``removals`` as one journaled transaction."""
    staging: Path | None = None
    received: list[int] = []
    steps: list[_Step] = []
    journal: int | None = None
    try:
        with sigterm_interrupts():
            try:
                staging = Path(tempfile.mkdtemp(prefix=f".{root.name}{STAGING_MARK}", dir=root.parent))
                os.mkdir(staging / "new", 0o700)
                os.mkdir(staging / "old", 0o700)
                _stage(staging / "new", writes, modes, progress)
                journal = os.open(staging / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
            except OSError as exc:
                raise _os_error(exc, given) from None
            with _signals_deferred(received):
                try:
                    _commit_steps(root, staging, writes, removals, steps, received, journal, prune)
                except OSError as exc:
                    _undo(root, staging, steps)
                    raise _os_error(exc, given) from None
                except BaseException:
                    _undo(root, staging, steps)
                    raise
                if received:
                    _undo(root, staging, steps)
        progress.done(f"{len(writes)} written, {len(removals)} removed")
    finally:
        if journal is not None:
            os.close(journal)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    if received:
        raise _refuse(f"interrupted: {given} was left exactly as it was", INTERRUPTED)


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
    removes aside (into the staging folder) before moving the new one in, and journals every step
    before taking it; a failure, or a SIGINT/SIGTERM at any point (deferred during the commit, then
    acted on), takes every step back, so the repository is byte for byte as it was (exit 73/74, or
    130). After a hard kill, the next run (:func:`recover_interrupted`) finishes or rolls back.
    """
    progress = progress or null_progress()
    target = check_target(given, force=True)
    if not target.exists:
        raise _refuse(f"{given} does not exist", CANT_CREATE)
    check_destinations(target, [*writes, *removals])
    with repository_lock(target.path):
        _transaction(given, target.path, writes, modes, removals, progress=progress, prune=True)
