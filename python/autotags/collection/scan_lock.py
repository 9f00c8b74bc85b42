"""One scan per tag database at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import AutotagsError


class ScanBusyError(AutotagsError, RuntimeError):
    """Another scan is writing to the same database."""


def lock_path(database: Path) -> Path:
    """Beside the database, so that every scan of that file finds it, whatever its
    environment (cron has no runtime folder, a desktop session has one)."""
    database = database.resolve()
    return database.with_name(database.name + "-scan.lock")


@contextlib.contextmanager
def exclusive_scan(database: Path) -> Iterator[None]:
    """The lock goes with the process, even on kill -9. The lock file is removed when
    the scan ends, so nothing is left beside the database."""
    path = lock_path(database)
    while True:
        try:
            lock = open(path, "a")  # noqa: SIM115  (held for the whole scan)
        except OSError as error:
            raise ScanBusyError(f"cannot lock {database} for this scan: {error.strerror} "
                                f"({path})") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ScanBusyError(
                f"another autotags scan is writing to {database}; wait for it to finish "
                "or use another --db") from None
        if _still_named(lock, path):
            break
        lock.close()  # the scan before removed it while this one waited: lock the new one
    with lock:
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _still_named(lock: IO[str], path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino
    except FileNotFoundError:
        return False
