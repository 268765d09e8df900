"""A content-addressed cache on disk (SQLite), safe for several processes at once.

Keys are SHA-256 digests of everything a value depends on, so an entry is never stale:
a new prompt, model, chain setting or metric version is a new key. Changing only a
threshold re-uses every entry and calls no model.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragate_core.errors import UsageError


def content_key(*parts: Any) -> str:
    """A stable digest of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Cache:
    """``namespace/key -> JSON value`` in one SQLite file (WAL, busy timeout for xdist)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._guard(), self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries ("
                " namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
                " created REAL NOT NULL, PRIMARY KEY (namespace, key))"
            )
            # A damaged file can still open; reading its pages is what fails.
            db.execute("SELECT count(*) FROM entries").fetchone()
        self.hits = 0
        self.misses = 0

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """A damaged cache file is the user's to remove: one message, not a traceback per item."""
        try:
            yield
        except (sqlite3.DatabaseError, json.JSONDecodeError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise  # contention, not damage
            raise UsageError(
                f"{self.path}: the gate cache is unreadable ({type(exc).__name__}: {exc}); "
                "delete that file (it is rebuilt on the next run) or run with --gate-no-cache"
            ) from exc

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # A removed entry (a raw answer rewritten masked) is overwritten, not left in a
            # free page of the file.
            db.execute("PRAGMA secure_delete=ON")
            self._local.db = db
        return db

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        with self._guard():
            db = self._connect()
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT key, value FROM entries WHERE namespace = ? AND key IN ({marks})",
                    [namespace, *chunk],
                )
                found.update((k, json.loads(v)) for k, v in rows)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, namespace: str, items: dict[str, Any]) -> None:
        if not items:
            return
        now = time.time()
        with self._guard():
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO entries (namespace, key, value, created) VALUES (?, ?, ?, ?)",
                    [(namespace, k, json.dumps(v, ensure_ascii=False), now) for k, v in items.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def delete_many(self, namespace: str, keys: Iterable[str]) -> None:
        """Remove ``keys`` from ``namespace`` (absent keys are ignored)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        with self._guard():
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "DELETE FROM entries WHERE namespace = ? AND key = ?", [(namespace, k) for k in keys]
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise


class NoCache:
    """``--gate-no-cache``: every lookup misses and nothing is stored."""

    hits = 0
    misses = 0

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        self.misses += len(list(keys))
        return {}

    def put_many(self, namespace: str, items: dict[str, Any]) -> None:
        return None

    def delete_many(self, namespace: str, keys: Iterable[str]) -> None:
        return None
