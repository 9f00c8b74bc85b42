"""All-or-nothing writes to a SQLite file, as every database autotags writes needs them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def immediate_transaction(connection: sqlite3.Connection, *,
                          dry_run: bool = False) -> Iterator[sqlite3.Connection]:
    """IMMEDIATE takes the write lock up front, so two writers queue instead of failing
    half-way; a dry run is rolled back. The connection must be in autocommit mode
    (``isolation_level=None``)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("ROLLBACK" if dry_run else "COMMIT")
    except BaseException:
        # Also when COMMIT itself failed (disk full, I/O error): the next transaction
        # must not find this one still open.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
