"""`dwctl tools`: is this machine ready to deploy? Terraform/OpenTofu, the AWS provider, AWS credentials, checkov.

Each row says pass / warn / fail with the fix. Nothing here contacts the network or prints a secret:
credentials are reported by where they come from, never by value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dwctl.errors import DwctlError
from dwctl.report import Check as Tool

AWS_PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"


def check_terraform(terraform_bin: str | None, iac: Path) -> Tool:
    """The binary dwctl would run, held to the rendered stack's required_version (or its floor before a render)."""
    from dwctl.deploy import terraform

    try:
        binary = terraform.find(terraform_bin)
        if iac.is_dir():
            terraform.require_stack_version(binary, iac)
    except DwctlError as exc:
        return Tool("terraform", "fail", exc.message.replace(terraform.INSTALL_HINT, "").strip(),
                    terraform.INSTALL_HINT)
    if not iac.is_dir() and not terraform.satisfies(binary.version, f">= {terraform.STACK_MIN}"):
        return Tool("terraform", "fail", f"{binary.describe()}: the stack needs >= {terraform.STACK_MIN}",
                    terraform.INSTALL_HINT)
    return Tool("terraform", "pass", binary.describe())


def mirror_dirs(environ: dict[str, str], home: Path, cwd: Path) -> list[Path]:
    """Where `terraform init` can take providers from without the registry: explicit filesystem_mirror paths
    and the plugin cache of the CLI configuration, TF_PLUGIN_CACHE_DIR, and the implied local mirror
    directories (https://developer.hashicorp.com/terraform/cli/config/config-file#implied-local-mirror-directories)."""
    found: list[Path] = []
    config = Path(environ["TF_CLI_CONFIG_FILE"]) if environ.get("TF_CLI_CONFIG_FILE") else home / ".terraformrc"
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for block in re.finditer(r"filesystem_mirror\s*\{([^}]*)\}", text):
        found += [Path(p) for p in re.findall(r'path\s*=\s*"([^"]+)"', block[1])]
    found += [Path(os.path.expandvars(p)) for p in re.findall(r'plugin_cache_dir\s*=\s*"([^"]+)"', text)]
    if environ.get("TF_PLUGIN_CACHE_DIR"):
        found.append(Path(environ["TF_PLUGIN_CACHE_DIR"]))
    data_home = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    data_dirs = (environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share").split(":")
    found += [cwd / "terraform.d" / "plugins", home / ".terraform.d" / "plugins", data_home / "terraform" / "plugins"]
    found += [Path(d) / "terraform" / "plugins" for d in data_dirs if d]
    return found


def check_provider(iac: Path, environ: dict[str, str], home: Path, cwd: Path) -> Tool:
    installed = sorted({p.name for p in iac.glob(f".dwctl/*/terraform/providers/{AWS_PROVIDER.as_posix()}/*")}
                       | {p.name for p in (iac / ".terraform" / "providers" / AWS_PROVIDER).glob("*")})
    if installed:
        return Tool("aws provider", "pass", f"installed in {iac.as_posix()}: hashicorp/aws {', '.join(installed)}")
    local = iac / ".dwctl" / "plugin-cache"
    for directory in [*mirror_dirs(environ, home, cwd), local]:
        versions = sorted(p.name for p in (directory / AWS_PROVIDER).glob("*"))
        if versions:
            return Tool("aws provider", "pass", f"hashicorp/aws {', '.join(versions)} available offline in {directory}")
    return Tool("aws provider", "warn", "hashicorp/aws is not installed or mirrored here: `dwctl init` downloads it "
                "from registry.terraform.io", "allow HTTPS to registry.terraform.io, or point a filesystem_mirror in "
                "the CLI configuration (TF_CLI_CONFIG_FILE) at a `terraform providers mirror` directory")


def check_credentials(environ: dict[str, str], home: Path) -> Tool:
    """Where the AWS SDKs and Terraform's AWS provider would find credentials (presence only, never values):
    https://docs.aws.amazon.com/sdkref/latest/guide/standardized-credentials.html"""
    sources = []
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        sources.append("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    for name in ("AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        if environ.get(name):
            sources.append(name)
    files = [Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials"),
             Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config")]
    sources += [f.as_posix() for f in files if f.is_file()]
    if sources:
        return Tool("aws credentials", "pass", f"found: {', '.join(sources)} (not verified: that needs AWS)")
    return Tool("aws credentials", "warn", "no AWS credentials in the environment or ~/.aws (an EC2/ECS role may "
                "still provide them)", "`aws configure` or `aws sso login`, or export AWS_PROFILE")


def check_checkov() -> Tool:
    from importlib import metadata

    try:
        return Tool("checkov", "pass", f"checkov {metadata.version('checkov')} importable")
    except metadata.PackageNotFoundError:
        return Tool("checkov", "fail", "checkov is not installed in dwctl's environment",
                    "pip install 'checkov>=3.2,<4' (it comes with `pip install dwctl`)")


def run_tools(terraform_bin: str | None, root: Path, environ: dict[str, str] | None = None,
              home: Path | None = None) -> list[Tool]:
    environ = dict(os.environ) if environ is None else environ
    home = Path.home() if home is None else home
    iac = root / "iac"
    return [check_terraform(terraform_bin, iac), check_provider(iac, environ, home, Path.cwd()), check_credentials(environ, home), check_checkov()]
