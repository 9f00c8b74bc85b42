"""The two engines digiKam keeps its database in, behind one small face: SQLite (a file)
and MariaDB/MySQL (a server). Queries are written once, in SQLite's spelling (``?``
parameters, ``INSERT OR IGNORE``); the MySQL side translates them."""

from __future__ import annotations

import abc
import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..sqlite_transactions import immediate_transaction
from .digikam_settings import DigikamError, MysqlLocation

BUSY_TIMEOUT_SECONDS = 10.0
LOCK_WAIT_SECONDS = 10     # MySQL: how long a batch waits for digiKam's (or anyone's) locks
MYSQL_NAME_CHARACTERS = 100  # Tags is UNIQUE(pid, name(100))


class Engine(abc.ABC):
    """One open connection to digiKam's core database."""

    errors: tuple[type[BaseException], ...]  # what a failing query raises
    where: str                               # the database, for messages
    identity: str                            # the database, for the journal and outputs

    @abc.abstractmethod
    def execute(self, query: str, parameters: Sequence[object] = ()) -> Any:
        """A cursor over the rows (fetchone, fetchall, iteration, rowcount, lastrowid)."""

    @abc.abstractmethod
    def executemany(self, query: str, rows: Sequence[Sequence[object]]) -> None: ...

    @abc.abstractmethod
    def transaction(self, *, dry_run: bool) -> contextlib.AbstractContextManager[None]:
        """All of a batch or nothing; a dry run is rolled back."""

    @abc.abstractmethod
    def tables(self) -> set[str]: ...

    @abc.abstractmethod
    def columns(self, table: str) -> set[str]: ...

    @abc.abstractmethod
    def triggers(self) -> set[str]: ...

    def name_problem(self, name: str) -> str | None:
        """Why a tag name cannot be stored here, or None."""
        return None

    @abc.abstractmethod
    def integrity_check(self) -> str:
        """'ok', or what the engine found wrong with the tag tables."""

    @abc.abstractmethod
    def writable(self) -> None:
        """From here on the connection may write (the schema has been checked)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class SqliteEngine(Engine):
    errors = (sqlite3.Error,)

    def __init__(self, path: Path, *, read_only: bool) -> None:
        """``read_only`` works on a copy in memory: nothing can reach the file."""
        self.path, self.where = path, str(path)
        self.identity = f"sqlite:{path.resolve()}"
        uri = "file:" + urllib.parse.quote(os.fsencode(path.resolve()))
        try:
            self._db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS,
                                       isolation_level=None)
            if read_only:
                copy = sqlite3.connect(":memory:", isolation_level=None)
                self._db.backup(copy)
                self._db.close()
                self._db = copy
        except sqlite3.DatabaseError as error:
            raise DigikamError(f"{path}: cannot read it as a digiKam database ({error}); "
                               "it was left as it was") from None
        self._read_only = read_only

    def writable(self) -> None:
        if not self._read_only:
            self._db.close()
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS,
                                       isolation_level=None)

    def execute(self, query: str, parameters: Sequence[object] = ()) -> Any:
        return self._db.execute(query, parameters)

    def executemany(self, query: str, rows: Sequence[Sequence[object]]) -> None:
        self._db.executemany(query, rows)

    @contextlib.contextmanager
    def transaction(self, *, dry_run: bool) -> Iterator[None]:
        with immediate_transaction(self._db, dry_run=dry_run):
            yield

    def tables(self) -> set[str]:
        return {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table: str) -> set[str]:
        return {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}

    def triggers(self) -> set[str]:
        return {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'")}

    def backup_into(self, target: Path) -> None:
        with contextlib.closing(sqlite3.connect(target)) as copy:
            self._db.backup(copy)

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        self._db.close()


class MysqlEngine(Engine):
    def __init__(self, location: MysqlLocation) -> None:
        try:
            import pymysql
        except ImportError:
            raise DigikamError("digiKam's MariaDB/MySQL database needs PyMySQL: pip install "
                               "'autotags[mariadb]'") from None
        self.errors = (pymysql.err.Error,)
        self.where = location.where
        self.identity = location.where
        try:
            self._db = pymysql.connect(
                host=location.host, port=location.port, unix_socket=location.socket,
                user=location.user, password=location.password, database=location.name,
                charset="utf8mb4", autocommit=True, connect_timeout=10)
            self.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}")
        except pymysql.err.Error as error:
            raise DigikamError(f"cannot connect to digiKam's database {location.where}: "
                               f"{_reason(error)}") from None

    def writable(self) -> None:
        """A server's database is written through the same connection."""
        return

    def execute(self, query: str, parameters: Sequence[object] = ()) -> Any:
        cursor = self._db.cursor()
        cursor.execute(_mysql_spelling(query), tuple(parameters))
        return cursor

    def executemany(self, query: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:  # the driver sends many rows of an INSERT as one statement
            self._db.cursor().executemany(_mysql_spelling(query), [tuple(r) for r in rows])

    @contextlib.contextmanager
    def transaction(self, *, dry_run: bool) -> Iterator[None]:
        self._db.begin()
        try:
            yield
            if dry_run:
                self._db.rollback()
            else:
                self._db.commit()
        except BaseException:
            with contextlib.suppress(*self.errors):  # a lost connection has nothing to undo
                self._db.rollback()
            raise

    def tables(self) -> set[str]:
        return {r[0] for r in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")}

    def columns(self, table: str) -> set[str]:
        return {r[0] for r in self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name = ?", (table,))}

    def triggers(self) -> set[str]:
        return {r[0] for r in self.execute(
            "SELECT trigger_name FROM information_schema.triggers "
            "WHERE trigger_schema = DATABASE()")}

    def name_problem(self, name: str) -> str | None:
        # digiKam's tables are `utf8` (three bytes a character), and Tags is unique by the
        # first 100 characters of a name.
        if any(ord(character) > 0xFFFF for character in name):
            return (f"the tag name {name!r} has a character digiKam's MySQL tables cannot "
                    "hold (an emoji or another 4-byte character)")
        if len(name) > MYSQL_NAME_CHARACTERS:
            return (f"the tag name {name[:20]!r}... is longer than the "
                    f"{MYSQL_NAME_CHARACTERS} characters digiKam's MySQL tables tell apart")
        return None

    def integrity_check(self) -> str:
        rows = self.execute("CHECK TABLE Tags, TagsTree, ImageTags").fetchall()
        wrong = [f"{table}: {text}" for table, _, kind, text in rows
                 if kind == "error" or (kind == "status" and text != "OK")]
        return "; ".join(wrong) or "ok"

    def close(self) -> None:
        with contextlib.suppress(*self.errors):
            self._db.close()


def _mysql_spelling(query: str) -> str:
    return query.replace("INSERT OR IGNORE", "INSERT IGNORE").replace("?", "%s")


def _reason(error: BaseException) -> str:
    arguments: tuple[object, ...] = getattr(error, "args", ())
    return str(arguments[1]) if len(arguments) > 1 else str(error)
