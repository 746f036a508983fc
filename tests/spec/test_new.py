"""`dwctl new`: a starter project that renders and validates as written, for either engine."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dwctl import __version__
from dwctl.cli import cli
from dwctl.spec.read import load_spec

FILES = [".github/workflows/dwctl.yml", ".gitignore", ".pre-commit-config.yaml", "config/pipeline.yaml",
         "dwctl-spec.schema.json"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_new_project_renders_and_validates_as_written(tmp_path, monkeypatch, engine):
    project = tmp_path / "proj"
    result = run("new", str(project), "--engine", engine)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()) == FILES
    assert load_spec(project / "config" / "pipeline.yaml").source.engine == engine
    monkeypatch.chdir(project)
    assert run("render").exit_code == 0
    checks = {c["name"]: c["status"] for c in json.loads(run("validate", "--format", "json").stdout)["checks"]}
    assert checks["spec"] == checks["rendered"] == "pass"


def test_the_modeline_resolves_to_the_schema_of_this_dwctl(tmp_path):
    run("new", str(tmp_path), "--engine", "postgres")
    spec = tmp_path / "config" / "pipeline.yaml"
    target = re.match(r"# yaml-language-server: \$schema=(\S+)$", spec.read_text().splitlines()[0])[1]
    assert (spec.parent / target).resolve() == (tmp_path / "dwctl-spec.schema.json").resolve()
    assert json.loads((tmp_path / "dwctl-spec.schema.json").read_text()) == json.loads(run("schema").output)


def test_hooks_and_workflow_run_real_commands_and_pin_this_version(tmp_path):
    run("new", str(tmp_path), "--engine", "mysql")
    hooks = yaml.safe_load((tmp_path / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    entries = [shlex.split(h["entry"]) for h in hooks]
    assert [e[:2] for e in entries] == [["dwctl", "render"], ["dwctl", "validate"], ["dwctl", "scan"]]
    assert "--strict" in entries[1]
    for hook in hooks:
        assert re.search(hook["files"], ".dwctl-manifest") and re.search(hook["files"], "config/pipeline.yaml")
    workflow = yaml.safe_load((tmp_path / ".github" / "workflows" / "dwctl.yml").read_text())
    installs = [s["run"] for s in workflow["jobs"]["gates"]["steps"] if "pip install" in s.get("run", "")]
    assert installs == [f'pip install "dwctl=={__version__}"']

    other = tmp_path / "other"
    run("new", str(other), "--engine", "mysql", "--source", "dwctl @ git+https://example.org/dwctl@v9.9.9")
    assert 'pip install "dwctl @ git+https://example.org/dwctl@v9.9.9"' in (other / ".github/workflows/dwctl.yml").read_text()


def test_new_never_overwrites_without_force(tmp_path):
    run("new", str(tmp_path), "--engine", "postgres")
    spec = tmp_path / "config" / "pipeline.yaml"
    spec.write_text("# mine\n")
    result = run("new", str(tmp_path), "--engine", "mysql")
    assert result.exit_code == 2 and "not overwriting" in result.output and "config/pipeline.yaml" in result.output
    assert spec.read_text() == "# mine\n"
    assert run("new", str(tmp_path), "--engine", "mysql", "--force").exit_code == 0
    assert "engine: mysql" in spec.read_text()


def test_a_missing_spec_points_at_dwctl_new(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("render")
    assert result.exit_code == 2
    assert "spec file not found" in result.output and "dwctl new --engine postgres|mysql" in result.output
    assert not Path("iac").exists()
