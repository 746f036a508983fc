"""Options every stage's commands share, so each stage's commands module can import them without
importing the root group (dwctl.cli sits on top and imports the stages lazily)."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_SPEC = Path("config/pipeline.yaml")

spec_option = click.option(
    "-c", "--config", "spec_path", type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_SPEC, show_default=True, help="The pipeline spec (YAML).",
)
output_option = click.option(
    "-o", "--output", "output_root", type=click.Path(path_type=Path, file_okay=False),
    default=Path("."), show_default=True, help="Output root: iac/ and sql/ are written under it.",
)
