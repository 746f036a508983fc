"""`dwctl import`: tell a column the source renamed from one it dropped and another it added.

A catalog shows the columns a table has now, not what happened to them; the spec shows the columns it
had at the last import, in the source's order. Import compares the two around the columns both have
(a "slot": the columns between two that both have, or after the last): a name gone from the spec's slot
and a new name in the same place of the source's is a rename when the catalog can tell, and proposed
as one when the two look alike:
- Postgres keeps a column's attnum across ALTER TABLE ... RENAME COLUMN, keeps a dropped column's slot in
  pg_attribute, and numbers an added column after every other (introspect.PG_POSITIONS). A new name
  before the last column both have cannot have been added since: it is a rename, of any type. After it,
  it is a rename when no column was dropped there before it; else a drop and an add may look the same,
  and import does not guess: it says so, and how to say it was a rename.
- MySQL and MariaDB keep a column's place when it is renamed (RENAME COLUMN, CHANGE) and add a column
  last unless told FIRST or AFTER (MySQL Reference Manual, ALTER TABLE Statement; CHAP_Source.MySQL:
  "Columns are always added to the end of the table" for DMS). The catalog keeps nothing of a dropped
  column, so a new name of the same type in a gone column's place is proposed as a rename; the output
  says it is a proposal, since a drop of the last column and an add of one of its type look the same.

A rename goes into the spec as `renamed_from: <old target name>` on the column, under its new name: the
load job then renames the warehouse column (its values carry over) and reads late files by either name.
"""

from __future__ import annotations

from typing import Any

from dwctl.source.connection import Family
from dwctl.source.introspect import SourceTable, same_type
from dwctl.spec.naming import target_name


def _slots(names: list[str], both: set[str]) -> dict[str | None, list[str]]:
    """{the last name both have before them (None: none): the names in between that only one side has}."""
    out: dict[str | None, list[str]] = {}
    last = None
    for name in names:
        if name in both:
            last = name
        else:
            out.setdefault(last, []).append(name)
    return out


def find_renames(spec_columns: list[tuple[str, str | None]], table: SourceTable,
                 family: Family) -> tuple[list[tuple[str, str, str]], list[str]]:
    """([(old source name, new source name, why)], [notes on pairs not proposed]) for one table.
    spec_columns: the spec's (source name, type) in order."""
    source = [c.name for c in table.columns]
    both = {n for n, _ in spec_columns} & set(source)
    if [n for n, _ in spec_columns if n in both] != [n for n in source if n in both]:
        return [], []  # the columns both have were reordered: places say nothing
    old_types = dict(spec_columns)
    gone = _slots([n for n, _ in spec_columns], both)
    new = _slots(source, both)
    last_shared = max((table.positions.get(n, 0) for n in both), default=0)
    renames, notes = [], []
    for slot, olds in gone.items():
        news = new.get(slot, [])
        tail = slot == ([n for n in source if n in both] or [None])[-1]
        if not news or len(news) < len(olds) or (len(news) > len(olds) and not tail):
            continue
        pairs = list(zip(olds, news))
        if family == "postgres" and all(c in table.positions for _, c in pairs):
            start = table.positions.get(slot, 0) if slot is not None else 0
            last_candidate = max(table.positions[c] for _, c in pairs)
            if last_candidate < last_shared:
                renames += [(o, c, "Postgres kept its place (attnum)") for o, c in pairs]
            elif not any(start < d < last_candidate for d in table.dropped):
                renames += [(o, c, "Postgres kept its place (attnum) and no column was dropped there")
                            for o, c in pairs]
            else:
                notes += [f"column {o} removed and {c} added: Postgres shows a column dropped at that place, so "
                          f"this is not proposed as a rename; if {o} was renamed to {c}, add renamed_from: "
                          f"{target_name(o)} to column {target_name(c)} before the next deploy" for o, c in pairs]
            continue
        if all(old_types.get(o) is not None and table.column(c).type is not None
               and same_type(str(old_types[o]), table.column(c).type, family) for o, c in pairs):
            renames += [(o, c, "the same place and type") for o, c in pairs]
    return renames, notes


def propose_renames(node: Any, by_name: dict, targets: dict, table: SourceTable, family: Family) -> list[str]:
    """Rename the spec's entries of the columns the source renamed (find_renames), in place: the entry
    keeps its place and its overrides, takes the new name and `renamed_from: <old target name>`, and the
    table's dist_key, sort_keys and exclude list follow. `by_name` ({source name: (index, entry)}) and
    `targets` ({source name: target name}) are spec_merge._update_table's, updated to match. Returns the
    lines import prints."""
    from dwctl.source.spec_merge import _name_value

    spec_columns = [(name, item.get("type")) for name, (_, item) in sorted(by_name.items(), key=lambda kv: kv[1][0])]
    renames, notes = find_renames(spec_columns, table, family)
    lines = list(notes)
    for old, new, why in renames:
        index, item = by_name.pop(old)
        old_target, new_target = targets.pop(old), target_name(new)
        _set_after(item, "name", new_target)
        if new_target != new:
            _set_after(item, "source_name", _name_value(new), "name")
        elif "source_name" in item:
            del item["source_name"]
        _set_after(item, "renamed_from", old_target, "source_name" if "source_name" in item else "name")
        by_name[new], targets[new] = (index, item), new_target
        _follow(node, old_target, new_target, old)
        lines.append(f"column {old} renamed to {new} (proposed as a rename: {why}; renamed_from: {old_target} "
                     f"makes the load job rename the warehouse column, keeping its values; if {old} was dropped "
                     "and another column added instead, take renamed_from out)")
    back = {target_name(c.name) for c in table.columns}
    for _, item in by_name.values():
        if item.get("renamed_from") in back and item.get("renamed_from") != item.get("name"):
            lines.append(f"column {item.get('name')}: renamed_from {item['renamed_from']} taken out (the source has "
                         "a column of that name again)")
            del item["renamed_from"]
    return lines


def _set_after(item, key: str, value, after: str | None = None) -> None:
    """Set key in a ruamel mapping, a new key placed after `after` (its flow style and comments kept)."""
    if key in item or after is None or not hasattr(item, "insert"):
        item[key] = value
        return
    item.insert(list(item.keys()).index(after) + 1, key, value)


def _follow(node, old_target: str, new_target: str, old_source: str) -> None:
    """dist_key, sort_keys and the exclude list name the column by its new name."""
    if node.get("dist_key") == old_target:
        node["dist_key"] = new_target
    for key in ("sort_keys", "exclude"):
        listed = node.get(key)
        if isinstance(listed, list):
            for k, name in enumerate(listed):
                if name in (old_target, old_source):
                    listed[k] = new_target
