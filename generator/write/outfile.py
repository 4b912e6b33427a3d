"""The one way a command writes its output files (init, schema, diagram, review, rules-doc).

- **Atomic.** Each file is written to a temporary file beside it, flushed to disk, then renamed over the
  destination: a full disk or an interrupt leaves the old file (or none), never a truncated one. With
  several files, every temporary file is written before the first rename.
- **No clobbering.** An existing file is refused without ``--force`` (exit 73), unless the command says the
  file is its own earlier output (``regenerable``). A folder, a FIFO or a device is never replaced.
- **No symlinks.** A destination that is a symlink is refused (exit 4): archgen does not write through them.
- **Never the input.** A destination that is the spec the command reads is refused (exit 73).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import CANT_CREATE, UNSAFE, ArchgenError
from ..untrusted import escape

TEMP_MARK = ".archgen-tmp-"


def _check(path: Path, *, force: bool, reads: Sequence[Path], regenerable: Callable[[bytes], bool] | None) -> None:
    shown = escape(path)
    if path.is_symlink():
        raise ArchgenError(
            f"{shown} is a symlink (to {escape(os.readlink(path))}); archgen does not write through symlinks",
            exit_code=UNSAFE,
            hint="remove the symlink, or write to another file",
        )
    for source in reads:
        with contextlib.suppress(OSError):
            if path.exists() and os.path.samefile(path, source):
                raise ArchgenError(
                    f"{shown} is the spec this command reads; it is not overwritten",
                    exit_code=CANT_CREATE,
                    hint="write to another file",
                )
    if not os.path.lexists(path):
        return
    mode = path.lstat().st_mode
    if stat.S_ISDIR(mode):
        raise ArchgenError(f"{shown} is a folder", exit_code=CANT_CREATE, hint="name the file to write")
    if not stat.S_ISREG(mode):
        raise ArchgenError(f"{shown} exists and is not a regular file", exit_code=CANT_CREATE)
    if force:
        return
    if regenerable is not None:
        with contextlib.suppress(OSError), path.open("rb") as fh:
            if regenerable(fh.read(4096)):
                return
    raise ArchgenError(
        f"{shown} already exists; nothing was written", exit_code=CANT_CREATE, hint="use --force to replace it"
    )


def write_outputs(
    files: Sequence[tuple[Path, bytes]],
    *,
    force: bool = False,
    reads: Sequence[Path] = (),
    regenerable: Callable[[bytes], bool] | None = None,
    parents: bool = False,
) -> None:
    """Write every ``(path, bytes)``: all checked first, all staged, then each renamed into place."""
    from .write import _make_parents, _os_error

    for path, _ in files:
        _check(path, force=force, reads=reads, regenerable=regenerable)
        if not parents and not path.parent.is_dir():
            raise ArchgenError(
                f"cannot write {escape(path)}: the folder {escape(path.parent)} does not exist; nothing was written",
                exit_code=CANT_CREATE,
            )
    created: list[Path] = []
    temps: list[tuple[str, Path]] = []
    done = False
    try:
        try:
            for path, data in files:
                parent = path.parent if str(path.parent) else Path(".")
                _make_parents(Path(os.path.abspath(parent)), created)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}", dir=parent)
                temps.append((tmp, path))
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o644)
            for tmp, path in temps:
                os.replace(tmp, path)
        except OSError as exc:
            raise _os_error(exc, exc.filename or (files[0][0] if files else None)) from None
        done = True
    finally:
        if not done:
            for tmp, _ in temps:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(d)


def write_output(
    path: Path,
    data: bytes,
    *,
    force: bool = False,
    reads: Sequence[Path] = (),
    regenerable: Callable[[bytes], bool] | None = None,
    parents: bool = False,
) -> None:
    """Write one output file atomically; refuse an existing one without ``force`` (unless ``regenerable``)."""
    write_outputs([(path, data)], force=force, reads=reads, regenerable=regenerable, parents=parents)
