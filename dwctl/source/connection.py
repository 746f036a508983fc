"""Connect to the source database named by a DSN, without ever showing or storing its password.

`dwctl import` and `dwctl doctor` both start here. The DSN is parsed once into a `Dsn`
whose `masked()` form is the only spelling that reaches a message; driver errors are
scrubbed of the password too, because some drivers echo connection strings back.
Passwords come from the DSN, the environment (PGPASSWORD / ~/.pgpass through libpq,
MYSQL_PWD) or a prompt, and only on a terminal. psycopg and PyMySQL are imported inside
functions so `dwctl --help` stays fast.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from dwctl.errors import DwctlError, ToolError, UsageError
from dwctl.source.options import (
    DEFAULT_TIMEOUT as CONNECT_TIMEOUT,  # for connecting and for each query
)

Family = Literal["postgres", "mysql"]
SCHEMES: dict[str, Family] = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
MYSQL_PARAMS = {"unix_socket", "ssl_ca", "ssl_cert", "ssl_key", "ssl_disabled", "connect_timeout", "charset"}


class SourceError(DwctlError):
    """The source database cannot be reached or read (exit 1); the message never holds a password."""

    exit_code = 1


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN. `password` is None when the DSN has none (then the environment or a prompt)."""

    family: Family
    scheme: str
    user: str | None
    password: str | None = field(repr=False)
    host: str | None
    port: int | None
    database: str | None
    params: dict[str, str] = field(default_factory=dict)

    def masked(self) -> str:
        """The DSN as messages may show it: the password, if any, is `***`."""
        auth = ""
        if self.user is not None:
            auth = self.user + (":***" if self.password is not None else "") + "@"
        host = self.host or ""
        if host and ":" in host:
            host = f"[{host}]"
        port = f":{self.port}" if self.port else ""
        db = f"/{self.database}" if self.database else ""
        query = "&".join(f"{k}={'***' if 'password' in k else v}" for k, v in self.params.items())
        return f"{self.scheme}://{auth}{host}{port}{db}" + (f"?{query}" if query else "")

    def scrub(self, text: str, *secrets: str | None) -> str:
        """Remove the password (and any other secret given) from text that came from elsewhere."""
        for secret in (self.password, self.params.get("password"), *secrets):
            if secret:
                text = text.replace(secret, "***")
        return text


def parse_dsn(text: str) -> Dsn:
    """postgresql://user[:pw]@host[:port]/db[?libpq params] or mysql://user[:pw]@host[:port]/db.

    No message built here quotes the DSN or a parser's complaint about it: in a DSN that cannot be read
    the password may sit anywhere (an unencoded `#`, `/` or `?` moves it into the host, port or path).
    """
    text = text.strip()
    _refuse_unencoded_userinfo(text)
    try:
        parts = urlsplit(text)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        reason = ("the port is not a number from 0 to 65535" if "port" in str(exc).lower()
                  else "the host is malformed (an IPv6 address goes in [brackets])")
        raise UsageError(f"--dsn: cannot read the DSN: {reason}; "
                         "expected postgresql://user@host:5432/db or mysql://user@host:3306/db") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = parts.scheme + "://" if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,19}", parts.scheme) else "(none)"
        raise UsageError(f"--dsn: unknown scheme {shown}; use postgresql:// or mysql:// (mariadb:// works too)")
    family = SCHEMES[scheme]
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if family == "mysql":
        unknown = sorted(set(params) - MYSQL_PARAMS)
        if unknown:
            raise UsageError(f"--dsn: unknown mysql option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(MYSQL_PARAMS))}")
    path = unquote(parts.path.lstrip("/")) or None
    if path is not None and "/" in path:
        raise UsageError("--dsn: the path names one database, e.g. /shop")
    return Dsn(
        family=family,
        scheme=scheme,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        host=unquote(host) if host else None,
        port=port,
        database=path,
        params=params,
    )


def _refuse_unencoded_userinfo(text: str) -> None:
    """A `user:password@` holding `#`, `/` or `?` cannot be split right (RFC 3986 ends the authority at the
    first of them), so the password would land in the host, port or path: refuse it, quoting nothing."""
    _, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return
    userinfo = rest.rsplit("@", 1)[0]
    if ":" in userinfo and any(c in userinfo for c in "#/?"):
        raise UsageError(
            "--dsn: cannot read the DSN: the part before the last @ (user:password) holds a character URLs "
            "reserve; percent-encode the password (# as %23, / as %2F, ? as %3F, @ as %40, % as %25) or leave it "
            "out of the DSN (PGPASSWORD, ~/.pgpass, MYSQL_PWD or a prompt); an @ in an option value is %40 too")


def can_prompt() -> bool:
    """Prompt for a password only when a person is there to type it."""
    return sys.stdin.isatty()


class Connection:
    """An open, read-only connection: `rows(sql, params)` for both engines, plus the DSN it came from."""

    def __init__(self, dsn: Dsn, raw: Any, timeout: int = CONNECT_TIMEOUT):
        self.dsn = dsn
        self.family: Family = dsn.family
        self.raw = raw
        self.timeout = timeout

    def rows(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """Run one query; a driver error becomes SourceError with the password scrubbed."""
        cur = self.raw.cursor()
        try:
            cur.execute(sql, params or None)  # no params: a literal % stays a %
            return list(cur.fetchall()) if cur.description else []
        except Exception as exc:  # driver errors: one paragraph for the user, no traceback
            message = self.dsn.scrub(_first_line(exc))
            if _timed_out(message):
                message += (f" (no answer within {self.timeout} s: the server is overloaded, a lock holds the "
                            "catalog, or the connection hangs; raise --timeout if the server is only slow)")
            raise SourceError(f"{self.dsn.masked()}: query failed: {message}") from None
        finally:
            cur.close()

    def try_rows(self, sql: str, params: tuple | list = ()) -> list[tuple] | None:
        """Like rows(), but None when the server refuses (an RDS-only procedure, a missing view)."""
        try:
            return self.rows(sql, params)
        except SourceError:
            return None

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(dsn: Dsn, timeout: int = CONNECT_TIMEOUT) -> Connection:
    """Open a read-only connection, asking for a password (on a terminal) when the server wants one.

    `timeout` (seconds) bounds connecting and each query, so a host that accepts TCP and never answers
    ends the command with a message instead of hanging it.
    """
    def opener(password: str | None) -> Any:
        open_ = _connect_postgres if dsn.family == "postgres" else _connect_mysql
        return open_(dsn, password, timeout)

    password = dsn.password
    if password is None and dsn.family == "mysql":
        password = os.environ.get("MYSQL_PWD") or None
    try:
        return Connection(dsn, opener(password), timeout)
    except _AuthNeeded as exc:
        if dsn.password is None and can_prompt():
            import click

            typed = click.prompt(f"Password for {dsn.masked()}", hide_input=True, err=True)
            try:
                return Connection(dsn, opener(typed), timeout)
            except _AuthNeeded as again:
                raise SourceError(f"cannot connect to {dsn.masked()}: {dsn.scrub(again.message, typed)}") from None
        if dsn.family == "postgres":
            missing = "no password supplied" in exc.message
            how = "set PGPASSWORD or add the host to ~/.pgpass"
        else:
            missing = password is None
            how = "set MYSQL_PWD"
        hint = f" (no password was given: {how}, put it in the DSN, or run on a terminal to be prompted)"
        raise SourceError(f"cannot connect to {dsn.masked()}: {dsn.scrub(exc.message, password)}"
                          f"{hint if missing else ''}") from None


class _AuthNeeded(Exception):
    """The server wants a (different) password; connect() may prompt and retry once."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _timed_out(message: str) -> bool:
    """libpq says "timeout expired", PyMySQL "timed out", the server "statement timeout" / "max_statement_time"."""
    lowered = message.lower()
    return any(s in lowered for s in ("timeout expired", "timed out", "statement timeout", "max_statement_time"))


def _no_answer(dsn: Dsn, timeout: int) -> SourceError:
    server = "a PostgreSQL" if dsn.family == "postgres" else "a MySQL/MariaDB"
    return SourceError(f"cannot connect to {dsn.masked()}: no answer within {timeout} s (--timeout): the host "
                       f"accepts connections but does not answer as {server} server would (a wrong port, a proxy "
                       "or firewall that holds connections, or a server too busy or locked to start a session); "
                       "check the host and port, or raise --timeout")


def _connect_postgres(dsn: Dsn, password: str | None, timeout: int) -> Any:
    try:
        import psycopg
    except ImportError:
        raise ToolError("psycopg is not installed: pip install 'psycopg[binary]'") from None
    # libpq's connect_timeout bounds the whole start-up, TCP to authentication; a DSN's own value wins.
    kwargs: dict[str, Any] = {"connect_timeout": timeout, "application_name": "dwctl", **dsn.params}
    for key, value in (("host", dsn.host), ("port", dsn.port), ("user", dsn.user), ("dbname", dsn.database)):
        if value is not None:
            kwargs[key] = value
    if password is not None:
        kwargs["password"] = password
    try:
        conn = psycopg.connect(**kwargs)
    except psycopg.OperationalError as exc:
        message = dsn.scrub(_first_line(exc), password)
        if "password" in message.lower() and ("no password supplied" in message or "authentication failed" in message):
            raise _AuthNeeded(message) from None
        if _timed_out(message):
            raise _no_answer(dsn, timeout) from None
        raise SourceError(f"cannot connect to {dsn.masked()}: {message}") from None
    except psycopg.ProgrammingError as exc:  # a bad libpq option in the DSN query string
        raise UsageError(f"--dsn {dsn.masked()}: {dsn.scrub(_first_line(exc), password)}") from None
    conn.autocommit = True
    try:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")  # dwctl only ever reads
        # libpq has no read timeout: the server cancels a query (a lock wait included) after `timeout`.
        conn.execute(f"SET statement_timeout = {int(timeout) * 1000}")
    except psycopg.Error as exc:
        conn.close()
        raise SourceError(f"cannot set up the session on {dsn.masked()}: {dsn.scrub(_first_line(exc), password)}") from None
    return conn


def _seconds(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UsageError("--dsn: connect_timeout must be a whole number of seconds, at least 1")
    return int(text)


def _connect_mysql(dsn: Dsn, password: str | None, timeout: int) -> Any:
    try:
        import pymysql
    except ImportError:
        raise ToolError("PyMySQL is not installed: pip install PyMySQL") from None
    params = dict(dsn.params)
    kwargs: dict[str, Any] = {
        "host": dsn.host or "localhost",
        "port": dsn.port or DEFAULT_PORTS["mysql"],
        "user": dsn.user or os.environ.get("USER") or "root",
        "password": (password or "").encode("utf-8"),  # PyMySQL would encode a str as latin-1 and fail on others
        "database": dsn.database,
        "connect_timeout": _seconds(params.pop("connect_timeout", str(timeout))),
        # PyMySQL waits for the server's greeting and every reply without a limit unless read_timeout is set.
        "read_timeout": timeout,
        "write_timeout": timeout,
        "charset": params.pop("charset", "utf8mb4"),
        "autocommit": True,
    }
    if "unix_socket" in params:
        kwargs["unix_socket"] = params.pop("unix_socket")
    if params.pop("ssl_disabled", "").lower() in ("1", "true", "yes"):
        kwargs["ssl_disabled"] = True
    ssl = {k.removeprefix("ssl_"): v for k, v in params.items() if k.startswith("ssl_")}
    if ssl:
        kwargs["ssl"] = ssl
    try:
        conn = pymysql.connect(**kwargs)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        message = dsn.scrub(_first_line(exc), password)
        if code == 1045:  # access denied: wrong or missing password
            raise _AuthNeeded(message) from None
        if _timed_out(message):
            raise _no_answer(dsn, timeout) from None
        raise SourceError(f"cannot connect to {dsn.masked()}: {message}") from None
    except pymysql.err.MySQLError as exc:
        raise SourceError(f"cannot connect to {dsn.masked()}: {dsn.scrub(_first_line(exc), password)}") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")  # dwctl only ever reads
    except pymysql.err.MySQLError:
        pass  # very old servers: reading works without it
    return conn
