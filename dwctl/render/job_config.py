"""The load job's per-spec data: iac/glue_scripts/load_job_config.json.

The job itself (dwctl/warehouse/load_job.py) is the same Python for every spec; this document
carries what varies: each table's landing prefix and merge SQL, the create and load SQL (the
very text of the rendered sql/ files, one string per line so a diff shows changed lines), and
the two load-log queries. `format` versions the contract between the two files.
"""

from __future__ import annotations

import json

from dwctl.render.text import sql_ident
from dwctl.spec import landed_layout as layout
from dwctl.spec.model import Spec

FORMAT = 1  # dwctl.warehouse.load_job.CONFIG_FORMAT reads this
PATH = "iac/glue_scripts/load_job_config.json"


def load_log_queries(spec: Spec) -> dict[str, str]:
    """The newest CDC file merged per table (the listing's watermark), and the files merged since."""
    log = f"{sql_ident(spec.warehouse.staging_schema)}.{sql_ident(layout.LOAD_LOG_TABLE)}"
    load_like = f"'%/{layout.FULL_LOAD_PREFIX}%'"
    return {
        "watermark_sql": f'SELECT MAX("s3_key") FROM {log} WHERE "table_name" = :table_name '
                         f'AND "s3_key" NOT LIKE {load_like}',
        "loaded_sql": f'SELECT "s3_key" FROM {log} WHERE "table_name" = :table_name '
                      f'AND ("s3_key" >= :since OR "s3_key" LIKE {load_like})',
    }


def document(spec: Spec, sql: dict[str, str], tables, note: str) -> str:
    """The config JSON; `sql` holds the rendered sql/ bodies (without headers), `tables` the table views."""
    doc = {
        "//": note,
        "format": FORMAT,
        "full_load_prefix": layout.FULL_LOAD_PREFIX,
        "create_sql": sql["sql/01_create_tables.sql"].split("\n"),
        "load_sql": sql["sql/02_load_staging.sql"].split("\n"),
        "tables": {t.name: {"prefix": t.s3_prefix + "/",
                            "merge_sql": sql[f"sql/03_merge_{t.name}.sql"].split("\n")} for t in tables},
        **load_log_queries(spec),
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
