"""Resumable downloads from a list of mirrors, verified by size and SHA-256."""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import AutotagsError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_SECONDS = 30
ATTEMPTS_PER_MIRROR = 3


class DownloadError(AutotagsError, RuntimeError):
    """No mirror delivered the file, or what arrived is not the expected file."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, size: int, sha256: str, what: str) -> None:
    actual_size = path.stat().st_size
    if actual_size != size:
        raise DownloadError(f"{what}: expected {size} bytes, got {actual_size}; refusing to use it")
    actual = sha256_of(path)
    if actual != sha256:
        raise DownloadError(f"{what}: SHA-256 mismatch (expected {sha256}, got {actual}); "
                            "refusing to use it")


class _TooLong(DownloadError):
    """The server sent more than the file's expected size."""


def _fetch_rest(url: str, partial: Path, size: int) -> None:
    """Appends the missing tail of the file at `url` to `partial`, never past `size`."""
    have = partial.stat().st_size if partial.exists() else 0
    if have >= size:
        return
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-",
                                                   "User-Agent": "autotags"})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to send: what we have is all there is
            return
        raise
    with response:
        resumed = response.status == 206
        if have and not resumed:
            log.info("%s ignores byte ranges; starting again", url)
            have = 0
        with open(partial, "ab" if resumed else "wb") as target:
            while chunk := response.read(CHUNK):
                if have + len(chunk) > size:
                    raise _TooLong(f"{url}: sent more than the expected {size} bytes")
                target.write(chunk)
                have += len(chunk)
    if have < size:
        raise ConnectionError(f"connection closed after {have} of {size} bytes")


def _discard(partial: Path) -> None:
    partial.unlink(missing_ok=True)
    _source_note(partial).unlink(missing_ok=True)


def _source_note(partial: Path) -> Path:
    """Names the mirror a partial file came from: bytes of two mirrors are never joined."""
    return partial.with_name(partial.name + ".from")


def _from_mirror(url: str, partial: Path, size: int, problems: list[str]) -> bool:
    """Completes `partial` from `url`, resuming after cut connections; False (with the
    reason in `problems`) when this mirror cannot deliver the right file."""
    note = _source_note(partial)
    if not note.exists() or note.read_text() != url:
        _discard(partial)
        note.write_text(url)
    for attempt in range(1, ATTEMPTS_PER_MIRROR + 1):
        try:
            log.info("downloading %s (attempt %d)", url, attempt)
            _fetch_rest(url, partial, size)
            break
        except _TooLong as error:
            problems.append(str(error))
            _discard(partial)
            return False
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", None) or error
            problems.append(f"{url}: {reason}")
            if isinstance(error, urllib.error.HTTPError) or not isinstance(
                    error, ConnectionError | http.client.IncompleteRead | TimeoutError):
                return False  # the mirror answered no, or is unreachable
    else:
        return False
    return partial.exists() and partial.stat().st_size == size


def download(mirrors: list[str], name: str, target: Path, size: int, sha256: str) -> Path:
    """Fetches `name` from the first mirror folder that delivers it, resuming after cut
    connections on the same mirror, into `target`. Each mirror's file is verified on its
    own before it is kept; what a mirror sent is never joined to another's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    if partial.exists() and partial.stat().st_size > size:
        _discard(partial)  # not a beginning of this file
    problems: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        if not _from_mirror(url, partial, size, problems):
            continue
        try:
            verify(partial, size, sha256, url)
        except DownloadError as error:
            problems.append(str(error))
            _discard(partial)
            continue
        partial.replace(target)
        _source_note(partial).unlink(missing_ok=True)
        return target
    raise DownloadError(f"could not download {name}: " + "; ".join(problems))
