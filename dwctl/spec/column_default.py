"""A column's `default:`: the constant the source gives rows that existed when it added the column.

A source `ALTER TABLE ... ADD COLUMN c ... DEFAULT <constant>` gives every existing row the default,
but DMS sends no change for those rows, so without this the warehouse keeps NULL for them. The
spec carries the constant (`dwctl import` reads it from the source catalog); the load job adds the
warehouse column with it and fills the rows already there, and a file written before the ALTER
loads it instead of NULL. Only literals of the types below: anything else is refused, located.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation

INT_RANGES = {"SMALLINT": 2 ** 15, "INTEGER": 2 ** 31, "BIGINT": 2 ** 63}
KINDS = "integer, decimal, floating-point, boolean, character and date columns"


def _split(redshift: str) -> tuple[str, tuple[int, ...]]:
    m = re.match(r"^\s*([A-Za-z][A-Za-z0-9 ]*?)\s*(?:\((\d+)(?:\s*,\s*(\d+))?\))?\s*$", redshift)
    if not m:
        return redshift.upper(), ()
    return m.group(1).upper(), tuple(int(x) for x in m.group(2, 3) if x is not None)


def sql_literal(value: bool | int | float | str, redshift: str) -> str:
    """The default as a Redshift SQL literal of the column's type; ValueError saying why it does not fit."""
    base, args = _split(redshift)
    base = {"INT": "INTEGER", "INT4": "INTEGER", "INT8": "BIGINT", "INT2": "SMALLINT", "NUMERIC": "DECIMAL",
            "FLOAT8": "DOUBLE PRECISION", "FLOAT4": "REAL", "BOOL": "BOOLEAN", "CHARACTER VARYING": "VARCHAR",
            "CHARACTER": "CHAR", "BPCHAR": "CHAR"}.get(base, base)
    if base == "BOOLEAN":
        if not isinstance(value, bool):
            raise ValueError(f"{value!r} is not a boolean: give true or false for a BOOLEAN column")
        return "TRUE" if value else "FALSE"
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, and the column is {redshift}")
    if base in INT_RANGES:
        if not isinstance(value, int):
            raise ValueError(f"{value!r} is not an integer, and the column is {redshift}")
        if not -INT_RANGES[base] <= value < INT_RANGES[base]:
            raise ValueError(f"{value} does not fit {redshift}")
        return str(value)
    if base == "DECIMAL":
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number, and the column is {redshift}") from None
        precision, scale = (args + (18, 0))[:2] if len(args) != 1 else (args[0], 0)
        whole = len(str(abs(int(number)))) if number.is_finite() and abs(number) >= 1 else 0
        if not number.is_finite() or -number.as_tuple().exponent > scale or whole > precision - scale:
            raise ValueError(f"{value} does not fit {redshift}")
        return f"CAST({number} AS DECIMAL({precision},{scale}))"
    if base in ("REAL", "DOUBLE PRECISION"):
        if not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} is not a number, and the column is {redshift}")
        return f"CAST({float(value)!r} AS {base})"
    if base in ("VARCHAR", "CHAR"):
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text: quote it for a {redshift} column")
        limit = args[0] if args else (256 if base == "VARCHAR" else 1)
        if len(value.encode("utf-8")) > limit:
            raise ValueError(f"{value!r} is longer than {redshift} ({limit} bytes)")
        if "\x00" in value:
            raise ValueError("a default may not hold a NUL character")
        return "'" + value.replace("'", "''") + "'"
    if base == "DATE":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"{value!r} is not a date: give it as \"YYYY-MM-DD\"")
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a date") from None
        return f"CAST('{value}' AS DATE)"
    raise ValueError(f"a default is supported for {KINDS}; the column is {redshift}")
