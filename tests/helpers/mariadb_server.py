"""A private MariaDB server for a test, as digiKam's own test starts one: a data folder
made by mariadb-install-db, mariadbd on a Unix socket in a temporary folder, no network,
no system service. digiKam's database is made from dbconfig.xml's QMYSQL section."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pymysql

from .digikam_collection import DBCONFIG, INTERNAL_TAGS

USER, PASSWORD, NAME = "digikam", "not-a-secret", "digikam"


@dataclass
class MariaDB:
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "mysql.sock"

    def start(self) -> None:
        """mariadbd on the folder's data, as a test's own child; back when it answers."""
        self.process = subprocess.Popen(
            [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults",
             f"--datadir={self.folder / 'data'}", f"--socket={self.socket}",
             "--skip-networking", "--user=root", f"--pid-file={self.folder / 'mariadbd.pid'}",
             f"--log-error={self.folder / 'error.log'}", "--innodb-buffer-pool-size=16M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(self)

    @property
    def address(self) -> str:
        return f"mysql://{USER}@/{NAME}?socket={self.socket}"

    def connect(self, *, database: str | None = NAME, user: str = USER) -> Any:
        return pymysql.connect(unix_socket=str(self.socket), user=user,
                               password=PASSWORD if user == USER else "",
                               database=database, autocommit=True, charset="utf8mb4")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


@contextlib.contextmanager
def private_mariadb(folder: Path) -> Iterator[MariaDB]:
    for tool in ("mariadb-install-db", "mariadbd"):
        assert shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists(), \
            "the MariaDB tests need Debian's mariadb-server"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}",
                    "--user=root", "--auth-root-authentication-method=normal",
                    "--skip-test-db"], check=True, capture_output=True, timeout=120)
    server = MariaDB(folder)
    try:
        server.start()
        with contextlib.closing(server.connect(database=None, user="root")) as root:
            cursor = root.cursor()
            cursor.execute(f"CREATE DATABASE {NAME}")
            cursor.execute(f"CREATE USER '{USER}'@'localhost' IDENTIFIED BY '{PASSWORD}'")
            cursor.execute(f"GRANT ALL ON {NAME}.* TO '{USER}'@'localhost'")
        yield server
    finally:
        server.stop()


def _wait_for(server: MariaDB) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process is None or server.process.poll() is not None:
            raise RuntimeError("mariadbd stopped while starting")
        with contextlib.suppress(pymysql.err.Error, FileNotFoundError):
            server.connect(database=None, user="root").close()
            return
        time.sleep(0.2)
    raise RuntimeError("mariadbd did not start within a minute")


def create_digikam_schema(db: Any, version: int = 17) -> None:
    """digiKam's QMYSQL actions CreateDB, CreateIndices and CreateTriggers, each statement
    as digiKam runs it, plus the schema version."""
    root = ElementTree.parse(DBCONFIG).getroot()
    config = next(d for d in root.iter("database") if d.get("name") == "QMYSQL")
    actions = {a.get("name"): a for a in config.iter("dbaction")}
    cursor = db.cursor()
    for name in ("CreateDB", "CreateIndices", "CreateTriggers"):
        for statement in actions[name].findall("statement"):
            text = (statement.text or "").strip()
            if text:
                cursor.execute(text)
    cursor.execute("REPLACE INTO Settings(keyword, value) VALUES ('DBVersion', %s)",
                   (str(version),))


def add_tag(db: Any, path: str, *, internal: bool = False) -> int:
    cursor = db.cursor()
    parent = 0
    for name in path.split("/"):
        cursor.execute("SELECT id FROM Tags WHERE pid = %s AND name = %s", (parent, name))
        row = cursor.fetchone()
        if row is None:
            cursor.execute("INSERT INTO Tags(pid, name) VALUES (%s, %s)", (parent, name))
            row = (cursor.lastrowid,)
            if internal:
                cursor.execute("INSERT INTO TagProperties(tagid, property, value) VALUES "
                               "(%s, 'internalTag', NULL)", (row[0],))
        parent = row[0]
    return int(parent)


@dataclass
class MysqlCollection:
    root: Path
    images: dict[str, int] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


def fill_collection(db: Any, root: Path, photos: dict[str, Path],
                    names: tuple[str, ...] = ("dog", "horses", "person", "eagle"),
                    copies: int = 1) -> MysqlCollection:
    """One album root with an album of real photos. The first photo carries a manual tag,
    an internal label and digiKam's own older `auto/Cat`; `auto/Dog` exists, capitalised."""
    root.mkdir(parents=True)
    made = MysqlCollection(root)
    cursor = db.cursor()
    cursor.execute("INSERT INTO AlbumRoots(label, status, type, identifier, specificPath) "
                   "VALUES ('Pictures', 0, 1, %s, '/')", (f"volumeid:?path={root}",))
    album_root = cursor.lastrowid
    cursor.execute("INSERT INTO Albums(albumRoot, relativePath, date) VALUES (%s, '/', "
                   "'2021-06-01')", (album_root,))
    album = cursor.lastrowid
    for index, (copy, name) in enumerate((c, n) for c in range(copies) for n in names):
        file_name = f"{name}-{copy}.jpg" if copies > 1 else f"{name}.jpg"
        shutil.copy(photos[name], root / file_name)
        cursor.execute("INSERT INTO Images(album, name, status, category, modificationDate, "
                       "fileSize, uniqueHash) VALUES (%s, %s, 1, 1, '2021-06-01 12:00:00', %s, "
                       "%s)", (album, file_name, (root / file_name).stat().st_size,
                               f"hash{index}"))
        made.images[file_name] = cursor.lastrowid
        made.paths[file_name] = root / file_name
    first = next(iter(made.images.values()))
    for path, internal in (("People/Alice", False), (f"{INTERNAL_TAGS}/Color Label Red", True),
                           ("auto/Cat", False)):
        cursor.execute("INSERT INTO ImageTags(imageid, tagid) VALUES (%s, %s)",
                       (first, add_tag(db, path, internal=internal)))
    add_tag(db, "auto/Dog")
    return made


def table_rows(db: Any) -> dict[str, list[tuple[object, ...]]]:
    cursor = db.cursor()
    found = {}
    for table in ("Tags", "TagsTree", "ImageTags", "TagProperties"):
        cursor.execute(f"SELECT * FROM {table}")
        found[table] = sorted(cursor.fetchall(), key=repr)
    return found
