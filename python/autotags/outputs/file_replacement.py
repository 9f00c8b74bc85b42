"""Replacing a file by a complete new copy: written beside it under a short temporary
name, locked while it is written, flushed, and renamed over the old one, so that a
process killed at any moment leaves the old file or the new one."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

TEMPORARY_PREFIX, TEMPORARY_SUFFIX = ".autotags-", ".tmp"
_EARLIER_TEMPORARY_SUFFIX = ".autotags-tmp"  # what earlier versions named them


def replace_atomically(path: Path, content: bytes) -> None:
    """Writes `content` to a hidden temporary file in the same folder, flushes it, and
    renames it over `path` (keeping the old file's permissions and owner). A symbolic
    link stays a link: the file it points to is the one replaced.

    The temporary name is short, so that a target whose name is near the file system's
    limit can still be written, and the copy is locked while it is made: a later run
    removes copies that a killed process left behind, never one still being written."""
    path = Path(os.path.realpath(path))
    try:
        old = path.stat()
        mode = stat.S_IMODE(old.st_mode)
    except FileNotFoundError:
        old = None
        mode = 0o666 & ~_umask()
    remove_abandoned_copies(path.parent)
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}{TEMPORARY_SUFFIX}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(content)
            out.flush()
            os.fchmod(out.fileno(), mode)
            if old is not None:
                with contextlib.suppress(OSError):  # only root may give files away
                    os.fchown(out.fileno(), old.st_uid, old.st_gid)
            os.fsync(out.fileno())
            # Flushed before the rename: after a crash the name holds the old bytes or
            # the new ones, never a file whose data had not reached the disk.
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _is_temporary_copy(name: str) -> bool:
    return (name.startswith(TEMPORARY_PREFIX) and name.endswith(TEMPORARY_SUFFIX)) or (
        name.startswith(".") and name.endswith(_EARLIER_TEMPORARY_SUFFIX))


@functools.cache
def remove_abandoned_copies(folder: Path) -> None:
    """Removes the temporary copies in `folder` that no process is writing any more (a
    writer holds a lock on its copy until it is renamed); once per folder and process."""
    try:
        names = [entry.name for entry in os.scandir(folder)
                 if _is_temporary_copy(entry.name) and entry.is_file(follow_symlinks=False)]
    except OSError:
        return
    for name in names:
        candidate = folder / name
        with contextlib.suppress(OSError):
            descriptor = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                                 | os.O_CLOEXEC)
            with os.fdopen(descriptor, "rb") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while written
                if os.stat(candidate, follow_symlinks=False).st_ino == os.fstat(
                        descriptor).st_ino:
                    os.unlink(candidate)
                    log.info("removed %s, a temporary copy an interrupted run left", candidate)


@functools.cache
def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment,
    for every thread)."""
    with contextlib.suppress(OSError, StopIteration, ValueError), \
            open("/proc/self/status", encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    return 0o022
