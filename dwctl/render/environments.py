"""Per-environment Terraform inputs, so one rendered iac/ serves every environment of a spec.

Each environment gets a tfvars file (the spec's values with that environment's overrides, built by
`dwctl.tfvars.values` so the variable mapping lives in one place) and a partial S3 backend config.
`dwctl init/plan/apply --env NAME` picks them and the Terraform workspace of the same name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dwctl import __version__
from dwctl.errors import SpecError, UsageError
from dwctl.render import tfvars
from dwctl.render.text import hcl_string, header
from dwctl.spec.model import Backend, Spec

ENV_DIR = "env"  # under iac/


@dataclass(frozen=True)
class EnvTarget:
    """What Terraform needs to act on one environment; paths are relative to iac/."""

    name: str
    workspace: str
    var_file: str | None  # None: only the auto-loaded terraform.tfvars.json
    backend_file: str | None  # None: local state
    backend: Backend | None


def names(spec: Spec) -> list[str]:
    """Every environment `--env` accepts: the spec's own `environment` plus the declared ones."""
    return sorted({spec.environment, *spec.environments})


def env_spec(spec: Spec, name: str) -> Spec:
    """The spec as seen by one environment: overrides merged in and validated again as a whole."""
    override = spec.environments.get(name)
    if name == spec.environment and override is None:
        return spec
    data = spec.model_dump(by_alias=True)
    data["environment"] = name
    if override is not None:
        _merge(data, override.model_dump(exclude_none=True, exclude={"account_id", "backend", "network"}))
        if override.network is not None:  # a network is replaced whole, never mixed with the spec's
            data["network"] = override.network.model_dump()
    try:
        return Spec.model_validate(data)
    except ValueError as exc:
        raise SpecError([f"environments.{name}: the spec with this environment's overrides is invalid: {exc}"]) from None


def _merge(into: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def values(spec: Spec, name: str) -> dict:
    """Terraform variable values for one environment."""
    out = tfvars.values(env_spec(spec, name))
    override = spec.environments.get(name)
    if override is not None and override.account_id:
        out["account_id"] = override.account_id  # templates pin the provider to it (allowed_account_ids)
    return out


def backend_for(spec: Spec, name: str) -> Backend | None:
    override = spec.environments.get(name)
    return (override.backend if override is not None and override.backend else None) or spec.backend


def backend_text(spec: Spec, name: str, backend: Backend) -> str:
    """A partial `backend "s3"` configuration as HCL `key = value` lines."""
    region = backend.region or env_spec(spec, name).region
    pairs: list[tuple[str, str]] = [
        ("bucket", hcl_string(backend.bucket)),
        ("key", hcl_string(f"{backend.key_prefix or spec.project}/terraform.tfstate")),
        ("region", hcl_string(region)),
        ("encrypt", "true"),
    ]
    if backend.kms_key_id:
        pairs.append(("kms_key_id", hcl_string(backend.kms_key_id)))
    if backend.dynamodb_table:
        pairs.append(("dynamodb_table", hcl_string(backend.dynamodb_table)))
    if backend.use_lockfile:
        pairs.append(("use_lockfile", "true"))
    width = max(len(k) for k, _ in pairs)
    return "".join(f"{k.ljust(width)} = {v}\n" for k, v in pairs)


def check(spec: Spec) -> None:
    """Environments must not collide on globally unique names or on one account and region."""
    problems = []
    buckets: dict[str, str] = {}
    placed: dict[tuple[str, str], str] = {}
    for name in names(spec):
        merged = env_spec(spec, name)
        bucket = merged.landing.bucket
        if bucket is not None:
            if bucket in buckets:
                problems.append(f"environments.{name}.landing.bucket: {bucket!r} is also the landing bucket of "
                                f"{buckets[bucket]!r}; bucket names are global, give each environment its own")
            buckets[bucket] = name
        override = spec.environments.get(name)
        if override is not None and override.backend is not None and spec.backend is None:
            problems.append(f"environments.{name}.backend: set the spec's own `backend` too; the rendered "
                            "Terraform declares its S3 backend only when the spec has one")
        if override is not None and override.account_id:
            where = (override.account_id, merged.region)
            if where in placed:
                problems.append(f"environments.{name}: shares account {where[0]} and region {where[1]} with "
                                f"{placed[where]!r}; their Glue database and warehouse names would collide")
            placed[where] = name
    if problems:
        raise SpecError(problems)


def _account(arn: str) -> str:
    return arn.split(":")[4]


def warnings(spec: Spec) -> list[str]:
    """An environment in another account that still names the spec's account: legal, rarely meant."""
    out = []
    for name, override in sorted(spec.environments.items()):
        if not override.account_id:
            continue
        merged, here = env_spec(spec, name), override.account_id
        named = [("source.secret_arn", merged.source.secret_arn, "DMS reads a secret of another account only "
                  "through its resource policy and key policy"),
                 ("source.certificate_arn", merged.source.certificate_arn, "a DMS certificate is not shared "
                  "across accounts: import the CA bundle in this one")]
        named += [(f"governance.admins[{i}]", arn, "Lake Formation admins are principals of the account")
                  for i, arn in enumerate(merged.governance.admins)]
        named += [(f"governance.grants[{i}].principal", g.principal, "a cross-account grant needs the other "
                   "account to accept it") for i, g in enumerate(merged.governance.grants)]
        for field, arn, why in named:
            if arn is not None and _account(arn) != here:
                out.append(f"environments.{name}: runs in account {here} but {field} is in account "
                           f"{_account(arn)}: {why}; override it for this environment if that is not intended")
    return out


def files(spec: Spec, spec_name: str) -> dict[str, str]:
    """Extra rendered files: iac/env/<name>.tfvars.json (when environments are declared) and
    iac/env/<name>.s3.tfbackend (when a backend is set)."""
    check(spec)
    out: dict[str, str] = {}
    for name in names(spec):
        if spec.environments:
            note = f"Generated by dwctl {__version__} from {spec_name} for environment {name}. Do not edit."
            out[f"iac/{ENV_DIR}/{name}.tfvars.json"] = json.dumps(
                {"//": note, **values(spec, name)}, indent=2, ensure_ascii=False) + "\n"
        backend = backend_for(spec, name)
        if backend is not None:
            out[f"iac/{ENV_DIR}/{name}.s3.tfbackend"] = header(spec_name, "#") + backend_text(spec, name, backend)
    return out


def target(spec: Spec, name: str | None) -> EnvTarget:
    """Resolve `--env` (default: the spec's `environment`) to the files and workspace it uses."""
    name = name or spec.environment
    if name not in names(spec):
        raise UsageError(f"unknown environment {name!r}: the spec declares {', '.join(names(spec))} "
                         "(add it under `environments:` in the spec)")
    backend = backend_for(spec, name)
    return EnvTarget(
        name=name,
        workspace=name,
        var_file=f"{ENV_DIR}/{name}.tfvars.json" if spec.environments else None,
        backend_file=f"{ENV_DIR}/{name}.s3.tfbackend" if backend is not None else None,
        backend=backend,
    )
