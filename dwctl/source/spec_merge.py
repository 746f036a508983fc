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
from dwctl.source.introspect import SourceTable, same_type

_PLAIN_TYPE = re.compile(r"^[a-z][a-z0-9 ]*(\(\d+\))?$")  # safe unquoted inside a {flow: mapping}


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

    def lines(self) -> list[str]:
        out = [f"  added      {name}" for name in self.added]
        for name, changes in self.updated.items():
            out.append(f"  updated    {name}: " + "; ".join(changes))
        out += [f"  removed    {name}: gone from the source (--prune)" for name in self.pruned]
        out += [f"  vanished   {name}: no longer in the source; kept in the spec (--prune removes it)"
                for name in self.vanished]
        out += [f"  skipped    {name}: not imported: {why}" for name, why in self.skipped.items()]
        out += [f"  missing    {name}: not found in the source" for name in self.missing]
        if self.unchanged:
            out.append(f"  unchanged  {', '.join(self.unchanged)}")
        return out


def merge(data: Any, source: dict[str, SourceTable], schema: str, family: Family, *,
          only: list[str] | None = None, prune: bool = False) -> Report:
    """Merge `source` (one schema's tables) into the round-trip document `data`; return what changed."""
    from ruamel.yaml.comments import CommentedSeq

    report = Report()
    tables = data.get("tables")
    if not isinstance(tables, list):
        tables = data["tables"] = CommentedSeq()
    if not tables and hasattr(tables, "fa"):
        tables.fa.set_block_style()  # `tables: []` grows into a normal block list
    wanted = sorted(source) if only is None else [n for n in only if n in source]
    in_spec = {_source_of(t): t for t in tables if isinstance(t, dict) and t.get("schema", "public") == schema}
    report.missing = [n for n in only or [] if n not in source and n not in in_spec]
    flow = _columns_are_flow(tables)
    for name in wanted:
        table = source[name]
        node = in_spec.get(name)
        why = table.problem()
        if why:
            report.skipped[table.qualified] = why + ("; the spec's entry is left as it is" if node is not None else "")
            continue
        if node is None:
            _append(tables, _new_table(table, flow, _free_target(tables, table)))
            excluded = table.excluded()
            report.added.append(f"{table.qualified} ({len(table.columns)} columns, "
                                f"primary key {', '.join(table.primary_key)}"
                                + (f"; excluded: {'; '.join(f'{c}: {why}' for c, why in excluded.items())}"
                                   if excluded else "") + ")")
            continue
        changes = _update_table(node, table, family, flow)
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

    changes: list[str] = []
    old = node.get("columns")
    if not isinstance(old, list):
        old = []
    by_name = {_source_of(c): (i, c) for i, c in enumerate(old) if isinstance(c, dict)}
    targets = {name: item.get("name") for name, (_, item) in by_name.items()}
    excluded = table.excluded()
    order: list[tuple[int | None, Any]] = []
    for column in table.columns:
        if column.name not in by_name:
            order.append((None, _column(column, flow, excluded.get(column.name))))
            targets[column.name] = target_name(column.name)
            changes.append(f"column {column.name} added ({column.type or column.native}"
                           + (", excluded)" if column.name in excluded else ")"))
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
