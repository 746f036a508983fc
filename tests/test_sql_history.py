"""Random change histories through the rendered SQL (DuckDB) agree with a Python replay of the source.

Hypothesis draws a full load, a stream of I/U/D changes on a few composite keys (so keys
collide), timestamp ties, splits into CDC files and scheduled runs, rows shuffled inside
files, and old files delivered again. After every run the analytics table must equal the
source's state after the changes delivered so far. Nothing is mocked: real Parquet files,
the rendered SQL, DuckDB.
"""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwctl.render import render
from dwctl.sqlverify import Verifier
from tests.dms_files import Landing, change, spec_with_tables

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


@lru_cache(maxsize=1)
def ledger():
    spec = spec_with_tables(TABLE, name="ledger.yaml")
    return spec, render(spec, "ledger.yaml")


keys = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3))
values = st.fixed_dictionaries({
    "amount": st.none() | st.decimals(min_value=-999, max_value=999, places=2, allow_nan=False, allow_infinity=False),
    "note": st.none() | st.text(alphabet="xy ,'\"\\é", max_size=4),
    "doc": st.none() | st.sampled_from(['{"a": 1}', "[1, 2]", '"s"', "{}", "null"]),
})


@st.composite
def histories(draw):
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
    return initial, events, load_ts, load_split, files, spacing, runs, redeliver


def replay(initial: dict, events: list) -> dict:
    """The oracle: the source table after the full load and then each change in commit order."""
    state = dict(initial)
    for key, op, vals, _, _ in events:
        if op == "D":
            state.pop(key, None)
        else:
            state[key] = vals
    return state


def normalized(state: dict) -> dict:
    return {key: (vals["amount"], vals["note"], None if vals["doc"] is None else json.loads(vals["doc"]))
            for key, vals in state.items()}


def row(key, vals) -> dict:
    return {"tenant": key[0], "id": key[1], **vals}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_random_histories_match_the_replayed_source(history):
    initial, events, load_ts, load_split, files, spacing, runs, redeliver = history
    spec, rendered = ledger()
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "bucket", Path(tmp) / "work"
        work.mkdir()
        landing = Landing(root, spec, Verifier(spec, duckdb.connect(), work, files=rendered))
        items = sorted(initial.items())
        parts = [items[i::load_split] for i in range(load_split)]
        for number, part in enumerate(parts, 1):
            if part:
                landing.full_load("ledger", [change("I", load_ts, None, **row(k, v)) for k, v in part], number)
        delivered, written = 0, []
        for end in runs:
            for path in [written[i % len(written)] for i in redeliver] if written else []:
                path.write_bytes(path.read_bytes())  # the same file delivered again
            for index in range(delivered, end):
                rows = [change(op, f"2024-01-01 12:{s // 60 % 60:02d}:{s % 60:02d}.000000", seq, **row(k, v))
                        for k, op, v, s, seq in files[index]]
                written.append(landing.cdc("ledger", (index + 1) * spacing, rows))
            delivered = end
            landing.run()
            applied = [e for chunk in files[:delivered] for e in chunk]
            expected = replay(initial, sorted(applied, key=lambda e: e[4]))
            got = {(r["tenant"], r["id"]): {c: r[c] for c in COLUMNS} for r in landing.state("ledger")}
            assert normalized(got) == normalized(expected)


def test_oracle_replays_in_order():
    """The oracle itself: insert, update, delete, reinsert of one key."""
    k = ("a", 1)
    v1, v2 = {"amount": Decimal("1.00"), "note": None, "doc": None}, {"amount": None, "note": "x", "doc": "{}"}
    events = [(k, "I", v1, 1, 1), (k, "U", v2, 1, 2), (k, "D", v1, 2, 3)]
    assert replay({}, events) == {}
    assert replay({}, events + [(k, "I", v1, 3, 4)]) == {k: v1}
    assert replay({k: v2}, [(("b", 2), "D", v1, 1, 1)]) == {k: v2}
