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
from collections.abc import Iterable
from pathlib import Path
from typing import Any


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
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries ("
                " namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL,"
                " PRIMARY KEY (namespace, key))"
            )
        self.hits = 0
        self.misses = 0

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
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


class NoCache:
    """``--gate-no-cache``: every lookup misses and nothing is stored."""

    hits = 0
    misses = 0

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        self.misses += len(list(keys))
        return {}

    def put_many(self, namespace: str, items: dict[str, Any]) -> None:
        return None
