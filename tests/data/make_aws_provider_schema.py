"""Write tests/data/aws-provider-schema.json: the part of the hashicorp/aws schema the tests use.

Source: the structural schema of hashicorp/aws 6.25.0 in the format of `terraform providers schema
-json` (derived from the cdktf bindings cdktf-cdktf-provider-aws 21.22.1; see that file's README),
kept outside the repository at ../shared/aws-provider-schema/schema.json. The tests read only the
copy, so a fresh clone needs nothing beside it. Kept: the provider block, every resource and data
source type the templates use, and the few more the provider-schema tests name in their fixtures.

Run after a template starts using a new type:
    python tests/data/make_aws_provider_schema.py [path/to/schema.json]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT.parent / "shared" / "aws-provider-schema" / "schema.json"
TARGET = Path(__file__).with_name("aws-provider-schema.json")
PROVIDER = "registry.terraform.io/hashicorp/aws"
# Types in the fixtures of tests/test_provider_schema.py and tests/test_validate.py.
FIXTURE_RESOURCES = {"aws_iam_policy", "aws_kms_key", "aws_s3_bucket", "aws_s3_bucket_lifecycle_configuration",
                     "aws_s3_bucket_versioning", "aws_security_group", "aws_wafv2_rule_group"}
FIXTURE_DATA = {"aws_caller_identity", "aws_iam_policy_document", "aws_kms_key", "aws_partition"}


def used_types() -> tuple[set[str], set[str]]:
    """(resource types, data source types) declared anywhere in templates/iac."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "templates" / "iac").glob("*.tf.j2")))
    blocks = re.findall(r'^\s*(resource|data)\s+"(aws_[a-z0-9_]+)"', text, re.M)
    return ({t for kind, t in blocks if kind == "resource"} | FIXTURE_RESOURCES,
            {t for kind, t in blocks if kind == "data"} | FIXTURE_DATA)


def subset(schema: dict) -> dict:
    body = schema["provider_schemas"][PROVIDER]
    resources, data_sources = used_types()
    missing = sorted((resources - set(body["resource_schemas"])) | (data_sources - set(body["data_source_schemas"])))
    if missing:
        raise SystemExit(f"not in the source schema: {', '.join(missing)}")
    return {"format_version": schema["format_version"], "provider_schemas": {PROVIDER: {
        "provider": body["provider"],
        "resource_schemas": {t: body["resource_schemas"][t] for t in sorted(resources)},
        "data_source_schemas": {t: body["data_source_schemas"][t] for t in sorted(data_sources)},
    }}}


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    out = subset(json.loads(source.read_text(encoding="utf-8")))
    TARGET.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{TARGET.relative_to(ROOT)}: {len(out['provider_schemas'][PROVIDER]['resource_schemas'])} resources, "
          f"{len(out['provider_schemas'][PROVIDER]['data_source_schemas'])} data sources from {source}")


if __name__ == "__main__":
    main()
