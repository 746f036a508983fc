"""Redshift's rules for concurrent transactions, enforced on the verifier's DuckDB.

The load job merges several tables at once, each batch one transaction (load_job.run). DuckDB
would let such transactions pass where Redshift aborts one, so the verifier runs them at the job's
concurrency through this model of what Redshift documents (Redshift Database Developer Guide):
- c_serial_isolation: a transaction's snapshot is taken at its first SELECT, DML or DDL statement
  (a LOCK takes none); concurrent transactions must be serializable, and when the last of two
  concurrent transactions that each read a table the other wrote commits, it is aborted with
  "ERROR: 1023 DETAIL: Serializable isolation violation on table" (the guide's troubleshooting
  example: each session selects from the table the other inserts into);
- c_write_readwrite and r_LOCK: a write, and LOCK, take a lock on the table, held until the
  transaction ends; another writer of that table waits for it.
UPDATE and DELETE read the table they write; INSERT ... SELECT and COPY read only their sources.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

LOCK_WAIT_SECONDS = 60  # a lock not granted by then: Redshift would have found the deadlock


class SerializationAbort(Exception):
    """Redshift's ERROR 1023 (or a deadlock): the transaction is rolled back, nothing else is wrong."""


@dataclass
class Transaction:
    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    start: int | None = None  # commit counter when the snapshot was taken
    held: list[str] = field(default_factory=list)


_LOCK = re.compile(r"^\s*LOCK\s+(?:TABLE\s+)?(.+?)\s*;?\s*$", re.IGNORECASE | re.DOTALL)


def _name(text: str) -> str:
    return ".".join(part.strip().strip('"').lower() for part in text.split("."))


def locked_tables(sql: str) -> list[str] | None:
    """The tables of a LOCK statement, or None when it is not one."""
    m = _LOCK.match(sql)
    return [_name(t) for t in m[1].split(",")] if m else None


_TOUCHED: dict[str, tuple[frozenset, frozenset]] = {}


def tables_touched(sql: str) -> tuple[frozenset, frozenset]:
    """(tables read, tables written) by one Redshift statement."""
    if sql in _TOUCHED:
        return _TOUCHED[sql]
    import sqlglot
    from sqlglot import exp

    reads, writes = set(), set()
    for stmt in sqlglot.parse(sql, read="redshift"):
        if stmt is None or isinstance(stmt, exp.Command):
            continue
        ctes = {c.alias_or_name.lower() for c in stmt.find_all(exp.CTE)}

        def qualified(table: exp.Table) -> str:
            return ".".join(p for p in (table.db, table.name) if p).lower()

        target = stmt.this if isinstance(stmt, (exp.Insert, exp.Update, exp.Delete, exp.Copy, exp.Create,
                                                exp.Drop, exp.Alter, exp.TruncateTable, exp.Merge)) else None
        if isinstance(target, exp.Schema):
            target = target.this
        written = qualified(target) if isinstance(target, exp.Table) else None
        if isinstance(stmt, exp.TruncateTable):
            written = qualified(stmt.expressions[0]) if stmt.expressions else written
        if written:
            writes.add(written)
        for table in stmt.find_all(exp.Table):
            name = qualified(table)
            if name in ctes or (table is target and not isinstance(stmt, (exp.Update, exp.Delete, exp.Alter, exp.Merge))):
                continue
            reads.add(name)
    _TOUCHED[sql] = (frozenset(reads), frozenset(writes))
    return _TOUCHED[sql]


class Transactions:
    """Locks and commit-time serializability checks shared by the verifier's connections."""

    def __init__(self):
        self.mutex = threading.Lock()
        self.locks: dict[str, threading.Lock] = {}
        self.commits = 0
        self.committed: list[tuple[int, frozenset, frozenset]] = []  # (commit number, reads, writes)

    def lock(self, txn: Transaction, tables) -> None:
        """Take each table's lock (LOCK, or a write), held until the transaction ends."""
        for table in tables:
            if table in txn.held:
                continue
            with self.mutex:
                lock = self.locks.setdefault(table, threading.Lock())
            if not lock.acquire(timeout=LOCK_WAIT_SECONDS):
                raise SerializationAbort(f"ERROR: deadlock detected (waiting for a lock on {table})")
            txn.held.append(table)

    def snapshot(self, txn: Transaction) -> None:
        if txn.start is None:
            with self.mutex:
                txn.start = self.commits

    def commit(self, txn: Transaction, commit) -> None:
        """Check txn against every transaction committed since its snapshot, then `commit()` it, atomically."""
        with self.mutex:
            for number, reads, writes in self.committed:
                if txn.start is not None and number > txn.start and txn.writes:
                    if (txn.reads & writes) and (reads & txn.writes):
                        table = sorted(txn.reads & writes)[0]
                        raise SerializationAbort(f"ERROR: 1023 DETAIL: Serializable isolation violation on table "
                                                 f"{table}: a concurrent transaction wrote it and read what this "
                                                 "one writes")
            commit()
            self.commits += 1
            if txn.writes:
                self.committed.append((self.commits, frozenset(txn.reads), frozenset(txn.writes)))

    def release(self, txn: Transaction) -> None:
        for table in reversed(txn.held):
            self.locks[table].release()
        txn.held.clear()
