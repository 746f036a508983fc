"""Options every stage's commands share, so each stage's commands module can import them without
importing the root group (dwctl.cli sits on top and imports the stages lazily)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click

DEFAULT_SPEC = Path("config/pipeline.yaml")
PROJECT_ROOT = "dwctl.project_root"  # ctx.meta key: the directory whose config/ held the discovered spec
LOG = logging.getLogger("dwctl")


def discover_spec(start: Path) -> Path | None:
    """The nearest config/pipeline.yaml in `start` or above it (as git finds .git and dbt its project file)."""
    for directory in [start, *start.parents]:
        if (directory / DEFAULT_SPEC).is_file():
            return directory / DEFAULT_SPEC
    return None


def _spec_callback(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Only when neither -c nor DWCTL_CONFIG is given and ./config/pipeline.yaml is missing: look upward."""
    if ctx.get_parameter_source(param.name) != click.core.ParameterSource.DEFAULT or value.exists():
        return value
    found = discover_spec(Path.cwd())
    if found is None:
        return value
    root = Path(os.path.relpath(found.parents[1]))
    ctx.meta[PROJECT_ROOT] = root
    LOG.info("using %s (found above the working directory); output root %s", (root / DEFAULT_SPEC).as_posix(), root)
    return root / DEFAULT_SPEC


def _output_callback(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    if ctx.get_parameter_source(param.name) == click.core.ParameterSource.DEFAULT and PROJECT_ROOT in ctx.meta:
        return ctx.meta[PROJECT_ROOT]
    return value


spec_option = click.option(
    "-c", "--config", "spec_path", type=click.Path(path_type=Path, dir_okay=False), envvar="DWCTL_CONFIG",
    default=DEFAULT_SPEC, show_default=True, callback=_spec_callback,
    help="The pipeline spec (YAML) [env: DWCTL_CONFIG; else the nearest config/pipeline.yaml upward].",
)
output_option = click.option(
    "-o", "--output", "output_root", type=click.Path(path_type=Path, file_okay=False),
    default=Path("."), show_default="the project of a discovered spec, else .", callback=_output_callback,
    help="Output root: iac/ and sql/ are written under it.",
)


def env_option(help_text: str):
    return click.option("--env", "env_name", metavar="NAME", envvar="DWCTL_ENV",
                        help=f"{help_text} [env: DWCTL_ENV; default: the spec's].")


# --- terminal conventions: colour and -v --------------------------------------------------------
def no_color_requested(flag: bool) -> bool:
    """--no-color, or NO_COLOR set to anything but the empty string (https://no-color.org)."""
    return flag or bool(os.environ.get("NO_COLOR"))


def color_wanted(stream=None) -> bool:
    """Colour for dwctl's lines and the tools it runs: off with --no-color/NO_COLOR, else only on a terminal."""
    ctx = click.get_current_context(silent=True)
    if (ctx is not None and ctx.color is False) or no_color_requested(False):
        return False
    return (stream or sys.stdout).isatty()


class _Stderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"dwctl: {record.getMessage()}", err=True)


def set_verbosity(level: int) -> None:
    """-v: each external command line dwctl runs (terraform, checkov) on stderr; -vv: more detail."""
    for handler in [h for h in LOG.handlers if isinstance(h, _Stderr)]:
        LOG.removeHandler(handler)
    LOG.setLevel(logging.WARNING)
    if level:
        LOG.addHandler(_Stderr())
        LOG.setLevel(logging.INFO if level == 1 else logging.DEBUG)

def format_option(*, json_alias: bool = False, choices: tuple[str, ...] = ("text", "json")):
    """`--format text|json`, the same on every command that reports; `--json` is kept where it existed."""

    def decorate(f):
        f = click.option("--format", "fmt", type=click.Choice(choices), default=choices[0], show_default=True,
                         help="Output format; json is one document on stdout, also when the command fails.")(f)
        if json_alias:
            f = click.option("--json", "as_json", is_flag=True, help="Same as --format json (kept for old scripts).")(f)
        return f

    return decorate


@contextmanager
def json_on_failure(enabled: bool, exit_code: int | None = None, **context):
    """With --format json, a failure still prints one JSON document on stdout (the error also goes to stderr)."""
    try:
        yield
    except click.ClickException as exc:
        if enabled:
            doc = {"ok": False, **context, "exit_code": exit_code or exc.exit_code, "error": exc.format_message()}
            if getattr(exc, "detail", None):
                doc["detail"] = exc.detail
            click.echo(json.dumps(doc, indent=2))
        raise


def json_failures(enabled):
    """json_on_failure as a decorator: `enabled(params)` says, from the command's parameters, whether stdout is JSON."""

    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            with json_on_failure(enabled(kwargs)):
                return f(*args, **kwargs)

        return wrapper

    return decorate
