"""Atomic file writes: a crash or a full disk never leaves a half-written file in place.

The one writer of the library and the trainer: write to a temporary file in the
target's folder, fsync it, rename it over the target (os.replace), fsync the
folder. The new file gets ordinary permissions (0666 less the umask), not the
temporary file's 0600.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class AtomicWriteError(OSError):
    """A file could not be written; the message names it and the cause. The previous file is intact."""


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".tmp", what: str = "file") -> Iterator[str]:
    """Yield a temporary path next to `path`; on success it replaces `path`, on failure it is removed.

    An OSError (a full disk, a permission) is raised as AtomicWriteError, with the errno, naming
    `what` and `path`; any other exception from the body passes through unchanged.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # writers (mkstemp, safetensors) create 0600
        _fsync_file(tmp)  # the data must be on disk before the rename makes it the real file
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as e:
        if isinstance(e, AtomicWriteError):
            raise
        error = AtomicWriteError(f"could not write {what} {path}: {e.strerror or e}{_space_note(e, tmp, path)}")
        error.errno = e.errno
        raise error from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _space_note(error: OSError, tmp: str | None, path: Path) -> str:
    """For a full disk or quota: how much was written before it filled and how much is free there."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return ""
    try:
        written = os.path.getsize(tmp) if tmp else 0
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    return f" (it needs more than the {_size(written)} written before the disk filled; {_size(free)} free there)"


def _size(nbytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")


def _umask() -> int:
    # /proc tells without changing it; os.umask can only read by setting, briefly, for every thread.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str | os.PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # e.g. directories on platforms that cannot open them
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)
