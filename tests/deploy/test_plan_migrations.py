"""`dwctl plan` says which warehouse migrations a spec change implies, with the very lines `dwctl render` prints.

The rendered example stack, the real Terraform and the real hashicorp/aws provider (offline mirror),
through the CLI. What the last apply uploaded is Terraform's state: the state here holds the
aws_s3_object.loader_columns object as an apply of the first spec would have left it. The plan is
`-refresh=false -target=aws_s3_object.loader_columns`, with an override file that configures the
provider offline and gives the account id (data.aws_caller_identity would ask STS): the one
boundary faked is AWS, and nothing leaves the loopback.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.render import job_config
from tests.conftest import EXAMPLE
from tests.deploy.test_rendered_stack import OFFLINE_PROVIDER, offline  # noqa: F401  (fixture)
from tests.support.realtf import real_provider_env  # noqa: F401  (fixture)

# The provider configured offline (as in test_rendered_stack), and the account id given: data.aws_caller_identity
# would ask STS for it.
OFFLINE = OFFLINE_PROVIDER + '''
locals {
  account_id = "123456789012"
}
'''
TARGET = "aws_s3_object.loader_columns"


def dwctl(root: Path, *args: str):
    return CliRunner().invoke(cli, [args[0], "-c", str(root / "spec.yaml"), "-o", str(root), *args[1:]])


def applied(root: Path, columns: str) -> None:
    """The prod workspace's state as an apply of `columns` would have left the object."""
    bucket = "shop-prod-landing-123456789012"
    attributes = {"id": "_dwctl/glue_scripts/warehouse_columns.json", "bucket": bucket,
                  "key": "_dwctl/glue_scripts/warehouse_columns.json", "content": columns,
                  "content_type": "application/json", "server_side_encryption": "aws:kms"}
    state = {"version": 4, "terraform_version": "1.5.0", "serial": 1, "lineage": "dwctl-test-migrations",
             "outputs": {}, "resources": [{"mode": "managed", "type": "aws_s3_object", "name": "loader_columns",
                                           "provider": 'provider["registry.terraform.io/hashicorp/aws"]',
                                           "instances": [{"schema_version": 0, "attributes": attributes}]}]}
    path = root / "iac" / "terraform.tfstate.d" / "prod" / "terraform.tfstate"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state), encoding="utf-8")


def said(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith(("migration ", "warning: migration",
                                                                                     "warning: grant:"))]


def test_plan_prints_the_migrations_render_prints(offline, tmp_path):  # noqa: F811
    root = tmp_path / "proj"
    root.mkdir()
    text = EXAMPLE.read_text(encoding="utf-8").replace("exclude: [email, full_name, phone]", "exclude: [email, full_name]")
    (root / "spec.yaml").write_text(text, encoding="utf-8")
    assert dwctl(root, "render").exit_code == 0
    before = (root / job_config.COLUMNS_PATH).read_text(encoding="utf-8")
    changed = (text.replace("      - {name: phone, type: varchar(32)}\n", "      - {name: nickname, type: varchar(40)}\n", 1)
               .replace("{name: full_name, type: varchar(200)}", "{name: full_name, type: varchar(300)}", 1)
               .replace("{name: country_code, type: char(2)}", "{name: country_code, type: char(1)}", 1)
               .replace("{name: quantity, type: integer, nullable: false}", "{name: quantity, type: bigint, nullable: false}")
               # the round trip: orders' sort key column placed_at is dropped at the source (import drops the key too)
               .replace("      - {name: placed_at, type: timestamptz, nullable: false}\n", "", 1)
               .replace("    dist_key: customer_id\n    sort_keys: [placed_at]\n", "    dist_key: customer_id\n", 1)
               .replace("{name: marketing_opt_in, type: boolean, nullable: false}",
                        "{name: opt_in, type: boolean, nullable: false, renamed_from: marketing_opt_in}", 1))
    (root / "spec.yaml").write_text(changed, encoding="utf-8")
    rendered = dwctl(root, "render")
    assert rendered.exit_code == 0, rendered.output
    expected = said(rendered.output)
    assert any("column nickname added" in line for line in expected)
    assert any(line.startswith("warning: ") and "country_code stays" in line for line in expected)
    assert any("quantity widened from INTEGER to BIGINT" in line for line in expected)
    assert any("analytics.orders: sort key (placed_at) -> AUTO, before column placed_at is dropped" in line
               for line in expected), expected
    assert "migration customers: analytics.customers: column marketing_opt_in renamed to opt_in (RENAME COLUMN: " \
           "its values carry over)" in expected  # a rename, not a drop and an add (issue 22, item 3)
    assert not any("marketing_opt_in is no longer in the spec" in line for line in expected)

    (root / "iac" / "zz_offline_override.tf").write_text(OFFLINE, encoding="utf-8")
    init = dwctl(root, "init")
    assert init.exit_code == 0, init.output
    applied(root, before)
    plan = dwctl(root, "plan", "--", "-refresh=false", f"-target={TARGET}")
    assert plan.exit_code == 2, plan.output
    assert "Warehouse migrations the load job makes on its next run after this apply:" in plan.output
    assert said(plan.output) == expected, plan.output  # the same lines, in the same order
    machine = dwctl(root, "plan", "--format", "json", "--", "-refresh=false", f"-target={TARGET}")
    assert json.loads(machine.stdout)["migrations"] == expected

    applied(root, (root / job_config.COLUMNS_PATH).read_text(encoding="utf-8"))  # applied: nothing left to say
    again = dwctl(root, "plan", "--", "-refresh=false", f"-target={TARGET}")
    assert again.exit_code in (0, 2), again.output
    assert said(again.output) == [] and "Warehouse migrations" not in again.output
