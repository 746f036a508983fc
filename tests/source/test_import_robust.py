"""`dwctl import` when the source is not kind: one table it cannot take, DSNs it cannot parse, a host that never
answers. Real PostgreSQL and MariaDB servers; the silent host is a loopback socket in a thread."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwctl.cli import cli
from dwctl.spec.read import load_spec
from tests.support.cli import run
from tests.support.minispec import write_spec

PG_ROBUST = """
CREATE TABLE customers (id bigint PRIMARY KEY, email varchar(100) NOT NULL, name text);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total numeric(12,2));
CREATE TABLE _dwctl_shadow (id integer PRIMARY KEY);
CREATE TABLE notes (id integer PRIMARY KEY, body text);
CREATE VIEW order_totals AS SELECT customer_id, sum(total) AS total FROM orders GROUP BY customer_id;
CREATE SCHEMA "Sales";
CREATE TABLE "Sales".leads (id integer PRIMARY KEY);
CREATE TABLE "Sales"."Audit" (at timestamp);
"""
# The spec knows customers with a phone column the source dropped, and a grant still names it.
CUSTOMERS = """
  - name: customers
    columns:
      - {name: id, type: bigint, nullable: false}
      - {name: email, type: varchar(100), nullable: false}
      - {name: name, type: text}
      - {name: phone, type: varchar(20)}
    primary_key: [id]
"""
GRANT = """  grants:
    - principal: arn:aws:iam::123456789012:role/Analyst
      tables: [customers]
      permissions: [SELECT]
      columns:
        exclude: [phone]
"""


@pytest.fixture(scope="module")
def pg(pg_logical):
    pg_logical.create_database("robust", PG_ROBUST)
    return pg_logical


@pytest.fixture
def spec_with_grant(tmp_path) -> Path:
    path = write_spec(tmp_path, "postgres", "robust", CUSTOMERS)
    path.write_text(path.read_text().replace("governance:\n", "governance:\n" + GRANT))
    load_spec(path)  # valid before the import
    return path


def test_the_tables_it_cannot_take_are_skipped_and_the_rest_merge(pg, spec_with_grant):
    before = spec_with_grant.read_text()
    result = run("import", "--dsn", pg.dsn(db="robust"), "-c", str(spec_with_grant))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "  added      public.orders (3 columns, primary key id)" in out
    assert "  added      public.notes (2 columns, primary key id)" in out
    assert ("  skipped    public._dwctl_shadow: not imported: the spec would refuse it: name: names starting with "
            "'_dwctl' are reserved for dwctl's own tables") in out
    assert ("  skipped    public.customers: not imported: governance.grants[0].columns.exclude names phone, which "
            "the source no longer has: take it out of the grant, then import again; the spec's entry is left as "
            "it is") in out
    assert "  skipped    public.order_totals: not imported: a view: logical decoding emits no changes" in out
    assert "added      public._dwctl_shadow" not in out
    assert out.rstrip().endswith("wrote pipeline.yaml") or "wrote " in out.splitlines()[-1]
    spec = load_spec(spec_with_grant)
    assert [t.name for t in spec.tables] == ["customers", "notes", "orders"]
    assert "phone" in spec.table("customers").column_names, "the skipped update left the entry as it was"
    after = spec_with_grant.read_text()
    assert after.startswith(before[:before.index("  - name: customers")]), "the header is untouched"


def test_a_mixed_case_schema_imports_under_its_own_spelling_and_skips_only_what_it_cannot_take(pg, spec_with_grant):
    result = run("import", "--dsn", pg.dsn(db="robust"), "--schema", "Sales", "-c", str(spec_with_grant))
    assert result.exit_code == 0, result.output
    assert "  skipped    Sales.Audit: not imported: no primary key" in result.output
    assert "  added      Sales.leads" in result.output
    spec = load_spec(spec_with_grant)
    leads = spec.table("leads")
    assert leads.schema_ == "Sales", "the source schema is kept exactly; DMS selects and lands by it"
    assert "audit" not in [t.name for t in spec.tables]


def test_a_dry_run_says_what_would_be_added(pg, spec_with_grant):
    before = spec_with_grant.read_bytes()
    result = run("import", "--dsn", pg.dsn(db="robust"), "-c", str(spec_with_grant), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "  would add  public.orders (3 columns, primary key id)" in result.output
    assert "  added" not in result.output
    assert "dry run: nothing written" in result.output
    assert spec_with_grant.read_bytes() == before


def test_asking_for_a_view_by_name_says_why(pg, spec_with_grant):
    result = run("import", "--dsn", pg.dsn(db="robust"), "-c", str(spec_with_grant), "--tables", "order_totals")
    assert result.exit_code == 0, result.output
    assert "skipped    public.order_totals: not imported: a view" in result.output
    assert "missing" not in result.output


def test_mariadb_system_versioned_tables_and_views_are_named(maria_binlog, tmp_path):
    maria_binlog.execute("CREATE DATABASE robust_kinds")
    maria_binlog.execute("CREATE TABLE plain (id int PRIMARY KEY)",
                         "CREATE TABLE prices (id int PRIMARY KEY, amount decimal(10,2)) WITH SYSTEM VERSIONING",
                         "CREATE VIEW recent AS SELECT id FROM plain", db="robust_kinds")
    maria_binlog.create_user("robust_reader", "SELECT ON robust_kinds.*")
    spec = write_spec(tmp_path, "mysql", "robust_kinds")
    result = run("import", "--dsn", maria_binlog.dsn("robust_reader", "robust_kinds"), "-c", str(spec))
    assert result.exit_code == 0, result.output
    assert "added      robust_kinds.plain" in result.output
    assert ("skipped    robust_kinds.prices: not imported: a system-versioned table: DMS does not support them on "
            "MariaDB sources") in result.output
    assert "skipped    robust_kinds.recent: not imported: a view" in result.output
    assert [t.name for t in load_spec(spec).tables] == ["plain"]


# --- passwords -----------------------------------------------------------------------

# Every window of three password characters holds a letter that appears nowhere else in dwctl's output,
# so any three characters of the password in the output can only have come from the password.
RARE = "ÆÐÞßĦŁŒŦƔǷȜΣЖЯ"
OTHER = "#/?@:%&=+ !$'()*,;[]~abcXYZ0129-._"
passwords = st.lists(st.tuples(st.sampled_from(RARE), st.text(OTHER, max_size=2)), min_size=2, max_size=8).map(
    lambda chunks: "".join(rare + other for rare, other in chunks))


def windows(secret: str) -> list[str]:
    return [secret[i:i + 3] for i in range(len(secret) - 2)]


ONE_TABLE = """
  - schema: robust
    name: things
    columns:
      - {name: id, type: int, nullable: false}
    primary_key: [id]
"""


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, Path]:
    """Specs doctor can load (import merges into them): one per engine, made once for every example."""
    return {engine: write_spec(tmp_path_factory.mktemp(engine), engine, "robust", ONE_TABLE)
            for engine in ("postgres", "mysql")}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=passwords, where=st.sampled_from(["#", "/", "?"]))
def test_no_part_of_a_password_is_ever_printed(pg, maria_binlog, specs, secret, where):
    hosts = {"postgres": f"postgresql://{{auth}}@127.0.0.1:{pg.port}/robust",
             "mysql": f"mysql://{{auth}}@127.0.0.1:{maria_binlog.port}/robust"}
    unparseable = secret[:2] + where + secret[2:]  # RFC 3986 ends the user info there
    for engine, template in hosts.items():
        for dsn, code in ((template.format(auth="nobody:" + quote(secret, safe="")), 1),
                          (template.format(auth="nobody:" + unparseable), 2)):
            for command in ("import", "doctor"):
                result = CliRunner().invoke(cli, [command, "--dsn", dsn, "-c", str(specs[engine])],
                                            env={"PGPASSFILE": "/nonexistent", "PGPASSWORD": None, "MYSQL_PWD": None})
                shown = result.output + (result.stderr or "")
                assert result.exit_code == code, shown
                assert "Traceback" not in shown and isinstance(result.exception, SystemExit), shown
                leaked = [w for w in windows(secret) + windows(unparseable) if w in shown]
                assert not leaked, (command, engine, leaked, shown)


# --- timeouts ------------------------------------------------------------------------

@contextmanager
def silent_server():
    """A loopback TCP server that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except (TimeoutError, OSError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
    assert held, "the command did connect"


@pytest.mark.parametrize("command", ["import", "doctor"])
@pytest.mark.parametrize("scheme, engine", [("postgresql", "postgres"), ("mysql", "mysql")])
def test_a_host_that_never_answers_ends_within_the_timeout(command, scheme, engine, tmp_path):
    spec = write_spec(tmp_path, engine, "shop", ONE_TABLE.replace("robust", "shop"))
    timeout = 2
    with silent_server() as port:
        started = time.monotonic()
        result = CliRunner().invoke(cli, [command, "--dsn", f"{scheme}://dms:Hush-Hush-99@127.0.0.1:{port}/shop",
                                          "-c", str(spec), "--timeout", str(timeout)])
        elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert elapsed < timeout + 1.5, f"took {elapsed:.1f} s with --timeout {timeout}"
    error = result.output.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"Error: cannot connect to {scheme}://dms:***@127.0.0.1:{port}/shop: "
                                                   f"no answer within {timeout} s (--timeout)"), result.output
    assert "Hush" not in result.output and "Traceback" not in result.output


def test_the_timeout_can_come_from_the_environment(tmp_path):
    spec = write_spec(tmp_path, "mysql", "shop")
    with silent_server() as port:
        result = CliRunner().invoke(cli, ["import", "--dsn", f"mysql://dms@127.0.0.1:{port}/shop", "-c", str(spec)],
                                    env={"DWCTL_SOURCE_TIMEOUT": "2", "MYSQL_PWD": None})
    assert result.exit_code == 1
    assert "no answer within 2 s (--timeout)" in result.output


@pytest.mark.parametrize("command", ["import", "doctor"])
def test_a_query_that_waits_on_a_lock_ends_within_the_timeout(pg, command, tmp_path):
    """libpq has no read timeout: statement_timeout makes the server cancel a catalog read a lock holds up
    (pg_inherits: read when looking for partitions, not when a session starts)."""
    import psycopg

    spec = write_spec(tmp_path, "postgres", "robust", ONE_TABLE.replace("robust", "public"))
    timeout = 2
    holder = psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", password=pg.password, dbname="robust")
    try:
        holder.execute("LOCK TABLE pg_catalog.pg_inherits IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        result = run(command, "--dsn", pg.dsn(db="robust"), "-c", str(spec), "--timeout", str(timeout))
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 1, result.output
    assert elapsed < 2 * timeout + 2, f"took {elapsed:.1f} s with --timeout {timeout}"
    assert "query failed: canceling statement due to statement timeout (no answer within 2 s" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
