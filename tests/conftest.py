"""Shared fixtures: the bundled example spec, its rendering, and the real tools the tests use."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# No test may reach an address but loopback: botocore and Terraform's AWS provider must never ask the
# EC2 instance metadata service for credentials (tests that call AWS APIs stub them, and say so).
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

# Compiled templates and job code (dwctl/render/compiled.py) are cached for this test run only, never
# read from or left in the user's ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="dwctl-test-cache-")
os.environ["DWCTL_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)

# Throwaway PostgreSQL / MariaDB servers for the import and doctor tests (started on first use).
pytest_plugins = ["tests.support.dbservers"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "pipeline.yaml"
# The hashicorp/aws schema subset the tests use (tests/data/make_aws_provider_schema.py says where it came from).
PROVIDER_SCHEMA = ROOT / "tests" / "data" / "aws-provider-schema.json"

# A table to add to the example in add-a-table tests.
NEW_TABLE = """
  - schema: public
    name: shipments
    columns:
      - {name: shipment_id, type: bigint, nullable: false}
      - {name: order_id, type: bigint, nullable: false}
      - {name: carrier, type: varchar(40)}
      - {name: shipped_at, type: timestamptz}
    primary_key: [shipment_id]
"""


@pytest.fixture(scope="session")
def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def example_spec():
    from dwctl.spec.read import load_spec

    return load_spec(EXAMPLE)


@pytest.fixture(scope="session")
def rendered(example_spec) -> dict[str, str]:
    from dwctl.render.engine import render

    return render(example_spec, "config/pipeline.yaml")


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    found = shutil.which("terraform")
    assert found, "terraform not on PATH: install Terraform >= 1.5 (the stack needs it; 1.11 is tested)"
    return found


@pytest.fixture(scope="session")
def provider_schema_path() -> Path:
    assert PROVIDER_SCHEMA.is_file(), f"{PROVIDER_SCHEMA} missing: run tests/data/make_aws_provider_schema.py"
    return PROVIDER_SCHEMA
