"""Running dwctl in-process, as the user types it (Click's CliRunner), for the command tests."""

from __future__ import annotations

from click.testing import CliRunner

from dwctl.cli import cli


def run(*args: str, env: dict | None = None, input: str | None = None):
    """`dwctl <args>`; an unexpected exception fails the test with its traceback."""
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)
