"""Provider-less Terraform fixtures (work offline with the real binary) and the signal stand-in.

Terraform needs no download for a configuration that uses only variables, locals, outputs and
the built-in `terraform_remote_state` data source, so every fixture here is made of just those.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dwctl.deploy import actions as deploy
from dwctl.deploy import terraform
from dwctl.render import environments, tfvars
from dwctl.spec.read import load_spec
from tests.conftest import EXAMPLE

ENVIRONMENTS = """
environments:
  dev:
    account_id: "210987654321"
    region: eu-central-1
    tags: {Stage: dev}
    warehouse: {base_capacity: 16, usage_limit: {amount: 10}}
    dms: {instance_class: dms.t3.small, multi_az: false}
"""
TF_ENV = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def terraform_path() -> str:
    found = shutil.which("terraform")
    assert found, "terraform not on PATH: install Terraform >= 1.5 (1.11 is tested)"
    return os.path.abspath(found)


def terraform_version() -> str:
    """The version the terraform on PATH reports, read without dwctl (for messages that name it)."""
    done = subprocess.run([terraform_path(), "version", "-json"], capture_output=True, text=True,
                          env={**os.environ, **TF_ENV}, stdin=subprocess.DEVNULL)
    return json.loads(done.stdout)["terraform_version"]


def tf(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Plain terraform, for setting fixtures up independently of the code under test."""
    done = subprocess.run([terraform_path(), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **TF_ENV}, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done


def upstream_state(root: Path, bucket: str = "shop-upstream-bucket") -> Path:
    """Another stack's local state holding one output, applied with the real binary."""
    up = root / "upstream"
    up.mkdir(parents=True)
    (up / "main.tf").write_text(f'output "bucket" {{\n  value = "{bucket}"\n}}\n')
    tf(up, "init", "-input=false", "-no-color")
    tf(up, "apply", "-input=false", "-no-color", "-auto-approve")
    return up / "terraform.tfstate"


def stack_config(variables: list[str], upstream: Path, *, backend: str | None = None) -> str:
    """A root module shaped like the rendered stack's interface: every tfvars key is a variable.
    No backend block means Terraform's implicit local state, as a spec without `backend` gets."""
    decls = "".join(f'variable "{name}" {{\n  default = null\n}}\n' for name in sorted(set(variables)))
    block = f'terraform {{\n  backend "{backend}" {{}}\n}}\n' if backend else ""
    return f'''{block}
{decls}
locals {{
  label = "${{var.project}}-${{var.environment}}-${{terraform.workspace}}"
}}

data "terraform_remote_state" "upstream" {{
  backend = "local"
  config = {{
    path = "{upstream.as_posix()}"
  }}
}}

output "label" {{
  value = local.label
}}

output "capacity" {{
  value = var.redshift_base_capacity
}}

output "multi_az" {{
  value = var.dms_multi_az
}}

output "account_id" {{
  value = var.account_id
}}

output "upstream_bucket" {{
  value = data.terraform_remote_state.upstream.outputs.bucket
}}
'''


FAKE = '''#!{python}
"""Stand-in for terraform at the process boundary: records the signals it gets and who sent them."""
import json, os, signal, sys

args = sys.argv[1:]
if args[:1] == ["version"]:
    print(json.dumps({{"terraform_version": "1.11.4"}}))  # new enough for the rendered stack
    sys.exit(0)
record = os.environ["FAKE_TF_RECORD"]
signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGINT, signal.SIGTERM}})
print("fake terraform: " + args[0] + " started", flush=True)
if os.environ.get("FAKE_TF_SIGNAL_PARENT"):
    os.kill(os.getppid(), signal.SIGINT)  # what a user's Ctrl-C does to dwctl
got = signal.sigtimedwait({{signal.SIGINT, signal.SIGTERM}}, 120)
seen = [] if got is None else [{{"signal": signal.Signals(got.si_signo).name, "sender": got.si_pid}}]
print("fake terraform: stopping cleanly after " + (seen[0]["signal"] if seen else "nothing"), flush=True)
with open(record, "w") as f:
    json.dump({{"signals": seen, "pid": os.getpid(), "pgid": os.getpgid(0), "exited": "cleanly"}}, f)
sys.exit(1 if seen else 3)
'''


def fake_terraform(directory: Path) -> Path:
    path = directory / "terraform"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(0o755)
    return path


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def spec_text(extra: str = ENVIRONMENTS) -> str:
    return EXAMPLE.read_text(encoding="utf-8") + extra


# --- projects for the deploy commands (a fixture iac/ with the spec's real tfvars and env files) ---
def make_project(root: Path, extra: str = ENVIRONMENTS) -> Path:
    """root/spec.yaml plus a fixture iac/ carrying the real terraform.tfvars.json and env files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.yaml").write_text(spec_text(extra))
    spec = load_spec(root / "spec.yaml")
    iac = root / "iac"
    iac.mkdir()
    files = {"iac/terraform.tfvars.json": tfvars.document(spec, "fixture"), **environments.files(spec, "spec.yaml")}
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    keys = [k for name in environments.names(spec) for k in environments.values(spec, name)]
    (iac / "main.tf").write_text(stack_config(keys, upstream_state(root)))
    return root


def stack_and_driver(root: Path, env: str, lines: list | None = None):
    spec = load_spec(root / "spec.yaml")
    stack = deploy.stack_for(spec, root, env)
    echo = (lambda text, err: lines.append(text)) if lines is not None else None
    return stack, deploy.driver(stack, terraform.find(), echo=echo)


def planned(root: Path, env: str, opts: deploy.Options = deploy.Options()):
    stack, tf = stack_and_driver(root, env)
    deploy.init(stack, tf, echo=lambda _: None)
    return (stack, *deploy.plan(stack, tf, opts))
