"""The layout of the Parquet files DMS lands, defined once for the DMS settings, Glue and the SQL.

DMS (S3 target, Parquet) writes `Op` first (I/U/D; IncludeOpForFullLoad makes full load
rows carry `I` too), then the timestamp column named by TimestampColumnName (a STRING
`yyyy-MM-dd HH:mm:ss.SSSSSS`: commit time for CDC, transfer time for full load), then the
source columns in table order. Columns added by a table-mapping transformation come last:
we add `$AR_H_CHANGE_SEQ` so that changes sharing one commit timestamp keep their order.
"""

from __future__ import annotations

from dataclasses import dataclass

OP_COLUMN = "Op"
TIMESTAMP_COLUMN = "dms_commit_ts"
CHANGE_SEQ_COLUMN = "dms_change_seq"
CHANGE_SEQ_EXPRESSION = "$AR_H_CHANGE_SEQ"
CHANGE_SEQ_LENGTH = 50  # $AR_H_CHANGE_SEQ is a 35-digit string; leave headroom
FULL_LOAD_PREFIX = "LOAD"  # full-load files: LOAD00000001.parquet; CDC files: 20240101-123456789.parquet


@dataclass(frozen=True)
class LandedColumn:
    """One column of a landed Parquet file and its staging type in Redshift."""

    name: str
    staging_type: str
    glue_type: str
    source: bool  # True for a column of the source table, False for a DMS-added one
    file_name: str = ""  # the name in the Parquet file when DMS could not rename it to `name`

    @property
    def parquet_name(self) -> str:
        """The column's name in the landed file (COPY maps by position; Glue reads it by name)."""
        return self.file_name or self.name


def landed_columns(source_columns: list[tuple]) -> list[LandedColumn]:
    """Op, timestamp, the source columns (name, staging type, glue type[, name in the file]) in order,
    then the change sequence."""
    return [
        LandedColumn(OP_COLUMN, "CHAR(1)", "string", False),
        LandedColumn(TIMESTAMP_COLUMN, "VARCHAR(26)", "string", False),
        *(LandedColumn(c[0], c[1], c[2], True, c[3] if len(c) > 3 and c[3] != c[0] else "")
          for c in source_columns),
        LandedColumn(CHANGE_SEQ_COLUMN, f"VARCHAR({CHANGE_SEQ_LENGTH})", "string", False),
    ]


LANDED_NAMES = (OP_COLUMN, TIMESTAMP_COLUMN, CHANGE_SEQ_COLUMN)  # a source column may not be spelled like these


# --- warehouse bookkeeping for landed files (the SQL templates, the job and the verifier share these) ---
LOAD_LOG_TABLE = "_dwctl_load_log"  # every landed file version merged: (table_name, s3_key, etag, loaded_at)
STAGED_FILES_TABLE = "_dwctl_staged_files"  # files COPYed into staging but not merged yet
GENERATIONS_TABLE = "_dwctl_generations"  # per table, when each full load (first load or reload) began
QUARANTINE_TABLE = "_dwctl_quarantine"  # landed files the warehouse could not load, with the reason
DDL_TABLE = "_dwctl_ddl"  # the hash of the 01_create_tables.sql last applied: DDL runs only when it changes
FRESHNESS_TABLE = "_dwctl_freshness"  # per table, the commit time of the newest change each batch merged
# Merged files deleted from the bucket (a source TRUNCATE: HandleSourceTableTruncated), with the table's
# latest generation when the job saw it: its table is stopped until a full load begun after it is merged.
DELETED_TABLE = "_dwctl_deleted"
# Per spec table T, in the staging schema: T holds the CDC files of a batch, T + LOAD_SUFFIX its
# full-load files (so a row's origin is known by its file), T + KEYS_SUFFIX every key's version
# (deleted keys stay as tombstones), T + WORK_SUFFIX the batch's changes with their versions,
# T + DELETES_SUFFIX every delete (history tables only: a delete ends the version before it).
WORK_MARK = "__dwctl"  # no spec table name may contain it
LOAD_SUFFIX = WORK_MARK + "_load"
KEYS_SUFFIX = WORK_MARK + "_keys"
WORK_SUFFIX = WORK_MARK + "_work"
DELETES_SUFFIX = WORK_MARK + "_deletes"
# `dwctl smoke`: the load job's smoke run writes (and deletes) its files under
# <manifest prefix>/SMOKE_DIR/<smoke id>/ only, its report last (load_job.SMOKE_DIR is the job's copy).
SMOKE_DIR = "_dwctl-smoke"  # a '-', which no table name holds: never a table's manifest folder
# T + PRESTAGE_SUFFIX: the rows of a batch's files of other layouts (schema changes), staged by the job
# in transactions of their own before the batch (load_job.TableLoad.prestage), so that a batch is a
# fixed number of statements whatever the number of layouts; dropped by the batch.
PRESTAGE_SUFFIX = WORK_MARK + "_prestage"
GENERATION_DIGITS = 10  # a table's full loads are numbered 1, 2, ... (zero-padded in versions)
# A change's version: its generation (the full load it follows, 0 before any) + kind (0 a reload's
# sweep, 1 a full-load row, 2 a CDC row) + the change sequence, each zero-padded to a fixed width,
# so text order is version order.
VERSION_LENGTH = GENERATION_DIGITS + 1 + CHANGE_SEQ_LENGTH

