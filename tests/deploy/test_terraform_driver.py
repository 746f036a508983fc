"""dwctl.deploy.terraform against the real Terraform 1.0.3 on provider-less fixtures (offline), plus signals."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from dwctl.deploy import terraform as t
from dwctl.errors import ToolError
from tests.support.tf_fixtures import (
    fake_terraform,
    read_json,
    stack_config,
    terraform_path,
    upstream_state,
)


@pytest.fixture(scope="module")
def binary() -> t.Binary:
    return t.find()


@pytest.fixture
def config(tmp_path) -> Path:
    """A stack reading another stack's local state, with a partial local backend config file."""
    state = upstream_state(tmp_path)
    iac = tmp_path / "iac"
    iac.mkdir()
    (iac / "main.tf").write_text(stack_config(["project", "environment", "redshift_base_capacity",
                                               "dms_multi_az", "account_id"], state, backend="local"))
    (iac / "dev.tfvars.json").write_text(json.dumps({"project": "shop", "environment": "dev",
                                                     "redshift_base_capacity": 16, "dms_multi_az": False}))
    (iac / "local.tfbackend").write_text(f'workspace_dir = "{(tmp_path / "states").as_posix()}"\n')
    return iac


def driver(binary, iac: Path, lines: list | None = None, workspace: str = "dev") -> t.Terraform:
    echo = (lambda text, err: lines.append(text)) if lines is not None else None
    return t.Terraform(binary, iac, data_dir=iac / ".dwctl" / workspace / "terraform", workspace=workspace,
                       echo=echo)


# --- finding the binary ----------------------------------------------------------------------------
def test_probe_reports_the_real_version(binary):
    assert binary.version == (1, 0, 3)
    assert binary.path == terraform_path()
    assert binary.describe() == f"terraform 1.0.3 at {terraform_path()}"


def test_resolution_order_flag_then_env_then_terraform_then_tofu(tmp_path):
    real = terraform_path()
    for name in ("a", "b", "path", "tofu-only"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "tf-a").symlink_to(real)
    (tmp_path / "b" / "tf-b").symlink_to(real)
    (tmp_path / "path" / "terraform").symlink_to(real)
    (tmp_path / "tofu-only" / "tofu").symlink_to(real)
    both = os.pathsep.join([str(tmp_path / "path"), str(tmp_path / "tofu-only")])
    env = {"PATH": both, t.ENV_VAR: str(tmp_path / "b" / "tf-b")}
    assert t.resolve(str(tmp_path / "a" / "tf-a"), env) == str(tmp_path / "a" / "tf-a")
    assert t.resolve(None, env) == str(tmp_path / "b" / "tf-b")
    assert t.resolve(None, {"PATH": both}) == str(tmp_path / "path" / "terraform")
    assert t.resolve(None, {"PATH": str(tmp_path / "tofu-only")}) == str(tmp_path / "tofu-only" / "tofu")
    assert t.resolve("terraform", {"PATH": both}) == str(tmp_path / "path" / "terraform")  # a bare name: PATH
    assert t.probe(str(tmp_path / "tofu-only" / "tofu")).name == "tofu"


def test_missing_binary_says_how_to_install(tmp_path):
    with pytest.raises(ToolError) as err:
        t.resolve(None, {"PATH": str(tmp_path)})
    assert "neither `terraform` nor `tofu`" in err.value.message
    assert "developer.hashicorp.com/terraform/install" in err.value.message
    with pytest.raises(ToolError) as err:
        t.resolve(str(tmp_path / "nope"), {"PATH": ""})
    assert f"--terraform-bin={tmp_path / 'nope'}: no such executable" in err.value.message
    with pytest.raises(ToolError) as err:
        t.resolve(None, {"PATH": "", t.ENV_VAR: "no-such-terraform"})
    assert "DWCTL_TERRAFORM=no-such-terraform" in err.value.message


def test_versions_parse_and_old_ones_are_refused(binary):
    import subprocess

    out = subprocess.run([binary.path, "version", "-json"], capture_output=True, text=True,
                         env={**os.environ, "CHECKPOINT_DISABLE": "1"}).stdout
    assert t.parse_version(out) == (1, 0, 3)
    assert t.parse_version("Terraform v0.12.31\non linux_amd64\n") == (0, 12, 31)
    assert t.parse_version("OpenTofu v1.8.2") == (1, 8, 2)
    assert t.parse_version("hello") is None
    with pytest.raises(ToolError, match=r"Terraform 0\.14\.11, too old: dwctl needs >= 1\.0\.0.*terraform/install"):
        t.check_version("/opt/tf", (0, 14, 11))
    with pytest.raises(ToolError, match="did not report a Terraform version"):
        t.check_version("/bin/true", None)
    assert t.check_version("/x", (1, 0, 0)) == (1, 0, 0)


# --- exact command lines ---------------------------------------------------------------------------
def test_command_lines_carry_exactly_the_flags_we_mean(binary, tmp_path):
    tf = t.Terraform(binary, tmp_path)
    assert tf.argv("apply", ".dwctl/dev/plan.tfplan", input=False) == [
        binary.path, "apply", "-input=false", "-no-color", ".dwctl/dev/plan.tfplan"]
    argv = tf.argv("plan", "-var", "x=1", input=False, out="p.tfplan", var_file=[], target=["a.b", "c.d"],
                   lock_timeout="5m", parallelism=None)
    assert argv == [binary.path, "plan", "-input=false", "-out=p.tfplan", "-target=a.b", "-target=c.d",
                    "-lock-timeout=5m", "-no-color", "-var", "x=1"]
    assert not any(a.startswith(("-var-file", "-force", "-state", "-reconfigure")) for a in argv)


# --- the verbs on a real binary ----------------------------------------------------------------------
def test_init_plan_show_apply_output_destroy_offline(binary, config, tmp_path):
    lines: list[str] = []
    tf = driver(binary, config, lines)
    tf.init(backend_config="local.tfbackend")
    assert any("terraform.io/builtin/terraform is built in" in line for line in lines)  # nothing downloaded
    assert tf.select_workspace("dev") is True
    assert tf.workspaces() == ["default", "dev"]

    assert tf.plan(".dwctl/dev/plan.tfplan", var_files=["dev.tfvars.json"]) == 2
    assert any("Changes to Outputs" in line for line in lines)  # streamed to the echo as it ran
    assert "".join(lines) == "".join(tf.transcript)  # ...and captured, the same text
    shown = tf.show_json(".dwctl/dev/plan.tfplan")
    assert shown["variables"]["redshift_base_capacity"]["value"] == 16
    assert {name: c["actions"] for name, c in shown["output_changes"].items()}["label"] == ["create"]

    tf.apply(".dwctl/dev/plan.tfplan")
    outputs = json.loads(tf.output(as_json=True))
    assert outputs["label"]["value"] == "shop-dev-dev"
    assert outputs["capacity"]["value"] == 16
    assert outputs["upstream_bucket"]["value"] == "shop-upstream-bucket"  # terraform_remote_state, local
    assert (tmp_path / "states" / "dev" / "terraform.tfstate").is_file()  # the backend config file was used
    assert "upstream_bucket" in tf.output()

    assert tf.plan(".dwctl/dev/again.tfplan", var_files=["dev.tfvars.json"]) == 0
    assert tf.plan(".dwctl/dev/destroy.tfplan", var_files=["dev.tfvars.json"], destroy=True) == 2
    tf.apply(".dwctl/dev/destroy.tfplan")
    assert json.loads(tf.output(as_json=True)) == {}


def test_workspaces_keep_environments_apart(binary, config, tmp_path):
    for env, capacity in (("dev", 16), ("prod", 64)):
        (config / f"{env}.tfvars.json").write_text(json.dumps({"project": "shop", "environment": env,
                                                               "redshift_base_capacity": capacity}))
        tf = driver(binary, config, workspace=env)
        tf.init(backend_config="local.tfbackend")
        tf.select_workspace(env)
        tf.plan(f".dwctl/{env}/plan.tfplan", var_files=[f"{env}.tfvars.json"])
        tf.apply(f".dwctl/{env}/plan.tfplan")
    dev, prod = driver(binary, config, workspace="dev"), driver(binary, config, workspace="prod")
    assert json.loads(dev.output(as_json=True))["capacity"]["value"] == 16
    assert json.loads(prod.output(as_json=True))["label"]["value"] == "shop-prod-prod"
    assert dev.select_workspace("dev") is False  # exists now: selected, not created
    assert sorted(p.name for p in (tmp_path / "states").iterdir()) == ["dev", "prod"]


def test_bad_configuration_is_one_paragraph_tool_error(binary, tmp_path):
    (tmp_path / "main.tf").write_text('variable "x" {\n  type = strin\n}\n')
    with pytest.raises(ToolError) as err:
        driver(binary, tmp_path).init()
    message = err.value.message
    assert err.value.exit_code == 1
    assert "`terraform init` failed (exit 1)" in message
    assert 'Error: Invalid type specification (on main.tf line 2, in variable "x")' in message
    assert 'The keyword "strin" is not a valid type specification.' in message
    assert "\n" not in message


def test_plan_errors_exit_1_and_name_the_problem(binary, config):
    tf = driver(binary, config)
    tf.init(backend_config="local.tfbackend")
    tf.select_workspace("dev")
    (config / "broken.tf").write_text('output "y" {\n  value = var.nope\n}\n')
    with pytest.raises(ToolError, match=r"`terraform plan` failed \(exit 1\).*Reference to undeclared input variable"):
        tf.plan(".dwctl/dev/plan.tfplan", var_files=["dev.tfvars.json"])


# --- signals -------------------------------------------------------------------------------------
def test_ctrl_c_is_forwarded_once_as_sigint_and_output_streams_live(tmp_path, monkeypatch):
    """The test presses "Ctrl-C" only when the child's first line reaches the echo: that proves the
    echo is live (the child blocks until it gets the signal), and the child records who signalled it."""
    fake = fake_terraform(tmp_path)
    monkeypatch.setenv("FAKE_TF_RECORD", str(tmp_path / "record.json"))
    binary = t.probe(str(fake))
    seen: list[str] = []

    def echo(text: str, _err: bool) -> None:
        seen.append(text)
        if "started" in text:
            os.kill(os.getpid(), signal.SIGINT)

    tf = t.Terraform(binary, tmp_path, echo=echo)
    with pytest.raises(t.Interrupted) as err:
        tf.apply("plan.tfplan")
    assert err.value.exit_code == 130
    record = read_json(tmp_path / "record.json")
    assert record["signals"] == [{"signal": "SIGINT", "sender": os.getpid()}]  # forwarded by dwctl, once
    assert record["pgid"] == record["pid"]  # its own process group: the terminal's Ctrl-C reaches only dwctl
    assert record["exited"] == "cleanly"
    assert seen == ["fake terraform: apply started\n", "fake terraform: stopping cleanly after SIGINT\n"]
    assert tf.transcript == seen
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # our handler is gone again
