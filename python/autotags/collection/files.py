"""File identity: one canonical name per file, what a file looked like on disk, and the
only way autotags opens a user's file to read it.

Only regular files are ever read. A FIFO, socket or device named like a photo or a
sidecar (or a link to one, such as ``/dev/zero``) would block a reader for good or feed
it without end; opening without blocking and checking what was opened before reading
a byte turns each of them into a per-file error.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

StrPath = str | os.PathLike[str]

_FINGERPRINT_SPAN = 64 * 1024
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a folder"))


@dataclass(frozen=True)
class FileState:
    """What a file looked like on disk, to tell whether it changed."""

    size: int
    mtime_ns: int
    fingerprint: str | None = None


def canonical_path(path: StrPath) -> str:
    """One name per file: `~` expanded, absolute, symbolic links resolved, so a photo
    reached through a linked folder is the same image."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def glob_escape(text: str) -> str:
    """`text` matched literally by glob patterns."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular_error(path: StrPath, mode: int) -> OSError:
    return OSError(errno.EINVAL, f"not a regular file but {kind_of(mode)}", os.fspath(path))


@contextlib.contextmanager
def open_regular(path: StrPath, *, max_bytes: int | None = None) -> Iterator[BinaryIO]:
    """`path` opened for reading, when it is a regular file of at most `max_bytes`;
    anything else raises :class:`OSError` with a reason a person can read."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular_error(path, info.st_mode)
        if max_bytes is not None and info.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"too large ({info.st_size} bytes; at most {max_bytes} "
                                       "are read)", os.fspath(path))
        yield handle


def read_regular(path: StrPath, max_bytes: int) -> bytes:
    """The whole content of a regular file of at most `max_bytes` (see :func:`open_regular`);
    a file that grows while it is read is cut off rather than read without end."""
    with open_regular(path, max_bytes=max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"grew past {max_bytes} bytes while it was read",
                      os.fspath(path))
    return data


def fingerprint(path: StrPath, size: int) -> str | None:
    """Cheap content identity: size plus the first and last 64 KiB."""
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    try:
        with open_regular(path) as handle:
            digest.update(handle.read(_FINGERPRINT_SPAN))
            if size > 2 * _FINGERPRINT_SPAN:
                handle.seek(-_FINGERPRINT_SPAN, os.SEEK_END)
                digest.update(handle.read(_FINGERPRINT_SPAN))
    except OSError:
        return None
    return digest.hexdigest()


def current_state(path: StrPath) -> FileState | None:
    """The file as it is now, or None when it is gone or not a regular file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return FileState(info.st_size, info.st_mtime_ns, fingerprint(path, info.st_size))
