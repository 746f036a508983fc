"""The spec: every validation path gives `file:line:col: field: problem`, and good specs load with safe defaults."""

from __future__ import annotations

import re

import pytest

from dwctl.errors import SpecError
from dwctl.spec.model import json_schema
from dwctl.spec.read import parse_spec

NAME = "config/pipeline.yaml"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, NAME)
    return info.value.problems


def edit(text: str, old: str, new: str) -> str:
    assert old in text, f"fixture drift: {old!r} not in the example"
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_example_loads_with_safe_defaults(example_spec):
    assert [t.name for t in example_spec.tables] == ["customers", "products", "orders", "order_items"]
    assert example_spec.table("order_items").primary_key == ["order_id", "line_no"]
    assert example_spec.source.ssl_mode == "verify-full"
    assert example_spec.warehouse.publicly_accessible is False
    assert example_spec.dms.create_account_roles is False
    assert example_spec.source.effective_port == 5432


@pytest.mark.parametrize(
    "old, new, field, fragment",
    [
        ("  port: 5432", "  port: 5432\n  password: hunter2", "source.password", "unknown key"),
        ("name: orders", 'name: orders"; drop table x; --', "tables[2].name", "should match pattern"),
        ("name: customer_id, type: bigint", 'name: "a}${file(\\"/etc/passwd\\")}", type: bigint',
         "tables[0].columns[0].name", "should match pattern"),
        ("  port: 5432", "  port: lots", "source.port", "valid integer"),
        ("  engine: postgres", "  engine: oracle", "source.engine", "'postgres'"),
        ("base_capacity: 8", "base_capacity: 12", "warehouse.base_capacity", "multiple of 8"),
        ("  workgroup: shop-prod", "  workgroup: shop--prod", "warehouse.workgroup", "pattern"),
        ("  workgroup: shop-prod", "  workgroup: wg", "warehouse.workgroup", "at least 3 characters"),
        ("  allocated_storage: 50", "  allocated_storage: 50\n  log_retention_days: 100", "dms.log_retention_days",
         "365"),
        ("vpc_id: vpc-0a1b2c3d4e5f60718", "vpc_id: vpc-XYZ", "network.vpc_id", "pattern"),
        ("  - arn:aws:iam::123456789012:role/DataPlatformAdmin", "  - arn:aws:iam::123:role/x",
         "governance.admins[0]", "pattern"),
        ("tables: all", "tables: everything", "governance.grants[2].tables", "'all'"),
        ("    - subnet-0a1b2c3d4e5f60002\n    - subnet-0a1b2c3d4e5f60003\n", "", "network.subnet_ids", "at least 3"),
    ],
)
def test_field_errors_are_located(example_text, old, new, field, fragment):
    text = edit(example_text, old, new)
    found = problems(text)
    line = [p for p in found if f": {field}:" in p]
    assert line, found
    assert re.match(rf"^{re.escape(NAME)}:\d+:\d+: ", line[0])
    assert fragment in line[0]


def test_unknown_key_points_at_the_key_line(example_text):
    text = edit(example_text, "  ssl_mode: verify-full", "  ssl_mode: verify-full\n  sslmode: require")
    [problem] = problems(text)
    assert problem.startswith(f"{NAME}:{line_of(text, 'sslmode:')}:3: source.sslmode: unknown key")


def test_plaintext_password_field_does_not_exist():
    fields = json_schema()["$defs"]["Source"]["properties"]
    assert "secret_arn" in fields and not [f for f in fields if "pass" in f]


@pytest.mark.parametrize(
    "old, new, field, message",
    [
        ("exclude: [email, full_name, phone]", "exclude: [email, fullname, phone]",
         "governance.grants[0].columns.exclude[1]", "table 'customers' has no column 'fullname'"),
        ("tables: [customers]\n", "tables: [clients]\n", "governance.grants[0].tables[0]", "no table named 'clients'"),
        ("primary_key: [order_id, line_no]", "primary_key: [order_id, line]",
         "tables[3].primary_key[1]", "'line' is not a column"),
        ("dist_key: order_id\n    sort_keys: [order_id, line_no]", "dist_key: sku\n    sort_keys: [order_id, line_no]",
         "tables[3].dist_key", "'sku' is not a column"),
        ("sort_keys: [placed_at]", "sort_keys: [placed]", "tables[2].sort_keys[0]", "'placed' is not a column"),
        ("{name: product_id, type: bigint, nullable: false}\n      - {name: sku",
         "{name: product_id, type: bigint}\n      - {name: sku", "tables[1].primary_key[0]", "must not be nullable"),
        ("{name: discount, type: \"numeric(12,2)\"}", "{name: discount, type: \"numeric(12,2)\"}\n"
         "      - {name: quantity, type: integer}", "tables[3].columns[6].name", "duplicate column 'quantity'"),
        ("type: jsonb", "type: jsonbb", "tables[1].columns[5].type", "not a known postgres type"),
        ("type: jsonb", "type: \"integer[]\"", None, None),
        ("  - schema: public\n    name: order_items", "  - schema: public\n    name: orders", "tables[3].name",
         "duplicate table 'orders'"),
        ("      permissions: [SELECT]\n      columns:", "      permissions: [SELECT, ALTER]\n      columns:",
         "governance.grants[0]", "column-level grants allow SELECT only"),
        ("      exclude: [email, full_name, phone]", "      exclude: [email]\n        include: [customer_id]",
         "governance.grants[0].columns", "exactly one of include or exclude"),
        ("  source_security_group_id: sg-0a1b2c3d4e5f60099\n", "", "network", "so DMS can reach the source"),
        ("transition_to_ia_days: 30", "transition_to_ia_days: 200", "landing.lifecycle.transition_to_glacier_days",
         "at least 30 days after transition_to_ia_days"),
        ("tables: all\n", "tables: all\n      database: other_db\n", "governance.grants[2].database",
         "not the catalog database"),
        ("name: order_items", "name: _dwctl_load_log", "tables[3].name", "reserved for dwctl's own"),
        ("tables: [products, orders, order_items]", "tables: [products, orders, customers]",
         "governance.grants[1].tables[2]", "already has a grant on 'customers' (grants[0])"),
        ("  certificate_arn: arn:aws:dms:eu-west-1:123456789012:cert:rds-ca-rsa2048-g1", "",
         "source.certificate_arn", "ssl_mode verify-full checks the server against a CA"),
        ("  certificate_arn: arn:aws:dms:eu-west-1:123456789012:cert:rds-ca-rsa2048-g1", "  ssl_mode: require",
         "source.ssl_mode", "duplicate key"),
        ("project: shop\nenvironment: prod\n", "project: a-very-long-project-name-for-x-y\nenvironment: preproductionabc\n",
         "environment", "S3 access-log bucket"),
    ],
)
def test_cross_references(example_text, old, new, field, message):
    text = edit(example_text, old, new)
    if field is None:  # a valid variation
        parse_spec(text, NAME)
        return
    found = problems(text)
    assert any(f": {field}: " in p and message in p for p in found), found


def test_scan_skip_needs_a_reason(example_text):
    text = example_text + "scan:\n  skip:\n    - id: CKV_AWS_144\n"
    [problem] = problems(text)
    assert "scan.skip[0].reason: Field required" in problem
    assert problem.startswith(f"{NAME}:{line_of(text, '- id: CKV_AWS_144')}:")


def test_duplicate_yaml_key(example_text):
    text = edit(example_text, "project: shop\n", "project: shop\nproject: shop2\n")
    [problem] = problems(text)
    assert problem == f"{NAME}:{line_of(text, 'project: shop2')}:1: project: duplicate key"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("project: [unclosed\n", f"{NAME}:2:1: malformed YAML"),
        ("", f"{NAME}:1:1: the spec is empty"),
        ("- a\n- b\n", f"{NAME}:1:1: the spec must be a mapping"),
        ("project: shop\n", f"{NAME}:1:1: (top level): Field required"),
        ("project: shop\n\tbad: tab\n", f"{NAME}:2:1: malformed YAML"),
    ],
)
def test_malformed_documents(text, expected):
    found = problems(text)
    assert found[0].startswith(expected.split(": (top level)")[0]), found
    if "(top level)" in expected:
        assert any("network: Field required" in p for p in found), found


def test_missing_required_key_points_at_parent(example_text):
    text = edit(example_text, "  database: shop\n  # username", "  # username")
    [problem] = problems(text)
    assert problem.startswith(f"{NAME}:{line_of(text, '  engine: postgres')}:3: source.database: Field required")


def test_json_schema_forbids_unknown_keys():
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert {"project", "source", "tables", "governance"} <= set(schema["required"])
    assert schema["$defs"]["Table"]["properties"]["schema"]["default"] == "public"


# --- issue 21, item 4: SUPER is never a key --------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, field, needle",
    [
        ("    primary_key: [product_id]\n    sort_keys: [product_id]",
         "    primary_key: [product_id]\n    sort_keys: [product_id, attributes]",
         "tables[1].sort_keys[1]", "sort_keys: [product_id, attributes]"),
        ("    primary_key: [product_id]\n    sort_keys: [product_id]",
         "    primary_key: [product_id]\n    dist_key: attributes\n    sort_keys: [product_id]",
         "tables[1].dist_key", "dist_key: attributes"),
        ("{name: category, type: varchar(100)}", "{name: category, type: varchar(100), redshift_type: SUPER}\n"
         "      - {name: attributes_copy, type: text}", None, None),
    ],
)
def test_a_super_column_is_no_distribution_or_sort_key(example_text, old, new, field, needle):
    """limitations-super: "You can't define SUPER columns as either a distribution or sort key"; a json or
    jsonb column (or one with redshift_type SUPER) named as one is an error at the key's line."""
    text = edit(example_text, old, new)
    if field is None:  # a SUPER column that is no key is fine; one made SUPER by redshift_type is checked too
        parse_spec(text, NAME)
        text = edit(text, "sort_keys: [product_id]", "sort_keys: [category]")
        field, needle = "tables[1].sort_keys[0]", "sort_keys: [category]"
    [problem] = problems(text)
    assert problem.startswith(f"{NAME}:{line_of(text, needle)}:"), problem
    assert f": {field}: " in problem and "SUPER" in problem and "limitations-super" in problem


@pytest.mark.parametrize("renamed_from, fragment", [
    ("phone", "'phone' is still a column of this table"),
    ("country_code", "'country_code' is the column's own name"),
    ("valid_from", "a column dwctl adds to the warehouse tables"),  # customers keeps history
    ("dwctl_version", "a column dwctl adds"),
    ("Op", "should match pattern"),
    ('"x; drop table y"', "should match pattern"),
])
def test_renamed_from_names_a_column_the_table_no_longer_has(example_text, renamed_from, fragment):
    """renamed_from (issue 22, item 3) reaches SQL as a column name: an identifier, naming a gone column."""
    text = edit(example_text, "{name: country_code, type: char(2)}",
                f"{{name: country_code, type: char(2), renamed_from: {renamed_from}}}")
    found = problems(text)
    line = [p for p in found if ": tables[0].columns[4].renamed_from:" in p]
    assert line and fragment in line[0], found
    assert line[0].startswith(f"{NAME}:{line_of(text, 'renamed_from')}:")


def test_two_columns_are_not_renamed_from_one(example_text):
    text = edit(edit(example_text, "{name: country_code, type: char(2)}", "{name: country, type: char(2), renamed_from: cc}"),
                "{name: phone, type: varchar(32)}", "{name: phone, type: varchar(32), renamed_from: cc}")
    [problem] = problems(text)
    assert "tables[0].columns[4].renamed_from: columns[3] is renamed from 'cc' too" in problem


def test_a_renamed_column_loads(example_text):
    text = edit(example_text, "{name: country_code, type: char(2)}", "{name: country, type: char(2), renamed_from: country_code}")
    assert parse_spec(text, NAME).table("customers").columns[4].renamed_from == "country_code"
