"""Load job at scale: round trips and modeled wall time of one scheduled run, at 1 s per AWS call.

The job's own code (dwctl.warehouse.load_job: queue discovery, TableLoad, the Data API Warehouse
class, concurrency) runs against a fake AWS boundary: SQS, S3 and Redshift Data API clients that
count every call, and run the SQL on DuckDB (transpiled as `dwctl sql verify` does) so the batches
are the real ones. Each call is charged 1 s of modeled latency on the thread that made it; the
modeled wall time is the run's critical path (the discovery calls, then the busiest worker), not
counting SQL execution. Target: 1,000 tables with one new CDC file each inside the 15-minute
schedule. Run: `make bench` (or `python bench/bench_loader.py`).
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.bench_render import spec_text  # noqa: E402
from dwctl.render.engine import render, table_view  # noqa: E402
from dwctl.render.job_config import PATH  # noqa: E402
from dwctl.spec import landed_layout as layout  # noqa: E402
from dwctl.spec.read import parse_spec  # noqa: E402
from dwctl.warehouse import load_job  # noqa: E402
from dwctl.warehouse.verifier import (  # noqa: E402
    VERIFY_BUCKET,
    DuckDBWarehouse,
    LocalLanding,
    Transpiler,
)

BUCKET = VERIFY_BUCKET  # manifest entries name it; the verifier's transpiler maps it to the local folder


class Calls:
    """Per-thread call counts (each call = 1 s modeled)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_thread: Counter = Counter()
        self.by_api: Counter = Counter()

    def charge(self, api: str) -> None:
        with self.lock:
            self.by_thread[threading.get_ident()] += 1
            self.by_api[api] += 1


class FakeSqs:
    def __init__(self, calls: Calls, messages: list[dict]):
        self.calls, self.messages = calls, list(messages)

    def receive_message(self, **kw):
        self.calls.charge("sqs:ReceiveMessage")
        batch, self.messages = self.messages[:10], self.messages[10:]
        return {"Messages": batch} if batch else {}

    def delete_message_batch(self, **kw):
        self.calls.charge("sqs:DeleteMessageBatch")
        return {"Successful": [], "Failed": []}


class FakeS3:
    def __init__(self, calls: Calls, root: Path):
        self.calls, self.root = calls, root

    def put_object(self, Bucket, Key, Body, ContentType):  # noqa: N803 - boto3's names
        self.calls.charge("s3:PutObject")
        path = self.root / "work" / Key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Body)

    def get_object(self, Bucket, Key, Range):  # noqa: N803 - the job reads each landed file's footer
        import io

        self.calls.charge("s3:GetObject")
        data = (self.root / "bucket" / Key).read_bytes()
        return {"Body": io.BytesIO(data[-int(Range.split("-")[-1]):])}


class FakeDataApi:
    """ExecuteStatement / BatchExecuteStatement run at once in DuckDB; DescribeStatement says FINISHED."""

    def __init__(self, calls: Calls, con, transpile):
        self.calls, self.duck = calls, DuckDBWarehouse(con, transpile)  # the verifier's warehouse runs the SQL
        self.lock = threading.Lock()  # one DuckDB connection, several worker threads
        self.results: dict[str, list] = {}
        self.n = 0

    def _id(self) -> str:
        self.n += 1
        return f"s{self.n}"

    def execute_statement(self, Sql, Parameters=(), **kw):  # noqa: N803
        self.calls.charge("redshift-data:ExecuteStatement")
        with self.lock:
            sid = self._id()
            self.results[sid] = self.duck.query(Sql, **{p["name"]: p["value"] for p in Parameters})
        return {"Id": sid}

    def batch_execute_statement(self, Sqls, StatementName="batch", **kw):  # noqa: N803
        self.calls.charge("redshift-data:BatchExecuteStatement")
        with self.lock:
            self.duck.batch(Sqls, StatementName)
            return {"Id": self._id()}

    def describe_statement(self, Id):  # noqa: N803
        self.calls.charge("redshift-data:DescribeStatement")
        return {"Id": Id, "Status": "FINISHED"}

    def get_statement_result(self, Id, **kw):  # noqa: N803
        self.calls.charge("redshift-data:GetStatementResult")
        return {"Records": [[{"isNull": True} if v is None else {"stringValue": str(v)} for v in r]
                            for r in self.results.pop(Id, [])]}


def arrow(staging_type: str) -> pa.DataType:
    from tests.support.dms_files import arrow_type

    return arrow_type(staging_type)


def measure(tables: int, concurrency: int) -> dict:
    spec = parse_spec(spec_text(tables), "bench.yaml")
    files = render(spec, "bench.yaml")
    config = load_job.Config.from_json(files[PATH])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        messages = []
        for table in spec.tables:  # one new CDC file per table, one row each
            view = table_view(spec, table)
            key = f"{view.s3_prefix}/20240101-120000000.parquet"
            schema = pa.schema([pa.field(c.name, arrow(c.staging_type)) for c in view.landed])
            row = {c.name: None for c in view.landed}
            row.update({layout.OP_COLUMN: "I", layout.TIMESTAMP_COLUMN: "2024-01-01 12:00:00.000000",
                        layout.CHANGE_SEQ_COLUMN: "1".zfill(35)})
            for c in view.key_columns:
                row[c.name] = 1 if "INT" in c.staging_type.upper() else "k"
            path = root / "bucket" / key
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({n: [v] for n, v in row.items()}, schema=schema), path)
            body = {"detail-type": "Object Created", "detail": {"object": {"key": key, "size": path.stat().st_size,
                                                                            "etag": "e"}}}
            messages.append({"ReceiptHandle": key, "Body": json.dumps(body)})
        con = duckdb.connect()
        landing = LocalLanding(root / "bucket", "")
        calls = Calls()
        api = FakeDataApi(calls, con, Transpiler(con, landing))
        s3 = FakeS3(calls, root)
        for statement in load_job.split_statements(config.create_sql):  # the warehouse exists already
            for sql in Transpiler(con, landing)(statement):
                con.execute(sql)
        recorded = [load_job.substitute(s, {"ddl_hash": config.ddl_hash}) for s in config.queries["record_ddl"]]
        for statement in recorded:
            for sql in Transpiler(con, landing)(statement):
                con.execute(sql)
        warehouse = load_job.Warehouse(api, "wg", "dev", "arn:secret", sleep=lambda s: None)
        storage = _Storage(s3, root)
        args = {"landing_bucket": BUCKET, "manifest_prefix": "_dwctl_manifests", "copy_role_arn": "arn:role",
                "JOB_RUN_ID": "bench", "concurrency": str(concurrency)}
        discovery = load_job.QueueDiscovery(FakeSqs(calls, messages), "queue", config)
        started = time.perf_counter()
        merged = load_job.run(args, storage, warehouse, config, discovery, log=lambda _: None)
        wall = time.perf_counter() - started
        main = threading.get_ident()
        workers = [n for t, n in calls.by_thread.items() if t != main]
        modeled = calls.by_thread[main] + (max(workers) if workers else 0)
        rows = con.execute(f'SELECT COUNT(*) FROM "analytics"."{spec.tables[-1].name}"').fetchone()[0]
        assert sum(merged.values()) == tables and rows == 1, (merged, rows)
        return {"tables": tables, "concurrency": concurrency, "calls": sum(calls.by_api.values()),
                "calls_per_table": sum(calls.by_api.values()) / tables, "modeled_s": modeled, "wall_s": wall,
                "by_api": dict(calls.by_api)}


class _Storage(load_job.S3Storage):
    """S3Storage whose manifests land where the fake Data API's COPY reads them."""

    def __init__(self, s3, root: Path):
        super().__init__(s3, BUCKET)
        self.root = root

    def put(self, key, body, content_type):
        url = super().put(key, body, content_type)
        return str(self.root / "work" / key) if url.startswith("s3://") else url


def main() -> None:
    print("load job, one run, one new CDC file per table, 1 s per AWS call (modeled; SQL time not counted)")
    for tables, concurrency in ((10, 8), (100, 8), (1000, 8), (1000, 16)):
        r = measure(tables, concurrency)
        print(f"  {r['tables']:>5} tables, concurrency {r['concurrency']:>2}: {r['calls']:>5} calls "
              f"({r['calls_per_table']:.1f}/table), modeled {r['modeled_s']:>5.0f} s "
              f"({'within' if r['modeled_s'] <= 900 else 'OVER'} 15 min), real {r['wall_s']:.1f} s")
    print("  calls by API at 1,000 tables:", r["by_api"])


if __name__ == "__main__":
    main()
