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
    from dwctl.spec.model import Spec, Table

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

# Per-table LOB settings: the DMS User Guide's table-settings page ("Specifying LOB settings for a selected
# table or view", https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TableMapping.
# SelectionTransformation.Tablesettings.html#CHAP_Tasks.CustomizingTasks.TableMapping.SelectionTransformation.
# Tablesettings.LOB) lists the target endpoints that support `lob-settings`: Oracle, Microsoft SQL Server,
# MySQL, PostgreSQL and SAP ASE. Amazon S3 is not among them, and CHAP_Target.S3 (Limitations) documents none
# for S3 beyond "Full LOB mode is not supported". So a `lob:` table setting is refused rather than rendered as
# a rule DMS may ignore: every table gets the task's limited LOB mode (LobMaxSize = dms_lob_max_size_kb).
PER_TABLE_LOB_REFUSED = (
    "lob is not supported with the S3 target: the DMS User Guide lists per-table LOB settings (a table-settings "
    "rule's lob-settings) for Oracle, SQL Server, MySQL, PostgreSQL and SAP ASE targets only (Table-settings "
    "rules, \"Specifying LOB settings for a selected table or view\"); every table uses the task's limited LOB "
    "mode, whose size is the variable dms_lob_max_size_kb (S3 has no full LOB mode): remove lob")


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


def check_tasks(spec: "Spec") -> None:
    """Located errors for task names and settings the stack or DMS would refuse."""
    from dwctl.spec.model import LocatedError

    stem = f"{spec.project}-{spec.environment}"
    tasks = assign(spec)
    for i, table in enumerate(spec.tables):
        if table.task is not None:
            _check_names(stem, table.task, ("tables", i, "task"))
        load = table.parallel_load
        # "When using the Parallel Load feature, table segmentation according to partitions or
        # sub-partitions isn't supported" (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Source.PostgreSQL.html).
        if load is not None and load.type != "ranges" and spec.source.family == "postgres":
            raise LocatedError(("tables", i, "parallel_load", "type"), f"{load.type} needs a MySQL source: DMS "
                               "loads Postgres tables in parallel by ranges only")
        if load is not None and table.partitions:
            raise LocatedError(("tables", i, "parallel_load"), "a partitioned table cannot also be loaded in "
                               "parallel segments: DMS loads its partitions as separate tables already (up to "
                               "MaxFullLoadSubTasks at once)")
        if table.lob is not None:
            raise LocatedError(("tables", i, "lob"), PER_TABLE_LOB_REFUSED)
    for name in tasks:
        if any(t.task is None for t in tasks[name]):
            _check_names(stem, name, ("dms", "tables_per_task"))
    for name in spec.dms.tasks:
        if name not in tasks:
            raise LocatedError(("dms", "tasks", name), f"no table is in task {name!r}: a task without tables "
                               f"fails (FailOnNoTablesCaptured); set `task: {name}` on a table or remove the entry")


def _check_names(stem: str, task: str, where: tuple) -> None:
    from dwctl.spec.model import LocatedError

    for suffix, limit, what in TASK_NAMES:
        name = stem + suffix.format(task=task)
        if len(name) > limit:
            raise LocatedError(where, f"the {what} name {name!r} is {len(name)} characters, AWS allows {limit}: "
                               "shorten the task name")
