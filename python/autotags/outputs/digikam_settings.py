"""Where digiKam keeps its database, as its settings (``digikamrc``) say, and whether
digiKam is running (it keeps tags in memory, so nobody else may write meanwhile)."""

from __future__ import annotations

import base64
import configparser
import contextlib
import hashlib
import os
import struct
import urllib.parse
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import AutotagsError

CORE_DATABASE_FILE = "digikam4.db"


class DigikamError(AutotagsError, RuntimeError):
    """digiKam's database cannot be used; nothing in it was changed."""


def digikam_config() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(config_home) / "digikamrc"


@dataclass(frozen=True)
class MysqlLocation:
    """Where a MariaDB/MySQL database is, as digikamrc or a mysql:// address says."""

    name: str
    user: str
    password: str = ""
    host: str = "localhost"
    port: int = 3306
    socket: str | None = None   # a Unix socket instead of host and port

    @property
    def where(self) -> str:
        place = self.socket or f"{self.host}:{self.port}"
        return f"mysql://{self.user}@{place}/{self.name}"


DatabaseLocation = Path | MysqlLocation


def find_database(config: Path | None = None) -> DatabaseLocation:
    """The core database named in digiKam's settings (group ``[Database Settings]``)."""
    config = config or digikam_config()
    settings = _database_settings(config)
    kind = settings.get("Database Type", "QSQLITE")
    if kind == "QMYSQL":
        return _mysql_location(settings, config)
    if kind != "QSQLITE":
        raise DigikamError(f"digiKam uses a {kind} database here; autotags writes digiKam's "
                           "SQLite and MariaDB/MySQL databases")
    name = settings.get("Database Name") or settings.get("Database File Path")
    if not name:
        raise DigikamError(f"{config} names no database folder; give it with --digikam-db")
    location = Path(os.path.expandvars(os.path.expanduser(name)))
    return location if location.suffix == ".db" else location / CORE_DATABASE_FILE


def _database_settings(config: Path) -> dict[str, str]:
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
    return {key.split("[", 1)[0].strip(): value.strip()
            for key, value in parser.items("Database Settings")}


def internal_server_socket() -> Path:
    """Where digiKam's own MariaDB server listens while digiKam runs it."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data_home) / "digikam" / "db_misc" / "mysql.socket"


def _mysql_location(settings: dict[str, str], config: Path) -> MysqlLocation:
    options = dict(part.split("=", 1) for part in settings.get("Database Connectoptions", "")
                   .split(";") if "=" in part)
    socket = options.get("UNIX_SOCKET") or None
    if settings.get("Internal Database Server", "false").lower() == "true":
        socket = str(internal_server_socket())
        if not Path(socket).exists():
            raise DigikamError(
                f"digiKam's internal database server is not running (no socket {socket}): "
                "digiKam runs it only while digiKam itself runs, and autotags does not write "
                "under a running digiKam; start that server yourself with digiKam's settings "
                "(its data folder, /usr/share/digikam/database/mysql-global.conf and that "
                "socket), or give a running server with --digikam-db "
                "mysql://USER@HOST:PORT/NAME")
    password = settings.get("Database Password", "")
    if settings.get("Database Encrypted Password"):
        password = decrypt_password(settings["Database Encrypted Password"], config)
    port = settings.get("Database Port", "3306")
    if not port.isdigit():
        raise DigikamError(f"{config}: Database Port is {port!r}, not a number")
    return MysqlLocation(
        name=settings.get("Database Name", "digikam"),
        user=settings.get("Database Username", "root"), password=password,
        host=settings.get("Database Hostname", "localhost") or "localhost", port=int(port),
        socket=socket)


def parse_mysql_address(address: str, password: str) -> MysqlLocation:
    """``mysql://USER@HOST:PORT/NAME`` or ``mysql://USER@/NAME?socket=PATH``."""
    parts = urllib.parse.urlsplit(address)
    if parts.scheme not in ("mysql", "mariadb") or not parts.path.strip("/") \
            or not parts.username:
        raise DigikamError(f"{address!r} is not a database address: use "
                           "mysql://USER@HOST:PORT/NAME (the password from a prompt or "
                           "$AUTOTAGS_DIGIKAM_PASSWORD, never in the address)")
    if parts.password:
        raise DigikamError("a password in the address would be seen by every user of this "
                           "machine; give it at the prompt or in $AUTOTAGS_DIGIKAM_PASSWORD")
    query = urllib.parse.parse_qs(parts.query)
    return MysqlLocation(
        name=parts.path.strip("/"), user=urllib.parse.unquote(parts.username),
        password=password, host=parts.hostname or "localhost", port=parts.port or 3306,
        socket=query.get("socket", [None])[0])


# digiKam obfuscates the password with o2's O0SimpleCrypt; its key is derived with
# Qt's QByteArray::toULongLong() on a SHA-1 digest, which fails and gives 0.
_SIMPLE_CRYPT_KEY = 0
_CRC_TABLE = (0x0000, 0x1081, 0x2102, 0x3183, 0x4204, 0x5285, 0x6306, 0x7387,
              0x8408, 0x9489, 0xA50A, 0xB58B, 0xC60C, 0xD68D, 0xE70E, 0xF78F)


def qt_checksum(data: bytes) -> int:
    """Qt's qChecksum (CRC-16/X.25), which O0SimpleCrypt uses to check its data."""
    crc = 0xFFFF
    for byte in data:
        for nibble in (byte & 0x0F, byte >> 4):
            crc = ((crc >> 4) & 0x0FFF) ^ _CRC_TABLE[(crc ^ nibble) & 15]
    return ~crc & 0xFFFF


def _key_parts() -> list[int]:
    return [(_SIMPLE_CRYPT_KEY >> (8 * i)) & 0xFF for i in range(8)]


def decrypt_password(text: str, config: Path) -> str:
    """The password digiKam stored as ``Database Encrypted Password``."""
    failed = DigikamError(f"{config}: cannot read digiKam's encrypted database password; "
                          "give the database with --digikam-db mysql://USER@HOST:PORT/NAME")
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        raise failed from None
    if len(data) < 3 or data[0] != 3:
        raise failed
    flags, body, key, last = data[1], bytearray(data[2:]), _key_parts(), 0
    for position, value in enumerate(body):
        body[position] = value ^ last ^ key[position % 8]
        last = value
    plain = bytes(body[1:])  # a random byte leads
    if flags & 0x02:  # checksum
        if len(plain) < 2 or struct.unpack(">H", plain[:2])[0] != qt_checksum(plain[2:]):
            raise failed
        plain = plain[2:]
    elif flags & 0x04:  # SHA-1
        if hashlib.sha1(plain[20:]).digest() != plain[:20]:
            raise failed
        plain = plain[20:]
    if flags & 0x01:  # qCompress: a big-endian length, then zlib
        try:
            plain = zlib.decompress(plain[4:])
        except zlib.error:
            raise failed from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise failed from None


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
