"""The throwaway-server helper: a missing server binary fails the run with the package to install."""

from __future__ import annotations

import pytest

from tests.support import dbservers


def test_missing_postgres_fails_naming_the_package(monkeypatch):
    monkeypatch.setattr(dbservers.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(dbservers.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y postgresql"):
        dbservers.pg_bindir()


def test_missing_mariadb_fails_naming_the_package(monkeypatch):
    monkeypatch.setattr(dbservers.shutil, "which", lambda name: None)
    monkeypatch.setattr(dbservers.os.path, "exists", lambda path: False)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y mariadb-server"):
        dbservers._mariadb_bins()
