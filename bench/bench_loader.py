"""Load job at scale: round trips and modelled wall time of one scheduled run, at 1 s per AWS call.

The job's own code (dwctl.warehouse.load_job: QueueDiscovery, run, TableLoad, the Data API Warehouse
class, InFlight, its threads) runs against a fake AWS boundary: SQS, S3 and Redshift Data API clients that
count every call and charge it 1 s of modelled latency on a virtual clock of the thread that made it. A
thread starts at the time its pool started; the caller's thread resumes at the latest time of the threads
it waited for; a thread waiting for one of the job's warehouse slots (InFlight, at most --concurrency
statements at once) resumes when the slot it gets was given back. Every statement finishes at once
(SQL time is not charged: see "The warehouse" below), so each costs one DescribeStatement. Goals (issue
24): 1,000 tables with one new CDC file each under 5 minutes modelled, and 2,000 under 10.
Run: `python bench/bench_loader.py` (`--sql` also merges 100 tables' batches in DuckDB, as
`dwctl sql verify` does, to show the batches are the real ones).

Measured (call counts are exact; modelled times vary by a few seconds with how the threads share the work;
the bench's own wall time is 10-40 s; load average 7-9 on the shared 2-core machine, other helpers running):

  before (main at 4163314, this model: one receiver, a DeleteMessageBatch per table, 8 table threads)
     1,000 tables:  6,110 calls (6.11/table), modelled   872 s (14.5 min): discovery 101 s (101
                    ReceiveMessage, one after another), then 125 tables per thread x 6 calls (GetObject
                    footer, PutObject manifest, PutObject file list, BatchExecuteStatement,
                    DescribeStatement, DeleteMessageBatch)                              goal 300 s: FAIL
     2,000 tables: 12,210 calls (6.11/table), modelled 1,734 s (28.9 min)               goal 600 s: FAIL
  after (this change, --concurrency 16, 32 table threads)
     1,000 tables:  5,218 calls (5.22/table), modelled   202 s (3.4 min), discovery 15 s  PASS
     2,000 tables: 10,418 calls (5.21/table), modelled   416 s (6.9 min), discovery 28 s  PASS
     (at --concurrency 8 with the same drain and deletes: 296 s and 611 s)

Where the time goes now: discovery is GetQueueAttributes, then up to 8 receivers at 10 messages a call
(1,000 messages: about 15 calls on the critical path instead of 101; about 8 of the 108 calls come back
empty at the end). A table's own calls are its footer read, its two PutObjects and its batch
(BatchExecuteStatement + DescribeStatement); one DeleteMessageBatch carries 10 tables' messages. The
warehouse sees at most --concurrency (16) statements at once, and 2 x 16 tables are prepared at once, so
while 16 tables' batches run the others read footers and write manifests: the floor is the statement
slots, 1,000 x 2 calls / 16 slots = 125 s (2,000: 250 s), plus discovery and the run's three queries
(DDL hash, what keeps tables incomplete, before and after: 9 calls). The one batch per table and run was
already so. Shared polling (ListStatements over many statements) would not shorten this path: a slot is
held until its statement is seen finished either way, and a list call is a round trip like a
DescribeStatement; against the real warehouse it would save DescribeStatement calls, not time. (ListStatements,
Redshift Data API reference and the botocore model the job ships: at most 100 statements a page
(MaxResults 0-100, NextToken), StatementName a case-sensitive prefix, one Status or ALL, RoleLevel; its
StatementData has no error text, so a failed batch would still need DescribeStatement for Redshift's reason.)

The warehouse (not modelled): every table's batch begins with LOCK on the four bookkeeping tables every
batch reads and writes (_dwctl_load_log, _dwctl_staged_files, _dwctl_generations, _dwctl_freshness), so
Redshift runs the merges one after another. "LOCK ... obtains a table-level lock in ACCESS EXCLUSIVE
mode, waiting if necessary for any conflicting locks to be released ... The lock is released when the
transaction that contains the LOCK command completes" (Redshift Database Developer Guide, r_LOCK). A real
run therefore also needs at least the sum of its batches' SQL times: at 1,000 tables, 0.9 s per batch
(COPY and merge of one small file each) fills 15 minutes whatever the API round trips. Without the lock,
two batches that both read and write a shared table (even different rows) are not serializable and
Redshift aborts one (c_serial_isolation: "If no serial execution of the concurrent transactions produces
the same results as their concurrent execution ... the transaction that runs a statement that might break
the ability to serialize is stopped and rolled back"; the snapshot is taken at a transaction's first
SELECT or DML, so COPYing before the LOCK in the same batch would read stale bookkeeping and abort).
Per-table bookkeeping rows in the shared tables do not help: the rule is per table, not per row. What
would: bookkeeping tables of each table's own (load log, staged files, generations, freshness), so that
a batch touches no table another batch touches and needs no lock, with the run-level queries (stops,
freshness) reading their union; that changes the merge SQL and needs a migration of the existing
tables, and is left for a change of its own.
"""

from __future__ import annotations

import heapq
import io
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.bench_render import spec_text  # noqa: E402
from dwctl.render.engine import render, table_view  # noqa: E402
from dwctl.render.job_config import PATH  # noqa: E402
from dwctl.spec import landed_layout as layout  # noqa: E402
from dwctl.spec.read import parse_spec  # noqa: E402
from dwctl.warehouse import load_job  # noqa: E402
from dwctl.warehouse.verifier import VERIFY_BUCKET  # noqa: E402

GOALS = {1000: 300, 2000: 600}  # tables: modelled seconds (issue 24)
REAL_SECONDS = 0.02  # real time a fake call takes (Clock.charge)
BUCKET = VERIFY_BUCKET  # manifest entries name it; with --sql the verifier's transpiler maps it to the folder


class Clock:
    """Virtual time per thread, 1 s per AWS call, and the calls counted by API."""

    def __init__(self):
        self.lock = threading.Lock()
        self.main = threading.get_ident()
        self.main_time = 0.0
        self.local = threading.local()
        self.states: list[dict] = []  # every other thread's {"t": time}
        self.by_api: Counter = Counter()

    def state(self) -> dict:
        """The calling thread's clock; a new thread starts when its pool started (the caller's time then)."""
        if threading.get_ident() == self.main:
            return {"t": self.sync()}
        state = getattr(self.local, "state", None)
        if state is None:
            state = self.local.state = {"t": self.main_time}
            with self.lock:
                self.states.append(state)
        return state

    def sync(self) -> float:
        """The caller's thread goes on once every thread it started has finished."""
        with self.lock:
            self.main_time = max([self.main_time] + [s["t"] for s in self.states])
            return self.main_time

    def charge(self, api: str) -> None:
        # Each call also takes REAL_SECONDS of real time, so that the threads share the work as they
        # would at 1 s a call (an instant fake would let one thread take every table before another starts).
        time.sleep(REAL_SECONDS)
        with self.lock:
            self.by_api[api] += 1
        if threading.get_ident() == self.main:
            self.sync()
            with self.lock:
                self.main_time += 1
        else:
            self.state()["t"] += 1


class TimedSlots:
    """The job's InFlight semaphore on the virtual clock: a thread gets the slot given back first."""

    def __init__(self, clock: Clock, count: int):
        self.clock, self.semaphore, self.lock = clock, threading.BoundedSemaphore(count), threading.Lock()
        self.free = [0.0] * count

    def __enter__(self):
        self.semaphore.acquire()
        state = self.clock.state()
        with self.lock:
            state["t"] = max(state["t"], heapq.heappop(self.free))
        return self

    def __exit__(self, *exc):
        with self.lock:
            heapq.heappush(self.free, self.clock.state()["t"])
        self.semaphore.release()


class FakeSqs:
    def __init__(self, clock: Clock, messages: list[dict]):
        self.clock, self.messages, self.lock = clock, list(messages), threading.Lock()

    def get_queue_attributes(self, QueueUrl, AttributeNames):  # noqa: N803 - boto3's names
        self.clock.charge("sqs:GetQueueAttributes")
        return {"Attributes": {"ApproximateNumberOfMessages": str(len(self.messages))}}

    def receive_message(self, MaxNumberOfMessages=1, **kw):  # noqa: N803
        self.clock.charge("sqs:ReceiveMessage")
        with self.lock:
            batch, self.messages = self.messages[:MaxNumberOfMessages], self.messages[MaxNumberOfMessages:]
        return {"Messages": batch} if batch else {}

    def delete_message_batch(self, QueueUrl, Entries):  # noqa: N803
        self.clock.charge("sqs:DeleteMessageBatch")
        assert 1 <= len(Entries) <= 10, len(Entries)  # SQS API Reference, DeleteMessageBatch: up to ten
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class FakeS3:
    def __init__(self, clock: Clock, root: Path):
        self.clock, self.root, self.puts = clock, root, {}

    def put_object(self, Bucket, Key, Body, ContentType, **kw):  # noqa: N803
        self.clock.charge("s3:PutObject")
        self.puts[Key] = Body

    def get_object(self, Bucket, Key, Range):  # noqa: N803 - the job reads each landed file's footer
        self.clock.charge("s3:GetObject")
        data = (self.root / Key).read_bytes()
        return {"Body": io.BytesIO(data[-int(Range.split("-")[-1]):])}


class FakeDataApi:
    """Every statement finishes at once; the run's own queries say: DDL current, nothing incomplete.
    With `duck` (a DuckDBWarehouse, --sql), statements and batches run there too."""

    def __init__(self, clock: Clock, config, duck=None):
        self.clock, self.config, self.duck = clock, config, duck
        self.lock, self.n, self.sql = threading.Lock(), 0, {}

    def _id(self, sql) -> str:
        with self.lock:
            self.n += 1
            self.sql[f"s{self.n}"] = sql
            return f"s{self.n}"

    def execute_statement(self, Sql, Parameters=(), **kw):  # noqa: N803
        self.clock.charge("redshift-data:ExecuteStatement")
        if self.duck is not None:
            with self.lock:
                rows = self.duck.query(Sql, **{p["name"]: p["value"] for p in Parameters})
            return {"Id": self._id(rows)}
        return {"Id": self._id([[self.config.ddl_hash]] if Sql == self.config.queries["ddl_applied"] else [])}

    def batch_execute_statement(self, Sqls, StatementName, **kw):  # noqa: N803
        self.clock.charge("redshift-data:BatchExecuteStatement")
        load_job.check_batch(Sqls, StatementName)
        if self.duck is not None:
            with self.lock:
                self.duck.batch(Sqls, StatementName)
        return {"Id": self._id([])}

    def describe_statement(self, Id):  # noqa: N803
        self.clock.charge("redshift-data:DescribeStatement")
        return {"Id": Id, "Status": "FINISHED"}

    def get_statement_result(self, Id, **kw):  # noqa: N803
        self.clock.charge("redshift-data:GetStatementResult")
        with self.lock:
            rows = self.sql.pop(Id)
        return {"Records": [[{"isNull": True} if v is None else {"stringValue": str(v)} for v in r] for r in rows]}


def landed_files(spec, root: Path) -> list[dict]:
    """One new CDC file per table (one row each), and its queue message."""
    messages = []
    for table in spec.tables:
        view = table_view(spec, table)
        key = f"{view.s3_prefix}/20240101-120000000.parquet"
        schema = pa.schema([pa.field(c.name, _arrow(c.staging_type)) for c in view.landed])
        row = {c.name: None for c in view.landed}
        row.update({layout.OP_COLUMN: "I", layout.TIMESTAMP_COLUMN: "2024-01-01 12:00:00.000000",
                    layout.CHANGE_SEQ_COLUMN: "1".zfill(35)})
        for c in view.key_columns:
            row[c.name] = 1 if "INT" in c.staging_type.upper() else "k"
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({n: [v] for n, v in row.items()}, schema=schema), path)
        body = {"detail-type": "Object Created", "detail": {"object": {"key": key, "size": path.stat().st_size,
                                                                        "etag": "e"}}}
        messages.append({"ReceiptHandle": key, "Body": json.dumps(body)})
    return messages


def _arrow(staging_type: str) -> pa.DataType:
    from tests.support.dms_files import arrow_type

    return arrow_type(staging_type)


def measure(tables: int, concurrency: int = load_job.DEFAULT_CONCURRENCY, sql: bool = False) -> dict:
    spec = parse_spec(spec_text(tables), "bench.yaml")
    config = load_job.Config.from_json(render(spec, "bench.yaml")[PATH])
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        messages = landed_files(spec, root / "bucket")
        duck = _duckdb_warehouse(config, root) if sql else None
        api = FakeDataApi(clock, config, duck)
        warehouse = load_job.Warehouse(api, "wg", "dev", sleep=lambda s: None)
        storage = load_job.S3Storage(FakeS3(clock, root / "bucket"), BUCKET)
        if sql:  # COPY reads the manifests where the verifier's transpiler looks for them
            storage = _LocalManifests(storage, root)
        args = {"landing_bucket": BUCKET, "manifest_prefix": "_dwctl_manifests", "copy_role_arn": "arn:role",
                "JOB_RUN_ID": "bench", "concurrency": str(concurrency)}
        sqs = FakeSqs(clock, messages)
        discovery = _TimedDiscovery(sqs, "queue", config, clock=clock)
        slots = getattr(load_job, "make_slots", None)
        if slots is not None:
            load_job.make_slots = lambda count: TimedSlots(clock, count)
        started = time.perf_counter()
        try:
            merged = load_job.run(args, storage, warehouse, config, discovery, log=lambda _: None)
        finally:
            if slots is not None:
                load_job.make_slots = slots
        wall = time.perf_counter() - started
        assert sum(merged.values()) == tables and not sqs.messages, merged
        if duck is not None:
            last = spec.tables[-1].name
            assert duck.query(f'SELECT COUNT(*) FROM "analytics"."{last}"') == [[1]], "the batches merged nothing"
    calls = sum(clock.by_api.values())
    return {"tables": tables, "concurrency": concurrency, "calls": calls, "calls_per_table": calls / tables,
            "modelled_s": clock.sync(), "discovery_s": discovery.span, "wall_s": wall, "by_api": dict(clock.by_api)}


class _TimedDiscovery(load_job.QueueDiscovery):
    """The job's queue discovery, its span on the virtual clock noted."""

    def __init__(self, *args, clock: Clock, **kw):
        super().__init__(*args, **kw)
        self.clock, self.span = clock, 0.0

    def new_objects(self, tables):
        start = self.clock.sync()
        found = super().new_objects(tables)
        self.span = self.clock.sync() - start
        return found


class _LocalManifests(load_job.S3Storage):
    """S3Storage whose manifests are also written where the verifier's COPY reads them (--sql)."""

    def __init__(self, storage, root: Path):
        super().__init__(storage.s3, storage.bucket)
        self.root = root

    def put(self, key, body, content_type):
        super().put(key, body, content_type)
        path = self.root / "work" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        return str(path)


def _duckdb_warehouse(config, root: Path):
    import duckdb

    from dwctl.warehouse.verifier import DuckDBWarehouse, LocalLanding, Transpiler

    con = duckdb.connect()
    landing = LocalLanding(root / "bucket", "")
    for statement in load_job.split_statements(config.create_sql):  # the warehouse exists already
        for sql in Transpiler(con, landing)(statement):
            con.execute(sql)
    for statement in [load_job.substitute(s, {"ddl_hash": config.ddl_hash}) for s in config.queries["record_ddl"]]:
        for sql in Transpiler(con, landing)(statement):
            con.execute(sql)
    return DuckDBWarehouse(con, Transpiler(con, landing))


def main() -> None:
    print("load job, one run, one new CDC file per table, 1 s per AWS call (modelled; SQL time not counted)")
    if "--sql" in sys.argv:
        r = measure(100, sql=True)
        print(f"  100 tables merged in DuckDB: {r['calls']} calls, modelled {r['modelled_s']:.0f} s")
    failed = False
    for tables, goal in GOALS.items():
        r = measure(tables)
        ok = r["modelled_s"] < goal
        failed |= not ok
        print(f"  {tables:>5} tables, concurrency {r['concurrency']}: {r['calls']:>6} calls "
              f"({r['calls_per_table']:.2f}/table), modelled {r['modelled_s']:>5.0f} s = {r['modelled_s'] / 60:.1f} min "
              f"(discovery {r['discovery_s']:.0f} s); goal under {goal} s: {'PASS' if ok else 'FAIL'} "
              f"(bench wall {r['wall_s']:.0f} s)")
        print("      calls by API:", ", ".join(f"{k} {v}" for k, v in sorted(r["by_api"].items())))
    print(f"  load average: {open('/proc/loadavg').read().split()[0]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
