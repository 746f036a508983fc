"""Install the PostgreSQL and MariaDB server packages the test suite starts as throwaway servers.

`make test` runs this before pytest (`python tests/support/server_packages.py`), so the README's one test
command works on a fresh machine; `.ci/run` calls exactly that command. Only the standard library:
it runs before anything is known about the environment. With nothing missing it does nothing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

PG_PACKAGE = "postgresql"
MARIADB_PACKAGE = "mariadb-server"


def pg_initdb() -> str | None:
    """The newest Debian cluster's initdb, else one on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return found[-1] if found else shutil.which("initdb")


def mariadb_server() -> str | None:
    return shutil.which("mariadbd") or shutil.which("mysqld") or next(
        (p for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld") if os.path.exists(p)), None)


def missing() -> list[str]:
    """Debian package names of the servers that are not installed."""
    need = []
    if not pg_initdb():
        need.append(PG_PACKAGE)
    if not mariadb_server() or not (shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")):
        need.append(MARIADB_PACKAGE)
    return need


def install_command(packages: list[str], is_root: bool | None = None) -> list[str] | None:
    """apt-get as root, or through `sudo -n` (never prompting); None when neither is possible here."""
    if not shutil.which("apt-get"):
        return None
    is_root = os.geteuid() == 0 if is_root is None else is_root
    prefix = [] if is_root else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        return None
    return [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", *packages]


def main(argv: list[str]) -> int:
    need = missing()
    if not need:
        return 0
    command = install_command(need)
    if "--dry-run" in argv or command is None:
        shown = " ".join(command) if command else f"apt-get install -y {' '.join(need)} (as root)"
        print(f"test database servers missing: {', '.join(need)}; install them with: {shown}", file=sys.stderr)
        return 0 if "--dry-run" in argv else 1
    print(f"installing the test database servers: {' '.join(command)}", file=sys.stderr)
    update = [c for c in command[: command.index("install")]] + ["update", "-qq"]
    subprocess.run(update, check=False)
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
