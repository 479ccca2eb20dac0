"""The launch rate's memory on disk, so restarting `dsbuild serve` does not reset every
client's count (a client could otherwise make the service restart-cycle away its limit,
or simply wait for a deploy). One SQLite file (`--rate-state`, default next to the
hub's state: `<hub state>/launch-rate.sqlite`) holds (client, time) of each launch that
was counted; at start the service reads the ones still inside the window back into its
RateLimiter (limits.py, which stays pure). Per host: replicas on several machines each
count their own clients (put a shared limiter in front for that)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from .limits import RateLimiter


class RateJournal:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS launches (client TEXT NOT NULL, at REAL NOT NULL)")
            self._db.execute("CREATE INDEX IF NOT EXISTS launches_at ON launches (at)")

    def record(self, client: str, at: float) -> None:
        with self._lock:
            self._db.execute("INSERT INTO launches (client, at) VALUES (?, ?)", (client, at))

    def recent(self, since: float) -> list[tuple[str, float]]:
        """Launches at or after `since`, oldest first; older ones are deleted."""
        with self._lock:
            self._db.execute("DELETE FROM launches WHERE at < ?", (since,))
            return list(self._db.execute("SELECT client, at FROM launches ORDER BY at"))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def restore(limiter: RateLimiter, journal: RateJournal, now: float) -> int:
    """Put the journal's launches inside the limiter's window back into it; returns how many."""
    records = journal.recent(now - limiter.rate.seconds) if limiter.rate.count else []
    for client, at in records:
        limiter.count(client, at)
    return len(records)
