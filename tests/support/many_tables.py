"""Specs with many tables (issue 14): the example's settings with n generated tables, some with DMS extras."""

from __future__ import annotations

from tests.support.dms_files import spec_text_with_tables


def table_yaml(name: str, *, extra: str = "", schema: str = "public", engine: str = "postgres") -> str:
    """One table: a bigint key, a NOT NULL timestamp, a text body (a LOB for DMS on Postgres); `extra` is
    more YAML for the table (task:, parallel_load:, lob:), indented like its other keys."""
    return (f"\n  - schema: {schema}\n    name: {name}\n    columns:\n"
            "      - {name: id, type: bigint, nullable: false}\n"
            f"      - {{name: created_at, type: {'timestamptz' if engine == 'postgres' else 'datetime'}, nullable: false}}\n"
            "      - {name: body, type: text}\n"
            f"    primary_key: [id]\n{extra}")


def many_tables_text(n: int, extras: dict[int, str] | None = None, dms: str = "", engine: str = "postgres") -> str:
    """The example spec with tables t0000 ... t<n-1>; extras[i] goes into table i; `dms` lines are added
    under the spec's dms: key."""
    extras = extras or {}
    text = spec_text_with_tables("".join(table_yaml(f"t{i:04d}", extra=extras.get(i, ""), engine=engine) for i in range(n)),
                                 engine)
    if dms:
        text = text.replace("\ndms:\n", "\ndms:\n" + dms.rstrip("\n") + "\n", 1)
    return text


RANGES = """    parallel_load:
      type: ranges
      columns: [id]
      boundaries: [[1000000], [2000000], [3000000]]
"""
LOB = """    lob:
      max_size_kb: 65
"""
