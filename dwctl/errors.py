"""User-facing errors: one small hierarchy so the CLI prints a paragraph, never a traceback."""

from __future__ import annotations

import click


class DwctlError(click.ClickException):
    """Base for every error a user can cause or fix; Click prints it and exits non-zero."""

    exit_code = 1

    def format_message(self) -> str:
        return self.message


class UsageError(DwctlError):
    """Bad input from the user: a spec, a path or an option (exit 2, like Click's usage errors)."""

    exit_code = 2


class SpecError(UsageError):
    """The spec file cannot be read or does not validate; the message names file:line:col and field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class NotReady(DwctlError):
    """The project is not in the state the command needs (not initialised, a stale iac/ or plan, no saved plan).
    The command could not be carried out, so exit 1 on every command; 2 stays for usage and spec errors."""

    exit_code = 1


class OutputError(DwctlError):
    """The rendered tree cannot be written; nothing on disk was changed."""

    exit_code = 2


class ToolError(DwctlError):
    """An external tool (terraform, checkov) is missing, too old or failed."""

    exit_code = 1
