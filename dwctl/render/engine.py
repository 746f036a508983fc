"""Rendering is a pure function: spec -> {relative path: text}. Nothing here touches the disk but templates.

Templates live in `templates/` (in a wheel: `dwctl/templates/`). `templates/iac/x.tf.j2`
becomes `iac/x.tf`; a name containing `__table__` is rendered once per unit (a table, or each
partition of a partitioned one) with `table` bound. Every file gets a generated-by header, so nobody edits it by hand by mistake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path

from dwctl import __version__
from dwctl.render.text import (
    dms_pattern,
    hcl_list,
    hcl_string,
    header,
    sql_ident,
    sql_string,
    to_json,
)
from dwctl.spec.landed_layout import LandedColumn, landed_columns
from dwctl.spec.model import Spec, Table, landed_name
from dwctl.spec.naming import target_name
from dwctl.spec.type_mapping import as_text, map_type

PER_TABLE = "__table__"
LOAD_JOB_PATH = "iac/glue_scripts/load_job.py"  # a copy of dwctl/warehouse/load_job.py, uploaded by Terraform
BOTOCORE_DATA_PATH = "iac/glue_scripts/botocore_data"  # models for the job's older botocore (load_job.data_api_client)
COMMENT = {".tf": "#", ".sql": "--", ".py": "#", ".hcl": "#"}


@dataclass(frozen=True)
class ColumnView:
    """A spec column with its mapped types; `cast` turns the quoted staging column into the analytics value."""

    name: str
    source_type: str
    nullable: bool
    redshift_type: str
    staging_type: str
    glue_type: str
    cast: str
    dms_type: tuple = ()  # a DMS change-data-type (see spec.type_mapping.Mapped)
    source_name: str = ""  # the column at the source, exactly (DMS object-locators); default: name
    landed_name: str = ""  # its name in the landed Parquet (spec.model.landed_name); default: name

    @property
    def dms_rename(self) -> bool:
        """DMS renames this column (a `rename` rule): its landed name is its target name."""
        return self.source_name not in ("", self.name) and self.landed_name in ("", self.name)

    @property
    def glue_name(self) -> str:
        """The Glue catalog column: the landed name, lower case as Glue stores it."""
        return (self.landed_name or self.name).lower()


@dataclass(frozen=True)
class TableView:
    """What templates need of one table: typed columns, keys and the landed-file layout. Immutable, so
    what is derived from its fields is computed once (cached_property), not on every template access."""

    name: str
    schema: str
    columns: tuple[ColumnView, ...]
    primary_key: tuple[str, ...]
    dist_key: str | None
    sort_keys: tuple[str, ...]
    landed: tuple[LandedColumn, ...]
    s3_prefix: str  # where DMS lands this table, relative to the bucket
    # Source identity (DMS selection and transformation rules use these; everything else the targets):
    source_name: str = ""  # the table at the source, exactly; default: name
    source_tables: tuple[str, ...] = ()  # what DMS selects: the partitions, or (source_name,)
    landing_schema: str = ""  # the folder DMS lands the source schema under (a schema rename rule)
    removed: tuple[str, ...] = ()  # source names of excluded columns (DMS remove-column rules)
    # A partitioned table's parts: one view per partition, each with its own name (folder, Glue
    # table, staging tables, load state) and `target` naming the analytics table they all merge into.
    parts: tuple["TableView", ...] = ()
    target: str = ""  # a part's analytics table (its spec table's name); "" for a spec table itself

    @property
    def units(self) -> tuple["TableView", ...]:
        """What lands and loads on its own: the parts of a partitioned table, else the table itself."""
        return self.parts or (self,)

    @property
    def analytics_name(self) -> str:
        """The Redshift analytics table this view's rows merge into."""
        return self.target or self.name

    def source_column_names(self, names) -> list[str]:
        """Source spellings of target columns (DMS table-settings name source columns)."""
        by_name = {c.name: c.source_name for c in self.columns}
        return [by_name[n] for n in names]

    def glue_names(self, names) -> list[str]:
        """Glue catalog names of target columns (for Lake Formation column grants)."""
        by_name = {c.name: c.glue_name for c in self.columns}
        return [by_name[n] for n in names]

    @cached_property
    def non_key_columns(self) -> tuple[ColumnView, ...]:
        return tuple(c for c in self.columns if c.name not in self.primary_key)

    @cached_property
    def key_columns(self) -> tuple[ColumnView, ...]:
        """The primary key's columns, in key order."""
        by_name = {c.name: c for c in self.columns}
        return tuple(by_name[k] for k in self.primary_key)

    @cached_property
    def landed_keys(self) -> tuple[LandedColumn, ...]:
        """The primary key's landed (staging-typed) columns, in key order."""
        by_name = {c.name: c for c in self.landed if c.source}
        return tuple(by_name[k] for k in self.primary_key)

    @cached_property
    def implied_keys(self) -> bool:
        """The first full load's fast path stores no key versions: a key with an analytics row and
        no version row is at that load's version (03_merge). Not for a partition (the analytics
        table holds other partitions' keys too), nor when a key column's analytics value is not its
        staging value (a cast, or another type): the sweep reads keys back from analytics."""
        return not self.target and all(c.cast == "{}" and c.redshift_type == c.staging_type for c in self.key_columns)

    @cached_property
    def text_keys(self) -> tuple[str, ...]:
        """Key columns that are VARCHAR in staging and analytics: Redshift compares them without trailing
        spaces (r_Character_types), so the merge compares their lengths too (03_merge, same_key)."""
        return tuple(c.name for c in self.key_columns
                     if c.staging_type.upper().startswith("VARCHAR") and c.redshift_type.upper().startswith("VARCHAR"))

    @cached_property
    def parses_json(self) -> bool:
        """A column's merge runs JSON_PARSE (json, jsonb: SUPER)."""
        return any("JSON_PARSE" in c.cast for c in self.columns)

    @property
    def version_length(self) -> int:
        from dwctl.spec.landed_layout import VERSION_LENGTH

        return VERSION_LENGTH


def table_view(spec: Spec, table: Table) -> TableView:
    family = spec.source.family
    columns = []
    for column in table.columns:
        if column.exclude:
            continue
        mapped = as_text(column.land_as_text) if column.land_as_text else map_type(column.type, family)
        redshift = column.redshift_type.upper() if column.redshift_type else mapped.redshift
        columns.append(ColumnView(column.name, column.type, column.nullable, redshift,
                                  mapped.staging, mapped.glue, mapped.cast, mapped.dms_type,
                                  column.source, landed_name(column, family)))
    landed = landed_columns([(c.name, c.staging_type, c.glue_type, c.landed_name) for c in columns])
    landing_schema = target_name(table.schema_)
    view = TableView(
        name=table.name,
        schema=table.schema_,
        columns=tuple(columns),
        primary_key=tuple(table.primary_key),
        dist_key=table.dist_key,
        sort_keys=tuple(table.sort_keys),
        landed=tuple(landed),
        s3_prefix=f"{spec.landing.prefix}/{landing_schema}/{table.name}",
        source_name=table.source,
        source_tables=tuple(table.source_tables),
        landing_schema=landing_schema,
        removed=tuple(c.source for c in table.columns if c.exclude),
    )
    if not table.partitions:
        return view
    # Each partition is a source table to DMS, landed in a folder of its own (no rename onto the
    # parent: "AWS DMS doesn't support replicating two source tables to a single target table",
    # DMS User Guide, Transformation rules and actions, Limitations).
    parts = tuple(replace(view, name=part, source_name=source, source_tables=(source,),
                          s3_prefix=f"{spec.landing.prefix}/{landing_schema}/{part}", target=table.name)
                  for source, part in zip(table.partitions, table.part_names))
    return replace(view, parts=parts)


def units(tables) -> list[TableView]:
    """Every view that lands and loads on its own (tables, and the parts of partitioned ones)."""
    return [u for t in tables for u in t.units]


def schema_renames(tables) -> list[tuple[str, str]]:
    """(source schema, landed folder) for each schema of these tables whose folder differs: one DMS
    schema `rename` rule each (several tasks' tables: call it per task)."""
    return sorted({(t.schema, t.landing_schema) for t in tables if t.schema != t.landing_schema})


# --- environment --------------------------------------------------------------------------
def templates_dir() -> Path:
    package = Path(__file__).resolve().parent.parent
    packaged = package / "templates"  # in a wheel
    return packaged if packaged.is_dir() else package.parent / "templates"  # in a checkout


@lru_cache(maxsize=1)
def load_job_source() -> str:
    """The load job's source: plain Python of the warehouse stage, shipped as is (read, not imported)."""
    return (Path(__file__).resolve().parent.parent / "warehouse" / "load_job.py").read_text(encoding="utf-8")


def shipped_botocore_models(note: str) -> dict[str, str]:
    """The service models the job ships for Glue's older botocore (dwctl/warehouse/botocore_data), each
    with the generated-file note as its first key (botocore reads only the keys it knows)."""
    root = Path(__file__).resolve().parent.parent / "warehouse" / "botocore_data"
    files = {}
    for path in sorted(root.rglob("service-2.json")):
        model = json.loads(path.read_text(encoding="utf-8"))
        files[f"{BOTOCORE_DATA_PATH}/{path.relative_to(root).as_posix()}"] = json.dumps({"//": note, **model}, indent=1, ensure_ascii=False) + "\n"
    return files


@lru_cache(maxsize=1)
def environment():
    """A sandboxed Jinja environment: templates cannot reach Python internals, undefined names fail loudly."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.runtime import LoopContext, Macro
    from jinja2.sandbox import SandboxedEnvironment

    from dwctl.spec.dms_tasks import TaskPlan
    from dwctl.spec.model import Model

    views = (TableView, ColumnView, LandedColumn, Model, TaskPlan, LoopContext, Constants)
    reachable: set[tuple[type, str]] = set()  # (type, attribute) found safe below: one set lookup per access

    class Sandbox(SandboxedEnvironment):
        """Public attributes of our own immutable views, spec models, constants and Jinja's loop object are
        safe: skip the generic (and, over thousands of tables, costly) checks for them. For these types the
        generic checks allow exactly the same: nothing of theirs starting with "_" is reached, and none of
        their attributes is a str.format method (the only other thing the sandbox intercepts). Everything
        else, values of the spec's strings and dicts included, gets the full sandbox."""

        def getattr(self, obj, attribute):
            if (type(obj), attribute) in reachable:
                try:
                    return getattr(obj, attribute)
                except AttributeError:
                    return self.undefined(obj=obj, name=attribute)
            if isinstance(obj, views) and not attribute.startswith(("_", "model_")) \
                    and attribute not in ("format", "format_map"):
                reachable.add((type(obj), attribute))
                return self.getattr(obj, attribute)
            if type(obj) is str and attribute == "format" and plain_format(obj):
                return obj.format  # what the sandbox's formatter would do, without building one per call
            return super().getattr(obj, attribute)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
            """A template's own macros are safe to call (the sandbox would only look up `unsafe_callable`
            and `alters_data` on them, which they never have); anything else gets the full sandbox."""
            if type(__obj) is Macro:
                kwargs.pop("_block_vars", None)
                kwargs.pop("_loop_vars", None)
                return __obj(*args, **kwargs)
            return super().call(__context, __obj, *args, **kwargs)

    from dwctl.render.compiled import template_cache

    options = dict(undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                   autoescape=False)
    # the compiled code is the same sandboxed environment's: the same sandbox checks run (compiled.py)
    env = Sandbox(loader=FileSystemLoader(str(templates_dir())), bytecode_cache=template_cache(options), **options)
    env.filters.update(hcl=hcl_string, hcl_list=hcl_list, ident=sql_ident, sqlstr=sql_string, tojson=to_json,
                       dms=dms_pattern, target=target_name)
    return env


@lru_cache(maxsize=256)
def plain_format(template: str) -> bool:
    """No replacement field of this format string reaches into an attribute or an item ("{0.x}", "{0[x]}",
    nor in a nested format spec): the sandbox's formatter checks only those steps, so for such a string
    str.format gives exactly its result. The merge calls `cast.format(column)` for every column."""
    import string

    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return False
    return all(field is None or not any(c in field for c in ".[") for _, field, _, _ in fields) and \
        not any(spec and "{" in spec for _, _, spec, _ in fields)


class Constants:
    """A module's public upper-case constants, read-only, as templates see them (`layout.LOAD_SUFFIX`)."""

    def __init__(self, module):
        self.__dict__.update({k: v for k, v in vars(module).items() if k.isupper() and not k.startswith("_")})

    def __setattr__(self, name, value):
        raise AttributeError(f"{name}: constants are read-only")


def context(spec: Spec, spec_name: str) -> dict:
    from dwctl.render import tfvars
    from dwctl.spec import landed_layout as layout
    from dwctl.spec.dms_tasks import TaskPlan, segment_names, task_plans

    tables = [table_view(spec, t) for t in spec.tables]
    views = {t.name: t for t in tables}
    plans = task_plans(spec)
    return {
        "spec": spec,
        "spec_name": spec_name,
        "tables": tables,
        "units": units(tables),  # what lands in a folder and merges on its own: per-unit SQL, Glue tables
        "views": views,
        "units_of": lambda names: [u for n in names for u in views[n].units],  # a grant covers each part
        "schema_renames": schema_renames(tables),
        # DMS replication tasks with their tables' views (issue 14)
        "dms_tasks": [TaskPlan(p.name, tuple(views[t.name] for t in p.tables), p.max_full_load_subtasks)
                      for p in plans],
        "task_schema_renames": {p.name: schema_renames([views[t.name] for t in p.tables]) for p in plans},
        "segment_names": segment_names,  # a ranges parallel load's folders
        "layout": Constants(layout),
        "tfvars": tfvars.values(spec),
        "version": __version__,
    }


def render(spec: Spec, spec_name: str) -> dict[str, str]:
    """Every generated file, keyed by path relative to the output root, in sorted order."""
    from dwctl.spec.read import paused_gc

    with paused_gc():
        return _render(spec, spec_name)


def _render(spec: Spec, spec_name: str) -> dict[str, str]:
    from dwctl.render import canary, environments, job_config, tfvars

    env = environment()
    ctx = context(spec, spec_name)
    ctx["sql"] = {}  # bodies of the sql/ files, rendered first so the load job embeds them without re-rendering
    files: dict[str, str] = {}
    names = sorted(env.list_templates(extensions=["j2"]), key=lambda n: (not n.startswith("sql/"), n))
    for name in names:
        target = name[: -len(".j2")]
        template = env.get_template(name)
        bindings = [(target.replace(PER_TABLE, t.name), {"table": t}) for t in ctx["units"]] \
            if PER_TABLE in target else [(target, {})]
        for path, extra in bindings:
            body = template.render(**ctx, **extra)
            if path.startswith("sql/"):
                ctx["sql"][path] = body
            comment = COMMENT.get(Path(path).suffix)
            files[path] = (header(spec_name, comment) + body) if comment else body
    note = f"Generated by dwctl {__version__} from {spec_name}. Do not edit."
    files["iac/terraform.tfvars.json"] = tfvars.document(spec, note)
    files[job_config.PATH], files[job_config.COLUMNS_PATH] = job_config.documents(spec, ctx["sql"], ctx["units"], note)
    files[LOAD_JOB_PATH] = header(spec_name, "#") + load_job_source()
    files.update(shipped_botocore_models(note))
    files[canary.PATH] = canary.document(ctx["units"], note)  # `dwctl smoke`'s canary Parquet files
    files.update(environments.files(spec, spec_name))
    return dict(sorted(files.items()))
