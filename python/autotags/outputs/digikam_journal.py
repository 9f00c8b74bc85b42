"""The way back from a run into digiKam's database: every run that changes it records
exactly which rows it added and removed (tags created, image-tag links added and removed)
in a small SQLite file beside autotags' tag store, and `autotags digikam undo` takes one
run back, touching only rows that are still as that run left them."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..sqlite_transactions import immediate_transaction
from .digikam_database import DigikamDatabase, RowChanges
from .digikam_settings import DigikamError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id        INTEGER PRIMARY KEY,
    database  TEXT NOT NULL,            -- which digiKam database (engine and place)
    started   REAL NOT NULL,
    undone    REAL                      -- when it was taken back, NULL until then
);
CREATE TABLE IF NOT EXISTS tags_created (
    run INTEGER NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL,
    tag INTEGER NOT NULL, pid INTEGER NOT NULL, name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    run INTEGER NOT NULL REFERENCES runs(id),
    image INTEGER NOT NULL, tag INTEGER NOT NULL,
    added INTEGER NOT NULL                -- 1 added by the run, 0 removed by it
);
"""


@dataclass(frozen=True)
class JournalRun:
    id: int
    database: str
    started: float
    undone: float | None
    tags_created: int
    links_added: int
    links_removed: int


def journal_for(store: Path) -> Path:
    """Beside the tag store it goes with: ``tags.sqlite3-digikam-journal``."""
    return store.with_name(store.name + "-digikam-journal")


class DigikamJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:
            raise DigikamError(f"{path}: cannot use it as autotags' digiKam journal "
                               f"({error})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> DigikamJournal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, database: str) -> int:
        with immediate_transaction(self._db):
            cursor = self._db.execute("INSERT INTO runs(database, started) VALUES (?, ?)",
                                      (database, time.time()))
        return int(cursor.lastrowid or 0)

    def record(self, run: int, rows: RowChanges) -> None:
        """What a batch did, once digiKam's database has committed it."""
        with immediate_transaction(self._db):
            first = self._db.execute("SELECT count(*) FROM tags_created WHERE run = ?",
                                     (run,)).fetchone()[0]
            self._db.executemany(
                "INSERT INTO tags_created(run, seq, tag, pid, name) VALUES (?, ?, ?, ?, ?)",
                [(run, first + i, *created) for i, created in enumerate(rows.tags)])
            self._db.executemany("INSERT INTO links(run, image, tag, added) VALUES (?, ?, ?, ?)",
                                 [(run, image, tag, 1) for image, tag in rows.links_added]
                                 + [(run, image, tag, 0) for image, tag in rows.links_removed])

    def runs(self, database: str) -> list[JournalRun]:
        """The runs that changed `database`, newest first (empty ones left out)."""
        found = self._db.execute("""
            SELECT runs.id, runs.database, runs.started, runs.undone,
                   (SELECT count(*) FROM tags_created WHERE run = runs.id),
                   (SELECT count(*) FROM links WHERE run = runs.id AND added = 1),
                   (SELECT count(*) FROM links WHERE run = runs.id AND added = 0)
            FROM runs WHERE database = ? ORDER BY runs.id DESC""", (database,)).fetchall()
        return [JournalRun(*row) for row in found if any(row[4:])]

    def undo(self, database: DigikamDatabase, run: int | None = None) -> tuple[JournalRun,
                                                                               list[str]]:
        """Takes back `run` (default: the last one not yet undone) in `database`; the run
        and what could not be taken back because digiKam changed it since."""
        candidates = [r for r in self.runs(database.identity) if r.undone is None]
        chosen = next((r for r in candidates if run is None or r.id == run), None)
        if chosen is None:
            known = ", ".join(str(r.id) for r in candidates) or "none"
            which = "no run" if run is None else f"no run {run}"
            raise DigikamError(f"{which} to undo in {database.where} (runs that can be undone: "
                               f"{known})")
        left = database.revert(self._rows(chosen.id))
        with immediate_transaction(self._db):
            self._db.execute("UPDATE runs SET undone = ? WHERE id = ?", (time.time(), chosen.id))
        return chosen, left

    def _rows(self, run: int) -> RowChanges:
        rows = RowChanges()
        rows.tags = [(tag, pid, name) for tag, pid, name in self._db.execute(
            "SELECT tag, pid, name FROM tags_created WHERE run = ? ORDER BY seq", (run,))]
        for image, tag, added in self._db.execute(
                "SELECT image, tag, added FROM links WHERE run = ? ORDER BY rowid", (run,)):
            (rows.links_added if added else rows.links_removed).append((image, tag))
        return rows
