"""Concurrent table batches as Redshift runs them (issue 21, item 1).

The job merges up to --concurrency tables at once, and every table's batch reads and writes the shared
bookkeeping tables (_dwctl_load_log, _dwctl_staged_files, _dwctl_generations). On Redshift, two such
transactions are not serializable: the later commit is aborted with ERROR 1023 (Redshift Database
Developer Guide, c_serial_isolation). The verifier enforces that rule (dwctl/warehouse/concurrency.py)
and runs the job at its real concurrency. The rule itself is checked first on the guide's own example.
Nothing is mocked: DuckDB connections run the transactions, in threads.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import duckdb
import pytest

from dwctl.warehouse import load_job
from dwctl.warehouse.concurrency import SerializationAbort, Transaction, Transactions, locked_tables, tables_touched
from dwctl.warehouse.verifier import Verifier
from tests.support.dms_files import FULL_LOAD_TS, Landing, change, spec_with_tables
from tests.support.many_tables import table_yaml


def two_sessions(con, first: list[str], second: list[str]) -> dict[str, str]:
    """Two sessions whose transactions overlap: each runs its statements, then both commit."""
    transactions, results = Transactions(), {}
    both_ran = threading.Barrier(2)

    def session(name, statements):
        cursor, txn = con.cursor(), Transaction()
        cursor.execute("BEGIN TRANSACTION")
        transactions.snapshot(txn)
        for sql in statements:
            reads, writes = tables_touched(sql)
            txn.reads |= reads
            txn.writes |= writes
            cursor.execute(sql)
        both_ran.wait(5)
        try:
            transactions.commit(txn, lambda: cursor.execute("COMMIT"))
            results[name] = "committed"
        except SerializationAbort as exc:
            cursor.execute("ROLLBACK")
            results[name] = str(exc)
        finally:
            transactions.release(txn)

    threads = [threading.Thread(target=session, args=("one", first)), threading.Thread(target=session, args=("two", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_the_guides_example_aborts_the_second_commit():
    """c_serial_isolation-serializable-isolation-troubleshooting: session 1 selects tab1 and inserts into
    tab2, session 2 inserts into tab1 and selects tab2: no serial order gives both results."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA s; CREATE TABLE s.tab1 (x INT); CREATE TABLE s.tab2 (x INT)")
    results = two_sessions(con, ["SELECT * FROM s.tab1", "INSERT INTO s.tab2 VALUES (1)"],
                           ["INSERT INTO s.tab1 VALUES (1)", "SELECT * FROM s.tab2"])
    committed = [r for r in results.values() if r == "committed"]
    aborted = [r for r in results.values() if r != "committed"]
    assert len(committed) == 1 and len(aborted) == 1
    assert "ERROR: 1023" in aborted[0] and "Serializable isolation violation" in aborted[0]


def test_transactions_that_do_not_cross_both_commit():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA s; CREATE TABLE s.tab1 (x INT); CREATE TABLE s.tab2 (x INT)")
    results = two_sessions(con, ["SELECT * FROM s.tab1", "INSERT INTO s.tab1 VALUES (1)"],
                           ["SELECT * FROM s.tab2", "INSERT INTO s.tab2 VALUES (1)"])
    assert set(results.values()) == {"committed"}


def test_what_a_statement_reads_and_writes():
    assert tables_touched('INSERT INTO "s"."a" SELECT * FROM "s"."b" JOIN "s"."c" USING (k)') == (
        frozenset({"s.b", "s.c"}), frozenset({"s.a"}))
    assert tables_touched('DELETE FROM "s"."a" WHERE k IN (SELECT k FROM "s"."b")') == (
        frozenset({"s.a", "s.b"}), frozenset({"s.a"}))
    assert tables_touched('WITH x AS (SELECT * FROM s.b) UPDATE s.a SET v = 1 FROM x WHERE s.a.k = x.k')[0] == \
        frozenset({"s.a", "s.b"})
    assert locked_tables('LOCK "staging"."_dwctl_load_log", "staging"."_dwctl_generations"') == [
        "staging._dwctl_load_log", "staging._dwctl_generations"]
    assert locked_tables("SELECT 1") is None


N = 6


@pytest.fixture
def many(tmp_path):
    spec = spec_with_tables("".join(table_yaml(f"t{i}") for i in range(N)))
    work = tmp_path / "work"
    work.mkdir()
    verifier = Verifier(spec, duckdb.connect(), work)
    return Landing(tmp_path / "bucket", spec, verifier)


def rows(ids, second=0):
    return [change("I", FULL_LOAD_TS if second == 0 else f"2024-01-01 12:00:{second:02d}.000000", None if second == 0 else i,
                   id=i, created_at=datetime(2024, 1, 1, tzinfo=timezone.utc), body=f"b{i}") for i in ids]


def load_everything(landing: Landing):
    for i in range(N):
        landing.full_load(f"t{i}", rows(range(3)))
    first = landing.run()
    for i in range(N):
        landing.cdc(f"t{i}", 5, rows([10 + i], second=5))
    second = landing.run()
    return first, second


def test_the_job_merges_tables_concurrently_without_conflicts(many):
    """At the job's default concurrency, each batch locks the shared bookkeeping first: no batch is
    aborted, nothing is quarantined, every table equals its source."""
    assert many.verifier.concurrency == load_job.DEFAULT_CONCURRENCY > 1
    first, second = load_everything(many)
    assert first == second == {f"t{i}": 1 for i in range(N)}
    assert not [line for line in many.verifier.log if "aborted" in line]
    assert many.verifier.quarantined() == []
    for i in range(N):
        assert sorted(r["id"] for r in many.state(f"t{i}")) == [0, 1, 2, 10 + i]


def test_without_the_lock_batches_abort_and_are_retried_never_quarantined(many):
    """The rule bites: with the LOCK taken out, concurrent batches abort each other as Redshift would;
    the job runs an aborted batch again (never quarantining its files), and every table still equals
    its source."""
    many.verifier.config.queries["lock_bookkeeping"] = "SELECT 1"
    first, second = load_everything(many)
    assert first == second == {f"t{i}": 1 for i in range(N)}
    aborted = [line for line in many.verifier.log if "aborted by a concurrent transaction" in line]
    assert aborted, "no batch was aborted: the verifier did not enforce Redshift's rule"
    assert many.verifier.quarantined() == []
    for i in range(N):
        assert sorted(r["id"] for r in many.state(f"t{i}")) == [0, 1, 2, 10 + i]


class AlwaysAborted:
    """A warehouse whose batches Redshift keeps aborting (a stand-in at the Data API boundary)."""

    sleep = staticmethod(lambda seconds: None)

    def __init__(self, times):
        self.times, self.calls = times, 0

    def batch(self, statements, name):
        self.calls += 1
        if self.calls <= self.times:
            raise load_job.JobError(f"{name}: FAILED: ERROR: 1023 DETAIL: Serializable isolation violation on table")


def test_an_abort_is_retried_and_a_lasting_one_fails_the_table_without_quarantine():
    flaky = AlwaysAborted(2)
    load_job.retry_aborts(lambda: flaky.batch([], "b"), flaky, "orders", log=lambda line: None)
    assert flaky.calls == 3
    stuck = AlwaysAborted(100)
    with pytest.raises(load_job.JobError, match=r"orders: aborted 7 times .* nothing was quarantined"):
        load_job.retry_aborts(lambda: stuck.batch([], "b"), stuck, "orders", log=lambda line: None)
    other = AlwaysAborted(0)
    other.batch = lambda statements, name: (_ for _ in ()).throw(load_job.JobError("COPY failed: bad file"))
    with pytest.raises(load_job.JobError, match="bad file"):  # a file's fault is not retried
        load_job.retry_aborts(lambda: other.batch([], "b"), other, "orders")
