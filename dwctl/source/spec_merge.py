"""Merge tables read from a source catalog into the spec's `tables:` list, in place.

Only the table blocks that differ are touched, and inside them only the keys that differ,
so comments, key order and the user's own keys (dist_key, sort_keys, redshift_type, ...)
survive. What the source decides: the columns (names, order, types, nullability) and the
primary key. What the user decides and is kept while it still names a column: dist_key,
sort_keys and every per-column override.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from dwctl.source.connection import Family
from dwctl.source.introspect import SourceTable, Unreplicated, same_type

_PLAIN_TYPE = re.compile(r"^[a-z][a-z0-9 ]*(\(\d+\))?$")  # safe unquoted inside a {flow: mapping}


class CannotImport(Exception):
    """Raised while a table's block is planned: this table is skipped with this reason, the others merge."""


@dataclass
class Report:
    """What a merge did, table by table, for the summary and the tests."""

    added: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)  # in the spec, gone from the source, kept
    pruned: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source table -> why it was not imported
    missing: list[str] = field(default_factory=list)  # asked for with --tables, not in the source

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.pruned)

    def lines(self, written: bool = True) -> list[str]:
        """The summary; `written` False (a dry run) says what would change, since nothing did."""
        add, update, remove = ("added", "updated", "removed") if written else (
            "would add", "would update", "would remove")
        out = [f"  {add:<10} {name}" for name in self.added]
        for name, changes in self.updated.items():
            out.append(f"  {update:<10} {name}: " + "; ".join(changes))
        out += [f"  {remove:<10} {name}: gone from the source (--prune)" for name in self.pruned]
        out += [f"  vanished   {name}: no longer in the source; kept in the spec (--prune removes it)"
                for name in self.vanished]
        out += [f"  skipped    {name}: not imported: {why}" for name, why in self.skipped.items()]
        out += [f"  missing    {name}: not found in the source" for name in self.missing]
        if self.unchanged:
            out.append(f"  unchanged  {', '.join(self.unchanged)}")
        return out


def merge(data: Any, source: dict[str, SourceTable], schema: str, family: Family, *,
          only: list[str] | None = None, prune: bool = False,
          unreplicated: dict[str, Unreplicated] | None = None) -> Report:
    """Merge `source` (one schema's tables) into the round-trip document `data`; return what changed.

    A table that cannot be imported (see plan_table) is skipped with its reason; the others still merge.
    `unreplicated` (views, foreign tables, ...) are reported as skipped, never silently left out.
    """
    from ruamel.yaml.comments import CommentedSeq

    report = Report()
    tables = data.get("tables")
    if not isinstance(tables, list):
        tables = data["tables"] = CommentedSeq()
    if not tables and hasattr(tables, "fa"):
        tables.fa.set_block_style()  # `tables: []` grows into a normal block list
    wanted = sorted(source) if only is None else [n for n in only if n in source]
    in_spec = {_source_of(t): t for t in tables if isinstance(t, dict) and t.get("schema", "public") == schema}
    unreplicated = unreplicated or {}
    for name, thing in unreplicated.items():
        if (only is None and not thing.by_name_only) or (only is not None and name in only):
            report.skipped[thing.qualified] = thing.reason
    report.missing = [n for n in only or [] if n not in source and n not in in_spec and n not in unreplicated]
    flow = _columns_are_flow(tables)
    for name in wanted:
        table = source[name]
        node = in_spec.get(name)
        try:
            block = plan_table(table, node, family, flow, data)
        except CannotImport as why:
            report.skipped[table.qualified] = str(why) + ("; the spec's entry is left as it is" if node else "")
            continue
        if node is None:
            _append(tables, block)
            excluded = table.excluded()
            report.added.append(f"{table.qualified} ({len(table.columns)} columns, "
                                f"primary key {', '.join(table.primary_key)}"
                                + (f"; excluded: {'; '.join(f'{c}: {why}' for c, why in excluded.items())}"
                                   if excluded else "") + ")")
            continue
        changes = _update_table(node, table, family, flow)  # the planned copy passed; now change the file's own
        if changes:
            report.updated[table.qualified] = changes
        else:
            report.unchanged.append(table.qualified)
    for index in range(len(tables) - 1, -1, -1):
        node = tables[index]
        if not isinstance(node, dict) or node.get("schema", "public") != schema:
            continue
        name = _source_of(node)
        if name in source or (only is not None and name not in only):
            continue
        if prune:
            del tables[index]
            report.pruned.insert(0, f"{schema}.{name}")
        else:
            report.vanished.insert(0, f"{schema}.{name}")
    return report


def plan_table(table: SourceTable, node, family: Family, flow: bool, data: Any):
    """The block this import would write for `table` (a new one, or an updated copy of the spec's `node`),
    or CannotImport("why") when the table cannot be imported.

    The one place that decides: the source side first (SourceTable.problem: names, key, types), then the
    spec's own rules for one table, checked on the very block the merge would write, so an import never
    writes a table that `dwctl render` would refuse (a reserved `_dwctl` name, an upper-case schema, ...).
    """
    why = table.problem()
    if why:
        raise CannotImport(why)
    if node is None:
        block = _new_table(table, flow, _free_target(data["tables"], table))
    else:
        block = copy.deepcopy(node)
        _update_table(block, table, family, flow)
    why = _spec_refuses(block, family) or _grants_refuse(block, data)
    if why:
        raise CannotImport(why)
    return block


def _plain(node):
    """A ruamel node as plain dicts, lists and scalars, as the spec loader would build it."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (str, int, float):
        if isinstance(node, kind):
            return kind(node)
    return node


def _spec_refuses(block, family: Family) -> str | None:
    """Why the spec would refuse this one table block (its own fields and rules, its column types), or None."""
    from pydantic import ValidationError

    from dwctl.spec.model import IDENT, LocatedError, Table
    from dwctl.spec.type_mapping import parse_source_type

    plain = _plain(block)
    try:
        Table.model_validate(plain)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc, message = tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
            located = (err.get("ctx") or {}).get("error")
            if isinstance(located, LocatedError):
                loc, message = loc + located.loc, str(located)
            elif (err.get("ctx") or {}).get("pattern") == IDENT:
                message = f"{err['input']!r} is not a spec identifier (lower-case letters, digits and _, at most 63)"
            problems.append(f"{_where(loc, plain)}: {message}")
        return "the spec would refuse it: " + "; ".join(dict.fromkeys(problems))
    for column in plain["columns"]:
        if column.get("exclude") or column.get("land_as_text") is not None:
            continue  # never landed as its own type (the same rule as Spec._cross_references)
        try:
            parse_source_type(column["type"], family)
        except ValueError as exc:
            return f"the spec would refuse it: column {column['name']}: {exc}"
    return None


def _where(loc: tuple, plain: dict) -> str:
    """("columns", 2, "name") -> "column Foo name"; ("schema",) -> "schema"."""
    if len(loc) >= 2 and loc[0] == "columns" and isinstance(loc[1], int) and loc[1] < len(plain.get("columns", [])):
        rest = " ".join(str(p) for p in loc[2:])
        return f"column {plain['columns'][loc[1]].get('name')}" + (f" {rest}" if rest else "")
    return " ".join(str(p) for p in loc)


def _grants_refuse(block, data: Any) -> str | None:
    """A column a grant names must stay in the table: else the update would break governance.grants."""
    governance = data.get("governance") if isinstance(data, dict) else None
    grants = governance.get("grants") if isinstance(governance, dict) else None
    names = {c.get("name") for c in block.get("columns", []) if isinstance(c, dict)}
    for i, grant in enumerate(grants if isinstance(grants, list) else []):
        if not isinstance(grant, dict) or not isinstance(grant.get("tables"), list) \
                or block.get("name") not in grant["tables"] or not isinstance(grant.get("columns"), dict):
            continue
        for key in ("include", "exclude"):
            gone = [c for c in grant["columns"].get(key) or [] if c not in names]
            if gone:
                return (f"governance.grants[{i}].columns.{key} names {', '.join(map(str, gone))}, which the source "
                        "no longer has: take it out of the grant, then import again")
    return None


def _source_of(node) -> Any:
    """A spec entry's source name (table or column): source_name, or the name itself."""
    return node.get("source_name", node.get("name"))


def _free_target(tables, table: SourceTable) -> str:
    """The new table's target: its derived name, or <schema>_<name> when another table has it already
    (two schemas' tables of one name must land and load apart)."""
    from dwctl.spec.naming import target_name

    taken = {t.get("name") for t in tables if isinstance(t, dict)}
    name = target_name(table.name)
    return name if name not in taken else target_name(f"{target_name(table.schema)}_{name}")


def _columns_are_flow(tables: list) -> bool:
    """New columns follow the file: `{name: x, type: y}` if the first existing column is written that way."""
    for node in tables:
        columns = node.get("columns") if isinstance(node, dict) else None
        if columns and hasattr(columns[0], "fa"):
            return columns[0].fa.flow_style()
    return True


def _type_value(text: str):
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return text if _PLAIN_TYPE.match(text) else DoubleQuotedScalarString(text)


def _name_value(text: str):
    """A source name as YAML: quoted unless it is a plain identifier (2020sales, Ship To, yes, 0x1)."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    from dwctl.spec.naming import IDENT

    return text if re.match(IDENT, text) else DoubleQuotedScalarString(text)


def _column(column, flow: bool, why_excluded: str | None = None):
    """A new column entry: target name, the source name when it differs, type, nullability; a column
    of a type outside the mapping comes with exclude: true and a comment saying why."""
    from ruamel.yaml.comments import CommentedMap

    from dwctl.spec.naming import target_name

    target = target_name(column.name)
    node = CommentedMap([("name", target)])
    if target != column.name:
        node["source_name"] = _name_value(column.name)
    node["type"] = _type_value(column.type or column.native)
    if not column.nullable:
        node["nullable"] = False
    if why_excluded:
        node["exclude"] = True
        node.yaml_add_eol_comment(f"excluded: {why_excluded}", "exclude")
    if flow and not why_excluded:
        node.fa.set_flow_style()
    return node


def _flow_list(items: list[str]):
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _new_table(table: SourceTable, flow: bool, target: str):
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from dwctl.spec.naming import target_name

    excluded = table.excluded()
    node = CommentedMap([("schema", _name_value(table.schema)), ("name", target)])
    if target != table.name:
        node["source_name"] = _name_value(table.name)
    if table.partitions:
        node["partitions"] = _flow_list([_name_value(p) for p in table.partitions])
    node["columns"] = CommentedSeq([_column(c, flow, excluded.get(c.name)) for c in table.columns])
    node["primary_key"] = _flow_list([target_name(k) for k in table.primary_key])
    return node


def _append(tables, node) -> None:
    """Append a table; if the existing tables are separated by blank lines, so is the new one."""
    tables.append(node)
    index = len(tables) - 1
    if index == 0:
        return
    before = tables.ca.items.get(index - 1) if index > 1 else None
    template = before or tables.ca.items.get(1)
    if template and template[1] and all(tok.value.strip() == "" for tok in template[1]):
        tables.ca.items[index] = copy.deepcopy(template)


def _update_table(node, table: SourceTable, family: Family, flow: bool) -> list[str]:
    """Bring one spec table in line with the source; return human-readable changes."""
    from dwctl.spec.naming import target_name
    from dwctl.spec.type_mapping import dms_lob

    changes: list[str] = []
    old = node.get("columns")
    if not isinstance(old, list):
        old = []
    by_name = {_source_of(c): (i, c) for i, c in enumerate(old) if isinstance(c, dict)}
    targets = {name: item.get("name") for name, (_, item) in by_name.items()}
    from dwctl.source.renames import propose_renames

    changes += propose_renames(node, by_name, targets, table, family)  # before the adds and removes below
    excluded = table.excluded()
    order: list[tuple[int | None, Any]] = []
    for column in table.columns:
        if column.name not in by_name:
            item = _column(column, flow, excluded.get(column.name))
            order.append((None, item))
            targets[column.name] = target_name(column.name)
            changes.append(f"column {column.name} added ({column.type or column.native}"
                           + (", excluded)" if column.name in excluded else ")"))
            if column.name not in excluded:
                changes += _carry_default(item, column, family)
            continue
        i, item = by_name[column.name]
        spelled = item.get("type")
        if column.type is None:
            if item.get("exclude") is not True:
                item["exclude"] = True
                item.yaml_add_eol_comment(f"excluded: {excluded[column.name]}", "exclude")
                changes.append(f"column {column.name} excluded ({excluded[column.name]})")
        elif not isinstance(spelled, str) or not same_type(spelled, column.type, family):
            item["type"] = _type_value(column.type)
            changes.append(f"column {column.name} type {spelled} -> {column.type}")
            if "redshift_type" in item:
                changes.append(f"column {column.name} keeps redshift_type {item['redshift_type']} "
                               "(check it still fits)")
        if item.get("land_as_text") is not None and column.type is not None and dms_lob(column.type, family):
            # DMS allows no change-data-type on a LOB (transformation rules, Limitations): it lands as text
            del item["land_as_text"]
            changes.append(f"column {column.name} land_as_text removed ({column.type} is a LOB to DMS, which "
                           "lands it as text)")
        was_nullable = item.get("nullable", True)
        if was_nullable is not column.nullable:
            if column.nullable:
                del item["nullable"]
            else:
                item["nullable"] = False
            changes.append(f"column {column.name} {'now nullable' if column.nullable else 'now NOT NULL'}")
        order.append((i, item))
    gone = [name for name in by_name if table.column(name) is None]
    changes += [f"column {name} removed" for name in gone]
    listed = node.get("exclude")
    if isinstance(listed, list) and gone:  # a table-level exclude list must name columns the table has
        dropped = {n for name in gone for n in (name, targets.get(name))}
        kept = [n for n in listed if n not in dropped]
        if kept != list(listed):
            if kept:
                listed[:] = kept
            else:
                del node["exclude"]
    if [i for i, _ in order] != list(range(len(old))):
        if not gone and all(i is not None for i, _ in order):
            changes.append("columns reordered as in the source")
        node["columns"] = _reordered(old, order)
    _set_list(node, "primary_key", [targets[k] for k in table.primary_key], changes)
    if table.partitions or node.get("partitions"):
        _set_list(node, "partitions", [_name_value(p) for p in table.partitions], changes)
    names = {targets[c.name] for c in table.columns}
    if node.get("dist_key") is not None and node["dist_key"] not in names:
        changes.append(f"dist_key {node['dist_key']} dropped (no such column any more)")
        del node["dist_key"]
    sort_keys = node.get("sort_keys")
    if isinstance(sort_keys, list):
        kept = [k for k in sort_keys if k in names]
        if kept != list(sort_keys):
            changes.append(f"sort_keys {', '.join(k for k in sort_keys if k not in names)} dropped")
            if kept:
                _set_list(node, "sort_keys", kept, [])
            else:
                del node["sort_keys"]
    return changes


def _carry_default(item, column, family: Family) -> list[str]:
    """A column added to a table the spec already has: the source gave the rows it had its DEFAULT,
    which DMS does not send. A constant goes into the spec (`default:`); an expression cannot be
    known for those rows: say so (they stay NULL in the warehouse until the table is reloaded)."""
    from dwctl.spec.column_default import sql_literal
    from dwctl.spec.type_mapping import map_type

    if column.default_expr is not None:
        return [f"warning: column {column.name}'s default {column.default_expr} is not a constant, so dwctl "
                "cannot know the value the source gave the rows that existed when the column was added: they "
                "stay NULL in the warehouse until the table is reloaded"]
    if column.default is None:
        return []
    redshift = map_type(column.type, family).redshift
    value = column.default
    if isinstance(value, str) and redshift.upper().split("(")[0] in ("SMALLINT", "INTEGER", "BIGINT") \
            and re.fullmatch(r"-?\d+", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and redshift.upper() == "BOOLEAN" and value in (0, 1):
        value = bool(value)  # MySQL: BOOLEAN is TINYINT(1), its default 0 or 1
    if isinstance(value, int) and not isinstance(value, bool) and redshift.upper().startswith(("VARCHAR", "CHAR")):
        value = str(value)
    try:
        sql_literal(value, redshift)
    except ValueError as exc:
        return [f"warning: column {column.name}'s default {column.default!r} is not carried ({exc}): the rows "
                "that existed when the column was added stay NULL in the warehouse until the table is reloaded"]
    item["default"] = _default_value(value)
    return [f"column {column.name} default {value!r} (the rows already there get it in the warehouse too)"]


def _default_value(value):
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return DoubleQuotedScalarString(value) if isinstance(value, str) else value


def _reordered(old, order):
    """A new column list in source order that carries each kept item's comments along."""
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq([item for _, item in order])
    if hasattr(old, "ca"):
        seq.ca.comment = old.ca.comment
        for new_index, (old_index, _) in enumerate(order):
            if old_index is not None and old_index in old.ca.items:
                seq.ca.items[new_index] = old.ca.items[old_index]
        if hasattr(old, "fa") and old.fa.flow_style():
            seq.fa.set_flow_style()
    return seq


def _set_list(node, key: str, values: list[str], changes: list[str]) -> None:
    """Replace a list value in place (keeps its flow style and trailing comment)."""
    current = node.get(key)
    if isinstance(current, list) and list(current) == values:
        return
    if isinstance(current, list):
        changes.append(f"{key} {', '.join(map(str, current))} -> {', '.join(values)}")
        current[:] = values
    else:
        changes.append(f"{key} set to {', '.join(values)}")
        node[key] = _flow_list(values)
