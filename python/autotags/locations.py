"""Where autotags keeps its per-user files, and the data it ships."""

from __future__ import annotations

import os
from importlib import resources
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


def default_database(*, make_folder: bool = False) -> Path:
    """The tag database: ``$AUTOTAGS_DB`` if set, else
    ``$XDG_DATA_HOME/autotags/tags.sqlite3`` (``~/.local/share/autotags/tags.sqlite3``).
    ``make_folder`` creates the folder of the latter, never of a path the user named: a
    mistyped name should fail, not leave folders behind."""
    explicit = os.environ.get("AUTOTAGS_DB")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    database = Path(xdg) / "autotags" / "tags.sqlite3"
    if make_folder:
        database.parent.mkdir(parents=True, exist_ok=True)
    return database


def models_dir() -> Path:
    return cache_home() / "models"


def user_models_dir() -> Path:
    """Models the user added or quantized: user data, not a cache anyone may clear.
    ``$AUTOTAGS_HOME/user-models`` if set, else ``$XDG_DATA_HOME/autotags/models``."""
    explicit = os.environ.get("AUTOTAGS_HOME")
    if explicit:
        return Path(explicit).expanduser() / "user-models"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "autotags" / "models"


def downloads_dir() -> Path:
    return cache_home() / "downloads"


def compiled_cache_dir() -> Path:
    return cache_home() / "compiled"


def packaged_data_dir() -> Path:
    """The repository's `models/` folder as installed: catalogue, labels, vocabulary."""
    return Path(str(resources.files("autotags") / "data"))
