"""The checks behind `dwctl doctor`: is this source ready for DMS full load + CDC, and does it match the spec?

A DMS task against a source that is not ready fails hours later; these are the settings it
trips over, each with the fix spelled out (RDS parameter groups differ from self-managed
servers, so the fix names the right knob for each).
"""

from __future__ import annotations

import re

from dwctl.report import Check
from dwctl.source.connection import Connection

MIN_BINLOG_HOURS = 24  # AWS recommends at least a day so a stopped task can resume


def _free(name: str, setting: str, maximum: int, used: int, rds: bool, each: str) -> Check:
    free = maximum - used
    detail = f"{setting} = {maximum}, {used} in use, {free} free"
    where = "in the DB parameter group (then reboot)" if rds else "with ALTER SYSTEM SET (then restart PostgreSQL)"
    fix = f"raise {setting} to at least {used + 2} {where}; {each}"
    if free < 1:
        return Check(name, "fail", detail, fix)
    if free == 1:
        return Check(name, "warn", detail + " (no headroom for a second task or a task restart)", fix)
    return Check(name, "pass", detail)


# --- Postgres ------------------------------------------------------------------------

def postgres_checks(conn: Connection) -> list[Check]:
    settings = dict(conn.rows("SELECT name, setting FROM pg_settings WHERE name IN "
                              "('wal_level', 'max_replication_slots', 'max_wal_senders', 'server_version')"))
    rds_logical = conn.rows("SELECT current_setting('rds.logical_replication', true)")[0][0]
    rds = rds_logical is not None or bool(conn.rows("SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'"))
    checks = [Check("server", "pass", f"PostgreSQL {settings.get('server_version', '?')}" + (" (RDS)" if rds else ""))]

    wal_level = settings.get("wal_level", "?")
    if wal_level == "logical":
        checks.append(Check("wal_level", "pass", "logical"))
    elif rds and rds_logical in ("1", "on"):
        checks.append(Check("wal_level", "fail", f"{wal_level}; rds.logical_replication is 1 but not in effect yet",
                            "reboot the instance so rds.logical_replication = 1 takes effect"))
    elif rds:
        checks.append(Check("wal_level", "fail", f"{wal_level}; CDC needs logical decoding",
                            "set rds.logical_replication = 1 in the instance's DB parameter group, then reboot"))
    else:
        checks.append(Check("wal_level", "fail", f"{wal_level}; CDC needs logical decoding",
                            "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"))

    slots_used = conn.rows("SELECT count(*) FROM pg_replication_slots")[0][0]
    checks.append(_free("replication slots", "max_replication_slots", int(settings.get("max_replication_slots", 0)),
                        slots_used, rds, "each DMS CDC task holds one slot"))
    senders_used = conn.rows("SELECT count(*) FROM pg_stat_replication")[0][0]
    checks.append(_free("wal senders", "max_wal_senders", int(settings.get("max_wal_senders", 0)),
                        senders_used, rds, "each DMS CDC task streams through one sender"))

    user, can_replicate = conn.rows(
        "SELECT current_user, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")[0]
    has_rds_role = bool(conn.rows("SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication'"))
    member = has_rds_role and conn.rows("SELECT pg_has_role(current_user, 'rds_replication', 'member')")[0][0]
    if can_replicate or member:
        checks.append(Check("replication privilege", "pass",
                            f"{user} has {'REPLICATION' if can_replicate else 'rds_replication'}"))
    else:
        fix = f"GRANT rds_replication TO {user};" if rds or has_rds_role else f"ALTER ROLE {user} WITH REPLICATION;"
        checks.append(Check("replication privilege", "fail", f"{user} cannot open a replication slot", fix))
    return checks


# --- MySQL / MariaDB -----------------------------------------------------------------

def mysql_checks(conn: Connection) -> list[Check]:
    version = str(conn.rows("SELECT VERSION()")[0][0])
    rds_config = conn.try_rows("CALL mysql.rds_show_configuration")
    rds = rds_config is not None
    names = ("log_bin", "binlog_format", "binlog_row_image", "binlog_expire_logs_seconds", "expire_logs_days")
    variables = {str(k).lower(): str(v) for k, v in conn.rows(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + ", ".join(["%s"] * len(names)) + ")", names)}
    engine = "MariaDB" if "mariadb" in version.lower() else "MySQL"
    checks = [Check("server", "pass", f"{engine} {version}" + (" (RDS)" if rds else ""))]

    def setting(name: str, want: str, fix_self: str, fix_rds: str) -> None:
        value = variables.get(name, "?")
        if value.upper() == want:
            checks.append(Check(name, "pass", value))
        else:
            checks.append(Check(name, "fail", f"{value}; CDC needs {want}", fix_rds if rds else fix_self))

    setting("log_bin", "ON", "start the server with log-bin (and a server-id) in my.cnf, then restart",
            "turn on automated backups (retention > 0 days); RDS enables binary logging with them")
    setting("binlog_format", "ROW", "SET GLOBAL binlog_format = 'ROW' and set binlog_format = ROW in my.cnf",
            "set binlog_format = ROW in the DB parameter group")
    setting("binlog_row_image", "FULL", "SET GLOBAL binlog_row_image = 'FULL' and set it in my.cnf",
            "set binlog_row_image = FULL in the DB parameter group")
    checks.append(_binlog_retention(variables, rds_config))
    checks.append(_mysql_grants(conn))
    return checks


def _binlog_retention(variables: dict[str, str], rds_config: list[tuple] | None) -> Check:
    name = "binlog retention"
    if rds_config is not None:
        hours = next((row[1] for row in rds_config if str(row[0]).lower() == "binlog retention hours"), None)
        fix = f"CALL mysql.rds_set_configuration('binlog retention hours', {MIN_BINLOG_HOURS});"
        if hours in (None, "NULL"):
            return Check(name, "fail", "binlog retention hours is NULL: RDS purges binlogs as soon as it can", fix)
        if float(hours) < MIN_BINLOG_HOURS:
            return Check(name, "fail", f"{hours} hours; less than {MIN_BINLOG_HOURS}", fix)
        return Check(name, "pass", f"{hours} hours")
    seconds = float(variables.get("binlog_expire_logs_seconds", "0") or 0)
    if not seconds:
        seconds = float(variables.get("expire_logs_days", "0") or 0) * 86400
    if not seconds:
        return Check(name, "pass", "binlogs are never purged automatically (watch the disk)")
    hours = seconds / 3600
    if hours < MIN_BINLOG_HOURS:
        return Check(name, "fail", f"{hours:g} hours; less than {MIN_BINLOG_HOURS}",
                     f"SET GLOBAL binlog_expire_logs_seconds = {MIN_BINLOG_HOURS * 3600} and set it in my.cnf")
    return Check(name, "pass", f"{hours:g} hours")


def _mysql_grants(conn: Connection) -> Check:
    """DMS reads the binlog: REPLICATION SLAVE plus REPLICATION CLIENT (MariaDB calls it BINLOG MONITOR)."""
    name = "replication privilege"
    user = str(conn.rows("SELECT CURRENT_USER()")[0][0])
    grants = [str(row[0]) for row in conn.try_rows("SHOW GRANTS") or []]
    privileges: set[str] = set()
    for grant in grants:
        match = re.match(r"GRANT (.+?) ON \*\.\* TO ", grant)
        if match:
            privileges |= {p.strip().upper() for p in match[1].split(",")}
    slave = privileges & {"ALL PRIVILEGES", "REPLICATION SLAVE", "REPLICATION REPLICA"}
    client = privileges & {"ALL PRIVILEGES", "REPLICATION CLIENT", "BINLOG MONITOR"}
    if slave and client:
        return Check(name, "pass", f"{user} can read the binlog")
    account = "'{}'@'{}'".format(*user.rsplit("@", 1)) if "@" in user else f"'{user}'"
    fix = f"GRANT REPLICATION CLIENT, REPLICATION SLAVE ON *.* TO {account};"
    if any(re.match(r"GRANT [`'\"]", g) for g in grants):
        return Check(name, "warn", f"{user} has roles; cannot tell whether they include binlog access", fix)
    return Check(name, "fail", f"{user} lacks REPLICATION SLAVE and/or REPLICATION CLIENT", fix)


# --- tables against the spec ---------------------------------------------------------

def table_checks(conn: Connection, spec) -> list[Check]:
    """Every spec table: exists, has the spec's primary key, same columns, types dwctl can map."""
    from dwctl.source.introspect import read_tables, same_type

    family = spec.source.family
    checks: list[Check] = []
    by_schema: dict[str, dict] = {}
    for table in spec.tables:
        if table.schema_ not in by_schema:
            by_schema[table.schema_] = read_tables(conn, table.schema_)
        found = by_schema[table.schema_].get(table.name)
        label = f"{table.schema_}.{table.name}"
        if found is None:
            checks.append(Check(f"table {label}", "fail", "not in the source (or not visible to this user)",
                                "create it in the source, grant SELECT on it, or remove it from the spec "
                                "(dwctl import --prune)"))
            continue
        if not found.primary_key:
            checks.append(Check(f"table {label}", "fail", "no primary key: CDC cannot apply updates and deletes",
                                f"ALTER TABLE {label} ADD PRIMARY KEY ({', '.join(table.primary_key)});"))
        elif found.primary_key != list(table.primary_key):
            checks.append(Check(f"table {label}", "fail",
                                f"primary key ({', '.join(found.primary_key)}) in the source, "
                                f"({', '.join(table.primary_key)}) in the spec",
                                "run dwctl import to take the source's key"))
        elif family == "postgres" and not conn.rows("SELECT has_table_privilege(%s, 'SELECT')",
                                                     (f'"{table.schema_}"."{table.name}"',))[0][0]:
            checks.append(Check(f"table {label}", "fail", "this user cannot SELECT it (the full load reads it)",
                                f"GRANT SELECT ON {label} TO <dms user>;"))
        else:
            checks.append(Check(f"table {label}", "pass", f"primary key ({', '.join(found.primary_key)})"))
        checks.append(_columns_check(label, table, found, family, same_type))
        checks += [c for c in [drift_check(label, table, found)] if c]
        unknown = [f"{c.name} ({c.native})" for c in found.columns if c.type is None]
        if unknown:
            checks.append(Check(f"types {label}", "warn", "outside the documented mapping: " + ", ".join(unknown),
                                "DMS may land these as text or drop them: cast them in the source (a generated "
                                "column) or leave them out of the spec"))
    return checks


def _columns_check(label: str, table, found, family, same_type) -> Check:
    fails: list[str] = []
    warns: list[str] = []
    for column in table.columns:
        source = found.column(column.name)
        if source is None:
            fails.append(f"{column.name} missing in the source")
            continue
        if source.type is None or not same_type(column.type, source.type, family):
            fails.append(f"{column.name} is {source.type or source.native} in the source, {column.type} in the spec")
        if source.nullable and not column.nullable:
            fails.append(f"{column.name} is nullable in the source but NOT NULL in the spec")
        elif column.nullable and not source.nullable:
            warns.append(f"{column.name} is NOT NULL in the source (the spec could say nullable: false)")
    spec_names = set(table.column_names)
    extra = [c.name for c in found.columns if c.name not in spec_names]
    if extra:
        warns.append(f"not in the spec: {', '.join(extra)}")
    if fails:
        return Check(f"columns {label}", "fail", "; ".join(fails + warns), "run dwctl import to update the spec")
    if warns:
        return Check(f"columns {label}", "warn", "; ".join(warns), "run dwctl import to update the spec")
    return Check(f"columns {label}", "pass", f"{len(table.columns)} columns match")


def drift_check(label: str, table, found) -> Check | None:
    """Column drift as the load job meets it (None when the source has the spec's columns). After an
    ALTER TABLE, DMS (HandleSourceTableAltered) writes the table's new columns into its next files:
    the job holds files with a column the spec lacks until the spec has it; a column dropped at
    the source stays in the warehouse (nullable)."""
    spec_names = {c.name for c in table.columns}
    source_names = {c.name for c in found.columns}
    new = [c.name for c in found.columns if c.name not in spec_names]
    gone = [c.name for c in table.columns if c.name not in source_names]
    if not new and not gone:
        return None
    said = []
    if new:
        said.append(f"in the source, not the spec: {', '.join(new)} (the load job holds {label}'s files that carry "
                    "them, and loads them once the spec has them)")
    if gone:
        said.append(f"in the spec, not the source: {', '.join(gone)} (files written since the drop lack them; the "
                    "warehouse keeps the columns, NULL in rows changed since)")
    return Check(f"drift {label}", "warn", "; ".join(said), "dwctl import, then dwctl render and deploy: the load job "
                 "migrates the warehouse tables before it loads")
