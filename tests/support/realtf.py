"""Run the real Terraform with the real hashicorp/aws provider, offline, for the rendered stack.

The provider comes from a filesystem mirror (`terraform providers mirror` layout) found on this
machine: a directory named registry.terraform.io holding hashicorp/aws. A CLI config written to a
temporary directory points at it, so nothing outside the repository is named in it. No mirror:
the tests that need it skip, saying so. Terraform never gets real credentials or the instance
metadata endpoint, so nothing leaves the loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROVIDER = "registry.terraform.io/hashicorp/aws"

OFFLINE_PROVIDER = '''# Test only: the provider configured as a CI job without an AWS account would configure it.
provider "aws" {
  allowed_account_ids         = null
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}
'''


def find_mirror() -> Path | None:
    """The parent of a registry.terraform.io directory holding hashicorp/aws (depth <= 4 from /)."""
    found = subprocess.run(["find", "/", "-xdev", "-maxdepth", "4", "-type", "d", "-name", "registry.terraform.io"],
                           capture_output=True, text=True, timeout=60).stdout.split()
    for path in map(Path, sorted(found)):
        if (path / "hashicorp" / "aws").is_dir():
            return path.parent
    return None


def cli_config(directory: Path, mirror: Path) -> Path:
    """A CLI config taking hashicorp/aws from the mirror only, everything else as usual."""
    path = directory / "terraform.rc"
    path.write_text(f'''provider_installation {{
  filesystem_mirror {{
    path    = {json.dumps(str(mirror))}
    include = ["{PROVIDER}"]
  }}
  direct {{
    exclude = ["{PROVIDER}"]
  }}
}}
''', encoding="utf-8")
    return path


def offline_env(config: Path) -> dict[str, str]:
    """Fake credentials and no metadata endpoint: the AWS SDK inside the provider cannot reach AWS."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    return {**keep, "TF_CLI_CONFIG_FILE": str(config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
            "AWS_SECRET_ACCESS_KEY": "fake-secret-for-offline-tests", "AWS_REGION": "eu-west-1"}


@pytest.fixture(scope="session")
def real_provider_env(tmp_path_factory) -> dict[str, str]:
    if shutil.which("terraform") is None:
        pytest.skip("no terraform on PATH")
    mirror = find_mirror()
    if mirror is None:
        pytest.skip("no offline mirror of hashicorp/aws (a registry.terraform.io directory within 4 levels of /): "
                    "the real-provider tests need one here (CI images have it)")
    return offline_env(cli_config(tmp_path_factory.mktemp("tfrc"), mirror))


def terraform(env: dict[str, str], cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["terraform", *args, "-no-color"], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)
    if check:
        assert done.returncode == 0, f"terraform {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def write_iac(files: dict[str, str], root: Path) -> Path:
    """The rendered iac/ files (the glue script too) under root; returns root/iac."""
    for path, text in files.items():
        if path.startswith("iac/"):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
    return root / "iac"


def init(env: dict[str, str], iac: Path) -> None:
    terraform(env, iac, "init", "-input=false", "-backend=false")
