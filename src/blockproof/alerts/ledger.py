"""What was announced and delivered, kept in the store: ``STORE/alerts/ledger.sqlite3``.

Theory of operation. ``blockproof alerts`` must never repeat a delivered alert nor lose
one, across reruns, crashes and restarts. The ledger holds three things:

- ``announced``: per event id, what was last announced (``changes.Announced``), from
  which the next run computes what changed;
- ``alerts``: every alert computed, in order (``seq``), with its full content, so that a
  delivery retried later sends exactly the same bytes and an Atom feed can be rebuilt;
- ``deliveries``: per (subscription, destination, alert id) ``pending``, ``delivered``
  or ``failed`` (permanently), with the attempts made and the last error.

A run (``run.run_alerts``) records the new alerts, the new ``announced`` records and a
pending delivery for each subscription they match **in one transaction**, then delivers
and marks each delivery in a transaction of its own right after it succeeded. Every
transaction is durable when ``commit`` returns (WAL journal, ``synchronous=FULL``: the
log is fsynced at each commit). So a run killed at any point leaves either the alerts
not recorded at all (the next run computes the same alerts again, with the same ids) or
recorded with their deliveries pending (the next run delivers them). The one window in
which a delivery can be repeated is between a receiver's acknowledgement and the commit
of its mark: a millisecond or so, once; webhooks carry the alert id
(``X-Blockproof-Alert-Id``, ``Idempotency-Key``) and e-mails a Message-ID derived from it
so that receivers can drop such a repeat.

Why SQLite rather than a JSON file rewritten atomically: marking one delivery is a small
transaction whatever the history's length (a JSON file would be rewritten whole after
each delivery), and transactions keep the three tables consistent with each other.

Two runs on one store at once would deliver the same pending alerts twice: a run holds
an exclusive ``flock`` on ``STORE/alerts/lock`` (released by the kernel if the process
dies) and a second run stops with ``AlertsBusy``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from blockproof.alerts.changes import Alert, Announced
from blockproof.errors import EXIT_FAILED, BlockproofError
from blockproof.pipeline.store import Store

__all__ = ["AlertsBusy", "Delivery", "Ledger", "LedgerError", "ledger_path"]

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS announced (event_id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    issued TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    subscription TEXT NOT NULL,
    destination TEXT NOT NULL,
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated TEXT NOT NULL,
    PRIMARY KEY (subscription, destination, alert_id)
);
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (status);
"""


class LedgerError(BlockproofError):
    """The ledger cannot be used (unreadable, from a newer blockproof)."""

    exit_code = EXIT_FAILED


class AlertsBusy(BlockproofError):
    """Another ``blockproof alerts`` holds the store's alerts lock."""

    exit_code = EXIT_FAILED


def ledger_path(store: Store) -> Path:
    return store.root / "alerts" / "ledger.sqlite3"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery not yet done: its alert, where, and how it went so far."""

    subscription: str
    destination: str
    alert: Alert
    status: str
    attempts: int
    last_error: str | None


class Ledger:
    """The store's alert ledger. ``Ledger.open(store)`` takes the lock; ``close`` (or
    the context manager) releases it. ``Ledger.peek(store)`` reads without the lock and
    without creating anything (``--dry-run``)."""

    def __init__(self, db: sqlite3.Connection, lock: IO[bytes] | None) -> None:
        self._db = db
        self._lock = lock

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, store: Store, now: str) -> Ledger:
        path = ledger_path(store)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.parent / "lock", "ab")  # noqa: SIM115  (held until close)
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise AlertsBusy(
                f"another `blockproof alerts` is running on {store.root} (it holds "
                f"{path.parent / 'lock'}); try again when it is done"
            ) from None
        try:
            db = cls._connect(path)
        except BaseException:
            lock.close()
            raise
        ledger = cls(db, lock)
        try:
            ledger._setup(now)
        except sqlite3.Error as exc:
            ledger.close()
            raise LedgerError(f"{path}: cannot use the alerts ledger: {exc}") from exc
        except BaseException:
            ledger.close()
            raise
        return ledger

    @classmethod
    def peek(cls, store: Store) -> Ledger | None:
        path = ledger_path(store)
        if not path.exists():
            return None
        ledger = cls(cls._connect(path), None)
        ledger._check_version()
        return ledger

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise LedgerError(f"{path}: cannot open the alerts ledger: {exc}") from exc
        return db

    def _check_version(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the alerts ledger was written by a newer blockproof (schema {version})"
            )

    def _setup(self, now: str) -> None:
        self._check_version()
        with self._transaction() as db:
            # statement by statement: executescript would commit the transaction first
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created', ?)", (now,))

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction: committed (and fsynced) when the block ends."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reading -------------------------------------------------------------------------

    def created(self) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'created'").fetchone()
        return None if row is None else str(row[0])

    def announced(self) -> dict[str, Announced]:
        return {
            event_id: Announced.from_json(json.loads(state))
            for event_id, state in self._db.execute("SELECT event_id, state FROM announced")
        }

    def alerts(self) -> list[Alert]:
        """Every alert recorded, oldest first."""
        return [
            Alert.from_json(json.loads(body))
            for (body,) in self._db.execute("SELECT body FROM alerts ORDER BY seq")
        ]

    def deliveries(self, status: str) -> list[Delivery]:
        """The deliveries with this status, in the order their alerts were computed."""
        rows = self._db.execute(
            "SELECT d.subscription, d.destination, a.body, d.status, d.attempts, d.last_error"
            " FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
            " WHERE d.status = ? ORDER BY a.seq, d.subscription, d.destination",
            (status,),
        )
        return [
            Delivery(sub, dest, Alert.from_json(json.loads(body)), st, attempts, error)
            for sub, dest, body, st, attempts, error in rows
        ]

    def counts(self) -> dict[str, int]:
        return {
            status: n
            for status, n in self._db.execute(
                "SELECT status, count(*) FROM deliveries GROUP BY status"
            )
        }

    # -- writing -------------------------------------------------------------------------

    def record(
        self,
        alerts: Sequence[Alert],
        announced: Mapping[str, Announced],
        deliveries: Iterable[tuple[str, str, str]],
        now: str,
    ) -> None:
        """New alerts, the announced records they lead to and their pending deliveries
        ``(subscription, destination, alert id)``, in one transaction. An alert or a
        delivery already recorded is left as it is."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO alerts (id, issued, body) VALUES (?, ?, ?)",
                [(a.id, a.issued, json.dumps(a.to_json(), sort_keys=True)) for a in alerts],
            )
            db.executemany(
                "INSERT INTO announced (event_id, state) VALUES (?, ?)"
                " ON CONFLICT (event_id) DO UPDATE SET state = excluded.state",
                [
                    (event_id, json.dumps(state.to_json(), sort_keys=True))
                    for event_id, state in announced.items()
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO deliveries"
                " (subscription, destination, alert_id, status, attempts, updated)"
                " VALUES (?, ?, ?, 'pending', 0, ?)",
                [(sub, dest, alert_id, now) for sub, dest, alert_id in deliveries],
            )

    def mark(
        self,
        keys: Iterable[tuple[str, str, str]],
        status: str,
        attempts: int,
        error: str | None,
        now: str,
    ) -> None:
        """Set the status of deliveries ``(subscription, destination, alert id)``, adding
        ``attempts`` to their count; durable when it returns."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status = ?, attempts = attempts + ?, last_error = ?,"
                " updated = ? WHERE subscription = ? AND destination = ? AND alert_id = ?",
                [(status, attempts, error, now, s, d, a) for s, d, a in keys],
            )

    def retry_failed(self, destinations: Iterable[tuple[str, str]], now: str) -> int:
        """Put the failed deliveries of these (subscription, destination) back to pending."""
        n = 0
        with self._transaction() as db:
            for sub, dest in destinations:
                n += db.execute(
                    "UPDATE deliveries SET status = 'pending', updated = ?"
                    " WHERE status = 'failed' AND subscription = ? AND destination = ?",
                    (now, sub, dest),
                ).rowcount
        return n
