"""`dwctl sql verify`: the rendered load + merge SQL, run in DuckDB on DMS-shaped Parquet files,
gives the source's final state in each case the issue names (fixed regression cases).

Nothing is mocked: files are real Parquet written with the DMS column names and order
(tests/support/dms_files.py, from dwctl.spec.landed_layout), and the SQL is the rendered SQL.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.errors import ToolError
from dwctl.warehouse.verifier import Verifier
from tests.conftest import EXAMPLE
from tests.support.dms_files import FULL_LOAD_TS, Landing, change

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def ts(second: int, micro: int = 0) -> str:
    return f"2024-01-01 12:{second // 60:02d}:{second % 60:02d}.{micro:06d}"


def order(order_id: int, status: str = "new", total: str = "10.00", customer_id: int = 1) -> dict:
    return dict(order_id=order_id, customer_id=customer_id, status=status, total_amount=Decimal(total),
                currency="EUR", placed_at=WHEN, updated_at=WHEN)


def item(order_id: int, line_no: int, quantity: int = 1, discount: str | None = None) -> dict:
    return dict(order_id=order_id, line_no=line_no, product_id=100 + line_no, quantity=quantity,
                unit_price=Decimal("2.50"), discount=None if discount is None else Decimal(discount))


def customer(customer_id: int, full_name: str | None = "Ada", phone: str | None = None,
             country_code: str | None = None) -> dict:
    return dict(customer_id=customer_id, email=f"c{customer_id}@example.com", full_name=full_name, phone=phone,
                country_code=country_code, marketing_opt_in=False, created_at=WHEN, updated_at=WHEN)


def product(product_id: int, attributes: str | None = None, category: str | None = None) -> dict:
    return dict(product_id=product_id, sku=f"sku-{product_id}", title="t", category=category,
                unit_price=Decimal("1.50"), attributes=attributes, active=True, updated_at=WHEN)


@pytest.fixture
def landing(tmp_path, example_spec) -> Landing:
    work = tmp_path / "work"
    work.mkdir()
    return Landing(tmp_path / "bucket", example_spec, Verifier(example_spec, duckdb.connect(), work))


def statuses(landing: Landing) -> dict[int, str]:
    return {r["order_id"]: r["status"] for r in landing.state("orders")}


def test_full_load_then_several_cdc_batches(landing):
    landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1)), change("I", FULL_LOAD_TS, None, **order(2))])
    landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(3))], number=2)
    assert landing.run()["orders"] == 2
    assert statuses(landing) == {1: "new", 2: "new", 3: "new"}

    landing.cdc("orders", 10, [change("U", ts(10), 1, **order(1, "paid")), change("I", ts(11), 2, **order(4))])
    assert landing.run()["orders"] == 1
    assert statuses(landing) == {1: "paid", 2: "new", 3: "new", 4: "new"}

    landing.cdc("orders", 20, [change("D", ts(20), 3, **order(2))])
    landing.cdc("orders", 21, [change("U", ts(21), 4, **order(4, "shipped", "12.00")), change("U", ts(22), 5, **order(1, "shipped"))])
    assert landing.run()["orders"] == 2
    assert statuses(landing) == {1: "shipped", 3: "new", 4: "shipped"}
    assert {r["order_id"]: r["total_amount"] for r in landing.state("orders")}[4] == Decimal("12.00")
    assert landing.run()["orders"] == 0, "nothing new: nothing loaded again"


def test_changes_inside_one_commit_timestamp_follow_the_change_sequence(landing):
    landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    same = ts(5)
    # physically out of order; the change sequence says b is last
    landing.cdc("orders", 5, [change("U", same, 30, **order(1, "a")), change("U", same, 50, **order(1, "b")),
                              change("U", same, 40, **order(1, "c"))])
    landing.cdc("orders", 6, [change("I", same, 45, **order(2, "x")), change("D", same, 44, **order(2))])
    landing.run()
    assert statuses(landing) == {1: "b", 2: "x"}


def test_insert_update_delete_reinsert_of_one_key(landing):
    landing.cdc("orders", 1, [change("I", ts(1), 1, **order(7, "new")), change("U", ts(2), 2, **order(7, "paid")),
                              change("D", ts(3), 3, **order(7)), change("I", ts(4), 4, **order(7, "again", "99.00"))])
    landing.run()
    assert landing.state("orders") == [order(7, "again", "99.00")]

    landing.cdc("orders", 10, [change("D", ts(10), 5, **order(7))])
    landing.run()
    assert landing.state("orders") == []
    landing.cdc("orders", 11, [change("I", ts(11), 6, **order(7, "back"))])
    landing.run()
    assert statuses(landing) == {7: "back"}


def test_update_and_delete_of_keys_the_full_load_never_had(landing):
    landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    landing.run()
    landing.cdc("orders", 1, [change("U", ts(1), 1, **order(9, "paid")), change("D", ts(2), 2, **order(8))])
    landing.run()
    assert statuses(landing) == {1: "new", 9: "paid"}


def test_full_load_rows_come_before_changes_whatever_their_timestamp(landing):
    """DMS stamps full-load rows with the transfer time; a delete captured during the load still wins."""
    late = ts(59, 999999)
    landing.full_load("orders", [change("I", late, None, **order(5)), change("I", late, None, **order(6))])
    landing.cdc("orders", 1, [change("D", ts(1), 1, **order(5))])
    landing.run()
    assert statuses(landing) == {6: "new"}


def test_the_same_file_delivered_twice_is_applied_once(landing):
    first = landing.cdc("orders", 1, [change("I", ts(1), 1, **order(1, "first"))])
    landing.run()
    landing.cdc("orders", 2, [change("U", ts(2), 2, **order(1, "second"))])
    landing.run()
    first.write_bytes(first.read_bytes())  # redelivered: same key, same content
    assert landing.run()["orders"] == 0
    assert statuses(landing) == {1: "second"}
    log = landing.verifier.con.execute(
        "SELECT s3_key, COUNT(*) FROM staging._dwctl_load_log GROUP BY s3_key ORDER BY s3_key").fetchall()
    assert log == [("raw/public/orders/20240101-120001000.parquet", 1),
                   ("raw/public/orders/20240101-120002000.parquet", 1)]


def test_a_batch_without_changes_for_a_table_leaves_it_alone(landing):
    landing.full_load("customers", [change("I", FULL_LOAD_TS, None, **customer(1))])
    landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    landing.run()
    landing.cdc("orders", 1, [change("U", ts(1), 1, **order(1, "paid"))])
    merged = landing.run()
    assert merged == {"customers": 0, "products": 0, "orders": 1, "order_items": 0}
    assert landing.state("customers") == [customer(1)]
    assert landing.state("products") == []
    staged = landing.verifier.con.execute("SELECT COUNT(*) FROM staging._dwctl_staged_files").fetchone()
    assert staged == (0,)


def test_nulls_in_non_key_columns(landing):
    landing.full_load("customers", [change("I", FULL_LOAD_TS, None, **customer(1, phone=None)),
                                    change("I", FULL_LOAD_TS, None, **customer(2, full_name=None, country_code="FR"))])
    landing.run()
    landing.cdc("customers", 1, [change("U", ts(1), 1, **customer(1, full_name=None, country_code="DE")),
                                 change("U", ts(2), 2, **customer(2, full_name="Bo", country_code=None))])
    landing.run()
    assert landing.state("customers") == [customer(1, full_name=None, country_code="DE"),
                                          customer(2, full_name="Bo", country_code=None)]


def test_composite_keys(landing):
    landing.full_load("order_items", [change("I", FULL_LOAD_TS, None, **item(1, 1)),
                                      change("I", FULL_LOAD_TS, None, **item(1, 2)),
                                      change("I", FULL_LOAD_TS, None, **item(2, 1))])
    landing.run()
    landing.cdc("order_items", 1, [change("D", ts(1), 1, **item(1, 2)),
                                   change("U", ts(2), 2, **item(2, 1, quantity=5, discount="0.50")),
                                   change("I", ts(3), 3, **item(2, 2))])
    landing.run()
    assert landing.state("order_items") == [item(1, 1), item(2, 1, quantity=5, discount="0.50"), item(2, 2)]


def test_json_becomes_super_and_bad_json_fails_loudly(landing):
    landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, '{"size": "L", "tags": [1, 2]}')),
                                   change("I", FULL_LOAD_TS, None, **product(2, None))])
    landing.run()
    docs = {r["product_id"]: r["attributes"] for r in landing.state("products")}
    assert json.loads(docs[1]) == {"size": "L", "tags": [1, 2]} and docs[2] is None
    landing.cdc("products", 1, [change("U", ts(1), 1, **product(1, "{not json"))])
    with pytest.raises(ToolError, match=r"1 problem\(s\)[\s\S]*products: raw/public/products/20240101-120001000.parquet quarantined"):
        landing.run()
    assert json.loads({r["product_id"]: r["attributes"] for r in landing.state("products")}[1])["size"] == "L"


def test_a_file_landing_late_within_the_lookback_is_still_loaded(landing):
    landing.cdc("orders", 100, [change("I", ts(100), 2, **order(1))])
    landing.run()
    landing.cdc("orders", 50, [change("I", ts(50), 1, **order(2))])  # an earlier name, written later
    assert landing.run()["orders"] == 1
    assert statuses(landing) == {1: "new", 2: "new"}


def test_files_in_another_column_order_load_by_name(landing):
    """COPY from Parquet maps by position; the job reads each file's columns from its footer and
    loads a file of another order through a staging table of its own layout."""
    path = landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1, status="shipped"))])
    table = pq.read_table(path)
    names = table.column_names
    pq.write_table(table.select([names[1], names[0], *reversed(names[2:])]), path)
    assert landing.run()["orders"] == 1
    assert statuses(landing) == {1: "shipped"}


def test_a_plain_copy_of_a_file_in_another_order_is_refused(landing, tmp_path):
    """What Redshift does with it (columns by position), the verifier does too."""
    from dwctl.warehouse import load_job

    path = landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    table = pq.read_table(path)
    names = table.column_names
    pq.write_table(table.select([names[1], names[0], *names[2:]]), path)
    real = load_job.file_layout
    load_job.file_layout = lambda columns, landed, kept=None, file_names=None: ("same", None)  # a job that trusted the spec's layout
    try:
        with pytest.raises(ToolError, match="by position"):
            landing.run()
    finally:
        load_job.file_layout = real


def mutate(landing: Landing, table: str, old: str, new: str) -> None:
    """Break the merge SQL the job ships (its config carries the rendered sql/ files)."""
    config = landing.verifier.config
    assert old in config.merge_sql[table]
    config.merge_sql[table] = config.merge_sql[table].replace(old, new)


def test_wrong_shipped_sql_shows_up_ordering(landing):
    """The verifier runs the rendered SQL, not its own merge: break the SQL and the result breaks."""
    mutate(landing, "orders", 'ORDER BY "versioned"."dwctl_version" DESC', 'ORDER BY "versioned"."dwctl_version" ASC')
    landing.cdc("orders", 5, [change("U", ts(5), 30, **order(1, "a")), change("U", ts(5), 50, **order(1, "b"))])
    landing.run()
    assert statuses(landing) == {1: "a"}


def test_wrong_shipped_sql_shows_up_deletes(landing):
    mutate(landing, "orders", "WHERE \"dwctl_apply\" AND COALESCE(\"Op\", 'I') <> 'D'", "WHERE \"dwctl_apply\"")
    landing.cdc("orders", 5, [change("I", ts(5), 1, **order(1)), change("D", ts(6), 2, **order(1))])
    landing.run()
    assert statuses(landing) == {1: "new"}


# --- the command ------------------------------------------------------------------------------
def write_example(root: Path, example_spec) -> None:
    Landing(root, example_spec, None).full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1)),
                                                           change("I", FULL_LOAD_TS, None, **order(2))])
    Landing(root, example_spec, None).cdc("orders", 1, [change("D", ts(1), 1, **order(2))])


def invoke(*args: str):
    return CliRunner().invoke(cli, ["sql", "verify", "-c", str(EXAMPLE), *args])


def test_cli_prints_the_analytics_tables(tmp_path, example_spec):
    write_example(tmp_path, example_spec)
    result = invoke("--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "merged: customers 0 file(s), products 0 file(s), orders 2 file(s), order_items 0 file(s)" in result.output
    block = result.output.split("analytics.orders: 1 row(s)\n")[1].split("\n\n")[0].splitlines()
    assert block[0].split() == ["order_id", "customer_id", "status", "total_amount", "currency", "placed_at",
                                "updated_at"]
    assert block[2].split()[:5] == ["1", "1", "new", "10.00", "EUR"]


def test_cli_accepts_the_landing_prefix_as_data_dir(tmp_path, example_spec):
    write_example(tmp_path, example_spec)
    result = invoke("--data", str(tmp_path / "raw"))
    assert result.exit_code == 0, result.output
    assert "analytics.orders: 1 row(s)" in result.output


def test_cli_exports_csv_and_parquet(tmp_path, example_spec):
    write_example(tmp_path / "data", example_spec)
    result = invoke("--data", str(tmp_path / "data"), "--export", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "orders.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["order_id"], r["status"]) for r in rows] == [("1", "new")]
    assert (tmp_path / "out" / "customers.csv").read_text().startswith("customer_id,email,")
    result = invoke("--data", str(tmp_path / "data"), "--export", str(tmp_path / "pq"), "--format", "parquet")
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "pq" / "orders.parquet")
    assert table.column("order_id").to_pylist() == [1]
    assert table.schema.field("total_amount").type == pa.decimal128(14, 2)


def test_cli_prints_and_exports_history_tables(tmp_path, example_spec):
    assert example_spec.table("customers").history, "the example keeps the history of customers"
    Landing(tmp_path, example_spec, None).full_load("customers", [change("I", FULL_LOAD_TS, None, **customer(1))])
    Landing(tmp_path, example_spec, None).cdc("customers", 1, [change("U", ts(1), 1, **customer(1, "Bo"))])
    result = invoke("--data", str(tmp_path))
    assert result.exit_code == 0, result.output
    titles = [line for line in result.output.splitlines() if line.startswith("analytics.")]
    assert titles[:3] == ["analytics.customers: 1 row(s)", "analytics.customers_history: 2 row(s)",
                          "analytics.products: 0 row(s)"]
    block = result.output.split("analytics.customers_history: 2 row(s)\n")[1].split("\n\n")[0].splitlines()
    assert block[0].split()[-5:] == ["valid_from", "valid_to", "is_current", "dwctl_op", "dwctl_version"]
    assert block[2].split()[-6:-1] == ["00:00:00", "2024-01-01", "12:00:01", "False", "I"]
    assert block[3].split()[-5:-1] == ["12:00:01", "NULL", "True", "U"]
    assert block[2].split()[-1] < block[3].split()[-1], "versions: the full-load row's before the change's"

    result = invoke("--data", str(tmp_path), "--export", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    with open(tmp_path / "out" / "customers_history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["full_name"], r["valid_from"], r["valid_to"], r["is_current"]) for r in rows] == [
        ("Ada", "2024-01-01 00:00:00", "2024-01-01 12:00:01", "false"), ("Bo", "2024-01-01 12:00:01", "", "true")]


def test_cli_database_file_keeps_the_load_log(tmp_path, example_spec):
    write_example(tmp_path / "data", example_spec)
    db = tmp_path / "wh.duckdb"
    assert invoke("--data", str(tmp_path / "data"), "--database", str(db)).exit_code == 0
    Landing(tmp_path / "data", example_spec, None).cdc("orders", 2, [change("U", ts(2), 2, **order(1, "paid"))])
    result = invoke("--data", str(tmp_path / "data"), "--database", str(db))
    assert result.exit_code == 0, result.output
    assert "orders 1 file(s)" in result.output and "paid" in result.output
    assert duckdb.connect(str(db)).execute("SELECT COUNT(*) FROM staging._dwctl_load_log").fetchone() == (3,)


def test_cli_bad_data_dir_is_a_usage_error(tmp_path):
    result = invoke("--data", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "no such folder" in result.output and "Traceback" not in result.output
    (tmp_path / "empty").mkdir()
    result = invoke("--data", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "bucket root" in result.output


def test_cli_failure_names_the_file_and_exits_1(tmp_path, example_spec):
    Landing(tmp_path, example_spec, None).full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, "{x"))])
    result = invoke("--data", str(tmp_path))
    assert result.exit_code == 1
    assert "products: raw/public/products/LOAD00000001.parquet quarantined" in result.output
    assert "JSON" in result.output and "Traceback" not in result.output


# --- as strict as Redshift COPY (DuckDB alone would load all of these) ---------------------------------
def rewrite_column(path: Path, name: str, array: pa.Array) -> None:
    table = pq.read_table(path)
    index = table.column_names.index(name)
    pq.write_table(table.set_column(index, pa.field(name, array.type), array), path)


def test_a_double_into_a_decimal_column_is_refused_and_quarantined(landing):
    path = landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    rewrite_column(path, "total_amount", pa.array([10.0], pa.float64()))
    with pytest.raises(ToolError, match=r"total_amount' is Parquet double, which Redshift COPY does not load into DECIMAL"):
        landing.run()
    assert landing.state("orders") == [] and landing.verifier.quarantined()[0][:2] == ("orders", "raw/public/orders/LOAD00000001.parquet")


def test_text_longer_in_bytes_than_its_varchar_is_refused(landing):
    """65,535 is Redshift's VARCHAR maximum, counted in bytes: 70,000 bytes do not fit."""
    long_json = '"' + "é" * 34_999 + '"'  # 70,000 bytes of UTF-8, 35,000 characters
    landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, long_json))])
    with pytest.raises(ToolError, match=r"'attributes' holds a value of 70000 bytes, longer than its VARCHAR\(65535\)"):
        landing.run()


def test_postgres_booleans_land_as_text_and_become_booleans(landing):
    """Postgres BOOLEAN lands as the string true/false (AWS DMS User Guide, CHAP_Source.PostgreSQL)."""
    path = landing.full_load("customers", [change("I", FULL_LOAD_TS, None, **customer(1))])
    assert pq.read_schema(path).field("marketing_opt_in").type == pa.string()
    landing.run()
    assert landing.state("customers")[0]["marketing_opt_in"] is False


def test_a_parquet_boolean_where_text_lands_is_refused(landing):
    path = landing.full_load("customers", [change("I", FULL_LOAD_TS, None, **customer(1))])
    rewrite_column(path, "marketing_opt_in", pa.array([False], pa.bool_()))
    with pytest.raises(ToolError, match=r"'marketing_opt_in' is Parquet bool, which Redshift COPY does not load into VARCHAR\(5\)"):
        landing.run()


def test_a_file_with_a_column_the_spec_lacks_is_held(landing):
    path = landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    table = pq.read_table(path)
    pq.write_table(table.append_column("added_later", pa.array(["x"])), path)
    with pytest.raises(ToolError, match="held: it carries column.s. added_later that the spec does not have"):
        landing.run()
    assert [key for _, key, _ in landing.verifier.quarantined()] == ["raw/public/orders/LOAD00000001.parquet"]


def test_copy_and_merge_are_one_transaction(landing):
    """A file whose merge fails leaves staging empty and the analytics table as it was."""
    landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, '{"a": 1}'))])
    landing.run()
    landing.cdc("products", 1, [change("U", ts(1), 1, **product(1, "{broken"))])
    with pytest.raises(ToolError, match="quarantined"):
        landing.run()
    con = landing.verifier.con
    assert con.execute('SELECT COUNT(*) FROM staging."products"').fetchone()[0] == 0
    assert con.execute('SELECT COUNT(*) FROM staging."products__dwctl_work"').fetchone()[0] == 0
    assert json.loads(landing.state("products")[0]["attributes"]) == {"a": 1}


def test_one_bad_file_does_not_stop_the_other_tables_and_its_tables_later_files_wait_for_it(landing):
    """A full-load file that cannot load keeps its table's later files back (changes merged before a
    full load would be taken as older than it), in the quarantine, loudly, run after run; once DMS
    writes the file again, it loads and they load with it."""
    landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, "{bad"))])
    landing.cdc("products", 5, [change("I", ts(5), 1, **product(2, '{"ok": true}'))])
    with pytest.raises(ToolError, match="products: raw/public/products/LOAD00000001.parquet quarantined") as first:
        landing.run()
    assert "products: 1 file(s) wait behind the table's quarantined or held full-load file" in str(first.value)
    assert statuses(landing) == {1: "new"}
    assert landing.state("products") == [], "the later file waits"
    with pytest.raises(ToolError, match="products: 1 file.s. quarantined or held in an earlier run are still not loaded"):
        landing.run()  # not retried by itself, and not a quiet success either
    fixed = landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, '{"fixed": 1}'))])
    assert fixed.exists()
    landing.run()  # a rewritten file is a new version: loaded, and the file waiting for it with it
    assert sorted(r["product_id"] for r in landing.state("products")) == [1, 2]
    landing.run()


def test_a_table_truncated_at_the_source_is_detected_and_a_reload_fixes_it(landing):
    """MySQL TRUNCATE with HandleSourceTableTruncated: DMS deletes the table's files (CHAP_Target.S3)."""
    first = landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1)), change("I", FULL_LOAD_TS, None, **order(2))])
    landing.run()
    first.unlink()
    with pytest.raises(ToolError, match=r"orders: 1 merged file\(s\) were deleted from the bucket[\s\S]*reload the table"):
        landing.run()
    reload_ts = "2024-01-02 00:00:00.000000"
    landing.full_load("orders", [change("I", reload_ts, None, **order(3))])  # the reload after the truncate
    landing.run()
    assert statuses(landing) == {3: "new"}


def test_cli_lists_skips_and_retries_quarantined_files(tmp_path, example_spec):
    data, db = tmp_path / "data", tmp_path / "wh.duckdb"
    bad = Landing(data, example_spec, None).full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, "{x"))])
    Landing(data, example_spec, None).cdc("products", 2, [change("I", ts(2), 1, **product(2, "{y"))])
    assert invoke("--data", str(data), "--database", str(db)).exit_code == 1
    quarantine = ["sql", "quarantine", "-c", str(EXAMPLE), "--database", str(db)]
    listed = CliRunner().invoke(cli, quarantine)
    assert listed.exit_code == 0 and "2 quarantined file(s)" in listed.output
    assert "raw/public/products/LOAD00000001.parquet" in listed.output and "JSON" in listed.output
    skipped = CliRunner().invoke(cli, [*quarantine, "--skip", "raw/public/products/20240101-120002000.parquet"])
    assert skipped.exit_code == 0 and "1 quarantined file(s)" in skipped.output
    pq.write_table(pq.read_table(bad), bad)  # the same bad file: retried, quarantined again
    retried = invoke("--data", str(data), "--database", str(db), "--retry-quarantined")
    assert retried.exit_code == 1 and "LOAD00000001.parquet quarantined" in retried.output
    assert "20240101-120002000" not in retried.output, "a skipped file is not offered again"
    neither = CliRunner().invoke(cli, ["sql", "quarantine", "-c", str(EXAMPLE)])
    assert neither.exit_code == 2 and "exactly one of --database" in neither.output


def test_a_lob_mysql_truncated_at_the_limit_never_fits_its_column(landing, example_spec):
    """DMS truncates a MySQL LOB at LobMaxSize; the default (1001 KB) exceeds every staging column, so a
    truncated value is refused by COPY (quarantined), never loaded cut."""
    from dwctl.render.tfvars import values
    from dwctl.spec.type_mapping import VARBYTE_MAX, VARCHAR_MAX

    limit = values(example_spec)["dms_lob_max_size_kb"] * 1024
    assert limit > VARBYTE_MAX and limit > VARCHAR_MAX
    cut = '"' + "x" * (limit - 2) + '"'  # what DMS would land for a longer JSON value
    landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, cut))])
    with pytest.raises(ToolError, match=r"'attributes' holds a value of 1025024 bytes, longer than its VARCHAR\(65535\)"):
        landing.run()


# --- issue 21: Redshift's rules, not DuckDB's ------------------------------------------------------------------
def transpiler(tmp_path):
    from dwctl.warehouse.verifier import LocalLanding, Transpiler

    con = duckdb.connect()
    con.execute("CREATE SCHEMA s")
    return con, Transpiler(con, LocalLanding(tmp_path, ""))


@pytest.mark.parametrize("ddl", ["CREATE TABLE s.t (k BIGINT, j SUPER) DISTKEY(j)",
                                 "CREATE TABLE s.t (k BIGINT, j SUPER) DISTKEY(k) SORTKEY(k, j)"])
def test_item4_a_super_key_is_refused_as_redshift_refuses_it(tmp_path, ddl):
    """limitations-super: "You can't define SUPER columns as either a distribution or sort key"."""
    con, transpile = transpiler(tmp_path)
    with pytest.raises(ToolError, match="SUPER column j as a distribution or sort key"):
        transpile(ddl)
    assert transpile("CREATE TABLE s.t (k BIGINT, j SUPER) DISTKEY(k) SORTKEY(k)")  # a SUPER column that is no key


def test_item9_text_longer_than_its_varchar_is_refused_on_insert_and_update_as_redshift_does(tmp_path):
    """r_Character_types: CHAR and VARCHAR "store strings up to n bytes in length. An attempt to store a longer
    string into a column of these types results in an error", unless the extra characters are all spaces."""
    con, transpile = transpiler(tmp_path)

    def run(sql: str, **params) -> None:
        for statement in transpile(sql):
            con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement} or None)

    run("CREATE TABLE s.t (k BIGINT, v VARCHAR(4))")
    run("INSERT INTO s.t (k, v) VALUES (1, :v)", v="éé")  # 4 bytes
    run("INSERT INTO s.t (k, v) SELECT 2, :v", v="ab      ")  # the extra characters are spaces: cut
    assert con.execute("SELECT k, v FROM s.t ORDER BY k").fetchall() == [(1, "éé"), (2, "ab  ")]
    for sql in ("INSERT INTO s.t (k, v) VALUES (3, :v)", "INSERT INTO s.t (k, v) SELECT 3, :v",
                "UPDATE s.t SET v = :v WHERE k = 1"):
        with pytest.raises(duckdb.Error, match=r"value too long for type character varying\(4\) \(5 bytes\)"):
            run(sql, v="ééa")  # 3 characters, 5 bytes
    run("ALTER TABLE s.t ALTER COLUMN v TYPE VARCHAR(8)")  # made longer: the new length holds
    run("INSERT INTO s.t (k, v) VALUES (3, :v)", v="ééa")
    assert con.execute("SELECT v FROM s.t WHERE k = 3").fetchall() == [("ééa",)]


def test_a_statement_transpiled_for_one_database_is_reused_only_where_the_columns_are_the_same(tmp_path):
    """Transpiled DML is shared between verifiers (verifier._SHARED), keyed by the catalog's columns: the same
    INSERT gets each database's own VARCHAR limit (r_Character_types), whichever database transpiled it first."""
    from dwctl.warehouse import verifier

    sql = "INSERT INTO s.t (k, v) VALUES (1, 'abcdef')"
    for lengths in ((4, 8, 4), (8, 4, 8)):
        verifier._SHARED.clear()
        for length in lengths:
            con, transpile = transpiler(tmp_path)
            for statement in transpile(f"CREATE TABLE s.t (k BIGINT, v VARCHAR({length}))"):
                con.execute(statement)
            statements = transpile(sql)
            if length < 6:
                with pytest.raises(duckdb.Error, match=rf"value too long for type character varying\({length}\)"):
                    [con.execute(s) for s in statements]
            else:
                [con.execute(s) for s in statements]
                assert con.execute("SELECT v FROM s.t").fetchall() == [("abcdef",)]
        assert len(verifier._SHARED) == 2  # one transpiled INSERT per catalog, the third reused


def test_item9_a_quarantine_reason_is_cut_to_the_columns_bytes_never_inside_a_character(landing):
    """The reason column is VARCHAR(4096), counted in bytes (r_Character_types): a reason of multibyte
    characters is cut to 4,096 bytes, at a character boundary, and the quarantine INSERT goes through."""
    from dwctl.warehouse import load_job
    from dwctl.warehouse.verifier import DuckDBWarehouse, Transpiler

    verifier = landing.verifier
    landing.full_load("customers", [change("I", FULL_LOAD_TS, None, **customer(1))])
    landing.run()  # the warehouse's tables exist
    warehouse = DuckDBWarehouse(verifier.con, Transpiler(verifier.con, None))
    loader = load_job.TableLoad(None, warehouse, verifier.config, {}, "orders", "r1", log=lambda _: None)
    reason = "Spectrum Scan Error: " + "é" * 3000 + "€" * 10  # 3,031 characters, 6,051 bytes
    loader.quarantine(load_job.Landed("raw/public/orders/LOAD00000001.parquet", 1, "e1"), reason)
    [(_, _, stored)] = verifier.quarantined()
    assert len(stored.encode("utf-8")) <= load_job.REASON_LIMIT == 4096
    assert reason.startswith(stored) and len(stored.encode("utf-8")) > 4096 - 4, "cut at the last whole character"


def test_item9_a_held_file_with_a_long_multibyte_column_name_is_quarantined_not_a_failed_run(landing):
    """The job's own reason (the columns a held file carries) can be longer in bytes than in characters."""
    path = landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    table = pq.read_table(path)
    name = "ü" * 2100  # 4,200 bytes
    pq.write_table(table.append_column(name, pa.array(["x"])), path)
    with pytest.raises(ToolError, match="held: it carries column"):
        landing.run()
    [(_, key, reason)] = landing.verifier.quarantined()
    assert key == "raw/public/orders/LOAD00000001.parquet" and len(reason.encode("utf-8")) <= 4096


def test_item5_a_repeated_json_key_keeps_the_last_value_as_postgres_reads_it(landing):
    """super-configurations: JSON_PARSE refuses an object that repeats an attribute unless
    json_parse_dedup_attributes is on, which keeps the last occurrence; Postgres json keeps repeated keys and
    reads the last (datatype-json). The merge sets it, so the file loads with the value the source reads."""
    doc = '{"size": "S", "tags": {"a": 1, "a": 2}, "size": "L"}'
    assert json.loads(doc) == {"size": "L", "tags": {"a": 2}}  # Python, like Postgres, reads the last
    landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, doc))])
    landing.run()
    stored = landing.state("products")[0]["attributes"]
    assert stored.count('"size"') == 1 and stored.count('"a"') == 1, stored
    assert json.loads(stored) == {"size": "L", "tags": {"a": 2}}


def test_item5_without_the_setting_a_repeated_json_key_fails_as_in_redshift(landing):
    """The verifier's JSON_PARSE is Redshift's: merge SQL without the SET quarantines the file."""
    mutate(landing, "products", "SET json_parse_dedup_attributes TO ON;", "")
    landing.full_load("products", [change("I", FULL_LOAD_TS, None, **product(1, '{"size": "S", "size": "L"}')),
                                   change("I", FULL_LOAD_TS, None, **product(2, '{"size": "S"}'))])
    with pytest.raises(ToolError, match=r"(?s)products: raw/public/products/LOAD00000001.parquet quarantined.*"
                                        r"duplicate attribute 'size'"):
        landing.run()
    assert landing.state("products") == []


def test_item5_the_setting_lasts_one_data_api_call(tmp_path):
    """A Data API batch, or one statement, is a session of its own: a SET does not reach the next call."""
    from dwctl.warehouse.load_job import JobError
    from dwctl.warehouse.verifier import DuckDBWarehouse

    con, transpile = transpiler(tmp_path)
    warehouse = DuckDBWarehouse(con, transpile)
    twice = "SELECT JSON_PARSE('{\"k\": 1, \"k\": 2}')"
    warehouse.batch(["SET json_parse_dedup_attributes TO ON", f"CREATE TABLE s.j AS {twice} AS j"], "one")
    assert con.execute("SELECT j FROM s.j").fetchall() == [('{"k":2}',)]
    with pytest.raises(JobError, match="duplicate attribute 'k'"):
        warehouse.query(twice)
    with pytest.raises(ToolError, match="SET the verifier cannot stand in for"):
        transpile("SET enable_case_sensitive_identifier TO ON")


def test_item6_the_verifier_compares_and_groups_text_as_redshift_does(tmp_path):
    """r_Character_types: "Trailing spaces in VARCHAR and CHAR values are treated as semantically insignificant
    when values are compared" (its example counts 'Boulevard' and 'Boulevard ' as a match); r_LEN: "If
    expression is a VARCHAR string, trailing spaces are counted". Other types compare as they are."""
    con, transpile = transpiler(tmp_path)

    def one(sql: str) -> list[tuple]:
        [statement] = transpile(sql)
        return con.execute(statement).fetchall()

    for statement in transpile("CREATE TABLE s.a (k VARCHAR(8), n BIGINT)"):
        con.execute(statement)
    con.execute("INSERT INTO s.a VALUES ('k', 1), ('k ', 2), ('k\t', 3), (' k', 4)")
    assert one("SELECT 'k' = 'k  ', 'k' <> 'k ', 'k' IN ('k ', 'x'), 'k ' < 'k', 2.50 = 2.5") == \
        [(True, False, True, False, True)]
    assert one("SELECT n FROM s.a WHERE k = 'k' ORDER BY n") == [(1,), (2,)], "a tab or a leading space counts"
    assert one("SELECT x.n, y.n FROM s.a AS x JOIN s.a AS y ON x.k = y.k AND LEN(x.k) = LEN(y.k) "
               "WHERE x.n < 3 ORDER BY 1, 2") == [(1, 1), (2, 2)], "with LEN, 'k' and 'k ' stay apart"
    assert one("SELECT COUNT(DISTINCT k) FROM s.a") == [(3,)]
    assert one("SELECT COUNT(*) FROM (SELECT DISTINCT k FROM s.a) AS d") == [(3,)]
    assert one("SELECT COUNT(*) FROM (SELECT DISTINCT k, LEN(k) AS l FROM s.a) AS d") == [(4,)]
    assert one("SELECT n, ROW_NUMBER() OVER (PARTITION BY k ORDER BY n) FROM s.a ORDER BY n") == \
        [(1, 1), (2, 2), (3, 1), (4, 1)]


def test_item8_the_verifier_refuses_grants_rgrant_does_not_document(tmp_path):
    """r_GRANT: a table takes SELECT, INSERT, UPDATE, DELETE, DROP, REFERENCES, ALTER, TRUNCATE ("Amazon Redshift
    doesn't support the RULE and TRIGGER permissions"); a column SELECT or UPDATE. The job gives back what
    SVV_RELATION_PRIVILEGES showed (load_job.grant_statements): anything else fails there, so here too."""
    from dwctl.warehouse import load_job

    con, transpile = transpiler(tmp_path)
    for statement in load_job.grant_statements("s", "t", [("ALTER", "etl", "user", False), ("TRUNCATE", "etl", "user", False),
                                                          ("SELECT", "bi", "role", False)],
                                               [("c", "UPDATE", "bi", "role")]):
        for row in transpile(statement):
            con.execute(row)
    assert con.execute("SELECT COUNT(*) FROM svv_relation_privileges").fetchone()[0] == 3
    for privilege, column in (("TRIGGER", None), ("RULE", None), ("INSERT", "c"), ("DELETE", "c")):
        [grant] = load_job.grant_statements("s", "t", [] if column else [(privilege, "bi", "role", False)],
                                            [(column, privilege, "bi", "role")] if column else [])
        with pytest.raises(ToolError, match=f"Redshift grants {privilege} on no {'column' if column else 'table'}"):
            transpile(grant)
