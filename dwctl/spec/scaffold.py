"""`dwctl new`: a starter project (commented spec, its JSON Schema, .gitignore, pre-commit config, CI workflow).

The files come from dwctl/spec/starter/, which ships inside the package (so in the wheel), and the schema
is generated from the model, so a scaffold always matches the dwctl that wrote it.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from string import Template

from dwctl import __version__
from dwctl.errors import OutputError

ENGINES = {  # engine -> what differs in the starter spec
    "postgres": {"port": "5432", "source_schema": "public", "timestamp": "timestamptz"},
    "mysql": {"port": "3306", "source_schema": "shop", "timestamp": "datetime"},  # MySQL: schema = database
}
SPEC = "config/pipeline.yaml"
SCHEMA = "dwctl-spec.schema.json"  # the starter spec's modeline points at ../dwctl-spec.schema.json
PINNED = f'"dwctl=={__version__}"'  # how the packaged workflow pins dwctl

PRE_COMMIT = """\
# pre-commit (https://pre-commit.com): `pre-commit install`, then every commit runs dwctl's gates.
# These hooks run the dwctl installed beside pre-commit (`pip install {source}`), so they need no
# network and no tag; to let pre-commit install dwctl itself, use `repo: <dwctl's git URL>` with
# `rev: v{version}` and the same hook ids instead.
repos:
  - repo: local
    hooks:
      - id: dwctl-render-check
        name: dwctl render --check
        entry: dwctl render --check
        language: system
        pass_filenames: false
        files: ^(config/|iac/|sql/|\\.dwctl-manifest$)
      - id: dwctl-validate
        name: dwctl validate --strict
        entry: dwctl validate --strict
        language: system
        pass_filenames: false
        files: ^(config/|iac/|sql/|\\.dwctl-manifest$)
      - id: dwctl-scan
        name: dwctl scan (checkov)
        entry: dwctl scan --quiet
        language: system
        pass_filenames: false
        require_serial: true
        files: ^(config/|iac/|\\.dwctl-manifest$)
"""


def _starter(name: str) -> str:
    return resources.files("dwctl.spec").joinpath("starter", name).read_text(encoding="utf-8")


def starter_spec(engine: str) -> str:
    return Template(_starter("pipeline.yaml")).safe_substitute(engine=engine, **ENGINES[engine])


def files(engine: str, source: str | None = None) -> dict[str, str]:
    """Every file of the starter project, path -> text. `source` is what CI and pre-commit pip-install."""
    from dwctl.spec.model import json_schema

    pin = f'"{source}"' if source else PINNED
    workflow = _starter("github-actions.yml")
    if PINNED not in workflow:
        raise AssertionError("the packaged workflow no longer pins dwctl as expected")
    return {
        SPEC: starter_spec(engine),
        SCHEMA: json.dumps(json_schema(), indent=2, sort_keys=True) + "\n",
        ".gitignore": _starter("gitignore"),
        ".pre-commit-config.yaml": PRE_COMMIT.format(source=pin, version=__version__),
        ".github/workflows/dwctl.yml": workflow.replace(PINNED, pin),
    }


def write(directory: Path, contents: dict[str, str], *, force: bool = False) -> list[str]:
    """Write all files, or none: existing files are an error unless `force` (then they are replaced)."""
    existing = sorted(p for p in contents if (directory / p).exists())
    if existing and not force:
        raise OutputError(f"{directory.as_posix()}: not overwriting {', '.join(existing)} "
                          "(pass --force to replace them). Nothing was written.")
    try:
        for path, text in contents.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="\n")
    except OSError as exc:
        raise OutputError(f"{getattr(exc, 'filename', None) or directory}: cannot write the project: "
                          f"{exc.strerror or exc}") from None
    return sorted(contents)
