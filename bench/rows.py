"""The one table the floor and the DBOS peer write: a row per opening, event or alert.

The floor and the peer keep no ledger: ``insert`` is a plain INSERT, so a step or activity
that runs twice shows up as a duplicate row, which is what the figures count. The file uses
the read model's SQLite settings (WAL, busy timeout) so the arms write alike.
"""

import sqlite3
import time
from pathlib import Path

SCHEMA = "CREATE TABLE IF NOT EXISTS bench_rows (kind TEXT NOT NULL, key TEXT NOT NULL, at REAL)"
BUSY_TIMEOUT_S = 30.0


def connect(path: Path) -> sqlite3.Connection:
    """A connection with WAL and a busy timeout, the table created if missing."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(SCHEMA)
    connection.commit()
    return connection


def insert(path: Path, kind: str, key: str) -> None:
    """Write one row, in its own connection and transaction (as a fresh activity would)."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        with connection:
            connection.execute(
                "INSERT INTO bench_rows (kind, key, at) VALUES (?, ?, ?)", (kind, key, time.time())
            )
    finally:
        connection.close()


def count(path: Path, kind: str) -> int:
    """Rows of a kind (duplicates included)."""
    connection = connect(path)
    try:
        row = connection.execute("SELECT COUNT(*) FROM bench_rows WHERE kind = ?", (kind,))
        return int(row.fetchone()[0])
    finally:
        connection.close()


def times(path: Path, kind: str) -> dict[str, list[float]]:
    """The instants each key's rows of a kind were written (more than one: a duplicate)."""
    connection = connect(path)
    try:
        found: dict[str, list[float]] = {}
        for key, at in connection.execute(
            "SELECT key, at FROM bench_rows WHERE kind = ? ORDER BY at", (kind,)
        ):
            found.setdefault(key, []).append(at)
        return found
    finally:
        connection.close()
