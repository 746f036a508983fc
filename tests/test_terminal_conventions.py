"""Conventions users know from terraform, git and dbt, through the CLI: --no-color and NO_COLOR, -v showing
each external command line, DWCTL_CONFIG / DWCTL_ENV, spec discovery upward, shell completion."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from tests.conftest import EXAMPLE
from tests.support.standins import standin

ANSI = "\x1b["


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "config").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "config" / "pipeline.yaml")
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["render"]).exit_code == 0
    return tmp_path


def invoke(*args: str, env: dict | None = None, color: bool = False):
    return CliRunner().invoke(cli, list(args), env=env, color=color)


def test_colour_on_a_terminal_and_none_with_no_color_or_NO_COLOR(project):
    tf = str(standin(project / "bin", code=0))
    assert ANSI in invoke("validate", "--terraform-bin", tf, color=True).output  # as on a terminal
    assert ANSI not in invoke("--no-color", "validate", "--terraform-bin", tf, color=True).output
    assert ANSI not in invoke("validate", "--terraform-bin", tf, env={"NO_COLOR": "1"}, color=True).output
    assert ANSI in invoke("validate", "--terraform-bin", tf, env={"NO_COLOR": ""}, color=True).output  # empty: unset


def test_verbose_prints_each_command_line_dwctl_runs(project):
    tf = standin(project / "bin", code=0)
    quiet = invoke("validate", "--terraform-bin", str(tf))
    assert "dwctl: running:" not in quiet.output
    # a file of the user's own, so the formatter runs (files that are the render alone need none: check_fmt)
    (project / "iac" / "mine.tf").write_text('locals {\n  mine = 1\n}\n')
    loud = invoke("-v", "validate", "--terraform-bin", str(tf))
    assert f"dwctl: running: {tf} version -json" in loud.stderr
    assert f"dwctl: running: {tf} fmt -check -recursive -no-color (in iac)" in loud.stderr
    assert "dwctl: running:" not in invoke("validate", "--terraform-bin", str(tf)).output  # not sticky
    debug = invoke("-vv", "validate", "--terraform-bin", str(tf), env={"TF_VAR_db_password": "hunter2-secret"})
    assert "dwctl: environment: CHECKPOINT_DISABLE=1 TF_INPUT=0 TF_IN_AUTOMATION=1" in debug.stderr
    assert "hunter2-secret" not in debug.output


def test_DWCTL_CONFIG_and_DWCTL_ENV_stand_in_for_the_options(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("specs") / "other.yaml"
    elsewhere.write_text("project: [unclosed\n")
    result = invoke("render", "--check", env={"DWCTL_CONFIG": str(elsewhere)})
    assert result.exit_code == 2 and str(elsewhere) in result.output
    assert invoke("render", "--check", "-c", "config/pipeline.yaml", env={"DWCTL_CONFIG": str(elsewhere)}).exit_code == 0
    result = invoke("output", "--terraform-bin", str(standin(project / "bin")), env={"DWCTL_ENV": "qa"})
    assert result.exit_code == 2 and "unknown environment 'qa'" in result.output


def test_the_spec_is_found_from_a_subdirectory_and_output_goes_beside_it(project):
    deeper = project / "docs" / "notes"
    deeper.mkdir(parents=True)
    os.chdir(deeper)
    result = invoke("-v", "render", "--check")
    assert result.exit_code == 0 and result.stdout.strip() == "up to date", result.output
    assert "using ../../config/pipeline.yaml" in result.stderr
    assert not (deeper / "iac").exists()
    (project / "config" / "pipeline.yaml").unlink()
    assert "spec file not found" in invoke("render").output


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o nosort -F"), ("zsh", "#compdef dwctl"),
                                           ("fish", "complete --no-files --command dwctl")])
def test_completion_scripts_for_each_shell(shell, marker):
    result = invoke("completion", shell)
    assert result.exit_code == 0 and marker in result.output and "_DWCTL_COMPLETE" in result.output


def test_the_completion_script_completes_commands_and_options():
    """What bash does with the script: call dwctl with _DWCTL_COMPLETE set and the words typed so far."""
    env = {"_DWCTL_COMPLETE": "bash_complete", "COMP_WORDS": "dwctl ren", "COMP_CWORD": "1"}
    result = CliRunner().invoke(cli, [], env=env, prog_name="dwctl")
    assert "plain,render" in result.output
    env.update(COMP_WORDS="dwctl validate --st", COMP_CWORD="2")
    assert "plain,--strict" in CliRunner().invoke(cli, [], env=env, prog_name="dwctl").output
