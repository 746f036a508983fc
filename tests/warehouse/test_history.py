"""Random change histories through the rendered SQL (DuckDB) agree with a Python replay of the source.

Hypothesis draws a full load, a stream of I/U/D changes on a few composite keys (so keys
collide), timestamp ties, splits into CDC files and scheduled runs, rows shuffled inside
files, and old files delivered again. After every run the analytics table must equal the
source's state after the changes delivered so far and, with `history: true`, the history table
must hold every version the changes so far made. Nothing is mocked: real Parquet files, the
rendered SQL, DuckDB. Fixed cases and the render and spec checks of `history` follow.
"""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from collections import Counter
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from dwctl.errors import SpecError, ToolError
from dwctl.render.engine import render
from dwctl.spec.model import HISTORY_COLUMNS
from dwctl.spec.read import parse_spec
from dwctl.warehouse import load_job
from dwctl.warehouse.verifier import Verifier
from tests.conftest import ROOT
from tests.support.dms_files import FULL_LOAD_TS, Landing, change, spec_with_tables

TABLE = """
  - schema: app
    name: ledger
    columns:
      - {name: tenant, type: varchar(8), nullable: false}
      - {name: id, type: bigint, nullable: false}
      - {name: amount, type: "numeric(10,2)"}
      - {name: note, type: text}
      - {name: doc, type: jsonb}
    primary_key: [tenant, id]
    dist_key: id
"""
COLUMNS = ("amount", "note", "doc")


@lru_cache(maxsize=2)
def ledger(history: bool = False):
    spec = spec_with_tables(TABLE + ("    history: true\n" if history else ""), name="ledger.yaml")
    return spec, render(spec, "ledger.yaml")


keys = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3))
few_keys = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 1))  # a key changes again in later runs more often
values = st.fixed_dictionaries({
    "amount": st.none() | st.decimals(min_value=-999, max_value=999, places=2, allow_nan=False, allow_infinity=False),
    "note": st.none() | st.text(alphabet="xy ,'\"\\é", max_size=4),
    "doc": st.none() | st.sampled_from(['{"a": 1}', "[1, 2]", '"s"', "{}", "null"]),
})


@st.composite
def histories(draw, keys=keys):
    initial = draw(st.dictionaries(keys, values, max_size=5))
    raw = draw(st.lists(st.tuples(keys, st.sampled_from("IUD"), values, st.booleans()), max_size=20))
    second, events = 0, []
    for i, (key, op, vals, tie) in enumerate(raw):
        second += 0 if tie else 1
        events.append((key, op, vals, second, (i + 1) * 7))  # seq crosses digit-count boundaries
    load_ts = draw(st.sampled_from(["2024-01-01 00:00:00.000000", "2024-01-01 23:59:59.999999"]))
    load_split = draw(st.integers(1, 2))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(events) - 1)), max_size=5))) if len(events) > 1 else []
    bounds = [0, *cuts, len(events)]
    files = [events[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    files = [draw(st.permutations(chunk)) for chunk in files]  # row order inside a file means nothing
    spacing = draw(st.sampled_from([1, 900]))  # 900 s apart: old files fall outside the lookback
    stops = draw(st.sets(st.integers(1, len(files)), max_size=3)) if files else set()
    runs = sorted(stops | {len(files)})  # each run sees the files up to a stop; the last sees all
    redeliver = draw(st.lists(st.integers(0, 100), max_size=3))
    # each file's layout (issue 22: several in one batch, history kept): the spec's, or another
    parts = [sorted(initial.items())[i::load_split] for i in range(load_split)]
    layouts = [draw(layout_for([vals for _, vals in part])) for part in parts] + \
        [draw(layout_for([vals for _, _, vals, _, _ in chunk])) for chunk in files]
    return initial, events, load_ts, load_split, files, spacing, runs, redeliver, layouts


LANDED = ["Op", "dms_commit_ts", "tenant", "id", "amount", "note", "doc", "dms_change_seq"]


def layout_for(rows: list[dict]):
    """A file's column order (None: the spec's): the columns in another order, or without a column
    none of its rows has a value in (one the source added later): another layout, which the job loads
    through a staging table of its own, before the merge batch."""
    options = [None, [*LANDED[:4], "doc", "note", "amount", LANDED[-1]]]
    options += [[c for c in LANDED if c != column] for column in COLUMNS if all(r.get(column) is None for r in rows)]
    return st.sampled_from(options)


def replay(initial: dict, events: list) -> dict:
    """The oracle: the source table after the full load and then each change in commit order."""
    state = dict(initial)
    for key, op, vals, _, _ in events:
        if op == "D":
            state.pop(key, None)
        else:
            state[key] = vals
    return state


def stamp(second: int) -> str:
    """The dms_commit_ts of a change `second` seconds after 12:00."""
    return f"2024-01-01 12:{second // 60 % 60:02d}:{second % 60:02d}.000000"


def versions(initial: dict, events: list, load_ts: str) -> list[tuple]:
    """The oracle for the history: replay the full load, then each change in commit order; a change
    ends the key's open version, an I or U opens a new one. (key, values, valid_from, valid_to,
    is_current, op) per version, values as `normalized` gives them."""
    changes = [(key, "I", vals, load_ts) for key, vals in initial.items()]
    changes += [(key, op, vals, stamp(second)) for key, op, vals, second, _ in events]
    opened: dict = {}
    done = []
    for key, op, vals, at in changes:
        when = datetime.strptime(at, "%Y-%m-%d %H:%M:%S.%f")
        if key in opened:
            vals_then, since, op_then = opened.pop(key)
            done.append((key, vals_then, since, when, False, op_then))
        if op != "D":
            opened[key] = (vals, when, op)
    done += [(key, vals, since, None, True, op) for key, (vals, since, op) in opened.items()]
    return [(key, normalized({key: vals})[key], *rest) for key, vals, *rest in done]


def history_rows(landing: Landing, table: str = "ledger") -> list[tuple]:
    """The history table as the oracle's tuples."""
    columns, rows = landing.verifier.history(landing.spec.table(table))
    got = []
    for r in (dict(zip(columns, row)) for row in rows):
        key = (r["tenant"], r["id"])
        vals = normalized({key: {c: r[c] for c in COLUMNS}})[key]
        got.append((key, vals, r["valid_from"], r["valid_to"], r["is_current"], r["dwctl_op"]))
    return got


def same_versions(got: list[tuple], expected: list[tuple]) -> bool:
    """Equal as multisets (JSON values made hashable)."""
    def hashable(v):
        key, (amount, note, doc), *rest = v
        return (key, amount, note, json.dumps(doc, sort_keys=True), *rest)
    return Counter(map(hashable, got)) == Counter(map(hashable, expected))


def normalized(state: dict) -> dict:
    return {key: (vals["amount"], vals["note"], None if vals["doc"] is None else json.loads(vals["doc"]))
            for key, vals in state.items()}


def row(key, vals) -> dict:
    return {"tenant": key[0], "id": key[1], **vals}


def play(history, with_history: bool = False):
    """Land the drawn files and run the verifier as the drawn schedule says; yields after each run
    (landing, the events delivered so far in commit order)."""
    initial, events, load_ts, load_split, files, spacing, runs, redeliver, layouts = history
    spec, rendered = ledger(with_history)
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "bucket", Path(tmp) / "work"
        work.mkdir()
        landing = Landing(root, spec, Verifier(spec, duckdb.connect(), work, files=rendered))
        items = sorted(initial.items())
        parts = [items[i::load_split] for i in range(load_split)]
        for number, part in enumerate(parts, 1):
            if part:
                landing.full_load("ledger", [change("I", load_ts, None, **row(k, v)) for k, v in part], number,
                                  layouts[number - 1])
        delivered, written = 0, []
        for end in runs:
            for path in [written[i % len(written)] for i in redeliver] if written else []:
                path.write_bytes(path.read_bytes())  # the same file delivered again
            for index in range(delivered, end):
                rows = [change(op, stamp(s), seq, **row(k, v)) for k, op, v, s, seq in files[index]]
                written.append(landing.cdc("ledger", (index + 1) * spacing, rows, layouts[load_split + index]))
            delivered = end
            landing.run()
            applied = [e for chunk in files[:delivered] for e in chunk]
            yield landing, sorted(applied, key=lambda e: e[4])


def current(landing: Landing) -> dict:
    return {(r["tenant"], r["id"]): {c: r[c] for c in COLUMNS} for r in landing.state("ledger")}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_random_histories_match_the_replayed_source(history):
    initial = history[0]
    for landing, applied in play(history):
        assert normalized(current(landing)) == normalized(replay(initial, applied))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories(few_keys))
def test_random_histories_keep_every_version(history):
    """history: true: after every run the history table holds exactly the versions the changes so far
    made (full-load rows at the load's timestamp, even when it is later than the changes after them)."""
    initial, load_ts = history[0], history[2]
    for landing, applied in play(history, with_history=True):
        assert normalized(current(landing)) == normalized(replay(initial, applied))
        got = history_rows(landing)
        assert same_versions(got, versions(initial, applied, load_ts)), got
        assert {v[0]: v[1] for v in got if v[4]} == normalized(replay(initial, applied))


def test_oracle_replays_in_order():
    """The oracle itself: insert, update, delete, reinsert of one key."""
    k = ("a", 1)
    v1, v2 = {"amount": Decimal("1.00"), "note": None, "doc": None}, {"amount": None, "note": "x", "doc": "{}"}
    events = [(k, "I", v1, 1, 1), (k, "U", v2, 1, 2), (k, "D", v1, 2, 3)]
    assert replay({}, events) == {}
    assert replay({}, events + [(k, "I", v1, 3, 4)]) == {k: v1}
    assert replay({k: v2}, [(("b", 2), "D", v1, 1, 1)]) == {k: v2}


def test_oracle_versions_in_order():
    """The history oracle itself: a load version, an update, a delete, a reinsert; a delete of a key never seen."""
    k, t = ("a", 1), lambda s: datetime(2024, 1, 1, 12, 0, s)
    v1, v2 = {"amount": Decimal("1.00"), "note": None, "doc": None}, {"amount": None, "note": "x", "doc": "{}"}
    events = [(k, "U", v2, 1, 1), (k, "D", v1, 2, 2), (("b", 2), "D", v1, 3, 3), (k, "I", v1, 4, 4)]
    n1, n2 = normalized({k: v1})[k], normalized({k: v2})[k]
    assert versions({k: v1}, events, "2024-01-01 12:00:00.000000") == [
        (k, n1, t(0), t(1), False, "I"), (k, n2, t(1), t(2), False, "U"), (k, n1, t(4), None, True, "I")]


# --- fixed cases (history: true) ----------------------------------------------------------------
def at(second: int) -> datetime:
    return datetime(2024, 1, 1, 12, 0, second)


@pytest.fixture
def keeping(tmp_path) -> Landing:
    spec, rendered = ledger(history=True)
    work = tmp_path / "work"
    work.mkdir()
    return Landing(tmp_path / "bucket", spec, Verifier(spec, duckdb.connect(), work, files=rendered))


def ledger_row(note: str | None, id_: int = 1, tenant: str = "a") -> dict:
    return row((tenant, id_), {"amount": Decimal("1.00"), "note": note, "doc": None})


def chain(landing: Landing) -> list[tuple]:
    """(note, valid_from, valid_to, is_current, dwctl_op) of each version, in version order."""
    return [(vals[1], *rest) for _, vals, *rest in history_rows(landing)]


def test_insert_update_delete_reinsert_gives_three_versions(keeping):
    keeping.cdc("ledger", 1, [change("I", stamp(1), 1, **ledger_row("new")),
                              change("U", stamp(2), 2, **ledger_row("paid")),
                              change("D", stamp(3), 3, **ledger_row(None))])
    keeping.run()
    assert keeping.state("ledger") == []
    assert chain(keeping) == [("new", at(1), at(2), False, "I"), ("paid", at(2), at(3), False, "U")], \
        "deleted: the last version ends at the delete and nothing is current"
    keeping.cdc("ledger", 10, [change("I", stamp(10), 4, **ledger_row("again"))])
    keeping.run()
    assert chain(keeping) == [("new", at(1), at(2), False, "I"), ("paid", at(2), at(3), False, "U"),
                              ("again", at(10), None, True, "I")]
    assert [r["note"] for r in keeping.state("ledger")] == ["again"]


def test_the_same_changes_in_one_batch_give_the_same_versions(keeping):
    keeping.cdc("ledger", 1, [change("I", stamp(10), 4, **ledger_row("again")),
                              change("D", stamp(3), 3, **ledger_row(None)),
                              change("U", stamp(2), 2, **ledger_row("paid")),
                              change("I", stamp(1), 1, **ledger_row("new"))])
    keeping.run()
    assert chain(keeping) == [("new", at(1), at(2), False, "I"), ("paid", at(2), at(3), False, "U"),
                              ("again", at(10), None, True, "I")]


def test_changes_in_one_commit_timestamp_follow_the_change_sequence(keeping):
    keeping.full_load("ledger", [change("I", FULL_LOAD_TS.replace("00:00:00", "12:00:00"), None, **ledger_row("load"))])
    keeping.run()
    same = stamp(5)  # physically out of order: the change sequence says a, then c, then b
    keeping.cdc("ledger", 5, [change("U", same, 50, **ledger_row("b")), change("U", same, 30, **ledger_row("a")),
                              change("U", same, 40, **ledger_row("c"))])
    keeping.run()
    assert chain(keeping) == [("load", at(0), at(5), False, "I"), ("a", at(5), at(5), False, "U"),
                              ("c", at(5), at(5), False, "U"), ("b", at(5), None, True, "U")]
    assert [r["note"] for r in keeping.state("ledger")] == ["b"]


def test_a_delete_of_a_key_never_seen_inserts_nothing(keeping):
    keeping.cdc("ledger", 1, [change("D", stamp(1), 1, **ledger_row(None, id_=9)),
                              change("I", stamp(2), 2, **ledger_row("kept", id_=2))])
    keeping.run()
    assert [(v[0], v[4]) for v in history_rows(keeping)] == [(("a", 2), True)]
    keeping.cdc("ledger", 2, [change("D", stamp(3), 3, **ledger_row(None, id_=8))])
    keeping.run()
    assert [(v[0], v[3], v[4]) for v in history_rows(keeping)] == [(("a", 2), None, True)], "other keys untouched"


def test_a_change_captured_during_the_full_load_ends_the_load_version(keeping):
    """DMS stamps full-load rows with the transfer time: a change committed during the load is ordered
    after them and ends their version before it began (documented; no instant sees that version)."""
    keeping.full_load("ledger", [change("I", "2024-01-01 23:59:59.000000", None, **ledger_row("load"))])
    keeping.cdc("ledger", 1, [change("U", stamp(1), 1, **ledger_row("during"))])
    keeping.run()
    late = datetime(2024, 1, 1, 23, 59, 59)
    assert set(chain(keeping)) == {("load", late, at(1), False, "I"), ("during", at(1), None, True, "U")}


def test_a_failed_merge_leaves_the_history_as_it_was(keeping):
    keeping.cdc("ledger", 1, [change("I", stamp(1), 1, **ledger_row("new"))])
    keeping.run()
    keeping.cdc("ledger", 2, [change("U", stamp(2), 2, **ledger_row("bad") | {"doc": "{not json"})])
    with pytest.raises(ToolError, match="ledger: raw/app/ledger/20240101-120002000.parquet quarantined"):
        keeping.run()
    assert chain(keeping) == [("new", at(1), None, True, "I")]


# --- spec and render ----------------------------------------------------------------------------
def test_history_columns_and_names_are_reserved():
    for name in HISTORY_COLUMNS:
        table = TABLE.replace("{name: note,", f"{{name: {name},") + "    history: true\n"
        with pytest.raises(SpecError) as err:
            spec_with_tables(table)
        assert "tables[0].columns[3].name" in str(err.value) and "history" in str(err.value)
        spec_with_tables(table.replace("    history: true\n", ""))  # without history the name is free
    clash = TABLE + "    history: true\n" + TABLE.replace("name: ledger", "name: ledger_history")
    with pytest.raises(SpecError) as err:
        spec_with_tables(clash)
    assert "tables[0].history" in str(err.value) and "'ledger_history'" in str(err.value)


def additions(before: str, after: str) -> list[str]:
    """The blocks of lines `after` adds to `before`; fails if `after` changes or drops anything."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    added = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        assert tag in ("equal", "insert"), f"history changed existing SQL: {a[i1:i2]} -> {b[j1:j2]}"
        if tag == "insert":
            added.append("".join(b[j1:j2]))
    return added


def test_history_off_renders_the_committed_sql(example_spec, example_text):
    """`history: false` (the default) adds nothing: without history every table's SQL is the committed
    sql/ file byte for byte; a table with history only gains its history statements."""
    plain = re.sub(r"^    history: true.*\n", "", example_text, flags=re.M)
    off = parse_spec(plain, "pipeline.yaml")
    assert not any(t.history for t in off.tables)
    files = {p: t for p, t in render(off, "config/pipeline.yaml").items() if p.startswith("sql/")}
    keeping = [t.name for t in example_spec.tables if t.history]
    assert sorted(files) == sorted(f"sql/{p.name}" for p in (ROOT / "sql").iterdir())
    for path, text in files.items():
        committed = (ROOT / path).read_text(encoding="utf-8")
        if path == "sql/01_create_tables.sql" or path.removeprefix("sql/03_merge_")[:-4] in keeping:
            added = additions(text, committed)
            # per table with history: its history table and its deletes table; in its merge, the history
            # steps and their line in the header comment
            assert len(added) == 2 * (len(keeping) if path.startswith("sql/01") else 1), path
            assert all("history" in block.lower() or "__dwctl_deletes" in block for block in added), path
        else:
            assert text == committed, path
    explicit = plain.replace("    primary_key:", "    history: false\n    primary_key:")
    assert explicit.count("history: false") == len(off.tables)
    assert render(parse_spec(explicit, "pipeline.yaml"), "x") == render(off, "x")


def column_defs(create: exp.Create) -> list[tuple[str, str, bool]]:
    """(name, Redshift type, NOT NULL) of each column of a parsed CREATE TABLE."""
    return [(c.name, c.args["kind"].sql("redshift"), c.find(exp.NotNullColumnConstraint) is not None)
            for c in create.this.expressions if isinstance(c, exp.ColumnDef)]


def written(statement: exp.Expression) -> str | None:
    """schema.table an INSERT, UPDATE or DELETE writes to."""
    if not isinstance(statement, (exp.Insert, exp.Update, exp.Delete)):
        return None
    table = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
    return f"{table.db}.{table.name}"


def test_history_table_ddl_and_merge_statements():
    spec, rendered = ledger(history=True)
    creates = {f"{s.this.this.db}.{s.this.this.name}": s
               for s in sqlglot.parse(rendered["sql/01_create_tables.sql"], read="redshift")
               if isinstance(s, exp.Create) and s.kind == "TABLE"}
    table, history = creates["analytics.ledger"], creates["analytics.ledger_history"]
    assert column_defs(history) == column_defs(table) + [
        ("valid_from", "TIMESTAMP", True), ("valid_to", "TIMESTAMP", False),
        ("is_current", "BOOLEAN", True), ("dwctl_op", "CHAR(1)", True), ("dwctl_version", "VARCHAR(61)", True)]
    assert [name for name, _, _ in column_defs(history)][-5:] == list(HISTORY_COLUMNS)
    assert history.find(exp.PrimaryKey) is None, "versions repeat a key: no (trusted) primary key"
    props = history.args["properties"].expressions
    assert [p.this.name for p in props if isinstance(p, exp.DistKeyProperty)] == ["id"]

    merge = [s for s in sqlglot.parse(rendered["sql/03_merge_ledger.sql"], read="redshift") if s is not None]
    assert isinstance(merge[0], exp.Transaction) and isinstance(merge[-1], exp.Commit)
    steps = [(type(s).__name__, written(s)) for s in merge]
    insert = steps.index(("Insert", "analytics.ledger_history"))
    update = steps.index(("Update", "analytics.ledger_history"))
    assert steps.index(("Insert", "analytics.ledger")) < insert < update < len(steps) - 2, steps
    assert steps[-2] == ("Delete", "staging.ledger__dwctl_work"), "work is cleared after the history read it"
    assert not any(isinstance(s, exp.Command) for s in merge)
    config = load_job.Config.from_json(rendered["iac/glue_scripts/load_job_config.json"])
    batch = load_job.without_transaction(load_job.split_statements(config.merge_sql["ledger"]))
    assert len(batch) == len(merge) - 2 and any(s.startswith('UPDATE "analytics"."ledger_history"') for s in batch)
