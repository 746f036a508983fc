"""The package's layout is its architecture: each stage imports only the stages below it.

Read from the source with `ast` (imports inside functions count too), so a lazy import cannot
hide a dependency that points the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dwctl"
COMMON = {"dwctl", "dwctl.errors", "dwctl.cli_options", "dwctl.report"}  # version, errors, shared options, checklists
ALLOWED = {
    "spec": set(),
    "render": {"spec"},
    "deploy": {"spec", "render"},
    "gates": {"spec", "render", "deploy"},
    "source": {"spec"},
    "warehouse": {"spec", "render"},
    "operate": {"spec", "render", "deploy", "warehouse"},
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
    return {name for name in found if name == "dwctl" or name.startswith("dwctl.")}


def stage_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


@pytest.mark.parametrize("stage", sorted(ALLOWED))
def test_a_stage_imports_only_the_stages_below_it(stage):
    wrong = []
    for path in sorted((PACKAGE / stage).glob("*.py")):
        for name in imports(path):
            other = stage_of(name)
            if name in COMMON or other == stage or other in ALLOWED[stage]:
                continue
            if other is None and name.rsplit(".", 1)[0] in COMMON:
                continue  # `from dwctl import __version__`
            wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not wrong, wrong


def test_the_root_group_names_every_stage_command_and_nothing_imports_it():
    from dwctl.cli import LAZY_COMMANDS

    assert {target.split(".")[1] for target, _ in LAZY_COMMANDS.values()} == set(ALLOWED)
    users = [p for p in PACKAGE.rglob("*.py") if p.name != "cli.py" and "dwctl.cli" in imports(p)]
    assert users == []


def test_the_load_job_needs_only_the_standard_library_and_boto3():
    """It runs on Glue's Python shell, where dwctl is not installed: boto3 and its botocore are preinstalled
    there (AWS Glue Developer Guide, add-job-python.html, "Supported libraries for Python shell jobs")."""
    job = PACKAGE / "warehouse" / "load_job.py"
    tree = ast.parse(job.read_text(encoding="utf-8"))
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    import sys

    assert modules - set(sys.stdlib_module_names) == {"boto3", "botocore"}


def test_the_root_groups_short_help_is_each_commands_own():
    """`dwctl --help` lists the lazy commands from LAZY_COMMANDS, without importing them: same text."""
    import importlib

    from dwctl.cli import LAZY_COMMANDS

    for name, (target, short_help) in LAZY_COMMANDS.items():
        module, attr = target.split(":")
        assert getattr(importlib.import_module(module), attr).get_short_help_str(limit=10_000) == short_help, name


def test_help_imports_no_command_module():
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['dwctl', '--help']\nimport dwctl.cli\ntry:\n    dwctl.cli.main()\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if m.startswith('dwctl.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "['dwctl.cli']"
