"""Where digiKam keeps its database, as its settings (``digikamrc``) say, and whether
digiKam is running (it keeps tags in memory, so nobody else may write meanwhile)."""

from __future__ import annotations

import configparser
import contextlib
import os
from pathlib import Path

from ..errors import AutotagsError

CORE_DATABASE_FILE = "digikam4.db"


class DigikamError(AutotagsError, RuntimeError):
    """digiKam's database cannot be used; nothing in it was changed."""


def digikam_config() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(config_home) / "digikamrc"


def find_database(config: Path | None = None) -> Path:
    """The core database named in digiKam's settings (group ``[Database Settings]``)."""
    config = config or digikam_config()
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(config.read_text(encoding="utf-8", errors="replace"))
    except (OSError, configparser.Error) as error:
        raise DigikamError(f"cannot read digiKam's settings {config} ({error}); give the "
                           "database with --digikam-db") from None
    if not parser.has_section("Database Settings"):
        raise DigikamError(f"{config} names no database (no [Database Settings]); give it "
                           "with --digikam-db")
    settings = {key.split("[", 1)[0].strip(): value.strip()
                for key, value in parser.items("Database Settings")}
    kind = settings.get("Database Type", "QSQLITE")
    if kind != "QSQLITE":
        raise DigikamError(f"digiKam uses a {'MySQL/MariaDB' if 'MYSQL' in kind else kind} "
                           "database here; autotags writes only digiKam's SQLite databases "
                           "(not supported yet)")
    name = settings.get("Database Name") or settings.get("Database File Path")
    if not name:
        raise DigikamError(f"{config} names no database folder; give it with --digikam-db")
    location = Path(os.path.expandvars(os.path.expanduser(name)))
    return location if location.suffix == ".db" else location / CORE_DATABASE_FILE


_INTERPRETERS = (b"python", b"sh", b"bash", b"perl", b"env")


def digikam_processes() -> list[int]:
    """Process ids of running digiKam applications (they cache tags in memory): by
    process name, program path, or a script of that name run by an interpreter."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            arguments = [os.path.basename(a) for a in
                         (entry / "cmdline").read_bytes().split(b"\0")[:2]]
            program = arguments[0] if arguments else b""
            script = arguments[1] if len(arguments) > 1 and program.startswith(
                _INTERPRETERS) else b""
            if (entry / "comm").read_text().strip() == "digikam" or \
                    b"digikam" in (program, script):
                found.append(int(entry.name))
    return found
