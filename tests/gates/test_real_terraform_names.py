"""A stack with real source names under the real Terraform and hashicorp/aws provider (offline).

Mixed-case and spaced source names, two schemas' tables of one name, a partitioned table, an
excluded column and a column grant: `terraform validate` takes the table mapping, and `dwctl test`
plans it (mock provider: the AWS API is the one external boundary) with the guards that every
spec table's source is selected and that no two rules share a rule-id.
"""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from dwctl.cli import cli
from tests.spec.test_source_names import GRANT
from tests.support.dms_files import spec_text_with_tables
from tests.support.realtf import init, real_provider_env, terraform  # noqa: F401  (the fixture)

TABLES = """
  - schema: "Sales Data"
    source_name: OrderItems
    columns:
      - {source_name: ItemId, type: integer, nullable: false}
      - {source_name: "Unit Price", type: "numeric(10,2)"}
      - {source_name: 2ndNote, type: text}
      - {name: secret, type: "varchar(10)", exclude: true}
    primary_key: [item_id]
  - schema: Archive
    source_name: OrderItems
    name: archive_order_items
    columns:
      - {source_name: ItemId, type: integer, nullable: false}
    primary_key: [item_id]
  - schema: "Sales Data"
    name: payment
    partitions: [payment_p2022_01, payment_p2022_02]
    columns:
      - {name: payment_id, type: integer, nullable: false}
    primary_key: [payment_id]
"""


def test_real_names_validate_and_plan_with_the_real_provider(request, tmp_path, monkeypatch):
    env = request.getfixturevalue("real_provider_env")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(spec_text_with_tables(TABLES) + GRANT, encoding="utf-8")
    out = tmp_path / "out"
    runner = CliRunner()
    rendered = runner.invoke(cli, ["render", "-c", str(spec), "-o", str(out)], catch_exceptions=False)
    assert rendered.exit_code == 0, rendered.output
    init(env, out / "iac")
    done = terraform(env, out / "iac", "validate", "-json", check=False)
    result = json.loads(done.stdout)
    assert result["valid"], result["diagnostics"]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the mocks need no credentials at all
        monkeypatch.delenv(key)
    tested = runner.invoke(cli, ["test", "-c", str(spec), "-o", str(out)], catch_exceptions=False)
    assert tested.exit_code == 0, tested.output
    runs = dict(re.findall(r'run "([a-z0-9_]+)"\.\.\. (pass|fail|skip)', tested.output))
    assert runs and set(runs.values()) == {"pass"}, tested.output
