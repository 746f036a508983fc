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
    with pytest.raises(ToolError, match=r"1 file\(s\) quarantined[\s\S]*products: raw/public/products/20240101-120001000.parquet"):
        landing.run()
    assert json.loads({r["product_id"]: r["attributes"] for r in landing.state("products")}[1])["size"] == "L"


def test_a_file_landing_late_within_the_lookback_is_still_loaded(landing):
    landing.cdc("orders", 100, [change("I", ts(100), 2, **order(1))])
    landing.run()
    landing.cdc("orders", 50, [change("I", ts(50), 1, **order(2))])  # an earlier name, written later
    assert landing.run()["orders"] == 1
    assert statuses(landing) == {1: "new", 2: "new"}


def test_files_in_the_wrong_column_order_are_refused(landing):
    path = landing.full_load("orders", [change("I", FULL_LOAD_TS, None, **order(1))])
    table = pq.read_table(path)
    names = table.column_names
    pq.write_table(table.select([names[1], names[0], *names[2:]]), path)
    with pytest.raises(ToolError, match="by position"):
        landing.run()


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
    assert "quarantined" in result.output and "products: raw/public/products/LOAD00000001.parquet" in result.output
    assert "JSON" in result.output and "Traceback" not in result.output
