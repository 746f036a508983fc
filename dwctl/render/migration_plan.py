"""What a spec change will do to the warehouse's tables, said by `dwctl render` and `dwctl plan`.

The load job decides at run time, from the warehouse's own columns (SVV_COLUMNS), which
migrations to make (dwctl/warehouse/load_job.py: plan_migrations, migrate). Here the same
decision is made with the previously rendered job config (on disk) standing in for the
warehouse, so the lines printed are the job's own notes: columns added, widened (in place or by
a rebuild), narrowings it will not make, dropped columns it keeps, a sort or distribution key moved
off a column the migration drops (the keys the previous render gave each table stand in for the
warehouse's SVV_REDSHIFT_COLUMNS). The planner is the job's code,
run from the source the render ships (the render stage may not import the warehouse stage, and a
second copy of the rules would drift from the one that runs).

`dwctl render` compares with the job config it rendered before (on disk); `dwctl plan` with the
columns the last apply uploaded (aws_s3_object.loader_columns, kept in Terraform's state, read from
`terraform show -json`'s before value). Both print describe()'s lines.
"""

from __future__ import annotations

import json
from functools import lru_cache


@lru_cache(maxsize=1)
def _job() -> dict:
    from dwctl.render.compiled import compiled
    from dwctl.render.engine import LOAD_JOB_PATH, load_job_source

    namespace = {"__name__": "dwctl_load_job"}
    exec(compiled(load_job_source(), LOAD_JOB_PATH), namespace)  # stdlib-only module: defines, runs nothing
    return namespace


def previous_columns(document: dict, only: set | None = None) -> dict[tuple[str, str], list[tuple[str, str, bool]]]:
    """The warehouse tables' columns as a previous render left them (what the job will find); `only`:
    just these (schema, table) keys."""
    return {(p["schema"], p["name"]): [tuple(c) for c in p["columns"]]
            for table in document.get("tables", {}).values() for p in table.get("warehouse_tables", [])
            if only is None or (p["schema"], p["name"]) in only}


def previous_keys(document: dict) -> dict[tuple[str, str], tuple[list[str], str | None]] | None:
    """The warehouse tables' sort and dist keys as a previous render gave them (job_config.record_keys);
    None for a render that predates the record (the job then assumes the DDL's)."""
    parts = [p for table in document.get("tables", {}).values() for p in table.get("warehouse_tables", [])]
    if not parts or any("keys" not in p for p in parts):
        return None
    return {(p["schema"], p["name"]): (list(p["keys"][0]), p["keys"][1]) for p in parts}


COLUMNS_ADDRESS = "aws_s3_object.loader_columns"


def applied_columns(plan: dict) -> str | None:
    """The warehouse columns document the last apply uploaded, from a `terraform show -json` plan:
    the loader_columns object's content before the plan (None before the first apply)."""
    for rc in plan.get("resource_changes") or []:
        if rc.get("address") == COLUMNS_ADDRESS and rc.get("mode", "managed") == "managed":
            before = (rc.get("change") or {}).get("before") or {}
            content = before.get("content")
            return content if isinstance(content, str) else None
    return None


def describe_plan(plan: dict, current: str, spec) -> list[str]:
    """describe() from what the state holds to the config about to be applied (`current`)."""
    return describe(applied_columns(plan), current, spec)


def describe(previous: str | None, current: str, spec, current_columns: str | None = None) -> list[str]:
    """Lines about the migrations from the previous job config text to the current one (none if
    there was no previous render, or it predates the warehouse_tables it records). current_columns:
    the warehouse columns document rendered with `current` (the same warehouse_tables, far shorter)."""
    if previous is None or (previous == current and not _exclude_grants(spec)):
        return []  # nothing changed, and nothing for visible_columns to say (see below)
    if previous == current and current_columns is not None:  # the columns found are the current ones
        return visible_columns(previous_columns(json.loads(current_columns), _exclude_grants(spec)), spec)
    try:
        document = json.loads(previous)
        found, keys = previous_columns(document), previous_keys(document)
    except (ValueError, AttributeError, TypeError, KeyError, IndexError):
        return []
    if not found:
        return []
    if previous == current:  # the common case of `render --check` and of a render with no spec change
        return visible_columns(found, spec)
    job = _job()
    config = job["Config"](json.loads(current))
    lines = []
    for table, migration in job["plan_migrations"](config, _differing(found, config), keys).items():
        for note in migration.notes:
            loses = "could lose values" in note or "no longer in the spec" in note
            lines.append(f"{'warning: ' if loses else ''}migration {table}: {note}"
                         + ("; dwctl does not make a change that loses data" if loses else ""))
        lines += [f"warning: migration {table}: not made: {problem}" for problem in migration.problems]
    return lines + visible_columns(found, spec)


def _differing(found: dict, config) -> dict:
    """The warehouse tables of `found` whose columns differ from the config's. The job's planner
    (load_job.plan_part) plans nothing for a table that already has exactly the columns the config
    gives it (no column to add, widen, keep or rename; an empty table is the same), so only these
    need planning: at 1,000 tables, planning every one took seconds on every render of a spec edit.
    For the same reason an unchanged job config needs no planning at all (describe)."""
    wanted = {(p["schema"], p["name"]): [tuple(c) for c in p["columns"]] for parts in config.parts.values() for p in parts}
    return {key: have for key, have in found.items() if wanted.get(key) != have}


def _exclude_grants(spec) -> set[tuple[str, str]]:
    """The analytics tables granted with an exclude list: all that visible_columns looks at."""
    return {(spec.warehouse.analytics_schema, name) for g in spec.governance.grants
            if g.columns is not None and g.columns.exclude is not None and g.tables != "all" for name in g.tables}


def visible_columns(found: dict, spec) -> list[str]:
    """A column added to a table granted with an exclude list (governance.grants[].columns.exclude)
    is granted too: Lake Formation's excluded-column list names what is hidden, not what is shown."""
    lines = []
    for grant in spec.governance.grants:
        if grant.columns is None or grant.columns.exclude is None or grant.tables == "all":
            continue
        for name in grant.tables:
            before = found.get((spec.warehouse.analytics_schema, name))
            if before is None or name not in {t.name for t in spec.tables}:
                continue
            table = spec.table(name)
            known = {c[0].lower() for c in before}
            for column in table.columns:
                renamed = column.renamed_from is not None and column.renamed_from.lower() in known  # visible before
                if column.name.lower() not in known and column.name not in grant.columns.exclude and not renamed:
                    lines.append(f"warning: grant: new column {name}.{column.name} is visible to {grant.principal} "
                                 "(its grant lists excluded columns); add it to columns.exclude to hide it")
    return lines
