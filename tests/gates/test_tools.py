"""`dwctl tools`: the machine's readiness to deploy, each problem with its fix, no secret ever shown.
Terraform is a stand-in at the process boundary; HOME and the environment are the test's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from tests.support.standins import standin


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    return home


def tools(home: Path, *args: str, **env: str):
    clean = {k: None for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "TF_CLI_CONFIG_FILE",
                               "TF_PLUGIN_CACHE_DIR", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                               "AWS_CONFIG_FILE", "XDG_DATA_HOME", "XDG_DATA_DIRS")}
    return CliRunner().invoke(cli, ["tools", *args], env={**clean, "HOME": str(home),
                                                          "XDG_DATA_DIRS": str(home / "none"), **env})


def rows(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_a_ready_machine_passes_every_row_and_shows_no_secret(home, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    rc = tmp_path / "offline.tfrc"
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    tf = standin(tmp_path / "bin", "1.11.4")
    result = tools(home, "--terraform-bin", str(tf), "--format", "json", TF_CLI_CONFIG_FILE=str(rc),
                   AWS_ACCESS_KEY_ID="AKIAEXAMPLEKEYID0000", AWS_SECRET_ACCESS_KEY="not-to-be-printed-secret")
    assert result.exit_code == 0, result.output
    found = rows(result)
    assert {name: r["status"] for name, r in found.items()} == {
        "terraform": "pass", "aws provider": "pass", "aws credentials": "pass", "checkov": "pass"}
    assert "hashicorp/aws 5.100.0 available offline" in found["aws provider"]["detail"]
    assert "AKIAEXAMPLEKEYID0000" not in result.output and "not-to-be-printed-secret" not in result.output


def test_an_old_terraform_fails_with_the_install_hint(home, tmp_path):
    result = tools(home, "--terraform-bin", str(standin(tmp_path / "bin", "1.0.3")))
    assert result.exit_code == 1
    assert "FAIL    terraform" in result.output and "the stack needs >= 1.5" in result.output
    assert "fail terraform: Install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install" in result.output


def test_missing_provider_and_credentials_warn_with_their_fixes(home, tmp_path):
    result = tools(home, "--terraform-bin", str(standin(tmp_path / "bin")))
    assert result.exit_code == 0  # warnings: init can still download, a role may still provide credentials
    assert "warn aws provider: allow HTTPS to registry.terraform.io" in result.output
    assert "warn aws credentials: `aws configure`" in result.output
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
    assert rows(tools(home, "--format", "json", "--terraform-bin", str(standin(tmp_path / "bin"))))[
        "aws credentials"]["status"] == "pass"


def test_doctor_tools_is_the_same_check(home, tmp_path):
    tf = str(standin(tmp_path / "bin"))
    assert rows(tools(home, "--format", "json", "--terraform-bin", tf)) == rows(
        CliRunner().invoke(cli, ["doctor", "--tools", "--format", "json"],
                           env={"HOME": str(home), "DWCTL_TERRAFORM": tf, "XDG_DATA_DIRS": str(home / "none"),
                                "AWS_PROFILE": None, "AWS_ACCESS_KEY_ID": None, "TF_CLI_CONFIG_FILE": None,
                                "TF_PLUGIN_CACHE_DIR": None, "XDG_DATA_HOME": None}))
    missing = CliRunner().invoke(cli, ["doctor"])
    assert missing.exit_code == 2 and "give --dsn DSN" in missing.output and "--tools" in missing.output
