"""`dwctl check-grants` against Lake Formation's ListPermissions, answered by botocore's Stubber.

The Stubber stands in for the AWS API (the one external boundary): a real boto3 client builds and
validates every request against the service model, and nothing leaves the process.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.deploy import check_grants as lfgrants
from tests.conftest import EXAMPLE

IAM = {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    real = boto3.client("lakeformation", region_name="eu-west-1")
    with Stubber(real) as stub:
        yield real, stub
        stub.assert_no_pending_responses()


def expect(stub, resource: dict, permissions: list[str], token: str | None = None, next_token: str | None = None):
    params = {"Principal": IAM, "Resource": resource, **({"NextToken": token} if token else {})}
    entries = [{"Principal": IAM, "Resource": resource, "Permissions": permissions}] if permissions else []
    stub.add_response("list_permissions", {"PrincipalResourcePermissions": entries,
                                           **({"NextToken": next_token} if next_token else {})}, params)


def table(name: str) -> dict:
    return {"Table": {"DatabaseName": "shop_raw", "Name": name}}


def test_a_governed_catalog_passes(client, monkeypatch, example_spec):
    real, stub = client
    expect(stub, {"Database": {"Name": "shop_raw"}}, [])
    for t in example_spec.tables:
        expect(stub, table(t.name), [])
    monkeypatch.setattr(lfgrants, "client_for", lambda region: real if region == "eu-west-1" else None)
    result = CliRunner().invoke(cli, ["check-grants", "-c", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "ok: no IAM_ALLOWED_PRINCIPALS permission on shop_raw or its 4 tables" in result.output


def test_iam_allowed_principals_on_a_table_fails_naming_it(client, monkeypatch):
    real, stub = client
    expect(stub, {"Database": {"Name": "shop_raw"}}, [])
    expect(stub, table("customers"), [], next_token="page2")
    expect(stub, table("customers"), ["ALL"], token="page2")  # the second page holds it
    expect(stub, table("products"), [])
    expect(stub, table("orders"), ["SELECT", "DESCRIBE"])
    expect(stub, table("order_items"), [])
    monkeypatch.setattr(lfgrants, "client_for", lambda region: real)
    result = CliRunner().invoke(cli, ["check-grants", "-c", str(EXAMPLE)])
    assert result.exit_code == 1
    assert "fail: table shop_raw.customers: IAM_ALLOWED_PRINCIPALS has ALL" in result.output
    assert "fail: table shop_raw.orders: IAM_ALLOWED_PRINCIPALS has DESCRIBE, SELECT" in result.output
    assert "Revoke them" in result.output and "Traceback" not in result.output
