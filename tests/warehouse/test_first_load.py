"""A table's first full load takes the merge's fast path and ends exactly where the ranked path ends.

The fast path (sql/03_merge_<table>.sql) loads a first full load straight from staging when
nothing is merged yet, only LOAD rows are staged and each key is staged once; it is chosen by SQL
at run time. Hypothesis draws a first full load (a two-column key, so the duplicate check covers
composite keys), its LOAD files, some delivered twice (under a second LOAD name, or rows repeated
inside a file: DMS may deliver a LOAD file twice), then changes, spread over runs. Two properties:

* through `dwctl sql verify --database` (the CLI, one DuckDB file kept between runs) the analytics
  table equals a plain replay of the source, for a history table and a plain one;
* through the verifier's API, the whole warehouse state -- analytics, history, every key's version
  (stored, or implied by its analytics row: the fast path stores none) and tombstone, the deletes -- equals the state the same delivery gives with the fast path
  switched off in the rendered SQL (the reference: the ranked path alone), and the fast path was
  really taken whenever the first batch was a clean first load.
"""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwctl.cli import cli
from dwctl.render.engine import render, table_view
from dwctl.spec import landed_layout as layout
from dwctl.spec.read import parse_spec
from dwctl.warehouse.verifier import JOB_CONFIG, Verifier
from tests.support.dms_files import change, spec_text_with_tables, write
from tests.warehouse.test_exactly_once import replay as replay_source

LEDGER = """
  - schema: app
    name: ledger
    columns:
      - {name: id, type: bigint, nullable: false}
      - {name: part, type: varchar(4), nullable: false}
      - {name: note, type: varchar(12)}
      - {name: amount, type: "numeric(10,2)"}
    primary_key: [id, part]
    history: true
"""
TABLES = LEDGER + LEDGER.replace("name: ledger", "name: plain").replace("    history: true\n", "")
SPEC_TEXT = spec_text_with_tables(TABLES)
SPEC = parse_spec(SPEC_TEXT, "first.yaml")
NAMES = ("ledger", "plain")
VIEWS = {name: table_view(SPEC, SPEC.table(name)) for name in NAMES}
LOAD_TS = "2024-01-01 11:00:00.000000"
FAST_SWITCH = 'WHERE \\"l\\".\\"staged\\" > 0'  # the fast path's decision, as the job config spells it

keys = st.tuples(st.integers(0, 5), st.sampled_from(["a", "b"]))
values = st.fixed_dictionaries({
    "note": st.none() | st.text(alphabet="xy'é", max_size=3),
    "amount": st.none() | st.decimals(min_value=-99, max_value=99, places=2, allow_nan=False, allow_infinity=False),
})


def load_name(n: int) -> str:
    return f"LOAD{n:08d}.parquet"


def cdc_name(n: int) -> str:
    return f"20240101-13{n // 60:02d}{n % 60:02d}000.parquet"


def row(key: tuple, vals: dict) -> dict:
    return {"id": key[0], "part": key[1], **vals}


@st.composite
def cases(draw):
    """(initial state, changes, runs): each run a list of (file name, rows) landed before it."""
    initial = draw(st.dictionaries(keys, values, min_size=1, max_size=8))
    rows = [change("I", LOAD_TS, None, **row(k, v)) for k, v in sorted(initial.items())]
    parts = draw(st.integers(1, 3))
    loads = [rows[n::parts] for n in range(parts) if rows[n::parts]]
    repeated = draw(st.booleans())
    if repeated:  # one LOAD file's rows repeated inside it
        i = draw(st.integers(0, len(loads) - 1))
        loads[i] = loads[i] + draw(st.lists(st.sampled_from(loads[i]), min_size=1, max_size=3))
    files = [(load_name(n + 1), part) for n, part in enumerate(loads)]
    twin_later = False
    if draw(st.booleans()):  # a LOAD file delivered again under the next LOAD number
        twin_later = draw(st.booleans())  # in a later run, or in the same batch
        files_twin = (load_name(len(files) + 1), draw(st.sampled_from(files))[1])
    else:
        files_twin = None
    raw = draw(st.lists(st.tuples(keys, st.sampled_from("IUD"), values), max_size=8))
    events = [{"key": k, "op": op, "vals": v, "ts": f"2024-01-01 12:00:{i:02d}.000000", "seq": (i + 1) * 7}
              for i, (k, op, v) in enumerate(raw)]
    cdc = [(cdc_name(i + 1), [change(e["op"], e["ts"], e["seq"], **row(e["key"], e["vals"]))]) for i, e in enumerate(events)]
    first = list(files) + ([files_twin] if files_twin and not twin_later else [])
    together = draw(st.integers(0, len(cdc)))  # changes landing in the first batch (the ranked path then)
    runs = [first + cdc[:together]]
    rest = ([files_twin] if files_twin and twin_later else []) + cdc[together:]
    cut = draw(st.integers(0, len(rest)))
    runs += [rest[:cut], rest[cut:]]
    clean = together == 0 and not repeated and not (files_twin and not twin_later)
    return initial, events, runs, clean


def replay(initial: dict, events: list) -> dict:
    """The oracle: the source after its full load and each change in order (test_exactly_once's replay)."""
    return {k: (v["note"], None if v["amount"] is None else Decimal(v["amount"]))
            for k, v in replay_source(initial, events).items()}


def land(bucket: Path, files: list) -> None:
    for name in NAMES:
        for file_name, rows in files:
            write(bucket / VIEWS[name].s3_prefix / file_name, VIEWS[name], rows)


SETTINGS = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(cases())
def test_a_first_load_through_the_cli_gives_the_source(case):
    initial, events, runs, _ = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "first.yaml").write_text(SPEC_TEXT, encoding="utf-8")
        for files in runs:
            land(root / "bucket", files)
            result = CliRunner().invoke(cli, ["sql", "verify", "-c", str(root / "first.yaml"), "--data",
                                              str(root / "bucket"), "--database", str(root / "wh.duckdb"),
                                              "--export", str(root / "out"), "--format", "parquet"])
            assert result.exit_code == 0, result.output
        for name in NAMES:
            state = {(r["id"], r["part"]): (r["note"], r["amount"])
                     for r in pq.read_table(root / "out" / f"{name}.parquet").to_pylist()}
            assert state == replay(initial, events), name


class Observed:
    """The verifier's DuckDB connection, counting the rows each fast-path decision inserted (the
    marker row); everything else passes through untouched."""

    def __init__(self, con, counts=None):
        self.con, self.counts = con, counts if counts is not None else [0]

    @property
    def fast_batches(self) -> int:
        return self.counts[0]

    def cursor(self):
        """The verifier's connection for one of the job's threads (it merges tables concurrently)."""
        return Observed(self.con.cursor(), self.counts)

    def execute(self, sql, *args):
        result = self.con.execute(sql, *args)
        if sql.startswith("INSERT INTO") and '("dwctl_version", "dwctl_rank", "dwctl_copy", "dwctl_apply")' in sql:
            rows = result.fetchall()
            self.counts[0] += rows[0][0] if rows else 0
            return _Rows(rows)
        return result

    def __getattr__(self, name):
        return getattr(self.con, name)


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def fetchall(self):
        return self.rows


def ranked_only(files: dict[str, str]) -> dict[str, str]:
    """The rendered tree with the fast path's decision made impossible: the ranked path alone."""
    config = files[JOB_CONFIG]
    assert config.count(FAST_SWITCH) == len(NAMES)
    return {**files, JOB_CONFIG: config.replace(FAST_SWITCH, "WHERE FALSE AND " + FAST_SWITCH[6:])}


def key_versions(name: str) -> str:
    """Every key's version as the merge reads it: its row in <name>__dwctl_keys, or, for a key with an
    analytics row and none there, the first full load's (the fast path stores no version rows)."""
    first = (f"(SELECT LPAD(CAST(MIN(generation) AS VARCHAR), {layout.GENERATION_DIGITS}, '0') || '1' || "
             f"LPAD('', {layout.CHANGE_SEQ_LENGTH}, '0') FROM staging._dwctl_generations WHERE table_name = '{name}')")
    return (f"SELECT id, part, dwctl_version, dwctl_deleted FROM staging.{name}__dwctl_keys UNION ALL "
            f"SELECT a.id, a.part, {first}, FALSE FROM analytics.{name} a WHERE NOT EXISTS "
            f"(SELECT 1 FROM staging.{name}__dwctl_keys k WHERE k.id = a.id AND k.part = a.part)")


def warehouse_state(con) -> dict:
    out = {}
    for table in ("analytics.ledger", "analytics.ledger_history", "analytics.plain", "staging.ledger__dwctl_deletes"):
        out[table] = sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    for name in NAMES:
        out[f"versions of {name}"] = sorted(con.execute(key_versions(name)).fetchall(), key=repr)
    return out


def run_all(runs: list, files: dict[str, str], tmp: Path) -> tuple[dict, int]:
    con = Observed(duckdb.connect())
    verifier = Verifier(SPEC, con, tmp / "work", files=files)
    for batch in runs:
        land(tmp / "bucket", batch)
        verifier.run(tmp / "bucket")
    return warehouse_state(con.con), con.fast_batches


@SETTINGS
@given(cases())
def test_the_fast_path_ends_where_the_ranked_path_ends(case):
    initial, events, runs, clean = case
    files = render(SPEC, "first.yaml")
    json.loads(ranked_only(files)[JOB_CONFIG])  # still the job's config
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        fast, taken = run_all(runs, files, Path(a))
        ranked, never = run_all(runs, ranked_only(files), Path(b))
    assert never == 0
    assert taken == (len(NAMES) if clean else 0), "the fast path runs exactly for a clean first load"
    assert fast == ranked
    assert {r[:2]: r[2:] for r in fast["analytics.plain"]} == replay(initial, events)


def test_a_first_load_of_one_key_per_row_takes_the_fast_path_and_a_duplicate_does_not(tmp_path):
    rows = [change("I", LOAD_TS, None, **row((i, "a"), {"note": f"n{i}", "amount": None})) for i in range(3)]
    files = render(SPEC, "first.yaml")
    state, taken = run_all([[(load_name(1), rows)]], files, tmp_path / "clean")
    assert taken == 2
    assert [r[6] for r in state["analytics.ledger_history"]] == [True, True, True], "every first version is current"
    _, taken = run_all([[(load_name(1), rows), (load_name(2), rows[:1])]], files, tmp_path / "twice")
    assert taken == 0, "a key staged twice takes the ranked path"


def test_a_reload_after_a_fast_first_load_sweeps_the_keys_it_left_implied(tmp_path):
    """The fast path stores no key versions; a reload's sweep still finds those keys (from analytics):
    a key deleted while the table was suspended (no change captured) goes, the others stay."""
    from tests.warehouse.test_exactly_once import (
        deliver,
        life,
        notes,
        one_file_per_change,
    )

    d = one_file_per_change(life({1: "a", 2: "b", 3: "c"}, [(2, "D", None), (3, "U", "c2")], reload_at=1, uncaptured=1))
    (tmp_path / "first").mkdir()
    (tmp_path / "reload").mkdir()
    state, _ = deliver(tmp_path / "first", [d.initial_load])
    assert notes(state) == {1: "a", 2: "b", 3: "c"}
    con = duckdb.connect(str(tmp_path / "first" / "wh.duckdb"))
    try:
        assert con.execute("SELECT COUNT(*) FROM staging.acct__dwctl_keys").fetchone()[0] == 0, "versions implied"
    finally:
        con.close()
    state, history = deliver(tmp_path / "reload", [d.initial_load, d.reload, d.after])
    assert notes(state) == {1: "a", 3: "c2"}
    assert [(h[0], h[5]) for h in history if h[0] == 2] == [(2, False)], "the sweep ended key 2's version"
