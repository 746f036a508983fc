"""The throwaway-server helper: a missing server binary fails the run with the package to install."""

from __future__ import annotations

import pytest

from tests.support import dbservers, server_packages


def test_missing_postgres_fails_naming_the_package(monkeypatch):
    monkeypatch.setattr(server_packages.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(dbservers.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y postgresql"):
        dbservers.pg_bindir()


def test_missing_mariadb_fails_naming_the_package(monkeypatch):
    monkeypatch.setattr(dbservers.shutil, "which", lambda name: None)
    monkeypatch.setattr(dbservers.os.path, "exists", lambda path: False)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y mariadb-server"):
        dbservers._mariadb_bins()


def test_make_test_installs_nothing_when_the_servers_are_there():
    """This machine has both servers (CI installs them): the pre-test step finds them and does nothing."""
    assert server_packages.missing() == []
    assert server_packages.main([]) == 0


def test_missing_servers_are_installed_with_apt_get(monkeypatch, capsys):
    monkeypatch.setattr(server_packages.glob, "glob", lambda pattern: [])
    real_exists = server_packages.os.path.exists
    monkeypatch.setattr(server_packages.os.path, "exists", lambda p: not p.startswith("/usr/sbin/") and real_exists(p))
    real_which = server_packages.shutil.which
    servers = {"initdb", "mariadbd", "mysqld", "mariadb-install-db", "mysql_install_db"}
    monkeypatch.setattr(server_packages.shutil, "which", lambda n: None if n in servers else real_which(n))
    assert server_packages.missing() == ["postgresql", "mariadb-server"]
    assert server_packages.install_command(["postgresql"], is_root=True)[-4:] == ["install", "-y", "-qq", "postgresql"]
    assert server_packages.main(["--dry-run"]) == 0
    assert "postgresql, mariadb-server" in capsys.readouterr().err


def test_the_readme_test_command_runs_the_server_step_and_ci_runs_the_readme_command():
    from tests.conftest import ROOT

    makefile = (ROOT / "Makefile").read_text()
    test_rule = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "tests/support/server_packages.py" in test_rule
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"
    assert "make test" in (ROOT / "README.md").read_text()
