"""Rendering is a pure function: spec -> {relative path: text}. Nothing here touches the disk but templates.

Templates live in `templates/` (in a wheel: `dwctl/templates/`). `templates/iac/x.tf.j2`
becomes `iac/x.tf`; a name containing `__table__` is rendered once per table with `table`
bound. Every file gets a generated-by header, so nobody edits it by hand by mistake.
"""

from __future__ import annotations

import json
import json.encoder
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dwctl import __version__
from dwctl.layout import LandedColumn, landed_columns
from dwctl.spec import Spec, Table
from dwctl.types import map_type

PER_TABLE = "__table__"
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


@dataclass(frozen=True)
class TableView:
    """What templates need of one table: typed columns, keys and the landed-file layout."""

    name: str
    schema: str
    columns: tuple[ColumnView, ...]
    primary_key: tuple[str, ...]
    dist_key: str | None
    sort_keys: tuple[str, ...]
    landed: tuple[LandedColumn, ...]
    s3_prefix: str  # where DMS lands this table, relative to the bucket

    @property
    def non_key_columns(self) -> tuple[ColumnView, ...]:
        return tuple(c for c in self.columns if c.name not in self.primary_key)


def table_view(spec: Spec, table: Table) -> TableView:
    columns = []
    for column in table.columns:
        mapped = map_type(column.type, spec.source.family)
        redshift = column.redshift_type.upper() if column.redshift_type else mapped.redshift
        columns.append(ColumnView(column.name, column.type, column.nullable, redshift,
                                  mapped.staging, mapped.glue, mapped.cast))
    landed = landed_columns([(c.name, c.staging_type, c.glue_type) for c in columns])
    return TableView(
        name=table.name,
        schema=table.schema_,
        columns=tuple(columns),
        primary_key=tuple(table.primary_key),
        dist_key=table.dist_key,
        sort_keys=tuple(table.sort_keys),
        landed=tuple(landed),
        s3_prefix=f"{spec.landing.prefix}/{table.schema_}/{table.name}",
    )


# --- quoting: the only ways spec text enters HCL, SQL and JSON ------------------------------
def hcl_string(value: object) -> str:
    """A double-quoted HCL string literal; `${` and `%{` are escaped so nothing interpolates."""
    text = str(value)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    text = text.replace("\t", "\\t").replace("${", "$${").replace("%{", "%%{")
    return f'"{text}"'


def sql_ident(value: object) -> str:
    """A double-quoted SQL identifier (embedded quotes doubled)."""
    return '"' + str(value).replace('"', '""') + '"'


def sql_string(value: object) -> str:
    """A single-quoted SQL literal; Redshift treats backslash as an escape, so it is doubled too."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def to_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def py_lines(text: str, indent: str = "") -> str:
    """A Python expression rebuilding `text` from one string literal per line, so a diff of the
    generated script shows changed lines (the load job embeds the sql/ files this way)."""
    quote = json.encoder.encode_basestring  # == json.dumps(line, ensure_ascii=False), without its per-call setup
    rows = "".join(f"{indent}    {quote(line)},\n" for line in text.split("\n"))
    return '"\\n".join([\n' + rows + f"{indent}])"


def hcl_list(values) -> str:
    """An HCL list of string literals on one line: ["a", "b"]."""
    return "[" + ", ".join(hcl_string(v) for v in values) + "]"


# --- environment --------------------------------------------------------------------------
def templates_dir() -> Path:
    packaged = Path(__file__).parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "templates"


@lru_cache(maxsize=1)
def environment():
    """A sandboxed Jinja environment: templates cannot reach Python internals, undefined names fail loudly."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from dwctl.spec import Model

    views = (TableView, ColumnView, LandedColumn, Model)

    class Sandbox(SandboxedEnvironment):
        """Public attributes of our own immutable views and spec models are safe: skip the generic
        (and, over thousands of tables, costly) checks for them; everything else gets the full sandbox."""

        def getattr(self, obj, attribute):
            if isinstance(obj, views) and not attribute.startswith(("_", "model_")):
                try:
                    return getattr(obj, attribute)
                except AttributeError:
                    return self.undefined(obj=obj, name=attribute)
            return super().getattr(obj, attribute)

    env = Sandbox(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(hcl=hcl_string, hcl_list=hcl_list, py_lines=py_lines, ident=sql_ident, sqlstr=sql_string, tojson=to_json)
    return env


def header(spec_name: str, comment: str) -> str:
    return (f"{comment} Generated by dwctl {__version__} from {spec_name}. Do not edit:\n"
            f"{comment} change the spec and run `dwctl render`.\n")


def context(spec: Spec, spec_name: str) -> dict:
    from dwctl import layout, tfvars

    return {
        "spec": spec,
        "spec_name": spec_name,
        "tables": [table_view(spec, t) for t in spec.tables],
        "layout": layout,
        "tfvars": tfvars.values(spec),
        "version": __version__,
    }


def render(spec: Spec, spec_name: str) -> dict[str, str]:
    """Every generated file, keyed by path relative to the output root, in sorted order."""
    from dwctl.loader import paused_gc

    with paused_gc():
        return _render(spec, spec_name)


def _render(spec: Spec, spec_name: str) -> dict[str, str]:
    from dwctl import environments, tfvars

    env = environment()
    ctx = context(spec, spec_name)
    ctx["sql"] = {}  # bodies of the sql/ files, rendered first so the load job embeds them without re-rendering
    files: dict[str, str] = {}
    names = sorted(env.list_templates(extensions=["j2"]), key=lambda n: (not n.startswith("sql/"), n))
    for name in names:
        target = name[: -len(".j2")]
        template = env.get_template(name)
        bindings = [(target.replace(PER_TABLE, t.name), {"table": t}) for t in ctx["tables"]] \
            if PER_TABLE in target else [(target, {})]
        for path, extra in bindings:
            body = template.render(**ctx, **extra)
            if path.startswith("sql/"):
                ctx["sql"][path] = body
            comment = COMMENT.get(Path(path).suffix)
            files[path] = (header(spec_name, comment) + body) if comment else body
    files["iac/terraform.tfvars.json"] = tfvars.document(spec, f"Generated by dwctl {__version__} from {spec_name}. Do not edit.")
    files.update(environments.files(spec, spec_name))
    return dict(sorted(files.items()))
