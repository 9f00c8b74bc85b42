"""Where autotags keeps its per-user files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """Models, downloads and compiled-model cache.

    ``$AUTOTAGS_HOME`` if set, else ``$XDG_CACHE_HOME/autotags`` (``~/.cache/autotags``).
    """
    explicit = os.environ.get("AUTOTAGS_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "autotags"


def default_database() -> Path:
    """The tag database: ``$AUTOTAGS_DB`` if set, else
    ``$XDG_DATA_HOME/autotags/tags.sqlite3`` (``~/.local/share/autotags/tags.sqlite3``)."""
    explicit = os.environ.get("AUTOTAGS_DB")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "autotags" / "tags.sqlite3"


def models_dir() -> Path:
    return cache_home() / "models"


def downloads_dir() -> Path:
    return cache_home() / "downloads"


def compiled_cache_dir() -> Path:
    return cache_home() / "compiled"
