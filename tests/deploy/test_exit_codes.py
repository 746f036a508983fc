"""One exit-code convention across the deploy commands (2 usage or spec error, 1 the operation could not be
carried out, plan 0/1/2), `--format json` with `--json` kept as an alias, JSON also on failure, and
Terraform's error shown once. Terraform is a stand-in at the process boundary (tests.support.standins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from tests.conftest import EXAMPLE
from tests.support.standins import standin

COMMANDS = {"plan": [], "apply": ["--yes"], "output": [], "destroy": ["--yes"]}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """The example rendered, with protect_data off (so destroy gets as far as the state), never initialised."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "pipeline.yaml").write_text(EXAMPLE.read_text() + "protect_data: false\n")
    assert CliRunner().invoke(cli, ["render"]).exit_code == 0
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_not_initialised_exits_1_on_every_command(project, command):
    tf = standin(project / "bin")
    result = run(command, *COMMANDS[command], "--terraform-bin", str(tf))
    assert result.exit_code == 1, result.output
    assert "environment 'prod' is not initialised" in result.output and "dwctl init --env prod" in result.output
    assert "stand-in asked to run" not in result.output


@pytest.mark.parametrize("command", ["init", *sorted(COMMANDS)])
def test_a_spec_error_exits_2_except_on_plan(project, command):
    spec = project / "config" / "pipeline.yaml"
    spec.write_text(spec.read_text().replace("project: shop", "project: Not A Name", 1))
    result = run(command, *COMMANDS.get(command, []))
    assert result.exit_code == (1 if command == "plan" else 2), result.output
    assert "config/pipeline.yaml:" in result.output and "project:" in result.output


@pytest.mark.parametrize("command", ["plan", "output"])
@pytest.mark.parametrize("flag", [["--format", "json"], ["--json"]])
def test_json_is_printed_also_on_failure(project, command, flag):
    result = run(command, *flag, "--terraform-bin", str(standin(project / "bin")))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1 and "is not initialised" in doc["error"]


def test_terraforms_error_is_printed_once(project):
    error = "Error: Unsupported block type\n\n  on main.tf line 3:\n   3: check \"x\" {\n"
    tf = standin(project / "bin", stderr=error, code=1)
    result = run("init", "--terraform-bin", str(tf))
    assert result.exit_code == 1
    assert result.output.count("Unsupported block type") == 1, result.output
    assert "`terraform init` failed (exit 1)" in result.output and "its error is above" in result.output
    machine = run("plan", "--format", "json", "--terraform-bin", str(tf))  # not initialised: no terraform run
    assert json.loads(machine.stdout)["ok"] is False


def test_schema_writes_a_file_with_f_and_keeps_the_old_o(tmp_path):
    assert run("schema", "-f", str(tmp_path / "a.json")).exit_code == 0
    assert run("schema", "-o", str(tmp_path / "b.json")).exit_code == 0
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text() == run("schema").output


@pytest.mark.parametrize("args", [["scan", "--format", "json", "-c", "missing.yaml"],
                                  ["doctor", "--format", "json", "--dsn", "postgresql://u@127.0.0.1:1/db"],
                                  ["validate", "--format", "json", "-c", "missing.yaml"],
                                  ["tools", "--format", "json", "--terraform-bin", "/nonexistent"]])
def test_every_json_report_is_json_also_when_the_command_fails(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (1, 2), result.output
    assert json.loads(result.stdout)["ok"] is False
