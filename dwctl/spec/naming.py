"""Source names as the database spells them, and the target names every layer after DMS uses.

A source identifier (schema, table, column) is kept exactly: mixed case, spaces, a leading
digit, up to 64 characters (MySQL) or 63 bytes (Postgres). Its target is a lower-case
snake_case identifier, valid in Glue (which folds to lower case) and Redshift, derived here by
default and overridable in the spec. DMS renames source to target in the table mapping, so the
S3 folders, the Parquet column names, the Glue catalog, the grants and the SQL all see targets.
"""

from __future__ import annotations

import hashlib
import re

# SQL / Glue / HCL-label identifiers: lower case because Glue and Redshift fold to it.
IDENT = r"^[a-z_][a-z0-9_]{0,62}$"
# A source identifier: any printable text but the characters that would need escaping in the
# DMS object-locator wildcard syntax ([ and ], see render.text.dms_pattern) or that no sane
# catalog name holds (quotes, backslash, control characters); no leading or trailing blank.
_NOT = r'"\x60\[\]\\\x00-\x1f\x7f'  # " ` [ ] \ and control characters
SOURCE_NAME = rf"^[^\s{_NOT}](?:[^{_NOT}]{{0,62}}[^\s{_NOT}])?$"
MAX_SOURCE = {"postgres": 63, "mysql": 64}  # Postgres: NAMEDATALEN - 1 bytes; MySQL: 64 characters
TARGET_MAX = 63


def source_too_long(name: str, family: str) -> str | None:
    """Why `name` cannot be a source identifier of this engine, or None."""
    size = len(name.encode("utf-8")) if family == "postgres" else len(name)
    limit = MAX_SOURCE[family]
    if size > limit:
        unit = "bytes" if family == "postgres" else "characters"
        return f"{name!r} is {size} {unit}; {family} identifiers are at most {limit}"
    return None


def target_name(source: str) -> str:
    """The default target of a source identifier: itself when it is one already, else snake_case
    (OrderItems -> order_items, "Ship To" -> ship_to, 2ndLine -> _2nd_line); a name past 63
    characters is cut and given a short hash of the source, so two long names stay apart."""
    if re.fullmatch(IDENT, source):
        return source
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", source)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    if not text:
        return "_" + digest
    if text[0].isdigit():
        text = "_" + text
    if len(text) > TARGET_MAX:
        text = text[:TARGET_MAX - 9].rstrip("_") + "_" + digest
    return text


# "Transformations cannot be performed on columns that contain special characters (e.g. #, \, /, -)
# in their name" (DMS User Guide, CHAP_Tasks.CustomizingTasks.TableMapping.SelectionTransformation.
# Transformations, Limitations): such a column can be neither renamed nor removed by DMS.
DMS_UNTRANSFORMABLE = frozenset("#\\/-")


def dms_transformable(source: str) -> bool:
    return not DMS_UNTRANSFORMABLE & set(source)
