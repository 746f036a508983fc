"""Write Parquet files the way DMS lands them: the column names and order come from dwctl.spec.landed_layout."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dwctl.render.engine import TableView
from dwctl.spec import landed_layout as layout

FULL_LOAD_TS = "2024-01-01 00:00:00.000000"


def arrow_type(staging_type: str) -> pa.DataType:
    """The Parquet type DMS writes for a staging column type."""
    t = staging_type.upper()
    if m := re.match(r"DECIMAL\((\d+),(\d+)\)", t):
        return pa.decimal128(int(m[1]), int(m[2]))
    simple = {"BIGINT": pa.int64(), "INTEGER": pa.int32(), "SMALLINT": pa.int16(), "BOOLEAN": pa.bool_(),
              "REAL": pa.float32(), "DOUBLE PRECISION": pa.float64(), "DATE": pa.date32(),
              "TIMESTAMP": pa.timestamp("us"), "TIMESTAMPTZ": pa.timestamp("us", tz="UTC")}
    if t in simple:
        return simple[t]
    if t.startswith("VARBYTE"):
        return pa.binary()
    if t.startswith(("VARCHAR", "CHAR")):
        return pa.string()
    raise ValueError(f"no Parquet type for {staging_type}")


def schema(table: TableView) -> pa.Schema:
    return pa.schema([pa.field(c.parquet_name, arrow_type(c.staging_type)) for c in table.landed])


def write(path: Path, table: TableView, rows: list[dict], order: list[str] | None = None,
          types: dict[str, pa.DataType] | None = None) -> Path:
    """rows: dicts with Op, dms_commit_ts, dms_change_seq and source columns (missing -> NULL).
    order: the file's column names in the order written, when not the spec's landed layout (DMS
    documents no position for a column added by ALTER TABLE). types: a column's Parquet type when DMS
    lands another than arrow_type gives (MySQL TINYINT: INT1, a Parquet INT8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sch = schema(table)
    if order is not None:
        sch = pa.schema([sch.field(name) for name in order])
    if types:
        sch = pa.schema([pa.field(f.name, types.get(f.name, f.type)) for f in sch])
    columns = {f.name: [landed_value(row.get(f.name), f.type) for row in rows] for f in sch}
    pq.write_table(pa.table(columns, schema=sch), path)
    return path


def landed_value(value, arrow: pa.DataType):
    """A value as DMS lands it: a Python bool in a text column is DMS's true/false (Postgres BOOLEAN)."""
    if isinstance(value, bool) and pa.types.is_string(arrow):
        return "true" if value else "false"
    return value


def change(op: str, ts: str, seq: int | None, **values) -> dict:
    """One landed row; seq None is a full-load row (DMS leaves the change sequence empty)."""
    return {layout.OP_COLUMN: op, layout.TIMESTAMP_COLUMN: ts,
            layout.CHANGE_SEQ_COLUMN: "" if seq is None else f"{seq:035d}", **values}


def cdc_name(second: int) -> str:
    """DMS CDC file name for `second` seconds after 2024-01-01 12:00:00: yyyyMMdd-HHmmssSSS.parquet."""
    h, rest = divmod(second, 3600)
    m, s = divmod(rest, 60)
    return f"20240101-{12 + h:02d}{m:02d}{s:02d}000.parquet"


def table_dir(root: Path, table: TableView) -> Path:
    """root is the bucket root: the table's files go under its landing prefix."""
    return root / table.s3_prefix


class Landing:
    """A local landing bucket for one spec: write DMS files, then run the verifier on it."""

    def __init__(self, root: Path, spec, verifier):
        from dwctl.render.engine import table_view

        self.root, self.spec, self.verifier = root, spec, verifier
        self.views = {t.name: table_view(spec, t) for t in spec.tables}
        (root / spec.landing.prefix).mkdir(parents=True, exist_ok=True)

    def full_load(self, table: str, rows: list[dict], number: int = 1, order: list[str] | None = None) -> Path:
        """order: the file's columns when it is in another layout (see write)."""
        name = f"{layout.FULL_LOAD_PREFIX}{number:08d}.parquet"
        return write(table_dir(self.root, self.views[table]) / name, self.views[table], rows, order)

    def cdc(self, table: str, second: int, rows: list[dict], order: list[str] | None = None) -> Path:
        return write(table_dir(self.root, self.views[table]) / cdc_name(second), self.views[table], rows, order)

    def run(self) -> dict[str, int]:
        return self.verifier.run(self.root)

    def state(self, table: str) -> list[dict]:
        columns, rows = self.verifier.analytics(self.spec.table(table))
        return [dict(zip(columns, row)) for row in rows]


def spec_text_with_tables(tables_yaml: str, engine: str = "postgres") -> str:
    """The example spec's YAML with its tables (and grants) replaced by `tables_yaml` (a `tables:` list body)."""
    from tests.conftest import EXAMPLE

    text = EXAMPLE.read_text(encoding="utf-8")
    text = text[: text.index("\ntables:")] + "\ntables:" + tables_yaml.rstrip() + (
        "\ngovernance:\n  admins:\n    - arn:aws:iam::123456789012:role/DataPlatformAdmin\n")
    if engine != "postgres":
        text = text.replace("engine: postgres", f"engine: {engine}").replace("port: 5432", "port: 3306")
    return text


def spec_with_tables(tables_yaml: str, engine: str = "postgres", name: str = "test.yaml"):
    """The example spec with its tables (and grants) replaced by `tables_yaml`, parsed."""
    from dwctl.spec.read import parse_spec

    return parse_spec(spec_text_with_tables(tables_yaml, engine), name)


def table_statistics(schema: str, table: str, full_load_start: str | None) -> dict:
    """What `aws dms describe-table-statistics` prints for one table (AWS DMS API Reference,
    DescribeTableStatistics, TableStatistics), its latest full load begun at `full_load_start` (a
    dms_commit_ts-style UTC time), or before any full load (None)."""
    entry = {"SchemaName": schema, "TableName": table, "TableState": "Before load" if full_load_start is None
             else "Table completed", "Inserts": 0, "Deletes": 0, "Updates": 0, "FullLoadReloaded": False}
    if full_load_start is not None:
        entry["FullLoadStartTime"] = full_load_start.replace(" ", "T") + "+00:00"
    return {"ReplicationTaskArn": "arn:aws:dms:eu-west-1:123456789012:task:TESTTASK", "TableStatistics": [entry]}


# --- DMS itself, as far as the table mapping goes ----------------------------------------------------
# The rendered rules applied the way the DMS User Guide describes them, so a test of landed files
# tests the shipped rules: selection (include/exclude), rename of schema, table and column,
# remove-column, and add-column (its column comes after the source columns, see landed_layout).
# Object-locator names are patterns: % any run, _ one character, [..] a set ([_] a literal _)
# (CHAP_Tasks.CustomizingTasks.TableMapping.SelectionTransformation.Wildcards), matched with case
# ("Table names and column names in transformation rules are case-sensitive", ...Transformations).
def task_rules(files: dict[str, str]) -> dict[str, list[dict]]:
    """task -> its table-mapping rules, read from iac/dms.tf (HCL: local.dms_task_rules)."""
    import hcl2

    for block in hcl2.loads(files["iac/dms.tf"])["locals"]:
        if "dms_task_rules" in block:
            value = block["dms_task_rules"]
            value = value[0] if isinstance(value, list) else value
            return {task.strip('"'): rules for task, rules in value.items()}
    raise AssertionError("iac/dms.tf has no dms_task_rules")


def mapping_rules(files: dict[str, str]) -> list[dict]:
    """Every task's rules in one list, a rule shared by tasks (a schema rename) once."""
    seen: dict[str, dict] = {}
    for rules in task_rules(files).values():
        for rule in rules:
            seen.setdefault(rule["rule-id"], rule)
    return list(seen.values())


def dms_match(pattern: str, name: str) -> bool:
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            end = pattern.index("]", i)
            regex += "[" + "".join(re.escape(c) for c in pattern[i + 1:end]) + "]"
            i = end + 1
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, name, re.S) is not None


class DmsTask:
    """Where DMS lands a source table under these rules, and which columns its files hold."""

    def __init__(self, rules: list[dict]):
        self.rules = rules

    def _matching(self, schema: str, table: str | None = None, column: str | None = None, **wanted) -> list[dict]:
        found = []
        for rule in self.rules:
            loc = rule["object-locator"]
            if any(rule.get(k) != v for k, v in wanted.items()):
                continue
            if not dms_match(loc["schema-name"], schema):
                continue
            if table is not None and "table-name" in loc and not dms_match(loc["table-name"], table):
                continue
            if column is not None and not dms_match(loc.get("column-name", "%"), column):
                continue
            found.append(rule)
        return found

    def land(self, schema: str, table: str, columns: list[str]) -> tuple[str, list[tuple[str, str]]] | None:
        """(folder "<schema>/<table>", [(source column, landed name)] of the columns kept) for a source
        table, or None when no rule selects it."""
        chosen = self._matching(schema, table, **{"rule-type": "selection"})
        if not any(r["rule-action"] == "include" for r in chosen) or any(r["rule-action"] == "exclude" for r in chosen):
            return None
        renamed_schema = [r["value"] for r in self._matching(schema, **{"rule-action": "rename", "rule-target": "schema"})]
        renamed_table = [r["value"] for r in self._matching(schema, table, **{"rule-action": "rename", "rule-target": "table"})]
        kept = []
        for column in columns:
            if self._matching(schema, table, column, **{"rule-action": "remove-column"}):
                continue
            renamed = self._matching(schema, table, column, **{"rule-action": "rename", "rule-target": "column"})
            kept.append((column, renamed[0]["value"] if renamed else column))
        folder = f"{(renamed_schema or [schema])[0]}/{(renamed_table or [table])[0]}"
        return folder, kept

    def added(self, schema: str, table: str) -> list[str]:
        return [r["value"] for r in self._matching(schema, table, **{"rule-action": "add-column"})]


def land_source_rows(root: Path, landing_prefix: str, task: DmsTask, view: TableView, schema: str, table: str,
                     columns: list[str], rows: list[tuple], file_name: str, op: str = "I",
                     ts: str = FULL_LOAD_TS, first_seq: int | None = None) -> Path:
    """Write one DMS file of source rows (tuples in `columns` order) where the rules land it, with the
    names the rules give; the Parquet types are the view's staging types, by position."""
    landed = task.land(schema, table, columns)
    assert landed is not None, f"no rule selects {schema}.{table}"
    folder, kept = landed
    names = [layout.OP_COLUMN, layout.TIMESTAMP_COLUMN, *(name for _, name in kept), *task.added(schema, table)]
    assert len(names) == len(view.landed), f"{schema}.{table} lands {names}, the spec expects {len(view.landed)} columns"
    index = {c: i for i, c in enumerate(columns)}
    data: dict[str, list] = {n: [] for n in names}
    for k, row in enumerate(rows):
        values = [op, ts, *(row[index[c]] for c, _ in kept),
                  "" if first_seq is None else f"{first_seq + k:035d}"]
        for name, value in zip(names, values):
            data[name].append(value)
    sch = pa.schema([pa.field(n, arrow_type(c.staging_type)) for n, c in zip(names, view.landed)])
    path = root / landing_prefix / folder / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    table_data = {f.name: [landed_value(v, f.type) for v in data[f.name]] for f in sch}
    pq.write_table(pa.table(table_data, schema=sch), path)
    return path


# --- a parallel full load, as DMS lands it on S3 ----------------------------------------------------
# AWS DMS User Guide, CHAP_Target.S3, "Parallel load of partitioned sources when using Amazon S3 as a
# target": partitions-auto / partitions-list land table/<partition_name>/LOADseq_num; ranges with
# segment-names land table/<segment_name>/LOAD...; ranges without them land table/SEGMENTn_LOAD...; each
# series "named incrementally starting from LOAD00000001" (hexadecimal: SEGMENT3_LOAD0000000A). Which rows
# a range segment holds: CHAP_Tasks.CustomizingTasks.TableMapping.SelectionTransformation.Tablesettings
# (segment n: the rows below its upper boundary, compared column by column, and not in an earlier segment;
# the last segment: every other row).
def parallel_load_rule(rules: list[dict], schema: str, table: str) -> dict | None:
    """The parallel-load setting of a source table under these rules, or None."""
    for rule in DmsTask(rules)._matching(schema, table, **{"rule-type": "table-settings"}):
        if "parallel-load" in rule:
            return rule["parallel-load"]
    return None


def range_segment(load: dict, values: tuple) -> int:
    """The 0-based segment of a row whose range-column values are `values` (in load["columns"] order)."""
    for n, bound in enumerate(load["boundaries"]):
        typed = tuple(type(v)(b) for v, b in zip(values, bound))
        if values < typed:
            return n
    return len(load["boundaries"])


def load_file_name(number: int, folder: str | None = None, segment: int | None = None) -> str:
    """A full-load file's name under the table's folder: LOAD / <folder>/LOAD / SEGMENT<n>_LOAD, hex numbered."""
    name = f"{layout.FULL_LOAD_PREFIX}{number:08X}.parquet"
    if segment is not None:
        return f"SEGMENT{segment}_{name}"
    return f"{folder}/{name}" if folder else name


def parallel_load_streams(load: dict | None, rows: list[dict], partition_of=None, segment_names: bool = True) -> list[tuple[str | None, int | None, list]]:
    """The streams DMS writes a table's full load as: (folder or None, SEGMENT index or None, rows), one per
    non-empty segment or partition, in segment order (rows: dicts by the rule's column names). partition_of(row): the row's source partition
    (partitions-auto / -list). segment_names=False: a ranges rule without them (SEGMENTn_ files)."""
    if load is None:
        return [(None, None, rows)] if rows else []
    if load["type"] == "ranges":
        groups: dict[int, list] = {}
        for row in rows:
            groups.setdefault(range_segment(load, tuple(row[c] for c in load["columns"])), []).append(row)
        names = load.get("segment-names") if segment_names else None
        return [(names[n], None, groups[n]) if names else (None, n + 1, groups[n]) for n in sorted(groups)]
    groups = {}
    for row in rows:
        groups.setdefault(partition_of(row), []).append(row)
    wanted = load.get("partitions") or sorted(groups)
    # partitions-list: the User Guide does not say what DMS does with rows of partitions not listed
    assert set(groups) <= set(wanted), f"rows in partitions {sorted(set(groups) - set(wanted))} not listed"
    return [(p, None, groups[p]) for p in wanted if groups.get(p)]
