"""`dwctl render`: Click wiring only; the work is dwctl.render.to_disk.render_to_disk."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dwctl.cli_options import format_option, json_on_failure, output_option, spec_option


@click.command()
@spec_option
@output_option
@click.option("--check", is_flag=True, help="Write nothing; exit 1 (with a diff) if the output is stale.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of what would change.")
@format_option()
def render(spec_path: Path, output_root: Path, check: bool, show_diff: bool, fmt: str) -> None:
    """Render iac/ (Terraform) and sql/ (warehouse SQL) from the spec."""
    from dwctl.render.to_disk import render_to_disk

    with json_on_failure(fmt == "json"):
        code = render_to_disk(spec_path, output_root, check=check, show_diff=show_diff, echo=click.echo,
                              as_json=fmt == "json")
    sys.exit(code)
