"""`dwctl check-grants`: after apply, prove the spec's Lake Formation grants are what governs.

While IAM_ALLOWED_PRINCIPALS holds a permission on the catalog database or one of its tables,
any IAM principal whose policy allows Glue reads every column and the spec's column grants hide
nothing (https://docs.aws.amazon.com/lake-formation/latest/dg/change-settings.html). The stack's
check blocks see the account defaults; this asks Lake Formation about the objects themselves.
"""

from __future__ import annotations

from pathlib import Path

import click

from dwctl.cli_options import spec_option

IAM_ALLOWED = "IAM_ALLOWED_PRINCIPALS"


def client_for(region: str):
    """The Lake Formation client (the one AWS boundary of this command)."""
    import boto3

    return boto3.client("lakeformation", region_name=region)


def _permissions(client, resource: dict) -> set[str]:
    found: set[str] = set()
    kwargs = {"Principal": {"DataLakePrincipalIdentifier": IAM_ALLOWED}, "Resource": resource}
    while True:
        page = client.list_permissions(**kwargs)
        for entry in page.get("PrincipalResourcePermissions", []):
            if entry.get("Principal", {}).get("DataLakePrincipalIdentifier") == IAM_ALLOWED:
                found.update(entry.get("Permissions", []))
        if not page.get("NextToken"):
            return found
        kwargs["NextToken"] = page["NextToken"]


def iam_allowed_grants(client, database: str, tables: list[str]) -> list[str]:
    """One line per object on which IAM_ALLOWED_PRINCIPALS still holds a permission."""
    objects = [(f"database {database}", {"Database": {"Name": database}})]
    objects += [(f"table {database}.{t}", {"Table": {"DatabaseName": database, "Name": t}}) for t in tables]
    return [f"{label}: {IAM_ALLOWED} has {', '.join(sorted(perms))}"
            for label, resource in objects if (perms := _permissions(client, resource))]


REVOKE = (f"Revoke them (`aws lakeformation revoke-permissions --principal DataLakePrincipalIdentifier={IAM_ALLOWED} "
          "...`) and remove the IAMAllowedPrincipals defaults; until then IAM policies, not the spec's grants, decide "
          "who reads the catalog.")


def findings(merged, client=None) -> list[str]:
    """check-grants for one environment's spec: a line per catalog object IAM_ALLOWED_PRINCIPALS still holds."""
    return iam_allowed_grants(client or client_for(merged.region), merged.catalog.database, [t.name for t in merged.tables])


@click.command("check-grants")
@spec_option
@click.option("--env", "env_name", metavar="NAME", help="Environment (its region) [default: the spec's].")
def check_grants_command(spec_path: Path, env_name: str | None) -> None:
    """After apply: fail when IAM_ALLOWED_PRINCIPALS still has permissions on the catalog (grants would not govern)."""
    import sys

    from dwctl.errors import UsageError
    from dwctl.render.environments import env_spec, names
    from dwctl.spec.read import load_spec

    spec = load_spec(spec_path)
    name = env_name or spec.environment
    if name not in names(spec):
        raise UsageError(f"unknown environment {name!r}: the spec declares {', '.join(names(spec))} "
                         "(add it under `environments:` in the spec)")
    merged = env_spec(spec, name)
    found = findings(merged)
    for line in found:
        click.echo(f"fail: {line}")
    if found:
        click.echo(REVOKE)
        sys.exit(1)
    click.echo(f"ok: no {IAM_ALLOWED} permission on {merged.catalog.database} or its {len(merged.tables)} tables")
