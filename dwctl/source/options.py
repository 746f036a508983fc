"""The option `dwctl import` and `dwctl doctor` share: how long to wait for the source database."""

from __future__ import annotations

import click

DEFAULT_TIMEOUT = 10  # seconds; connection.py's default too
# At least 2: libpq takes a connect_timeout of 1 as 2 (https://www.postgresql.org/docs/current/libpq-connect.html).

timeout_option = click.option(
    "--timeout", "timeout", type=click.IntRange(min=2), default=DEFAULT_TIMEOUT, show_default=True,
    envvar="DWCTL_SOURCE_TIMEOUT", metavar="SECONDS",
    help="Longest wait for the source: to connect, and for each query (PostgreSQL statement_timeout, "
         "MySQL read timeout) [env: DWCTL_SOURCE_TIMEOUT].")
