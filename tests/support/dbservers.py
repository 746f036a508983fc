"""Throwaway PostgreSQL and MariaDB servers for the import/doctor tests (a pytest plugin).

Test modules load it with `pytest_plugins = ["tests.support.dbservers"]`, so each server starts
once per session however many modules use it. Every server lives in its own temporary
directory on a free loopback port and is stopped and deleted at the end. As root (CI),
servers run as the `postgres` / `mysql` system users the Debian packages create.
A missing server binary FAILS the tests with the package to install: CI installs them,
so a skip would hide a broken setup.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support import server_packages

IS_ROOT = os.geteuid() == 0
PG_PACKAGES = "apt-get install -y postgresql (Debian 12: /usr/lib/postgresql/15/bin)"
MARIADB_PACKAGES = "apt-get install -y mariadb-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _owned_dir(prefix: str, owner: str | None) -> Path:
    """A fresh directory the server's system user owns (root's pytest tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _system_user(name: str, install: str) -> str | None:
    if not IS_ROOT:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        pytest.fail(f"system user {name!r} missing (running as root needs it): {install}", pytrace=False)
    return name


def _run(argv: list[str], user: str | None, what: str, log: Path | None = None) -> None:
    if user:
        argv = ["runuser", "-u", user, "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        pytest.fail(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}{done.stdout[-1000:]}\n{tail}",
                    pytrace=False)


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


# --- PostgreSQL ----------------------------------------------------------------------

def pg_bindir() -> Path:
    initdb = server_packages.pg_initdb()
    if initdb:
        return Path(initdb).parent
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {PG_PACKAGES}", pytrace=False)


@dataclass
class PgServer:
    """One running cluster: superuser `postgres` with a random password, reached over TCP."""

    base: Path
    port: int
    bindir: Path
    user: str | None
    password: str = field(repr=False)
    passwords: dict[str, str] = field(default_factory=dict, repr=False)

    def dsn(self, user: str = "postgres", db: str = "postgres", password: bool = True) -> str:
        secret = (self.password if user == "postgres" else self.passwords[user]) if password else None
        auth = quote(user, safe="") + (f":{quote(secret, safe='')}" if secret else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def execute(self, sql: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password,
                             dbname=db, autocommit=True) as conn:
            conn.execute(sql)

    def create_user(self, name: str, options: str = "", password: str | None = None) -> str:
        secret = password or secrets.token_hex(12)
        self.passwords[name] = secret
        quoted = secret.replace("'", "''")
        self.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{quoted}' {options}")
        return secret

    def create_database(self, name: str, sql: str = "") -> None:
        self.execute(f"CREATE DATABASE {name}")
        if sql:
            self.execute(sql, db=name)

    def stop(self) -> None:
        if (self.base / "data" / "postmaster.pid").exists():
            argv = [str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop"]
            subprocess.run(["runuser", "-u", self.user, "--", *argv] if self.user else argv, capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres(settings: dict[str, str]) -> PgServer:
    bindir = pg_bindir()
    user = _system_user("postgres", PG_PACKAGES)
    base = _owned_dir("dwctl-pg-", user)
    server = PgServer(base, free_port(), bindir, user, secrets.token_hex(16))
    atexit.register(server.stop)
    pwfile = base / "pw"
    pwfile.write_text(server.password + "\n")
    pwfile.chmod(0o600)
    if user:
        os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
    data = base / "data"
    _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync",
          "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"], user, "initdb")
    pwfile.unlink()
    conf = {"port": str(server.port), "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{base}'",
            "fsync": "off", "shared_buffers": "'16MB'", "max_connections": "30", **settings}
    with open(data / "postgresql.conf", "a", encoding="utf-8") as handle:
        handle.write("".join(f"{k} = {v}\n" for k, v in conf.items()))
    log = base / "server.log"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "120", "start"], user,
         "pg_ctl start", log)
    return server


# --- MariaDB -------------------------------------------------------------------------

def _mariadb_bins() -> tuple[str, str]:
    server = server_packages.mariadb_server()
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not server or not install:
        pytest.fail(f"MariaDB server binaries (mariadbd, mariadb-install-db) not found: {MARIADB_PACKAGES}",
                    pytrace=False)
    return server, install


@dataclass
class MariaServer:
    """One running MariaDB: root over the socket for setup, TCP users with random passwords for tests."""

    base: Path
    port: int
    process: subprocess.Popen
    passwords: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def socket(self) -> str:
        return str(self.base / "mysqld.sock")

    def dsn(self, user: str, db: str | None = None, password: bool = True) -> str:
        auth = quote(user, safe="") + (f":{quote(self.passwords[user], safe='')}" if password else "")
        return f"mysql://{auth}@127.0.0.1:{self.port}/{db or ''}".rstrip("/")

    def execute(self, *statements: str, db: str | None = None) -> None:
        import pymysql

        conn = pymysql.connect(unix_socket=self.socket, user="root", password="", database=db, autocommit=True)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def create_user(self, name: str, grants: str) -> str:
        secret = secrets.token_hex(12)
        self.passwords[name] = secret
        self.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{secret}'", f"GRANT {grants} TO '{name}'@'%'")
        return secret

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)


def start_mariadb(options: list[str]) -> MariaServer:
    import pymysql

    server_bin, install = _mariadb_bins()
    user = _system_user("mysql", MARIADB_PACKAGES)
    base = _owned_dir("dwctl-maria-", user)
    data = base / "data"
    owner = [f"--user={user}"] if user else []
    _run([install, "--no-defaults", f"--datadir={data}", *owner, "--auth-root-authentication-method=normal",
          "--skip-test-db", "--skip-name-resolve"], None, "mariadb-install-db")
    port = free_port()
    log = base / "error.log"
    process = subprocess.Popen(
        [server_bin, "--no-defaults", f"--datadir={data}", f"--socket={base / 'mysqld.sock'}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--pid-file={base / 'mysqld.pid'}", f"--log-error={log}",
         "--skip-name-resolve", "--innodb-buffer-pool-size=16M", "--innodb-flush-log-at-trx-commit=0",
         "--server-id=1", *owner, *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = MariaServer(base, port, process)
    atexit.register(server.stop)
    deadline = time.monotonic() + 120  # start-up wait, not a timed test
    while True:
        if process.poll() is not None:
            pytest.fail(f"mariadbd exited with {process.returncode}:\n{_tail(log)}", pytrace=False)
        try:
            pymysql.connect(unix_socket=server.socket, user="root", password="").close()
            return server
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"mariadbd did not accept connections:\n{_tail(log)}", pytrace=False)
            time.sleep(0.2)


# --- session fixtures ----------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_logical():
    """wal_level = logical, two replication slots (so a test can use them up)."""
    server = start_postgres({"wal_level": "logical", "max_replication_slots": "2", "max_wal_senders": "5"})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_replica():
    """wal_level = replica, no replication slots, one WAL sender: what a default RDS instance looks like."""
    server = start_postgres({"wal_level": "replica", "max_replication_slots": "0", "max_wal_senders": "1"})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def maria_binlog():
    """Binary log on, ROW, FULL, a week of retention: ready for CDC."""
    server = start_mariadb(["--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=FULL",
                            "--binlog-expire-logs-seconds=604800"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def maria_nobinlog():
    """No binary log, STATEMENT format, MINIMAL images, one hour of retention: every binlog check fails."""
    server = start_mariadb(["--skip-log-bin", "--binlog-format=STATEMENT", "--binlog-row-image=MINIMAL",
                            "--binlog-expire-logs-seconds=3600"])
    yield server
    server.stop()
