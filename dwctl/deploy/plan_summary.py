"""What a saved plan will do, from `terraform show -json PLANFILE`: counts, a table, and data at risk.

Plans are read from Terraform's JSON, never from its human output, so the summary is exact. Deleting
or replacing a resource that holds data (the landing bucket, the Redshift namespace, the Glue catalog,
the DMS task with its CDC position) is flagged loudly: a replace there is a silent data loss.
"""

from __future__ import annotations

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
class Summary:
    changes: tuple[Change, ...]
    outputs: tuple[tuple[str, str], ...]  # (name, action) for outputs that change

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
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Summary":
        return cls(tuple(Change(r["address"], r["type"], r["action"]) for r in data.get("resources", [])),
                   tuple((o["name"], o["action"]) for o in data.get("outputs", [])))


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
    return Summary(tuple(changes), tuple(outputs))


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


def warning(summary: Summary) -> str:
    """Empty when no data-holding resource is deleted or replaced."""
    risky = summary.at_risk
    if not risky:
        return ""
    body = "\n".join(f"!!   {c.action:<8} {c.address}" for c in risky)
    return ("!! WARNING: DATA LOSS. This plan deletes or replaces resources that hold data:\n" + body +
            "\n!! Their contents (landed files, warehouse tables, catalog, CDC position) will be lost."
            "\n!! Review the plan above before `dwctl apply`.")
