"""A small valid spec around a given `tables:` block, for the database tests (either engine)."""

from __future__ import annotations

from pathlib import Path

TEMPLATE = """\
# A test spec: everything but the tables is fixed.
project: shop
environment: test
region: eu-west-1

network:
  vpc_id: vpc-0a1b2c3d4e5f60718
  subnet_ids: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002, subnet-0a1b2c3d4e5f60003]
  source_security_group_id: sg-0a1b2c3d4e5f60099

source:
  engine: {engine}
  host: db.example.com
  database: {database}
  secret_arn: arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/dms-AbCdEf
  certificate_arn: arn:aws:dms:eu-west-1:123456789012:cert:rds-ca-rsa2048-g1

catalog:
  database: shop_raw

warehouse:
  namespace: shop-test
  workgroup: shop-test

tables:{tables}
governance:
  admins:
    - arn:aws:iam::123456789012:role/DataPlatformAdmin
"""


def spec_text(engine: str, database: str, tables: str = "") -> str:
    """`tables` is YAML list items indented by two spaces; empty gives `tables: []`."""
    block = "\n" + tables.strip("\n") + "\n\n" if tables.strip() else " []\n\n"
    return TEMPLATE.format(engine=engine, database=database, tables=block)


def write_spec(directory: Path, engine: str, database: str, tables: str = "") -> Path:
    path = directory / "pipeline.yaml"
    path.write_text(spec_text(engine, database, tables), encoding="utf-8")
    return path
