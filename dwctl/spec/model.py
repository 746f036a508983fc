"""The pipeline spec: one typed model that validates, fills safe defaults and yields the JSON Schema.

Every string that later reaches HCL or SQL is constrained here by a strict pattern, so the
templates never see text that could break out of a quoted identifier or string.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from dwctl.spec.aws_names import too_long
from dwctl.spec.landed_layout import LANDED_NAMES, WORK_MARK
from dwctl.spec.naming import IDENT, SOURCE_NAME, source_too_long, target_name
from dwctl.spec.type_mapping import map_type, parse_source_type

# --- identifier and value patterns -------------------------------------------------------
NAME = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"  # AWS resource name stems (project, workgroup, ...): no "--"
ACCOUNT = r"^\d{12}$"
PARTITION = r"arn:aws(-cn|-us-gov)?"
IAM_PRINCIPAL = rf"^{PARTITION}:iam::\d{{12}}:(role|user)(/[A-Za-z0-9+=,.@_-]+)+$"
SECRET_ARN = rf"^{PARTITION}:secretsmanager:[a-z0-9-]+:\d{{12}}:secret:[A-Za-z0-9/_+=.@-]+$"
KMS_ARN = rf"^{PARTITION}:kms:[a-z0-9-]+:\d{{12}}:key/[0-9a-f-]{{36}}$"
REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
HOSTNAME = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
CIDR = r"^(\d{1,3}\.){3}\d{1,3}/(\d|[12]\d|3[0-2])$"
TAG_KEY = r"^[A-Za-z0-9 _.:/=+@-]{1,128}$"
TAG_VALUE = r"^[A-Za-z0-9 _.:/=+@-]{0,256}$"
S3_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
S3_PREFIX = r"^[a-z0-9][a-z0-9_/-]{0,126}[a-z0-9]$"
SCHEDULE = r"^cron\([0-9A-Za-z*?,/# -]+\)$"
CHECK_ID = r"^CKV2?_[A-Z0-9]+_\d+$"
DMS_CERT_ARN = rf"^{PARTITION}:dms:[a-z0-9-]+:\d{{12}}:cert:[A-Za-z0-9-]+$"
CA_BUNDLE_FILE = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.pem$"  # relative; no . or .. parts
# CloudWatch Logs accepts only these retention periods.
LogRetention = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                       3288, 3653]

RESERVED_PREFIX = "_dwctl"  # dwctl's own warehouse tables and S3 folders (see dwctl/spec/landed_layout.py)
Ident = Annotated[str, StringConstraints(pattern=IDENT)]
SourceName = Annotated[str, StringConstraints(pattern=SOURCE_NAME)]  # exactly as the source spells it
Name = Annotated[str, StringConstraints(pattern=NAME, min_length=3, max_length=32)]
Principal = Annotated[str, StringConstraints(pattern=IAM_PRINCIPAL)]
# A table with `history: true` also gets <analytics_schema>.<name>_history with these columns after its own.
HISTORY_SUFFIX = "_history"
HISTORY_COLUMNS = ("valid_from", "valid_to", "is_current", "dwctl_op", "dwctl_version")


class Model(BaseModel):
    """Strict base: unknown keys are errors and specs are immutable once loaded."""

    # defer_build: one validator, built for Spec at the first load, not one per model at import (start-up)
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, defer_build=True)


class LocatedError(ValueError):
    """A cross-reference error that knows which field it belongs to, so the loader can find its line."""

    def __init__(self, loc: tuple, message: str):
        self.loc = loc
        super().__init__(message)


def _at(loc: tuple, message: str) -> LocatedError:
    return LocatedError(loc, message)


def _unique(values: list[str], what: str, field: str) -> None:
    for i, value in enumerate(values):
        if value in values[:i]:
            raise _at((field, i), f"duplicate {what} {value!r}")


class Network(Model):
    vpc_id: Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    subnet_ids: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]],
        # Redshift Serverless: "at least three subnets, and they must span across three Availability Zones"
        # (https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-usage-considerations.html); the
        # stack checks the zones at plan time (redshift.tf), the spec can only count the subnets.
        Field(min_length=3, description="Private subnets in at least three AZs (Redshift Serverless needs three; "
              "DMS uses them too)."),
    ]
    source_security_group_id: Annotated[str, StringConstraints(pattern=r"^sg-[0-9a-f]{8,17}$")] | None = Field(
        None, description="Security group of the source database; DMS egress is opened to it."
    )
    source_cidr_blocks: list[Annotated[str, StringConstraints(pattern=CIDR)]] = Field(
        default_factory=list, description="CIDRs DMS may reach the source on (when no security group is given)."
    )
    open_source_ingress: bool = Field(
        True, description="Add the ingress rule on source_security_group_id that lets DMS reach the source port "
        "(false when another stack owns that group's rules).")
    egress: Literal["nat", "endpoints"] = Field(
        "nat", description="How DMS and Redshift in the private subnets reach S3, Secrets Manager, KMS and "
        "CloudWatch Logs: `nat` (checked: every subnet routes 0.0.0.0/0 through a NAT or transit gateway) or "
        "`endpoints` (VPC endpoints; the S3 gateway endpoint can be made here, the interface endpoints are yours).")
    s3_endpoint_route_table_ids: list[Annotated[str, StringConstraints(pattern=r"^rtb-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list, description="Route tables to attach an S3 gateway endpoint to (DMS writes and "
        "Redshift COPY reach S3 without NAT); empty: no endpoint is made.")

    @model_validator(mode="after")
    def _one_path_to_source(self) -> "Network":
        _unique(self.subnet_ids, "subnet id", "subnet_ids")
        if not self.source_security_group_id and not self.source_cidr_blocks:
            raise ValueError("set source_security_group_id or source_cidr_blocks so DMS can reach the source")
        return self


class Source(Model):
    engine: Literal["postgres", "mysql", "aurora-postgresql", "aurora-mysql"]
    host: Annotated[str, StringConstraints(pattern=HOSTNAME, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(None, description="Defaults to 5432 / 3306 by engine.")
    database: Ident
    secret_arn: Annotated[str, StringConstraints(pattern=SECRET_ARN)] = Field(
        description="Secrets Manager secret holding username, password, host and port (DMS reads the connection "
        "from it); a plaintext password field does not exist."
    )
    ssl_mode: Literal["none", "require", "verify-ca", "verify-full"] = "verify-full"
    certificate_arn: Annotated[str, StringConstraints(pattern=DMS_CERT_ARN)] | None = Field(
        None, description="DMS certificate (the imported RDS CA bundle); verify-ca and verify-full need it or "
        "ca_bundle_file."
    )
    ca_bundle_file: Annotated[str, StringConstraints(pattern=CA_BUNDLE_FILE, max_length=200)] | None = Field(
        None, description="The CA bundle as a PEM file (e.g. RDS global-bundle.pem), relative to the output root: "
        "the stack imports it as a DMS certificate instead of an ARN typed by hand."
    )

    @model_validator(mode="after")
    def _tls_needs_ca(self) -> "Source":
        if self.certificate_arn is not None and self.ca_bundle_file is not None:
            raise _at(("ca_bundle_file",), "set certificate_arn or ca_bundle_file, not both")
        if self.ssl_mode in ("verify-ca", "verify-full") and self.certificate_arn is None \
                and self.ca_bundle_file is None:
            raise _at(("certificate_arn",), f"ssl_mode {self.ssl_mode} checks the server against a CA: set "
                      "certificate_arn to the imported RDS CA bundle (aws_dms_certificate), or ca_bundle_file to "
                      "its PEM file, or use ssl_mode: require")
        return self

    @property
    def family(self) -> Literal["postgres", "mysql"]:
        return "postgres" if "postgres" in self.engine else "mysql"

    @property
    def effective_port(self) -> int:
        return self.port or (5432 if self.family == "postgres" else 3306)


MIN_DAYS_IN_IA = 30


class Lifecycle(Model):
    transition_to_ia_days: Annotated[int, Field(ge=30)] = 30
    transition_to_glacier_days: Annotated[int, Field(ge=60)] = 90
    expire_days: Annotated[int, Field(ge=1)] | None = Field(None, description="Expire landed objects; off by default.")
    noncurrent_expire_days: Annotated[int, Field(ge=1)] = 90

    @model_validator(mode="after")
    def _ordered(self) -> "Lifecycle":
        # S3 keeps an object in Standard-IA at least 30 days before a lifecycle rule may move it on
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html).
        if self.transition_to_glacier_days < self.transition_to_ia_days + MIN_DAYS_IN_IA:
            raise _at(("transition_to_glacier_days",), f"transition_to_glacier_days ({self.transition_to_glacier_days}) "
                      f"must be at least {MIN_DAYS_IN_IA} days after transition_to_ia_days ({self.transition_to_ia_days}): "
                      "S3 keeps objects in Standard-IA for 30 days before moving them to Glacier Instant Retrieval")
        if self.expire_days is not None and self.expire_days <= self.transition_to_glacier_days:
            raise ValueError("expire_days must be later than transition_to_glacier_days")
        return self


class Landing(Model):
    bucket: Annotated[str, StringConstraints(pattern=S3_BUCKET)] | None = Field(
        None, description="Landing bucket; default <project>-<environment>-landing-<account id>."
    )
    format: Literal["parquet"] = "parquet"
    prefix: Annotated[str, StringConstraints(pattern=S3_PREFIX)] = Field("raw", description="Folder DMS writes under.")
    cdc_path: Annotated[str, StringConstraints(pattern=S3_PREFIX)] | None = Field(
        None, description="Optional CDC folder; by default CDC files land beside the full load, as DMS does."
    )
    log_retention_days: Annotated[int, Field(ge=1)] = Field(365, description="Days to keep S3 access logs.")
    lifecycle: Lifecycle = Lifecycle()


MIN_DMS_ENGINE = (3, 4, 7)

# --- issue 14, DMS at scale: task names, per-task settings ----------------------------------------
# MaxFullLoadSubTasks: "The default is 8; the maximum value is 49"
# (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TaskSettings.FullLoad.html).
MAX_FULL_LOAD_SUBTASKS = 49
DEFAULT_TASK = "full-load-and-cdc"  # the first default task keeps the id of the single task dwctl made before
TaskName = Annotated[str, StringConstraints(pattern=NAME, min_length=1, max_length=40)]


class DmsTask(Model):
    max_full_load_subtasks: Annotated[int, Field(ge=1, le=MAX_FULL_LOAD_SUBTASKS)] | None = Field(
        None, description="MaxFullLoadSubTasks of this task; default dms.max_full_load_subtasks.")


class Dms(Model):
    instance_class: Annotated[str, StringConstraints(pattern=r"^dms\.[a-z0-9]+\.[a-z0-9]+$")] = "dms.t3.medium"
    allocated_storage: Annotated[int, Field(ge=5, le=6144)] = 50
    multi_az: bool = True
    engine_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")] = Field(
        "3.5.4", description="Engine of a new replication instance (at least 3.4.7: Parquet with "
        "IncludeOpForFullLoad). DMS upgrades deprecated versions itself, so the stack ignores later changes.")
    create_account_roles: bool = Field(
        False, description="Create dms-vpc-role and dms-cloudwatch-logs-role (once per account)."
    )
    log_retention_days: LogRetention = Field(365, description="CloudWatch retention of the DMS task logs.")
    # --- issue 14, DMS at scale: several replication tasks (see dwctl/spec/dms_tasks.py) ---
    tables_per_task: Annotated[int, Field(ge=1, le=1000)] = Field(
        100, description="Tables without a `task:` are spread over ceil(n / tables_per_task) default tasks "
        "(full-load-and-cdc, full-load-and-cdc-2, ...) by a hash of schema.table, so where a table sits in the "
        "list never matters; only a change in the number of default tasks moves tables (dwctl plan names them). "
        "Tasks get about this many tables (a hash spread: with few tables, uneven); pin tables for exact groups.")
    max_full_load_subtasks: Annotated[int, Field(ge=1, le=MAX_FULL_LOAD_SUBTASKS)] = Field(
        8, description="Tables (or parallel-load segments) each task loads at once (DMS MaxFullLoadSubTasks: "
        "default 8, at most 49); dms.tasks.<name> overrides it per task.")
    tasks: dict[TaskName, DmsTask] = Field(
        default_factory=dict, description="Settings of tasks named by tables' `task:` (each must carry a table).")

    @model_validator(mode="after")
    def _engine_lands_op_in_full_load(self) -> "Dms":
        # IncludeOpForFullLoad with Parquet needs 3.4.7+ (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Target.S3.html).
        if tuple(int(n) for n in self.engine_version.split(".")) < MIN_DMS_ENGINE:
            raise _at(("engine_version",), f"DMS engine {self.engine_version} is older than "
                      f"{'.'.join(map(str, MIN_DMS_ENGINE))}: Parquet files carry the Op column of full-load rows "
                      "(IncludeOpForFullLoad) only from 3.4.7 on")
        return self


class Catalog(Model):
    database: Ident
    crawler_schedule: Annotated[str, StringConstraints(pattern=SCHEDULE)] = "cron(15 * * * ? *)"


class UsageLimit(Model):
    amount: Annotated[int, Field(ge=1)] = Field(description="RPU-hours per period.")
    period: Literal["daily", "weekly", "monthly"] = "daily"
    breach_action: Literal["log", "emit-metric", "deactivate"] = "emit-metric"
    deactivate_amount: Annotated[int, Field(ge=1)] | None = Field(
        None, description="A second, hard limit in the same period: past these RPU-hours the workgroup stops "
        "taking queries (breach action deactivate). Must exceed amount.")

    @model_validator(mode="after")
    def _hard_above_soft(self) -> "UsageLimit":
        if self.deactivate_amount is not None and (self.deactivate_amount <= self.amount
                                                   or self.breach_action == "deactivate"):
            raise _at(("deactivate_amount",), f"deactivate_amount ({self.deactivate_amount}) is a hard limit above "
                      f"a soft one: it must exceed amount ({self.amount}) with a breach_action other than deactivate")
        return self


# A freshness alarm's period is its threshold: CloudWatch takes periods that are multiples of 60 seconds
# and at most 604,800 seconds (7 days) of evaluation (CloudWatch API Reference, PutMetricAlarm: Period,
# EvaluationPeriods).
FreshnessMinutes = Annotated[int, Field(ge=5, le=10080)]


class Warehouse(Model):
    namespace: Name
    workgroup: Name
    base_capacity: Annotated[int, Field(ge=8, le=1024, multiple_of=8)] = 8
    max_capacity: Annotated[int, Field(ge=8, le=1024, multiple_of=8)] = Field(
        64, description="Most RPUs the workgroup scales to (a cost ceiling); at least base_capacity.")
    usage_limit: UsageLimit = UsageLimit(amount=64)
    database: Ident = "dev"
    admin_username: Ident = "dwadmin"
    staging_schema: Ident = "staging"
    analytics_schema: Ident = "analytics"
    freshness_minutes: FreshnessMinutes = Field(
        60, description="The pipeline's freshness alarm: it fires when a table's newest merged change is older than "
        "this, or when the load job publishes no freshness for that long (it stopped running). Keep it above twice "
        "the load job's schedule interval (loader_schedule, every 15 minutes by default). Tables with their own "
        "freshness_minutes have their own alarm instead.")
    publicly_accessible: Literal[False] = False
    log_exports: list[Literal["connectionlog", "useractivitylog", "userlog"]] = [
        "connectionlog",
        "useractivitylog",
        "userlog",
    ]

    @model_validator(mode="after")
    def _distinct_schemas(self) -> "Warehouse":
        if self.staging_schema == self.analytics_schema:
            raise ValueError("staging_schema and analytics_schema must differ")
        if self.max_capacity < self.base_capacity:
            raise _at(("max_capacity",), f"max_capacity ({self.max_capacity}) must be at least base_capacity "
                      f"({self.base_capacity})")
        return self


def _derived_name(data, model: type[BaseModel]):
    """`name` (the target) defaults to the snake_case of `source_name` (see dwctl/spec/naming.py);
    one of the two must be given. When neither is, the keys the model does not know are named too: a
    misspelt `nme:` would otherwise hide behind this message (the unknown-key check runs later)."""
    if isinstance(data, dict) and data.get("name") is None:
        if isinstance(data.get("source_name"), str):
            return {**data, "name": target_name(data["source_name"])}
        known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
        unknown = sorted(str(k) for k in data if k not in known)
        hint = f" (unknown key(s) here: {', '.join(unknown)}: a misspelt name?)" if unknown else ""
        raise _at(("name",), "give name (the target name) or source_name (the source's own spelling), or both"
                  + hint)
    return data


def _redshift_type(column: "Column", family) -> str | None:
    """The column's analytics type in Redshift (as dwctl.render.engine.table_view gives it), or None
    when its source type is not one dwctl maps (that error is reported at its own field)."""
    from dwctl.spec.type_mapping import as_text, map_type

    try:
        return (column.redshift_type or (as_text(column.land_as_text) if column.land_as_text
                                         else map_type(column.type, family)).redshift).upper()
    except ValueError:
        return None


def _keys_not_super(i: int, table: "Table", family) -> None:
    """"You can't define SUPER columns as either a distribution or sort key" (Redshift Database
    Developer Guide, limitations-super): json and jsonb become SUPER, so CREATE TABLE would fail and
    no table would ever load."""
    by_name = {c.name: c for c in table.columns}
    named = ([(("tables", i, "dist_key"), "dist_key", table.dist_key)] if table.dist_key else []) + \
        [(("tables", i, "sort_keys", k), "sort_keys", key) for k, key in enumerate(table.sort_keys)]
    for where, field, key in named:
        if _redshift_type(by_name[key], family) == "SUPER":
            raise _at(where, f"{key!r} is {by_name[key].redshift_type or by_name[key].type}, a SUPER column in "
                      f"Redshift, which cannot be a distribution or sort key (Redshift Database Developer Guide, "
                      f"limitations-super): remove it from {field}")


def _check_default(where: tuple, column: "Column", family) -> None:
    """A column's default must be a literal of its Redshift type (dwctl/spec/column_default.py)."""
    from dwctl.spec.column_default import sql_literal

    redshift = _redshift_type(column, family)
    if redshift is None:
        return  # the type's own error is reported at its field
    try:
        sql_literal(column.default, redshift)
    except ValueError as exc:
        raise _at(where, f"{exc}") from None


def _excluded_by_list(data):
    """A table's `exclude: [name, ...]` sets exclude: true on each column it names (by target name or
    source_name), so everything downstream sees one flag; a name the table lacks is a located error."""
    names = data.get("exclude") if isinstance(data, dict) else None
    columns = data.get("columns") if isinstance(data, dict) else None
    if not isinstance(names, list) or not names or not isinstance(columns, list):
        return data

    def spellings(column) -> set:
        if isinstance(column, Column):
            return {column.name, column.source}
        if not isinstance(column, dict):
            return set()
        source = column.get("source_name")
        name = column.get("name")
        if name is None and isinstance(source, str):
            name = target_name(source)
        return {n for n in (name, source) if isinstance(n, str)}

    known = [spellings(c) for c in columns]
    for k, name in enumerate(names):
        if isinstance(name, str) and not any(name in s for s in known):
            raise _at(("exclude", k), f"{name!r} is not a column of this table (give a column's name or source_name)")
        if name in names[:k]:
            raise _at(("exclude", k), f"{name!r} is listed twice")
    listed = set(n for n in names if isinstance(n, str))
    marked = []
    for column, spelled in zip(columns, known):
        if not spelled & listed:
            marked.append(column)
        elif isinstance(column, Column):
            marked.append(column.model_copy(update={"exclude": True}))
        else:
            marked.append({**column, "exclude": True})
    return {**data, "columns": marked}


class Column(Model):
    name: Ident = Field(None, description="Target name: the column in the landed files, Glue, the grants and "
                        "Redshift (lower-case snake_case). Default: derived from source_name.")
    source_name: SourceName | None = Field(
        None, description="The column exactly as the source spells it (mixed case, spaces, leading digits), when "
        "that is not `name` itself; DMS renames it to `name`.")
    type: str = Field(description="Source type as the database spells it, e.g. numeric(12,2), varchar(255), jsonb.")
    nullable: bool = True
    redshift_type: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9 ]*(\(\d+(,\d+)?\))?$")] | None = (
        Field(None, description="Override the documented mapping.")
    )
    exclude: bool = Field(
        False, description="Leave the column out: a DMS remove-column rule keeps it out of the landed files, and "
        "Glue, the grants and Redshift never see it (its type need not be one dwctl maps).")
    land_as_text: Annotated[int, Field(ge=1, le=16383)] | None = Field(
        None, description="Carry a type DMS or Redshift cannot (e.g. macaddr8, MariaDB inet6) as text of at most "
        "this many characters: a DMS change-data-type to string, VARCHAR(4 x n) in Redshift. Not for LOB types "
        "(json, hstore, composite, ...: DMS can only drop those, and lands them as text already).")
    default: bool | int | float | str | None = Field(
        None, description="The constant the source's DEFAULT gives rows that existed when the column was added "
        "(DMS sends no change for them): the warehouse column is added with it, and files written before the "
        "column existed load it instead of NULL. A literal of the column's type (a date as \"YYYY-MM-DD\"); "
        "`dwctl import` fills it in.")

    renamed_from: Ident | None = Field(
        None, description="The column's previous target name, when the source renamed it (ALTER TABLE ... RENAME "
        "COLUMN): the load job renames the warehouse column, so its values carry over (a drop and an add would "
        "leave the rows already there NULL), and files landed under the old name still load. `dwctl import` "
        "proposes it; it may stay in the spec.")

    @model_validator(mode="before")
    @classmethod
    def _name_from_source(cls, data):
        return _derived_name(data, cls)

    @property
    def source(self) -> str:
        """The name DMS reads at the source."""
        return self.source_name if self.source_name is not None else self.name


# --- issue 14, DMS at scale: per-table parallel full load and LOB size ---------------------------
# A table-settings rule (https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Tasks.CustomizingTasks.TableMapping.
# SelectionTransformation.Tablesettings.html): ranges take "up to 10 columns", not DOUBLE, FLOAT, BLOB, CLOB or
# NCLOB ones, and "Records with null values aren't replicated" (so range columns must be NOT NULL here); a
# task loads at most MaxFullLoadSubTasks (49) segments at once, so at most 48 boundaries (49 segments).
MAX_RANGE_COLUMNS = 10
MAX_RANGE_BOUNDARIES = MAX_FULL_LOAD_SUBTASKS - 1
BoundaryValue = int | Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 _.:+-]{1,64}$")]
PartitionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_$]{1,64}$")]


class RangesLoad(Model):
    type: Literal["ranges"]
    columns: Annotated[list[Ident], Field(min_length=1, max_length=MAX_RANGE_COLUMNS)] = Field(
        description="Segment columns, most significant first: NOT NULL, indexed, not float or LOB.")
    boundaries: Annotated[list[list[BoundaryValue]], Field(min_length=1, max_length=MAX_RANGE_BOUNDARIES)] = Field(
        description="Upper bounds of each segment but the last, in increasing order, one value per column.")


class PartitionsLoad(Model):
    type: Literal["partitions-auto", "partitions-list"] = Field(
        description="MySQL only (Postgres sources support ranges only): every partition, or those listed.")
    partitions: list[PartitionName] = Field(default_factory=list, description="partitions-list: the partitions.")

    @model_validator(mode="after")
    def _list_names_partitions(self) -> "PartitionsLoad":
        if (self.type == "partitions-list") != bool(self.partitions):
            raise _at(("partitions",), "partitions-list needs partitions; partitions-auto takes none")
        _unique(self.partitions, "partition", "partitions")
        if len(self.partitions) > MAX_FULL_LOAD_SUBTASKS:
            raise _at(("partitions",), f"at most {MAX_FULL_LOAD_SUBTASKS} partitions (MaxFullLoadSubTasks)")
        return self


class TableLob(Model):
    # Parsed so that `lob:` gets a located refusal with its reason (dwctl/spec/dms_tasks.py PER_TABLE_LOB_REFUSED).
    mode: Literal["limited"] = Field("limited", description="limited only: S3 targets have no full LOB mode.")
    max_size_kb: Annotated[int, Field(ge=1, le=102400)] = Field(
        description="bulk-max-size of this table's LOBs (refused with the S3 target: see lob).")


class Table(Model):
    schema_: SourceName = Field("public", alias="schema", description="Source schema (MySQL: the database), "
                                "exactly as the source spells it; its landed folder is its snake_case.")
    name: Ident = Field(None, description="Target name: the landed folder, the Glue table and the Redshift "
                        "tables (lower-case snake_case, unique in the spec). Default: derived from source_name.")
    source_name: SourceName | None = Field(
        None, description="The table exactly as the source spells it, when that is not `name` itself; DMS "
        "renames it to `name`. Two schemas' tables of one name need two different names.")
    partitions: list[SourceName] = Field(
        default_factory=list, description="Postgres: the leaf partitions (PARTITION OF) or inheritance children "
        "of this table, in its schema. Logical replication reports changes under their names, so DMS selects "
        "each one (not the parent); each lands in its own folder (its snake_case name) and has its own load "
        "state, so one partition's reload replaces only its rows, and all of them merge into the one "
        "Redshift table `name`. `dwctl import` fills this in.")
    columns: Annotated[list[Column], Field(min_length=1)]
    primary_key: Annotated[list[Ident], Field(min_length=1)] = Field(
        description="Required: CDC cannot apply updates and deletes without one."
    )
    dist_key: Ident | None = Field(None, description="A column of the table to distribute the analytics table on "
                                   "(DISTKEY; not a json/jsonb column: SUPER cannot be a key). Unset: DISTSTYLE AUTO, "
                                   "Redshift chooses.")
    sort_keys: list[Ident] = Field(default_factory=list, description="Columns of the analytics table's compound "
                                   "SORTKEY, most significant first (not json/jsonb). Empty: SORTKEY AUTO, "
                                   "Redshift chooses.")
    history: bool = Field(
        False, description="Also keep every version of each row (SCD type 2) in <analytics_schema>.<name>_history: "
        "the columns plus valid_from, valid_to (NULL while current), is_current and dwctl_op (I or U), "
        "maintained by the same merge transaction."
    )
    # --- issue 14, DMS at scale (validated in _dms_scale_settings and Spec._dms_tasks) ---
    task: TaskName | None = Field(None, description="The DMS task replicating this table; default: one of the "
                                  "default tasks (dms.tables_per_task). Moving a table restarts its full load.")
    parallel_load: RangesLoad | PartitionsLoad | None = Field(
        None, description="Load the full load in parallel segments (a DMS table-settings rule). Each segment "
        "(ranges: segment01, segment02, ...) or partition lands in its own folder under the table's; the load job "
        "reads them all as the table's full load.",
        discriminator="type")
    lob: TableLob | None = Field(None, description="Refused: DMS documents per-table LOB settings for no S3 target "
                                 "(dwctl/spec/dms_tasks.py); every table uses the task's limited LOB mode "
                                 "(dms_lob_max_size_kb).")
    exclude: list[SourceName] = Field(
        default_factory=list, description="Columns to leave out, by name (or source_name): the same as "
        "`exclude: true` on each of them.")
    freshness_minutes: FreshnessMinutes | None = Field(
        None, description="A freshness alarm of this table's own, at this many minutes (a table that changes "
        "rarely: a larger one); the pipeline's alarm (warehouse.freshness_minutes) then leaves it out.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _name_from_source(cls, data):
        return _excluded_by_list(_derived_name(data, cls))

    @property
    def column_names(self) -> list[str]:
        """Target names of the columns that reach the warehouse (excluded ones do not)."""
        return [c.name for c in self.columns if not c.exclude]

    @property
    def source(self) -> str:
        """The table's name at the source."""
        return self.source_name if self.source_name is not None else self.name

    @property
    def source_tables(self) -> list[str]:
        """The source tables DMS selects for this table: its partitions, or itself."""
        return list(self.partitions) or [self.source]

    @property
    def part_names(self) -> list[str]:
        """The target name of each partition: its landed folder, Glue table and load state (the
        staging tables and load log of a part are its own; analytics is the table's)."""
        return [target_name(p) for p in self.partitions]

    @model_validator(mode="after")
    def _keys_name_columns(self) -> "Table":
        for field, value in (("schema", self.schema_), ("name", self.name)):
            if value.startswith(RESERVED_PREFIX):
                raise _at((field,), f"names starting with {RESERVED_PREFIX!r} are reserved for dwctl's own "
                          "tables and folders (load log, manifests)")
        if WORK_MARK in self.name:
            raise _at(("name",), f"table names containing {WORK_MARK!r} are reserved for dwctl's work tables in staging")
        by_name: dict[str, Column] = {}
        landed = {name.lower(): name for name in LANDED_NAMES}
        for j, column in enumerate(self.columns):
            if column.name.lower() in landed:
                raise _at(("columns", j, "name"), f"column {column.name!r} would collide with the column "
                          f"{landed[column.name.lower()]!r} that DMS adds to every landed file "
                          f"({', '.join(LANDED_NAMES)}, compared without case), and Parquet, Glue and Redshift "
                          "could not tell the two apart: rename the column at the source")
            if column.name in by_name:
                raise _at(("columns", j, "name"), f"duplicate column {column.name!r}")
            by_name[column.name] = column
        keys = {"primary_key": self.primary_key, "sort_keys": self.sort_keys}
        for field, names in keys.items():
            for k, key in enumerate(names):
                if key not in by_name:
                    raise _at((field, k), f"{key!r} is not a column of table {self.name!r}")
                if key in names[:k]:
                    raise _at((field, k), f"{key!r} is listed twice")
        if self.dist_key is not None and self.dist_key not in by_name:
            raise _at(("dist_key",), f"{self.dist_key!r} is not a column of table {self.name!r}")
        for field, names in (*keys.items(), ("dist_key", [self.dist_key] if self.dist_key else [])):
            for k, key in enumerate(names):
                if by_name[key].exclude:
                    raise _at((field,) if field == "dist_key" else (field, k),
                              f"{key!r} is excluded (exclude: true), so it cannot be a key")
        if not self.column_names:
            raise _at(("columns",), "every column is excluded: a table needs at least one column")
        sources: dict[str, int] = {}
        for j, column in enumerate(self.columns):
            if column.source in sources:
                raise _at(("columns", j, "source_name" if column.source_name else "name"),
                          f"two columns read the source column {column.source!r} (columns[{sources[column.source]}])")
            sources[column.source] = j
        for k, part in enumerate(self.partitions):
            if part in self.partitions[:k]:
                raise _at(("partitions", k), f"partition {part!r} is listed twice")
        for k, key in enumerate(self.primary_key):
            if by_name[key].nullable:
                raise _at(("primary_key", k), f"primary key column {key!r} must not be nullable (set nullable: false)")
        return self

    @model_validator(mode="after")
    def _renames_name_old_columns(self) -> "Table":
        """renamed_from names a column the table no longer has, one column's only, and not one dwctl adds
        (the load job renames it in the warehouse: load_job.plan_renames)."""
        names = {c.name for c in self.columns}
        ours = {n.lower() for n in LANDED_NAMES} | (set(HISTORY_COLUMNS) if self.history else set())
        seen: dict[str, int] = {}
        for j, column in enumerate(self.columns):
            old = column.renamed_from
            where = ("columns", j, "renamed_from")
            if old is None:
                continue
            if old == column.name:
                raise _at(where, f"{old!r} is the column's own name: renamed_from names its name before the rename")
            if old in names:
                raise _at(where, f"{old!r} is still a column of this table: renamed_from names a column the source "
                          "renamed, which the table no longer has (take renamed_from out)")
            if old in seen:
                raise _at(where, f"columns[{seen[old]}] is renamed from {old!r} too: one column had that name")
            if column.exclude:
                raise _at(where, "an excluded column never reaches the warehouse: take renamed_from out")
            if old.lower() in ours or old.startswith(("dwctl_", RESERVED_PREFIX)):
                raise _at(where, f"{old!r} is a column dwctl adds to the warehouse tables, not one of the source's")
            seen[old] = j
        return self

    @model_validator(mode="after")
    def _dms_scale_settings(self) -> "Table":
        """Range segments and LOB sizes DMS accepts and that lose no row (issue 14)."""
        from dwctl.spec.dms_tasks import range_column_problem

        by_name = {c.name: c for c in self.columns}
        if isinstance(self.parallel_load, RangesLoad):
            load = self.parallel_load
            for k, name in enumerate(load.columns):
                where = ("parallel_load", "columns", k)
                if name not in by_name:
                    raise _at(where, f"{name!r} is not a column of table {self.name!r}")
                if name in load.columns[:k]:
                    raise _at(where, f"{name!r} is listed twice")
                if by_name[name].nullable:
                    raise _at(where, f"range column {name!r} must be NOT NULL (set nullable: false): DMS does not "
                              "replicate rows with a NULL in a range column")
                if problem := range_column_problem(by_name[name].type):
                    raise _at(where, f"range column {name!r} is {problem}: DMS cannot segment on it")
            for b, bound in enumerate(load.boundaries):
                if len(bound) != len(load.columns):
                    raise _at(("parallel_load", "boundaries", b), f"{len(bound)} value(s) for "
                              f"{len(load.columns)} range column(s): give one value per column")
                if b and all(isinstance(v, int) for v in bound + load.boundaries[b - 1]) \
                        and tuple(bound) <= tuple(load.boundaries[b - 1]):
                    raise _at(("parallel_load", "boundaries", b), "boundaries must increase")
        return self  # the LOB size depends on the source engine: Spec._dms_tasks checks it

    @model_validator(mode="after")
    def _history_columns_free(self) -> "Table":
        for j, column in enumerate(self.columns if self.history else []):
            if column.name in HISTORY_COLUMNS:
                raise _at(("columns", j, "name"), f"column {column.name!r} clashes with a column the history table "
                          f"adds ({', '.join(HISTORY_COLUMNS)}): rename it in the spec or set history: false")
        return self


class ColumnFilter(Model):
    include: list[Ident] | None = Field(None, description="Grant only these columns (give include or exclude).")
    exclude: list[Ident] | None = Field(None, description="Grant every column but these (give include or exclude).")

    @model_validator(mode="after")
    def _exactly_one(self) -> "ColumnFilter":
        if (self.include is None) == (self.exclude is None):
            raise ValueError("give exactly one of include or exclude")
        return self


Permission = Literal["SELECT", "DESCRIBE", "ALTER", "INSERT", "DELETE", "DROP"]


class Grant(Model):
    principal: Principal
    database: Ident | None = Field(None, description="Defaults to the catalog database.")
    tables: list[Ident] | Literal["all"] = Field(description="Table names, or 'all'.")
    permissions: Annotated[list[Permission], Field(min_length=1)] = ["SELECT", "DESCRIBE"]
    columns: ColumnFilter | None = Field(None, description="Column include or exclude list (listed tables only).")

    @model_validator(mode="after")
    def _columns_need_tables(self) -> "Grant":
        _unique(self.permissions, "permission", "permissions")
        if self.columns is not None and self.tables == "all":
            raise ValueError("a column filter needs listed tables, not 'all'")
        if self.columns is not None and set(self.permissions) - {"SELECT"}:
            raise ValueError("column-level grants allow SELECT only")
        return self


class Governance(Model):
    admins: Annotated[list[Principal], Field(min_length=1)] = Field(
        description="Lake Formation administrators: set by the stack with manage_data_lake_settings, "
        "otherwise checked after apply.")
    manage_data_lake_settings: bool = Field(
        False, description="Let this stack own the account-wide Lake Formation settings (admins, no "
        "IAMAllowedPrincipals defaults). One stack per account and region at most: it replaces the admin list.")
    grants: list[Grant] = Field(default_factory=list)


class Skip(Model):
    id: Annotated[str, StringConstraints(pattern=CHECK_ID)]
    reason: Annotated[str, StringConstraints(min_length=10, pattern=r"^[^\n]+$")]


# Checks the rendered stack fails on purpose, each with the reason a security reviewer gets.
DEFAULT_SKIPS: tuple[Skip, ...] = (
    Skip(id="CKV_AWS_144", reason=(
        "No cross-region replication of the landing and access-log buckets: the landing zone is a re-creatable "
        "copy of the source (a DMS full load rebuilds it) and replicating it would copy personal data to a second "
        "region (data residency) at twice the storage and KMS cost; versioning, prevent_destroy and the source's "
        "own backups protect it.")),
    Skip(id="CKV_AWS_145", reason=(
        "The access-log bucket is encrypted with SSE-S3, not KMS: S3 server access logging supports only SSE-S3 "
        "default encryption on its target bucket (S3 User Guide, enable-server-access-logging), so SSE-KMS there "
        "would lose the logs; the landing bucket, which holds the data, stays SSE-KMS with the stack's key.")),
)


class Scan(Model):
    skip: list[Skip] = Field(default_factory=lambda: list(DEFAULT_SKIPS))


def _valid_tags(tags: dict[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if not re.match(TAG_KEY, key) or key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r} is not allowed (letters, digits, space and _.:/=+@-; no aws: prefix)")
        if not re.match(TAG_VALUE, value):
            raise ValueError(f"tag value {value!r} for {key!r} is not allowed")
    return tags


# --- deployment: remote state and per-environment overrides (used by init/plan/apply) -------
ENV_NAME = r"^[a-z][a-z0-9]{0,15}$"
DYNAMODB_TABLE = r"^[A-Za-z0-9_.-]{3,255}$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]


class Backend(Model):
    """Terraform state in S3, always encrypted and locked; rendered as a partial backend config per environment."""

    bucket: Annotated[str, StringConstraints(pattern=S3_BUCKET)]
    key_prefix: Annotated[str, StringConstraints(pattern=S3_PREFIX)] | None = Field(
        None, description="Folder of the state object (<key_prefix>/terraform.tfstate); default: the project name."
    )
    region: Annotated[str, StringConstraints(pattern=REGION)] | None = Field(
        None, description="Region of the state bucket; default: the environment's region."
    )
    dynamodb_table: Annotated[str, StringConstraints(pattern=DYNAMODB_TABLE)] | None = Field(
        None, description="DynamoDB table for state locking."
    )
    use_lockfile: bool = Field(False, description="S3-native state locking instead of DynamoDB (Terraform >= 1.10).")
    kms_key_id: Annotated[str, StringConstraints(pattern=KMS_ARN)] | None = Field(
        None, description="KMS key for the state object; default: S3-managed encryption."
    )
    encrypt: Literal[True] = True

    @model_validator(mode="after")
    def _locked(self) -> "Backend":
        if not self.dynamodb_table and not self.use_lockfile:
            raise ValueError("state must be locked: set dynamodb_table or use_lockfile: true")
        return self


class UsageLimitOverride(Model):
    amount: Annotated[int, Field(ge=1)]


class WarehouseOverride(Model):
    base_capacity: Annotated[int, Field(ge=8, le=1024, multiple_of=8)] | None = None
    max_capacity: Annotated[int, Field(ge=8, le=1024, multiple_of=8)] | None = None
    usage_limit: UsageLimitOverride | None = None


class DmsOverride(Model):
    instance_class: Annotated[str, StringConstraints(pattern=r"^dms\.[a-z0-9]+\.[a-z0-9]+$")] | None = None
    multi_az: bool | None = None


class LandingOverride(Model):
    bucket: Annotated[str, StringConstraints(pattern=S3_BUCKET)] | None = None


class SourceOverride(Model):
    host: Annotated[str, StringConstraints(pattern=HOSTNAME, max_length=253)] | None = None
    secret_arn: Annotated[str, StringConstraints(pattern=SECRET_ARN)] | None = None
    certificate_arn: Annotated[str, StringConstraints(pattern=DMS_CERT_ARN)] | None = Field(
        None, description="This environment's imported CA bundle (DMS certificates stay in their account).")


class GovernanceOverride(Model):
    admins: Annotated[list[Principal], Field(min_length=1)] | None = None


class EnvOverride(Model):
    """What may differ between environments; everything else (tables, SQL, grants) is shared by design."""

    account_id: Annotated[str, StringConstraints(pattern=ACCOUNT)] | None = Field(
        None, description="The AWS account this environment lives in (passed as var.account_id)."
    )
    region: Annotated[str, StringConstraints(pattern=REGION)] | None = None
    tags: Annotated[dict[str, str], AfterValidator(_valid_tags)] = Field(
        default_factory=dict, description="Merged over the spec's tags."
    )
    network: Network | None = Field(None, description="This environment's VPC, replacing the spec's network.")
    source: SourceOverride = SourceOverride()
    landing: LandingOverride = LandingOverride()
    dms: DmsOverride = DmsOverride()
    warehouse: WarehouseOverride = WarehouseOverride()
    governance: GovernanceOverride = GovernanceOverride()
    backend: Backend | None = Field(None, description="This environment's state backend, replacing the spec's.")


class Spec(Model):
    """A whole pipeline: source database to governed warehouse."""

    project: Name
    environment: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{0,15}$")]
    region: Annotated[str, StringConstraints(pattern=REGION)]
    tags: Annotated[dict[str, str], AfterValidator(_valid_tags)] = Field(default_factory=dict)
    network: Network
    source: Source
    landing: Landing = Landing()
    dms: Dms = Dms()
    catalog: Catalog
    warehouse: Warehouse
    tables: Annotated[list[Table], Field(min_length=1)]
    governance: Governance
    scan: Scan = Scan()
    backend: Backend | None = Field(None, description="Remote state for `dwctl init`; default: local state in iac/.")
    environments: dict[EnvName, EnvOverride] = Field(
        default_factory=dict, description="Environments beside `environment`, each with its own tfvars, state and workspace."
    )
    protect_data: bool = Field(
        True, description="Guard data-holding resources with prevent_destroy; set false to allow `dwctl destroy`."
    )

    @model_validator(mode="after")
    def _cross_references(self) -> "Spec":
        tables = {}
        family = self.source.family
        read_by: dict[tuple[str, str], int] = {}
        folded: dict[tuple[str, str], tuple[str, str]] = {}  # (schema, lower-cased name) -> the key read_by has
        parts = {t.name: (("tables", i, "name"), f"the table of tables[{i}]") for i, t in enumerate(self.tables)}
        for i, table in enumerate(self.tables):
            if table.name in tables:
                first = self.tables.index(tables[table.name])
                raise _at(("tables", i, "name"), f"duplicate table {table.name!r}: tables[{first}] "
                          f"({tables[table.name].schema_}.{tables[table.name].source}) and this one "
                          f"({table.schema_}.{table.source}) would land in, and load into, the same target: set "
                          "`name:` on one of them (for example <schema>_<table>)")
            tables[table.name] = table
            self._check_source_names(i, table, family, read_by, folded)
            _check_part_names(i, table, parts)
            for j, column in enumerate(table.columns):
                if column.exclude:
                    continue
                if column.default is not None:
                    _check_default(("tables", i, "columns", j, "default"), column, family)
                if column.land_as_text is not None:
                    if _known_lob(column.type, family):
                        raise _at(("tables", i, "columns", j, "land_as_text"), f"{column.type} is a LOB to DMS, "
                                  "and the only transformation DMS allows on a LOB column is to drop it (DMS User "
                                  "Guide, Transformation rules and actions, Limitations): remove land_as_text (dwctl "
                                  f"lands {column.type} as {map_type(column.type, family).redshift}) or use "
                                  "exclude: true")
                    continue
                try:
                    parse_source_type(column.type, family)
                except ValueError as exc:
                    raise _at(("tables", i, "columns", j, "type"), f"{exc}; if DMS or Redshift cannot carry "
                              "it, set exclude: true on the column") from None
            _landed_names_unique(i, table, family)
            _keys_not_super(i, table, family)
        granted: dict[tuple[str, str], int] = {}
        for i, grant in enumerate(self.governance.grants):
            for k, name in enumerate(["*"] if grant.tables == "all" else grant.tables):
                where = ("governance", "grants", i, "tables") + (() if name == "*" else (k,))
                if (grant.principal, name) in granted:
                    raise _at(where, f"{grant.principal} already has a grant on {name!r} (grants[{granted[grant.principal, name]}]): "
                              "merge them, one Lake Formation permission per principal and table")
                granted[grant.principal, name] = i
            if grant.database not in (None, self.catalog.database):
                raise _at(("governance", "grants", i, "database"),
                          f"{grant.database!r} is not the catalog database {self.catalog.database!r}")
            if grant.tables == "all":
                continue
            for k, name in enumerate(grant.tables):
                if name not in tables:
                    raise _at(("governance", "grants", i, "tables", k), f"no table named {name!r}")
            if grant.columns is not None:
                listed = grant.columns.include or grant.columns.exclude or []
                key = "include" if grant.columns.include is not None else "exclude"
                for k, col in enumerate(listed):
                    for name in grant.tables:
                        if col not in tables[name].column_names:
                            raise _at(("governance", "grants", i, "columns", key, k),
                                      f"table {name!r} has no column {col!r}")
        for where, environment in [(("environment",), self.environment),
                                   *((("environments", name), name) for name in self.environments)]:
            if long := too_long(self.project, environment):
                raise _at(where, "; ".join(long) + ": shorten project or environment")
        for i, skip in enumerate(self.scan.skip):
            if skip.id in [s.id for s in self.scan.skip[:i]]:
                raise _at(("scan", "skip", i, "id"), f"duplicate scan skip {skip.id!r}")
        return self

    @staticmethod
    def _check_source_names(i: int, table: Table, family: str, read_by: dict[tuple[str, str], int],
                            folded_by: dict[tuple[str, str], tuple[str, str]]) -> None:
        """Source names fit the engine, each source table feeds one spec table, partitions are Postgres's."""
        if table.partitions and family != "postgres":
            raise _at(("tables", i, "partitions"), "partitions are read from Postgres (pg_inherits); MySQL "
                      "partitions are one table to DMS: remove the list")
        named = [(("tables", i, "schema"), table.schema_),
                 (("tables", i, "source_name" if table.source_name else "name"), table.source),
                 *((("tables", i, "partitions", k), p) for k, p in enumerate(table.partitions)),
                 *((("tables", i, "columns", j, "source_name"), c.source_name) for j, c in enumerate(table.columns)
                   if c.source_name)]
        for where, name in named:
            if why := source_too_long(name, family):
                raise _at(where, why)
        for k, name in enumerate(table.source_tables):
            where = ("tables", i, "partitions", k) if table.partitions else ("tables", i, "name")
            key = (table.schema_, name)
            if key in read_by:
                raise _at(where, f"the source table {table.schema_}.{name} already feeds tables[{read_by[key]}]: "
                          "DMS does not replicate one source table into two targets")
            # "Replication of multiple tables with the same name where each name has a different case
            # (for example, table1, TABLE1, and Table1) can cause unpredictable behavior" (CHAP_Source.PostgreSQL)
            folded = folded_by.get((key[0], name.lower()))  # a dict, not a scan: thousands of tables
            if folded is not None:
                raise _at(where, f"{table.schema_}.{name} and {folded[0]}.{folded[1]} (tables[{read_by[folded]}]) "
                          "differ only in case, which DMS does not support (\"can cause unpredictable behavior\", "
                          "DMS User Guide, PostgreSQL source limitations): rename one at the source")
            read_by[key] = i
            folded_by[(key[0], name.lower())] = key

    @model_validator(mode="after")
    def _history_names_free(self) -> "Spec":
        names = [t.name for t in self.tables]
        for i, table in enumerate(self.tables):
            history = table.name + HISTORY_SUFFIX
            if table.history and history in names:
                raise _at(("tables", i, "history"), f"the history table {history!r} of {table.name!r} would be "
                          f"the analytics table of tables[{names.index(history)}]: rename one of them")
        return self

    @model_validator(mode="after")
    def _dms_tasks(self) -> "Spec":
        """Task names, per-task settings and engine-specific parallel load (issue 14)."""
        from dwctl.spec.dms_tasks import check_tasks

        check_tasks(self)
        return self

    @cached_property
    def _tables_by_name(self) -> dict[str, Table]:
        return {t.name: t for t in self.tables}

    def table(self, name: str) -> Table:
        return self._tables_by_name[name]


def _check_part_names(i: int, table: Table, taken: dict[str, tuple]) -> None:
    """Each partition's target name is a folder, a Glue table and staging tables of its own: unique
    among the spec's tables and parts, and not one of dwctl's reserved names."""
    for k, (source, part) in enumerate(zip(table.partitions, table.part_names)):
        where = ("tables", i, "partitions", k)
        if part.startswith(RESERVED_PREFIX) or WORK_MARK in part:
            raise _at(where, f"partition {source!r} lands as {part!r}, a name reserved for dwctl's own tables")
        if part in taken and taken[part][0] != ("tables", i, "name"):
            raise _at(where, f"partition {source!r} lands as {part!r}, which is also {taken[part][1]}: rename one "
                      "of them (a partition's folder, Glue table and staging tables take its snake_case name)")
        taken[part] = (where, f"partition {source!r} of tables[{i}]")


def _landed_names_unique(i: int, table: Table, family: str) -> None:
    """Glue compares column names without case: the names DMS lands (see landed_name) must differ so."""
    from dwctl.spec.naming import dms_transformable

    seen: dict[str, int] = {}
    for j, column in enumerate(table.columns):
        if column.exclude:
            if not dms_transformable(column.source):
                raise _at(("tables", i, "columns", j, "exclude"), f"DMS cannot remove the column {column.source!r}: "
                          "its name holds # \\ / or -, on which DMS performs no transformation (DMS User Guide, "
                          "Transformation rules and actions, Limitations): rename it at the source")
            continue
        landed = landed_name(column, family).lower()
        if landed in {n.lower() for n in LANDED_NAMES}:
            raise _at(("tables", i, "columns", j, "source_name"), f"column {column.source!r} keeps its source name in "
                      f"the landed file (DMS cannot rename it), where DMS also writes a column {landed!r}: exclude "
                      "it or rename it at the source")
        if landed in seen:
            raise _at(("tables", i, "columns", j, "name"), f"column {column.name!r} lands as {landed!r} like "
                      f"columns[{seen[landed]}], and Glue compares names without case: give one another name")
        seen[landed] = j


def landed_name(column: Column, family: str) -> str:
    """The column's name in the landed Parquet files: its target `name` when DMS can rename it; else
    (a LOB, a DMS type change, or # \\ / - in the name) the source name, which COPY does not mind (it maps
    by position) and Glue reads lower-cased."""
    from dwctl.spec.naming import dms_transformable
    from dwctl.spec.type_mapping import dms_lob, map_type

    if column.source == column.name:
        return column.name
    if column.land_as_text is not None:
        return column.source
    cast = bool(map_type(column.type, family).dms_type)
    if cast or dms_lob(column.type, family) or not dms_transformable(column.source):
        return column.source
    return column.name


def _known_lob(text: str, family: str) -> bool:
    """A type dwctl maps and DMS carries as a LOB (an unknown type may be anything: not refused)."""
    from dwctl.spec.type_mapping import dms_lob

    try:
        parse_source_type(text, family)
    except ValueError:
        return False
    return dms_lob(text, family)


def json_schema() -> dict:
    """JSON Schema of the spec for editors (yaml-language-server)."""
    schema = Spec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dwctl pipeline spec"
    return schema
