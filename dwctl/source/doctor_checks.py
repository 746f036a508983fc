"""The checks behind `dwctl doctor`: is this source ready for DMS full load + CDC, and does it match the spec?

A DMS task against a source that is not ready fails hours later; these are the settings it
trips over, each with the fix spelled out (RDS parameter groups differ from self-managed
servers, so the fix names the right knob for each).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dwctl.report import Check
from dwctl.source.connection import Connection

MIN_BINLOG_HOURS = 24  # AWS recommends at least a day so a stopped task can resume


def _free(name: str, setting: str, maximum: int, used: int, rds: bool, each: str, tasks: int = 1) -> Check:
    """`tasks`: the DMS tasks the spec runs, each holding one (issue 14; "to run five tasks you set a minimum
    of five slots", https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Source.PostgreSQL.html)."""
    free = maximum - used
    detail = f"{setting} = {maximum}, {used} in use, {free} free" + (f", the spec runs {tasks} DMS tasks"
                                                                      if tasks > 1 else "")
    where = "in the DB parameter group (then reboot)" if rds else "with ALTER SYSTEM SET (then restart PostgreSQL)"
    fix = f"raise {setting} to at least {used + tasks + 1} {where}; {each}"
    if free < tasks:
        return Check(name, "fail", detail, fix)
    if free == tasks:
        return Check(name, "warn", detail + " (no headroom for another task or a task restart)", fix)
    return Check(name, "pass", detail)


# --- Postgres ------------------------------------------------------------------------

def postgres_checks(conn: Connection, tasks: int = 1) -> list[Check]:
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
                        slots_used, rds, "each DMS CDC task holds one slot", tasks))
    senders_used = conn.rows("SELECT count(*) FROM pg_stat_replication")[0][0]
    checks.append(_free("wal senders", "max_wal_senders", int(settings.get("max_wal_senders", 0)),
                        senders_used, rds, "each DMS CDC task streams through one sender", tasks))

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
    """Every spec table: exists, has the spec's primary key, same columns, types dwctl can map; on Postgres
    also whether logical decoding carries its changes (logged, a replica identity that holds the key)."""
    from dwctl.source.introspect import read_tables, read_unreplicated, same_type

    family = spec.source.family
    checks: list[Check] = []
    by_schema: dict[str, dict] = {}
    others: dict[str, dict] = {}
    cdc: dict[str, dict] = {}
    toastable: dict[str, dict] = {}
    for table in spec.tables:
        if table.schema_ not in by_schema:
            access = _schema_access(conn, table.schema_)
            if access:
                checks.append(access)
            by_schema[table.schema_] = read_tables(conn, table.schema_)
            others[table.schema_] = read_unreplicated(conn, table.schema_)
            cdc[table.schema_] = _pg_cdc_facts(conn, table.schema_) if family == "postgres" else {}
            toastable[table.schema_] = _pg_toastable(conn, table.schema_) if family == "postgres" else {}
        found = by_schema[table.schema_].get(table.source)  # the source's own spelling
        label = f"{table.schema_}.{table.source}"
        source_key = [next(c.source for c in table.columns if c.name == k) for k in table.primary_key]
        if found is None:
            thing = others[table.schema_].get(table.source)
            if thing is not None:
                checks.append(Check(f"table {label}", "fail", f"not replicated: {thing.reason}", thing.fix))
            else:
                checks.append(Check(f"table {label}", "fail", "not in the source (or not visible to this user)",
                                    "create it in the source, grant SELECT on it, or remove it from the spec "
                                    "(dwctl import --prune)"))
            continue
        facts = cdc[table.schema_].get(table.source)
        if not found.primary_key:
            if facts and facts.identity_carries(source_key):
                checks.append(Check(f"table {label}", "warn", "no primary key; its replica identity "
                                    f"({facts.describe()}) carries the spec's key, a workaround DMS asks to test "
                                    "with care", f"ALTER TABLE {label} ADD PRIMARY KEY ({', '.join(source_key)});"))
            else:
                why = "no primary key: CDC cannot apply updates and deletes"
                if facts and facts.identity == "d":  # DEFAULT logs the primary key, so here nothing
                    why += (" (REPLICA IDENTITY DEFAULT without a primary key: a delete carries no key; "
                            "REPLICA IDENTITY FULL would carry whole rows, a workaround DMS asks to test with care)")
                checks.append(Check(f"table {label}", "fail", why,
                                    f"ALTER TABLE {label} ADD PRIMARY KEY ({', '.join(source_key)});"))
        elif found.primary_key != source_key:
            checks.append(Check(f"table {label}", "fail",
                                f"primary key ({', '.join(found.primary_key)}) in the source, "
                                f"({', '.join(source_key)}) in the spec",
                                "run dwctl import to take the source's key"))
        elif facts is not None and not facts.can_select:
            checks.append(Check(f"table {label}", "fail", "this user cannot SELECT it (the full load reads it)",
                                f"GRANT SELECT ON {label} TO {facts.user};"))
        else:
            checks.append(Check(f"table {label}", "pass", f"primary key ({', '.join(found.primary_key)})"))
        if facts is not None:
            checks.append(_pg_cdc_check(label, source_key, found, facts))
            checks += _toast_check(label, table, found, cdc[table.schema_], toastable[table.schema_])
        checks.append(_columns_check(label, table, found, family, same_type))
        checks += [c for c in [drift_check(label, table, found)] if c]
        excluded = {c.source for c in table.columns if c.exclude or c.land_as_text}
        unknown = [f"{c.name} ({c.native})" for c in found.columns if c.type is None and c.name not in excluded]
        if unknown:
            checks.append(Check(f"types {label}", "warn", "outside the documented mapping: " + ", ".join(unknown),
                                "DMS may land these as text or drop them: cast them in the source (a generated "
                                "column) or leave them out of the spec"))
    for schema, things in others.items():
        checks += _unreplicated_check(schema, things, {t.name for t in spec.tables if t.schema_ == schema})
    if family == "postgres" and spec.tables:
        # https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Source.PostgreSQL.html (Limitations):
        # "AWS DMS ignores an attempt to update a primary key segment."
        checks.append(Check("key updates", "warn", "DMS ignores an UPDATE that changes a primary-key value on a "
                            "PostgreSQL source (DMS user guide, PostgreSQL source limitations): that change never "
                            "reaches the warehouse",
                            "change a key as DELETE then INSERT at the source, or reload the table after one"))
    return checks


def _schema_access(conn: Connection, schema: str) -> Check | None:
    """A FAIL row with the GRANT when this user cannot use the schema (else the table checks would all fail)."""
    if conn.family == "postgres":
        rows = conn.rows("SELECT has_schema_privilege(n.oid, 'USAGE'), quote_ident(n.nspname), quote_ident(current_user) "
                         "FROM pg_namespace n WHERE n.nspname = %s", (schema,))
        if not rows:
            return Check(f"schema {schema}", "fail", "no such schema in this database",
                         "create it, or correct the tables' schema in the spec")
        usage, quoted, user = rows[0]
        if not usage:
            return Check(f"schema {schema}", "fail", f"{conn.rows('SELECT current_user')[0][0]} has no USAGE on it: "
                         "the full load and the catalog reads cannot reach its tables",
                         f"GRANT USAGE ON SCHEMA {quoted} TO {user};")
        return None
    if conn.rows("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (schema,)):
        return None
    user = str(conn.rows("SELECT CURRENT_USER()")[0][0])
    account = "'{}'@'{}'".format(*user.rsplit("@", 1)) if "@" in user else f"'{user}'"
    quoted = "`" + schema.replace("`", "``") + "`"
    return Check(f"schema {schema}", "fail", f"{user} cannot see this database (it does not exist, or the user has "
                 "no privilege on it)", f"GRANT SELECT ON {quoted}.* TO {account};")


def _unreplicated_check(schema: str, things: dict, in_spec: set[str]) -> list[Check]:
    """One row naming what the schema holds that is not replicated, so nothing is left out silently."""
    by_kind: dict[str, list[str]] = {}
    for name, thing in things.items():
        if name not in in_spec and not thing.by_name_only:
            by_kind.setdefault(thing.kind, []).append(name)
    if not by_kind:
        return []
    detail = "; ".join(f"{kind}s: {', '.join(names)}" for kind, names in by_kind.items())
    return [Check(f"not replicated {schema}", "warn", detail,
                  "dwctl replicates base tables; these have no changes DMS CDC can read "
                  "(dwctl import names the reason for each)")]


# --- Postgres: does logical decoding carry the table's changes? -----------------------

PG_CDC_FACTS = """
SELECT c.relname, c.relpersistence, c.relreplident, has_table_privilege(c.oid, 'SELECT'), quote_ident(current_user),
       ri.relname,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index x ON x.indrelid = c.oid AND x.indisreplident
LEFT JOIN pg_class ri ON ri.oid = x.indexrelid
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
"""
_IDENTITY = {"d": "DEFAULT", "n": "NOTHING", "f": "FULL", "i": "USING INDEX"}


@dataclass(frozen=True)
class PgCdcFacts:
    """What decides whether a table's changes reach DMS: persistence, replica identity, SELECT for the full load."""

    unlogged: bool
    identity: str  # d n f i (pg_class.relreplident)
    can_select: bool
    user: str
    index: str | None
    index_columns: tuple[str, ...]

    def describe(self) -> str:
        text = "REPLICA IDENTITY " + _IDENTITY.get(self.identity, self.identity)
        return text + (f" {self.index} ({', '.join(self.index_columns)})" if self.identity == "i" else "")

    def identity_carries(self, key) -> bool:
        """Does a delete's WAL record hold every key column? FULL: the whole row; USING INDEX: its columns."""
        return self.identity == "f" or (self.identity == "i" and set(key) <= set(self.index_columns))


def _pg_cdc_facts(conn: Connection, schema: str) -> dict[str, PgCdcFacts]:
    return {name: PgCdcFacts(persistence == "u", identity, bool(select), user, index, tuple(columns or ()))
            for name, persistence, identity, select, user, index, columns in conn.rows(PG_CDC_FACTS, (schema,))}


def _pg_cdc_check(label: str, key: list[str], found, facts: PgCdcFacts) -> Check:
    """UNLOGGED tables write no WAL, so logical decoding never sees their changes; a delete carries only the
    replica identity's columns (PostgreSQL docs, ALTER TABLE REPLICA IDENTITY:
    https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-REPLICA-IDENTITY), and
    DMS needs the key in it ("If a table doesn't have a primary key, AWS DMS ignores DELETE and UPDATE record
    operations": https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Source.PostgreSQL.html, Limitations)."""
    fails: list[str] = []
    fixes: list[str] = []
    if facts.unlogged:
        fails.append("UNLOGGED: its changes are not written to the WAL, so logical decoding (and DMS CDC) never "
                     "sees them")
        fixes.append(f"ALTER TABLE {label} SET LOGGED;")
    back = "DEFAULT" if found.primary_key and set(key) == set(found.primary_key) else "FULL"
    if facts.identity == "n":
        fails.append("REPLICA IDENTITY NOTHING: a delete carries no key, so the warehouse cannot apply it")
        fixes.append(f"ALTER TABLE {label} REPLICA IDENTITY {back};")
    elif facts.identity == "i" and not facts.identity_carries(key):
        fails.append(f"{facts.describe()} does not hold the key ({', '.join(key)}): a delete carries only the "
                     "index's columns")
        fixes.append(f"ALTER TABLE {label} REPLICA IDENTITY {back};")
    if fails:
        return Check(f"cdc {label}", "fail", "; ".join(fails), " ".join(fixes))
    if facts.identity == "d" and not found.primary_key:
        return Check(f"cdc {label}", "warn", "logged; REPLICA IDENTITY DEFAULT logs no key without a primary key "
                     f"(see table {label})")
    return Check(f"cdc {label}", "pass", f"logged, {facts.describe()}")


# Which values Postgres may store out of line (TOAST): "The TOAST management code is triggered only when a
# row value to be stored in a table is wider than TOAST_TUPLE_THRESHOLD bytes (normally 2 kB)", then it
# compresses and moves field values out of line "until the row value is shorter than TOAST_TUPLE_TARGET
# bytes (also normally 2 kB)"; only variable-length types take part, and not with storage PLAIN (PostgreSQL
# docs, TOAST: https://www.postgresql.org/docs/current/storage-toast.html). So a column whose values have
# no bound is at risk; a bounded one (varchar(n), numeric(p,s), ...) only when the bounded columns alone
# (each unbounded one reduced to its 18-byte pointer) can outgrow the threshold. Tables without a TOAST
# table (reltoastrelid 0: Postgres found no row can outgrow it) are skipped.
TOAST_THRESHOLD = 2032  # TOAST_TUPLE_THRESHOLD with 8 kB blocks
TOAST_POINTER = 18  # an out-of-line value's size in its row
PG_TOASTABLE = """
SELECT c.relname, a.attname, a.attlen, a.attstorage, b.typname,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       pg_encoding_max_length(pg_char_to_encoding(current_setting('server_encoding')))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE n.nspname = %s AND c.relkind = 'r' AND c.reltoastrelid <> 0
ORDER BY c.relname, a.attnum
"""


def _max_size(attlen: int, typname: str, typmod: int, char_bytes: int) -> int | None:
    """A column's widest value in bytes (as Postgres's type_maximum_size reckons it), None if unbounded."""
    if attlen > 0:
        return attlen
    if typmod < 0:
        return None
    if typname in ("varchar", "bpchar"):
        return (typmod - 4) * char_bytes + 4
    if typname in ("bit", "varbit"):
        return (typmod + 7) // 8 + 8
    if typname == "numeric":
        return ((((typmod - 4) >> 16) & 0xFFFF) + 6) // 4 * 2 + 8
    return None


def _pg_toastable(conn: Connection, schema: str) -> dict[str, list[str]]:
    """{table: [the columns whose values Postgres may move out of line]} (see PG_TOASTABLE)."""
    rows: dict[str, list[tuple]] = {}
    for table, column, attlen, storage, typname, typmod, char_bytes in conn.rows(PG_TOASTABLE, (schema,)):
        rows.setdefault(table, []).append((column, attlen, storage, _max_size(attlen, typname, typmod, char_bytes)))
    found = {}
    for table, columns in rows.items():
        varlena = [(name, size) for name, attlen, storage, size in columns if attlen == -1 and storage != "p"]
        fixed = sum(size if size is not None else TOAST_POINTER for _, _, _, size in columns)
        if fixed > TOAST_THRESHOLD:  # the bounded values alone can outgrow the row limit: the widest move out
            found[table] = [name for name, size in varlena if size is None or size > TOAST_POINTER]
        else:
            found[table] = [name for name, size in varlena if size is None]
    return found


def _toast_check(label: str, table, found, facts: dict, toastable: dict) -> list[Check]:
    """An UPDATE that leaves an out-of-line (TOASTed) value alone carries no value for it in logical
    decoding, unless the column is in the replica identity: pgoutput sends "Byte1('u') Identifies unchanged
    TOASTed value (the actual value is not sent)" (PostgreSQL docs, Logical Replication Message Formats),
    test_decoding prints `unchanged-toast-datum` (DMS uses test_decoding unless pglogical is installed:
    DMS User Guide, CHAP_Source.PostgreSQL). What DMS then writes to S3 is not documented: if NULL, the
    merge overwrites the warehouse's value with NULL, and the landed file cannot tell it from a real NULL.
    REPLICA IDENTITY FULL "records the old values of all columns in the row" (PostgreSQL docs, ALTER
    TABLE); DMS documents FULL as "supported with a logical decoding plugin, but isn't supported with a
    pglogical plugin" (CHAP_Source.PostgreSQL), not whether it fills an unchanged value from the old row.
    A warn per spec table: the columns at risk in each source table DMS reads (itself, or its partitions)."""
    wanted = {c.source for c in table.columns if not c.exclude}
    at_risk: dict[str, list[str]] = {}
    for name in found.partitions or [found.name]:
        identity = facts.get(name)
        if identity is None or identity.identity == "f":
            continue
        carried = set(found.primary_key) if identity.identity == "d" else \
            set(identity.index_columns) if identity.identity == "i" else set()
        columns = [c for c in toastable.get(name, []) if c in wanted and c not in carried]
        if columns:
            at_risk[name] = columns
    if not at_risk:
        return []
    columns = list(dict.fromkeys(c for cs in at_risk.values() for c in cs))
    kinds = sorted({facts[name].describe() for name in at_risk})
    detail = (f"{', '.join(columns)} can be stored out of line (TOAST, a row over about 2 kB), and "
              f"{' / '.join(kinds)} does not carry an out-of-line value an UPDATE leaves unchanged: logical "
              "decoding sends none (test_decoding: unchanged-toast-datum). The DMS User Guide does not say what "
              "DMS then writes to S3; if NULL, the warehouse's value is overwritten with a NULL that no landed "
              "file tells from a real one")
    fix = (" ".join(f"ALTER TABLE {found.schema}.{name} REPLICA IDENTITY FULL;" for name in at_risk)
           + " (each UPDATE then logs the whole old row, these values included; DMS supports FULL with "
           "test_decoding, not pglogical, and does not document whether it fills an unchanged value from the "
           "old row: update a large row's other column once and compare), or exclude the columns")
    return [Check(f"toast {label}", "warn", detail, fix)]


def _columns_check(label: str, table, found, family, same_type) -> Check:
    from dwctl.spec.type_mapping import dms_lob, map_type

    fails: list[str] = []
    warns: list[str] = []
    for column in table.columns:
        source = found.column(column.source)
        if source is None:
            fails.append(f"{column.source} missing in the source")
            continue
        if column.exclude:
            continue
        if column.land_as_text is not None and source.type is not None and dms_lob(source.type, family):
            # "The only supported transformation for columns that are mapped to BLOB/CLOB data types is to drop
            # the column on the target" (DMS User Guide, Transformation rules and actions, Limitations)
            fails.append(f"{column.name} is {source.type} in the source, a LOB to DMS, which land_as_text (a "
                         f"change-data-type) cannot carry: spell it type: {source.type} without land_as_text "
                         f"(dwctl lands it as {map_type(source.type, family).redshift}), or exclude it")
            continue
        if column.land_as_text is None and (source.type is None or not same_type(column.type, source.type, family)):
            fails.append(f"{column.name} is {source.type or source.native} in the source, {column.type} in the spec")
        if source.nullable and not column.nullable:
            fails.append(f"{column.name} is nullable in the source but NOT NULL in the spec")
        elif column.nullable and not source.nullable:
            warns.append(f"{column.name} is NOT NULL in the source (the spec could say nullable: false)")
    spec_names = {c.source for c in table.columns}
    extra = [c.name for c in found.columns if c.name not in spec_names]
    fix = "run dwctl import to update the spec"
    if extra:
        # DMS lands every source column that no remove-column rule drops; a file with a column the spec
        # lacks is held by the load job (load_job.py), so the table would never load
        fails.append(f"not in the spec: {', '.join(extra)} (DMS lands every source column the spec does not "
                     "exclude, and the load job holds every file of the table that carries one)")
        fix = (f"add {', '.join(extra)} to the spec (dwctl import does), or exclude them (exclude: true on the "
               "column, or the table's exclude: list), which renders a DMS remove-column rule")
    if fails:
        return Check(f"columns {label}", "fail", "; ".join(fails + warns), fix)
    if warns:
        return Check(f"columns {label}", "warn", "; ".join(warns), "run dwctl import to update the spec")
    return Check(f"columns {label}", "pass", f"{len(table.columns)} columns match")


def partition_checks(conn: Connection, spec) -> list[Check]:
    """Postgres: logical decoding reports a partitioned table's changes under its partitions' names
    (a DMS rule selecting only the parent sees none), so each spec table must list exactly the
    source's leaf partitions / inheritance children (pg_inherits) for DMS to select them."""
    from dwctl.source.introspect import read_tables

    if spec.source.family != "postgres":
        return []
    checks: list[Check] = []
    by_schema: dict[str, dict] = {}
    for table in spec.tables:
        found = by_schema.setdefault(table.schema_, read_tables(conn, table.schema_)).get(table.source)
        if found is None or (not found.partitions and not table.partitions):
            continue
        label = f"partitions {table.schema_}.{table.source}"
        if found.partitions == list(table.partitions):
            checks.append(Check(label, "pass", f"DMS selects its {len(found.partitions)} partitions"))
            if found.partitions[0] == table.source:  # an inheritance parent, listed first (introspect)
                checks.append(Check(f"inheritance {table.schema_}.{table.source}", "warn",
                                    "INHERITS children: Postgres does not keep a key unique across the parent and "
                                    "its children (declarative partitions do), and the warehouse merges all of them "
                                    "into one table by key; the DMS User Guide does not say whether the parent's "
                                    "full load reads its children's rows too (SELECT without ONLY)",
                                    "make sure no key is in two of them, and compare the row counts after the "
                                    "first full load; or move the data to declarative partitions"))
            continue
        missing = [p for p in found.partitions if p not in table.partitions]
        extra = [p for p in table.partitions if p not in found.partitions]
        detail = "; ".join(filter(None, [
            missing and f"changes to {', '.join(missing)} would reach no table (not in the spec's partitions)",
            extra and f"the spec lists {', '.join(extra)}, which the source does not have"]))
        checks.append(Check(label, "fail", detail or "partitions listed in another order than the source's",
                            "run dwctl import to take the source's partitions"))
    return checks


def drift_check(label: str, table, found) -> Check | None:
    """Column drift as the load job meets it (None when the source has the spec's columns). After an
    ALTER TABLE, DMS (HandleSourceTableAltered) writes the table's new columns into its next files:
    the job holds files with a column the spec lacks until the spec has it (a fail: the table does not
    load until then); a column dropped at the source stays in the warehouse (nullable: a warn)."""
    spec_names = {c.source for c in table.columns}  # source spellings; an excluded column is known too
    source_names = {c.name for c in found.columns}
    new = [c.name for c in found.columns if c.name not in spec_names]
    gone = [c.source for c in table.columns if c.source not in source_names]
    if not new and not gone:
        return None
    said = []
    fix = ("dwctl import, then dwctl render and deploy: the load job migrates the warehouse tables before it "
           "loads")
    if new:
        said.append(f"in the source, not the spec: {', '.join(new)} (the load job holds {label}'s files that carry "
                    "them, and loads them once the spec has them)")
        fix = f"dwctl import (or exclude {', '.join(new)} in the spec), then " + fix.removeprefix("dwctl import, then ")
    if gone:
        said.append(f"in the spec, not the source: {', '.join(gone)} (files written since the drop lack them; the "
                    "warehouse keeps the columns, NULL in rows changed since)")
    return Check(f"drift {label}", "fail" if new else "warn", "; ".join(said), fix)
