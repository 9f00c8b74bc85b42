"""Resumable downloads from a list of mirrors, verified by size and SHA-256."""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_SECONDS = 30
ATTEMPTS_PER_MIRROR = 3


class DownloadError(RuntimeError):
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


def _fetch_rest(url: str, partial: Path, size: int) -> None:
    """Appends the missing tail of the file at `url` to `partial`."""
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
                target.write(chunk)
                have += len(chunk)
    if have < size:
        raise ConnectionError(f"connection closed after {have} of {size} bytes")


def download(mirrors: list[str], name: str, target: Path, size: int, sha256: str) -> Path:
    """Fetches `name` from the first mirror folder that delivers it, resuming after cut
    connections (also across mirrors), into `target`. Verified before it is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    if partial.exists() and partial.stat().st_size > size:
        partial.unlink()  # not a beginning of this file
    problems: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        for attempt in range(1, ATTEMPTS_PER_MIRROR + 1):
            try:
                log.info("downloading %s (attempt %d)", url, attempt)
                _fetch_rest(url, partial, size)
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                reason = getattr(error, "reason", None) or error
                problems.append(f"{url}: {reason}")
                if isinstance(error, urllib.error.HTTPError) or not isinstance(
                        error, ConnectionError | http.client.IncompleteRead | TimeoutError):
                    break  # the mirror answered no, or is unreachable: try the next one
        else:
            continue
        if partial.exists() and partial.stat().st_size >= size:
            try:
                verify(partial, size, sha256, url)
            except DownloadError:
                partial.unlink()
                raise
            partial.replace(target)
            return target
    raise DownloadError(f"could not download {name}: " + "; ".join(problems))
