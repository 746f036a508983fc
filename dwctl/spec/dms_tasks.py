"""Which DMS replication task carries which table, and what a table's table-settings rule may hold (issue 14).

At hundreds of tables AWS advises several tasks: a failure or a reload then stops one group, and full
loads and CDC apply run in parallel ("you can partition tables into four tasks ... and run them in
parallel", https://docs.aws.amazon.com/dms/latest/userguide/CHAP_BestPractices.SizingReplicationInstance.html).
Each table is in exactly one task: tasks writing the same table to one bucket "result in those tasks
writing to the same file" (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Target.S3.html, limitations).

Assignment, stable by construction:
- a table's `task:` wins;
- the other tables are spread over K = ceil(unpinned / dms.tables_per_task) default tasks named
  full-load-and-cdc, full-load-and-cdc-2, ... by rendezvous (highest random weight) hashing: a table
  goes to the default task with the highest sha256("<schema>.<table>", task). Its task depends on
  nothing but its own name and K, so adding a table anywhere in the list (first, middle or last),
  removing one or reordering the list moves no other table;
- only a change of K (the unpinned count crossing a multiple of tables_per_task) moves tables: those
  whose highest weight is the new (or removed) task, about 1/K of them. `dwctl plan` names each moved
  table (its full load restarts in its new task). Pin big tables with `task:` to keep them put;
- groups hold about tables_per_task tables each (a hash spread, about +-sqrt(tables_per_task) at
  hundreds of tables), not exactly; with a handful of tables the spread is uneven and a default task
  may get none (it is then not created): use `task:` where exact groups matter.
The first default task keeps the id of the single task dwctl rendered before tasks existed.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dwctl.spec.model import Column, Spec, Table

# Derived names of each task, checked against AWS's limits (see dwctl/spec/aws_names.py):
# EventBridge rule names: 64 (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html);
# replication task ids and CloudWatch alarm names: 255.
TASK_NAMES = (("-{task}", 255, "DMS replication task"),
              ("-dms-task-{task}", 64, "EventBridge rule"),
              ("-dms-{task}-cdc-latency-source", 255, "CloudWatch alarm"),
              ("-dms-{task}-cdc-latency-target", 255, "CloudWatch alarm"))

# Types DMS handles as LOBs (CHAP_Source.PostgreSQL / CHAP_Source.MySQL data type tables: NCLOB, CLOB,
# BLOB); MySQL TEXT and BLOB land as WSTRING / BYTES(65535), not LOBs.
LOB_BASES = {"postgres": {"text", "citext", "json", "jsonb", "xml", "bytea"},
             "mysql": {"mediumtext", "longtext", "mediumblob", "longblob", "json"}}
FLOAT_BASES = {"real", "float4", "float", "double precision", "float8", "double"}
_BASE = re.compile(r"^\s*([a-z][a-z0-9]*(?: [a-z][a-z0-9]*)*?)\s*(?:\(|\[|$| unsigned| with)")


# With a parallel load, DMS lands a table's full load on S3 in one subfolder per partition or named segment,
# or as SEGMENT<n>_LOAD... files beside the table's other files (ranges without segment-names)
# (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Target.S3.html#CHAP_Target.S3.ParallelLoad). dms.tf
# names each range segment (segment_names), so a reload writes the same folders; the load job reads every
# layout and tells a reload per segment (dwctl/warehouse/load_job.py full_load_stream, is_reload).


def segment_names(boundaries: int) -> list[str]:
    """The folder of each range segment: "segment-names" defines "names for three partitions" for two
    boundaries (one segment more than boundaries, CHAP_Target.S3, ParallelLoad), each folder holding LOAD
    files "named incrementally starting from LOAD00000001"; fixed names keep a reload in the same folders."""
    return [f"segment{n:02d}" for n in range(1, boundaries + 2)]


def default_task_name(number: int) -> str:
    from dwctl.spec.model import DEFAULT_TASK

    return DEFAULT_TASK if number == 1 else f"{DEFAULT_TASK}-{number}"


def _weight(table: "Table", task: str) -> bytes:
    return hashlib.sha256(f"{table.schema_}.{table.name}\0{task}".encode()).digest()


def assign(spec: "Spec") -> dict[str, list["Table"]]:
    """Task name -> its tables in spec order; tasks in name order. Every table is in exactly one task."""
    unpinned = [t for t in spec.tables if t.task is None]
    defaults = [default_task_name(n) for n in range(1, math.ceil(len(unpinned) / spec.dms.tables_per_task) + 1)]
    chosen = {}
    for table in spec.tables:
        chosen[table.name] = table.task or max(defaults, key=lambda task: _weight(table, task))
    tasks: dict[str, list] = {name: [] for name in sorted(set(chosen.values()))}
    for table in spec.tables:
        tasks[chosen[table.name]].append(table)
    return tasks


@dataclass(frozen=True)
class TaskPlan:
    """One task as templates need it: name, tables and MaxFullLoadSubTasks."""

    name: str
    tables: tuple  # TableView (render) or Table (spec), in spec order
    max_full_load_subtasks: int


def task_plans(spec: "Spec") -> list[TaskPlan]:
    plans = []
    for name, tables in assign(spec).items():
        override = spec.dms.tasks.get(name)
        subtasks = (override and override.max_full_load_subtasks) or spec.dms.max_full_load_subtasks
        plans.append(TaskPlan(name, tuple(tables), subtasks))
    return plans


# --- table-settings checks ---------------------------------------------------------------------
def _base(type_text: str) -> str:
    match = _BASE.match(" ".join(type_text.lower().split()))
    return match[1] if match else type_text.lower()


def range_column_problem(type_text: str) -> str | None:
    """Why a column cannot bound parallel-load ranges ("You can't use columns to define segment boundaries
    with the following AWS DMS data types: DOUBLE, FLOAT, BLOB, CLOB, and NCLOB", CHAP_Tasks.CustomizingTasks.
    TableMapping.SelectionTransformation.Tablesettings), or None."""
    base = _base(type_text)
    if "[" in type_text:
        return f"an array ({type_text})"
    if base in FLOAT_BASES:
        return f"a floating-point type ({type_text})"
    if base in LOB_BASES["postgres"] | LOB_BASES["mysql"] | {"blob", "tinyblob", "binary", "varbinary"}:
        return f"a large-object or binary type ({type_text})"
    return None


def lob_floor_kb(columns: list["Column"], family: str) -> int | None:
    """Smallest safe bulk-max-size for a table: 1 KB over its widest LOB staging column, so a LOB that
    limited LOB mode cuts ("LOBs that exceed the maximum LOB size are truncated", CHAP_Tasks.LOBSupport)
    is still too long for staging and COPY refuses the file. None: the table has no LOB column.
    The task default (dms_lob_max_size_kb = 1001) is this rule for VARBYTE(1024000)."""
    from dwctl.spec.type_mapping import map_type

    widest = None
    for column in columns:
        if "[" not in column.type and _base(column.type) not in LOB_BASES[family]:
            continue
        size = re.search(r"\((\d+)\)", map_type(column.type, family).staging)
        width = int(size[1]) if size else 65535
        widest = max(widest or 0, width)
    return None if widest is None else math.ceil(widest / 1024) + 1


def check_tasks(spec: "Spec") -> None:
    """Located errors for task names and settings the stack or DMS would refuse."""
    from dwctl.spec.model import LocatedError

    stem = f"{spec.project}-{spec.environment}"
    tasks = assign(spec)
    for i, table in enumerate(spec.tables):
        if table.task is not None:
            _check_names(stem, table.task, ("tables", i, "task"))
        load = table.parallel_load
        if load is not None and load.type != "ranges" and spec.source.family == "postgres":
            # "When using the Parallel Load feature, table segmentation according to partitions or
            # sub-partitions isn't supported" (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Source.PostgreSQL.html).
            raise LocatedError(("tables", i, "parallel_load", "type"), f"{load.type} needs a MySQL source: DMS "
                               "loads Postgres tables in parallel by ranges only")
        if table.lob is not None:
            floor = lob_floor_kb(table.columns, spec.source.family)
            if floor is None:
                raise LocatedError(("tables", i, "lob"), f"table {table.name!r} has no column DMS handles as a "
                                   "LOB (text, json, bytea, long blobs): remove lob")
            if table.lob.max_size_kb < floor:
                raise LocatedError(("tables", i, "lob", "max_size_kb"), f"max_size_kb {table.lob.max_size_kb} "
                                   f"is below {floor}: DMS cuts longer LOBs to this size, and a cut value that fits "
                                   "the staging column would load silently truncated")
    for name in tasks:
        if any(t.task is None for t in tasks[name]):
            _check_names(stem, name, ("dms", "tables_per_task"))
    for name in spec.dms.tasks:
        if name not in tasks:
            raise LocatedError(("dms", "tasks", name), f"no table is in task {name!r}: a task without tables "
                               "fails (FailOnNoTablesCaptured); set `task: {name}` on a table or remove the entry")


def _check_names(stem: str, task: str, where: tuple) -> None:
    from dwctl.spec.model import LocatedError

    for suffix, limit, what in TASK_NAMES:
        name = stem + suffix.format(task=task)
        if len(name) > limit:
            raise LocatedError(where, f"the {what} name {name!r} is {len(name)} characters, AWS allows {limit}: "
                               "shorten the task name")
