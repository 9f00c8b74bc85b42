"""Package archives from the Python package index, fetched without pip.

`pip download` prepares an sdist's metadata by running the package's own build code
before anything could check the archive. Here the archive is found on the index pip is
configured with (its simple API, PEP 503) or in its find-links folders, downloaded, and
verified against the size and SHA-256 pinned in the catalogue before anything opens it.
Nothing from the package ever runs.
"""

from __future__ import annotations

import html.parser
import logging
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .catalogue import SourceFile
from .downloads import DownloadError, download, sha256_of

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 30


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def _pip_settings() -> dict[str, list[str]]:
    """pip's index-url, extra-index-url and find-links, from its configuration files and
    environment (`pip config list` reads them; it runs no package code)."""
    found: dict[str, list[str]] = {}
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                            capture_output=True, text=True, check=False).stdout
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        found.setdefault(name, []).extend(value.strip().strip("'\"").split())
    for name in ("index-url", "extra-index-url", "find-links"):
        variable = "PIP_" + name.upper().replace("-", "_")
        if os.environ.get(variable):
            found[name] = os.environ[variable].split()
    return found


def _default_index() -> str:
    from pip._internal.models.index import PyPI  # pip's own default, whatever it is

    return str(PyPI.simple_url)


def _places() -> tuple[list[str], list[str]]:
    """(simple-index URLs, find-links locations), in the order pip would use them."""
    settings = _pip_settings()
    indexes = (settings.get("index-url") or [_default_index()])[:1]
    indexes += settings.get("extra-index-url", [])
    return indexes, settings.get("find-links", [])


def _page(url: str) -> str:
    parts = urllib.parse.urlparse(url)
    if parts.scheme == "file":
        folder = Path(urllib.request.url2pathname(parts.path))
        if folder.is_dir():
            index = folder / "index.html"
            if index.is_file():
                return index.read_text(encoding="utf-8", errors="replace")
            return "".join(f'<a href="{f.name}">{f.name}</a>' for f in folder.iterdir())
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
        return str(response.read().decode("utf-8", errors="replace"))


def _link_to(page_url: str, filename: str) -> str | None:
    try:
        text = _page(page_url)
    except (OSError, urllib.error.URLError) as error:
        log.debug("%s: %s", page_url, error)
        return None
    links = _Links()
    links.feed(text)
    for href in links.hrefs:
        url = urllib.parse.urljoin(page_url, href).split("#", 1)[0]
        if urllib.parse.unquote(url.rsplit("/", 1)[-1]) == filename:
            return url
    return None


def archive_url(project: str, filename: str) -> str | None:
    """Where the index or find-links offer `filename` of `project`, if anywhere."""
    indexes, find_links = _places()
    normalised = re.sub(r"[-_.]+", "-", project).lower()
    for place in find_links:
        if "://" not in place:
            candidate = Path(place) / filename
            if candidate.is_file():
                return candidate.resolve().as_uri()
            continue
        if found := _link_to(place, filename):
            return found
    for index in indexes:
        if found := _link_to(index.rstrip("/") + f"/{normalised}/", filename):
            return found
    return None


def fetch_archive(project: str, archive: SourceFile, folder: Path) -> Path:
    """The verified archive in `folder`: kept from before if it verifies, else fetched."""
    target = folder / archive.basename
    if target.is_file() and target.stat().st_size == archive.bytes \
            and sha256_of(target) == archive.sha256:
        return target
    url = archive_url(project, archive.basename)
    if url is None:
        raise DownloadError(f"{archive.basename} is not on the package index pip uses")
    base, _, name = url.rpartition("/")
    return download([base], name, target, archive.bytes, archive.sha256)
