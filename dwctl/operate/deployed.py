"""What the day-two commands know of one deployed environment: its spec and its Terraform outputs.

The outputs come from `terraform output -json` run the way `dwctl output` runs it (the environment's
data dir and workspace; it must be initialised), or from a file holding that JSON (`--outputs`,
e.g. saved by `dwctl output --env prod --format json` on a machine that can read the state).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from dwctl.errors import NotReady, UsageError


@dataclass(frozen=True)
class Deployed:
    env: str
    spec: object  # dwctl.spec.model.Spec, the environment's (env_spec)
    outputs: dict

    def output(self, name: str):
        if self.outputs.get(name) is None:
            raise NotReady(f"the {self.env} stack has no output {name!r}: render with this dwctl and apply "
                           f"(`dwctl plan --env {self.env} --render`, then `dwctl apply --env {self.env}`).")
        return self.outputs[name]

    @property
    def region(self) -> str:
        return self.spec.region

    def threshold(self, key: str, default):
        """One of the alarm thresholds the stack was applied with (output alarm_thresholds)."""
        found = (self.outputs.get("alarm_thresholds") or {}).get(key)
        return default if found is None else found


def outputs_from_json(text: str, source: str) -> dict:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source}: not JSON ({exc}); give what `dwctl output --format json` prints") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) and "value" in v for v in doc.values()):
        raise UsageError(f"{source}: not `terraform output -json` output (name -> {{\"value\": ...}})")
    return {name: entry["value"] for name, entry in doc.items()}


def load(spec_path: Path, root: Path, env_name: str | None, terraform_bin: str | None,
         outputs_file: Path | None) -> Deployed:
    from dwctl.render.environments import env_spec, target
    from dwctl.spec.read import load_spec

    spec = load_spec(spec_path)
    env = target(spec, env_name)
    merged = env_spec(spec, env.name)
    if outputs_file is not None:
        try:
            text = Path(outputs_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{outputs_file}: cannot read it: {exc.strerror or exc}") from None
        return Deployed(env.name, merged, outputs_from_json(text, str(outputs_file)))
    return Deployed(env.name, merged, terraform_outputs(spec, root, env.name, terraform_bin))


def terraform_outputs(spec, root: Path, env_name: str, terraform_bin: str | None) -> dict:
    """`terraform output -json` of the environment, as `dwctl output --format json` runs it."""
    from dwctl.deploy import actions as deploy
    from dwctl.deploy import terraform

    stack = deploy.stack_for(spec, root, env_name)
    if not stack.iac.is_dir():
        raise NotReady(f"{stack.iac} does not exist: run `dwctl render` (and deploy) first.")
    binary = terraform.find(terraform_bin)
    terraform.require_stack_version(binary, stack.iac)
    tf = deploy.driver(stack, binary, color=False, stdout_to_stderr=True)
    return outputs_from_json(deploy.output(stack, tf, as_json=True), f"`terraform output -json` of {env_name}")


def options(f):
    """--env, --outputs, --terraform-bin, -c and -o: how a day-two command finds its environment."""
    from dwctl.cli_options import env_option, output_option, spec_option

    f = click.option("--outputs", "outputs_file", type=click.Path(path_type=Path, dir_okay=False),
                     help="The environment's outputs as `dwctl output --format json` prints them, instead of "
                          "reading them with Terraform.")(f)
    f = click.option("--terraform-bin", metavar="PATH",
                     help="Terraform/OpenTofu binary [default: $DWCTL_TERRAFORM, then terraform, then tofu on PATH].")(f)
    f = env_option("Environment whose deployed stack to read")(f)
    return spec_option(output_option(f))
