"""What a saved plan will do, from `terraform show -json PLANFILE`: counts, a table, and data at risk.

Plans are read from Terraform's JSON, never from its human output, so the summary is exact. Deleting
or replacing a resource that holds data (the landing bucket, the Redshift namespace, the Glue catalog,
the DMS task with its CDC position) is flagged loudly: a replace there is a silent data loss. So is a
table that moves from one DMS task to another (its full load restarts).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

DATA_HOLDING = frozenset({
    "aws_s3_bucket",
    "aws_redshiftserverless_namespace",
    "aws_glue_catalog_table",
    "aws_glue_catalog_database",
    "aws_dms_replication_task",
})
ORDER = ("create", "update", "replace", "delete", "read")


@dataclass(frozen=True)
class Change:
    address: str
    type: str
    action: str  # create | update | replace | delete | read

    @property
    def at_risk(self) -> bool:
        return self.type in DATA_HOLDING and self.action in ("replace", "delete")


@dataclass(frozen=True)
class Move:
    """A table whose DMS replication task changes: the old task stops capturing it, the new one loads it again."""

    table: str  # schema.table as the task's selection rule names it
    from_task: str
    to_task: str


@dataclass(frozen=True)
class Summary:
    changes: tuple[Change, ...]
    outputs: tuple[tuple[str, str], ...]  # (name, action) for outputs that change
    moves: tuple[Move, ...] = ()  # tables moved between DMS tasks
    migrations: tuple[str, ...] = ()  # what the load job will do to the warehouse's tables (render/migration_plan.py)

    @property
    def counts(self) -> dict[str, int]:
        return {action: sum(1 for c in self.changes if c.action == action) for action in ORDER[:4]}

    @property
    def at_risk(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.at_risk)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.outputs)

    def to_dict(self) -> dict:
        return {
            "changes": self.has_changes,
            "counts": self.counts,
            "resources": [{**asdict(c), "data_at_risk": c.at_risk} for c in self.changes],
            "data_at_risk": [c.address for c in self.at_risk],
            "outputs": [{"name": n, "action": a} for n, a in self.outputs],
            "dms_tables_moved": [asdict(m) for m in self.moves],
            "migrations": list(self.migrations),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Summary":
        return cls(tuple(Change(r["address"], r["type"], r["action"]) for r in data.get("resources", [])),
                   tuple((o["name"], o["action"]) for o in data.get("outputs", [])),
                   tuple(Move(**m) for m in data.get("dms_tables_moved", [])),
                   tuple(data.get("migrations", [])))


def action_of(actions: list[str]) -> str | None:
    """Terraform's action list -> one word; None for no-op."""
    kinds = set(actions)
    if kinds == {"no-op"} or not kinds:
        return None
    if kinds == {"create", "delete"}:
        return "replace"
    if len(kinds) == 1:
        return next(iter(kinds))
    return "/".join(actions)


def summarize(plan: dict) -> Summary:
    """Parse `show -json` output (format_version 0.x / 1.x)."""
    changes = []
    for rc in plan.get("resource_changes") or []:
        action = action_of(rc.get("change", {}).get("actions", []))
        if action is None or (action == "read" and rc.get("mode") == "data"):
            continue  # data sources read during apply are not changes to infrastructure
        changes.append(Change(rc["address"], rc.get("type", ""), action))
    outputs = []
    for name, oc in sorted((plan.get("output_changes") or {}).items()):
        action = action_of(oc.get("actions", []))
        if action is not None:
            outputs.append((name, action))
    rank = {a: i for i, a in enumerate(ORDER)}
    changes.sort(key=lambda c: (rank.get(c.action, len(ORDER)), c.address))
    return Summary(tuple(changes), tuple(outputs), task_moves(plan))


# --- tables moved between DMS tasks (issue 14) ------------------------------------------------------
def _task_label(rc: dict) -> str:
    """The task's for_each key (aws_dms_replication_task.this["orders"] -> orders), else its address."""
    index = rc.get("index")
    return index if isinstance(index, str) else rc["address"]


def _selected(table_mappings) -> set[str]:
    """schema.table of each include selection rule in a task's table_mappings (a JSON string)."""
    if not isinstance(table_mappings, str):
        return set()  # unknown until apply, or no task
    try:
        rules = json.loads(table_mappings).get("rules", [])
    except (ValueError, AttributeError):
        return set()
    return {f'{r["object-locator"]["schema-name"]}.{r["object-locator"]["table-name"]}' for r in rules
            if r.get("rule-type") == "selection" and r.get("rule-action") == "include"}


def task_moves(plan: dict) -> tuple[Move, ...]:
    """Tables in one task's mappings before the plan and another task's after it, from the
    before/after values Terraform puts in `show -json` (resource_changes[].change)."""
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    for rc in plan.get("resource_changes") or []:
        if rc.get("type") != "aws_dms_replication_task" or rc.get("mode", "managed") != "managed":
            continue
        change = rc.get("change") or {}
        label = _task_label(rc)
        for side, found in ((change.get("before"), before), (change.get("after"), after)):
            for table in _selected((side or {}).get("table_mappings")):
                found[table] = label
    return tuple(Move(t, before[t], after[t]) for t in sorted(before) if t in after and after[t] != before[t])


def headline(summary: Summary) -> str:
    c = summary.counts
    if not summary.has_changes:
        return "No changes."
    text = f"{c['create']} to create, {c['update']} to update, {c['replace']} to replace, {c['delete']} to delete"
    return text + (f"; {len(summary.outputs)} output(s) change" if summary.outputs else "")


def table(summary: Summary) -> str:
    """A plain-text table, one resource per line, then the loud warning when data is at risk."""
    lines = [f"  {c.action:<8} {c.address}{'   <-- HOLDS DATA' if c.at_risk else ''}" for c in summary.changes]
    lines += [f"  {a:<8} output.{n}" for n, a in summary.outputs]
    return "\n".join(lines)


def migrations(summary: Summary) -> str:
    """The warehouse migrations the plan implies, as `dwctl render` says them; empty when none."""
    if not summary.migrations:
        return ""
    return "Warehouse migrations the load job makes on its next run after this apply:\n" + \
        "\n".join(f"  {line}" for line in summary.migrations)


def warning(summary: Summary) -> str:
    """Empty when no data-holding resource is deleted or replaced and no table moves between DMS tasks."""
    parts = []
    risky = summary.at_risk
    if risky:
        body = "\n".join(f"!!   {c.action:<8} {c.address}" for c in risky)
        parts.append("!! WARNING: DATA LOSS. This plan deletes or replaces resources that hold data:\n" + body +
                     "\n!! Their contents (landed files, warehouse tables, catalog, CDC position) will be lost."
                     "\n!! Review the plan above before `dwctl apply`.")
    if summary.moves:
        parts.append(moves_callout(summary.moves))
    return "\n".join(parts)


def moves_callout(moves: tuple[Move, ...]) -> str:
    """Why a move matters: the table's full load restarts in its new task."""
    body = "\n".join(f"!!   {m.table}: task {m.from_task} -> {m.to_task}" for m in moves)
    return (f"!! {len(moves)} table(s) move to another DMS task, so their FULL LOAD RESTARTS:\n" + body +
            "\n!! The old task stops capturing each table, the new task loads it again from the source (a reload"
            "\n!! for the load job) and captures its changes from then on. Pin a table with `task:` in the spec"
            "\n!! to keep it where it is.")
