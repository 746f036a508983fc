"""Tests for dwctl.gates.provider_schema against the real hashicorp/aws 6.25.0 schema."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dwctl.gates.provider_schema import (
    Problem,
    ProviderSchemas,
    load_schema,
    validate_files,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "aws-provider-schema.json"  # subset of 6.25.0


@pytest.fixture(scope="module")
def schema() -> ProviderSchemas:
    if not SCHEMA_PATH.is_file():
        pytest.fail(f"AWS provider schema missing at {SCHEMA_PATH}: run tests/data/make_aws_provider_schema.py")
    return load_schema(SCHEMA_PATH)


def run(schema, hcl: str, file: str = "iac/main.tf", extra: dict[str, str] | None = None) -> list[Problem]:
    files = {file: textwrap.dedent(hcl).lstrip("\n")}
    files.update({k: textwrap.dedent(v).lstrip("\n") for k, v in (extra or {}).items()})
    return validate_files(files, schema)


def messages(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems]


VALID = """
    provider "aws" {
      region = var.region
      default_tags {
        tags = { Project = "dw", Owner = local.owner }
      }
    }

    variable "region" {
      type = string
    }

    locals {
      owner = "data-team"
    }

    data "aws_partition" "current" {}

    resource "aws_kms_key" "k" {
      description         = "landing key"
      enable_key_rotation = true
    }

    resource "aws_s3_bucket" "landing" {
      bucket = "dw-landing-${var.region}"
      tags   = { Name = "landing.bucket" }
    }

    resource "aws_s3_bucket_versioning" "landing" {
      bucket = aws_s3_bucket.landing.id
      versioning_configuration {
        status = "Enabled"
      }
    }

    resource "aws_iam_policy" "read" {
      name = "read-landing"
      policy = jsonencode({
        Version = "2012-10-17"
        Statement = [{
          Effect   = "Allow"
          Action   = ["s3:GetObject", "kms:Decrypt"]
          Resource = ["${aws_s3_bucket.landing.arn}/*", aws_kms_key.k.arn,
                      "arn:${data.aws_partition.current.partition}:s3:::x"]
        }]
      })
      description = <<-EOT
        Reads aws_s3_bucket.other.arn objects (text only), key ${aws_kms_key.k.key_id}
      EOT
    }

    output "bucket_arn" {
      value = aws_s3_bucket.landing.arn
    }
"""


# --------------------------------------------------------------------------- schema loading

def test_load_schema_indexes_aws_types(schema):
    aws = schema.providers["aws"]
    assert aws.source == "registry.terraform.io/hashicorp/aws"
    assert "aws_s3_bucket" in aws.resources and "aws_partition" in aws.data_sources
    assert "default_tags" in aws.provider["block_types"]
    assert schema.for_type("aws_s3_bucket") is aws and schema.for_type("google_x") is None


def test_load_schema_accepts_several_providers(tmp_path):
    doc = {"format_version": "1.0", "provider_schemas": {
        "registry.terraform.io/hashicorp/random": {
            "provider": {"version": 0, "block": {}},
            "resource_schemas": {"random_id": {"version": 0, "block": {"attributes": {
                "byte_length": {"type": "number", "required": True},
                "hex": {"type": "string", "computed": True}}}}},
            "data_source_schemas": {}},
        "registry.terraform.io/hashicorp/null": {
            "provider": {"version": 0, "block": {}},
            "resource_schemas": {"null_resource": {"version": 0, "block": {"attributes": {
                "triggers": {"type": ["map", "string"], "optional": True}}}}}},
    }}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(doc))
    two = load_schema(path)
    assert set(two.providers) == {"random", "null"}
    ok = validate_files({"main.tf": 'resource "random_id" "a" {\n  byte_length = 4\n}\n'
                                    'resource "null_resource" "n" {\n  triggers = { h = random_id.a.hex }\n}\n'}, two)
    assert ok == []
    bad = validate_files({"main.tf": 'resource "random_id" "a" {\n  hex = "x"\n}\n'}, path)  # path also accepted
    assert [str(p) for p in bad] == ['main.tf:1: random_id.a: missing required argument "byte_length"',
                                     'main.tf:2: random_id.a: "hex" is read-only (computed) and cannot be set']


# --------------------------------------------------------------------------- happy path

def test_valid_stack_passes(schema):
    assert run(schema, VALID) == []


def test_only_tf_files_are_checked(schema):
    problems = validate_files({"iac/main.tf": textwrap.dedent(VALID), "iac/README.md": "resource {{{",
                               "iac/prod.tfvars": "oops = ["}, schema)
    assert problems == []


# --------------------------------------------------------------------------- 1: types exist

def test_unknown_resource_type(schema):
    problems = run(schema, """
        resource "aws_s3_bukket" "b" {
          bucket = "x"
        }
    """)
    assert [str(p) for p in problems] == [
        'iac/main.tf:1: aws_s3_bukket.b: unknown resource type "aws_s3_bukket" in registry.terraform.io/hashicorp/aws']


def test_unknown_data_source_type(schema):
    problems = validate_files({"iac/main.tf": '\n\ndata "aws_partitions" "p" {}\n'}, schema)
    assert [(p.line, p.message) for p in problems] == [
        (3, 'data.aws_partitions.p: unknown data source "aws_partitions" in registry.terraform.io/hashicorp/aws')]


def test_unknown_provider_prefix(schema):
    problems = run(schema, 'resource "google_storage_bucket" "b" {\n  name = "x"\n}\n')
    assert messages(problems) == ['google_storage_bucket.b: no provider "google" in the schema']


# --------------------------------------------------------------------------- 2: argument names

def test_misspelt_argument_names_file_and_line(schema):
    problems = run(schema, """
        resource "aws_kms_key" "k" {}

        resource "aws_s3_bucket" "landing" {
          bucket             = "x"
          versioning_enabled = true
        }
    """, file="iac/dms.tf")
    assert [str(p) for p in problems] == ['iac/dms.tf:5: aws_s3_bucket.landing: unknown argument "versioning_enabled"']
    assert problems[0] == Problem("iac/dms.tf", 5, 'aws_s3_bucket.landing: unknown argument "versioning_enabled"')


def test_unknown_block_type_and_nested_unknown_argument(schema):
    problems = run(schema, """
        resource "aws_s3_bucket_versioning" "v" {
          bucket = "b"
          versioning_configuration {
            status  = "Enabled"
            enabled = true
          }
          versioning {
            status = "Enabled"
          }
        }
    """)
    assert [(p.line, p.message) for p in problems] == [
        (5, 'aws_s3_bucket_versioning.v block "versioning_configuration": unknown argument "enabled"'),
        (7, 'aws_s3_bucket_versioning.v: unknown block type "versioning"'),
    ]


def test_deeply_nested_blocks(schema):
    ok = """
        resource "aws_s3_bucket_lifecycle_configuration" "lc" {
          bucket = "b"
          rule {
            id     = "expire"
            status = "Enabled"
            filter {
              and {
                prefix = "raw/"
                tags   = { tier = "cold" }
              }
            }
            expiration {
              days = 30
            }
          }
        }
    """
    assert run(schema, ok) == []
    problems = run(schema, ok.replace("prefix = ", "prefixx = "))
    assert [(p.line, p.message) for p in problems] == [
        (8, 'aws_s3_bucket_lifecycle_configuration.lc block "rule.filter.and": unknown argument "prefixx"')]


def test_computed_only_attribute_cannot_be_set(schema):
    problems = run(schema, """
        resource "aws_s3_bucket" "b" {
          bucket = "x"
          arn    = "arn:aws:s3:::x"
          id     = "x"
          region = "eu-west-1"
        }
    """)
    # id/region are optional+computed in the schema: allowed; arn is read-only
    assert [(p.line, p.message) for p in problems] == [
        (3, 'aws_s3_bucket.b: "arn" is read-only (computed) and cannot be set')]


def test_argument_set_twice(schema):
    problems = run(schema, 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n  bucket = "y"\n}\n')
    assert messages(problems) == ['aws_s3_bucket.b: argument "bucket" is set more than once']


def test_resource_meta_arguments_allowed(schema):
    problems = run(schema, """
        variable "names" {
          type = set(string)
        }
        resource "aws_kms_key" "k" {
          count = 2
        }
        resource "aws_s3_bucket" "b" {
          for_each   = var.names
          bucket     = each.key
          provider   = aws.west
          depends_on = [aws_kms_key.k]
          lifecycle {
            create_before_destroy = true
            prevent_destroy       = false
            ignore_changes        = [tags, website_endpoint, tags_all.Owner]
            replace_triggered_by  = [aws_kms_key.k[0].arn]
            precondition {
              condition     = length(each.key) > 3
              error_message = "short"
            }
            postcondition {
              condition     = self.bucket != ""
              error_message = "empty"
            }
          }
          provisioner "local-exec" {
            command = "echo ${self.arn} ${path.module} ${terraform.workspace}"
          }
          connection {
            host = "example.com"
          }
        }
        data "aws_caller_identity" "me" {
          count      = 1
          provider   = aws.west
          depends_on = [aws_s3_bucket.b]
          lifecycle {
            postcondition {
              condition     = self.account_id != ""
              error_message = "no account"
            }
          }
        }
    """)
    assert problems == []


def test_meta_argument_misuse(schema):
    problems = run(schema, """
        resource "aws_kms_key" "k" {
          lifecycle {
            prevent_destroy = true
            prevent_destory = true
            precondition {
              condition     = true
              error_message = "x"
              severity      = "high"
            }
          }
        }
        data "aws_partition" "p" {
          provisioner "local-exec" {
            command = "echo"
          }
          lifecycle {
            prevent_destroy = true
          }
        }
    """)
    assert [(p.line, p.message) for p in problems] == [
        (4, 'aws_kms_key.k: unknown lifecycle argument "prevent_destory"'),
        (8, 'aws_kms_key.k: unknown precondition argument "severity"'),
        (13, 'data.aws_partition.p: unknown block type "provisioner"'),
        (17, 'data.aws_partition.p: unknown lifecycle argument "prevent_destroy"'),
    ]


# --------------------------------------------------------------------------- 3: dynamic blocks

def test_dynamic_block_valid(schema):
    problems = run(schema, """
        variable "statements" {
          type = list(any)
        }
        data "aws_iam_policy_document" "d" {
          dynamic "statement" {
            for_each = var.statements
            iterator = st
            content {
              actions   = st.value.actions
              resources = [for r in st.value.resources : "${r}/*"]
              dynamic "principals" {
                for_each = st.value.principals
                content {
                  type        = principals_value_is_not_a_resource.x
                  identifiers = principals.value
                }
              }
            }
          }
        }
        resource "aws_security_group" "sg" {
          dynamic "ingress" {
            for_each = var.statements
            content {
              from_port   = ingress.value.port
              to_port     = ingress.value.port
              protocol    = "tcp"
              cidr_blocks = ["10.0.0.0/8"]
            }
          }
        }
    """)
    # "principals_value_is_not_a_resource.x" looks like a resource reference and is not declared
    assert messages(problems) == ['reference to undeclared resource "principals_value_is_not_a_resource.x"']


def test_dynamic_iterator_with_underscore_is_in_scope(schema):
    problems = run(schema, """
        variable "rules" {
          type = list(any)
        }
        resource "aws_security_group" "sg" {
          dynamic "ingress" {
            for_each = var.rules
            iterator = sg_rule
            content {
              from_port = sg_rule.value.port
              to_port   = sg_rule.value.port
              protocol  = "tcp"
            }
          }
        }
    """)
    assert problems == []


def test_dynamic_block_wrong_name(schema):
    problems = run(schema, """
        data "aws_iam_policy_document" "d" {
          dynamic "statements" {
            for_each = [1]
            content {
              actions = ["s3:GetObject"]
            }
          }
        }
    """)
    assert [str(p) for p in problems] == [
        'iac/main.tf:2: data.aws_iam_policy_document.d: dynamic "statements": no nested block type "statements" here']


def test_dynamic_content_is_validated_and_shape_checked(schema):
    problems = run(schema, """
        data "aws_iam_policy_document" "d" {
          dynamic "statement" {
            for_each = [1]
            labels   = []
            content {
              actionz = ["s3:GetObject"]
            }
          }
          dynamic "statement" {
            iterator = s
            foo      = 1
          }
        }
    """)
    assert [(p.line, p.message) for p in problems] == [
        (6, 'data.aws_iam_policy_document.d block "statement": unknown argument "actionz"'),
        (9, 'data.aws_iam_policy_document.d: dynamic "statement": missing "for_each"'),
        (9, 'data.aws_iam_policy_document.d: dynamic "statement": needs exactly one "content" block'),
        (11, 'data.aws_iam_policy_document.d: dynamic "statement": unknown argument "foo"'),
    ]


def test_object_list_attribute_in_block_syntax(schema):
    """aws_security_group.ingress is a set-of-object attribute; Terraform accepts block syntax."""
    ok = """
        resource "aws_security_group" "sg" {
          ingress {
            from_port = 443
            to_port   = 443
            protocol  = "tcp"
          }
          ingress {
            from_port = 80
            to_port   = 80
            protocol  = "tcp"
          }
          egress = [{ from_port = 0, to_port = 0, protocol = "-1", cidr_blocks = ["0.0.0.0/0"],
                      description = "", ipv6_cidr_blocks = [], prefix_list_ids = [], security_groups = [],
                      self = false }]
        }
    """
    assert run(schema, ok) == []
    problems = run(schema, ok.replace("to_port   = 80", "to_prot   = 80"))
    assert [(p.line, p.message) for p in problems] == [
        (9, 'aws_security_group.sg block "ingress": unknown argument "to_prot"')]
    problems = run(schema, """
        resource "aws_security_group" "sg" {
          dynamic "ingress" {
            for_each = [443]
            content {
              port = ingress.value
            }
          }
        }
    """)
    assert [(p.line, p.message) for p in problems] == [
        (5, 'aws_security_group.sg block "ingress": unknown argument "port"')]


def test_untyped_recursive_block_accepts_anything_but_siblings_are_checked(schema):
    """README: aws_wafv2_rule_group rule.statement has an empty body in this schema."""
    hcl = """
        resource "aws_wafv2_rule_group" "g" {
          name     = "g"
          scope    = "REGIONAL"
          capacity = 10
          rule {
            name     = "r"
            priority = 1
            action {
              block {}
            }
            statement {
              geo_match_statement {
                country_codes = ["XX"]
              }
            }
            visibility_config {
              cloudwatch_metrics_enabled = false
              metric_name                = "r"
              sampled_requests_enabled   = false
            }
          }
          visibility_config {
            cloudwatch_metrics_enabled = false
            metric_name                = "g"
            sampled_requests_enabled   = false
          }
        }
    """
    assert run(schema, hcl) == []
    problems = run(schema, hcl.replace("priority = 1", "priorty  = 1"))
    assert [(p.line, p.message) for p in problems] == [
        (5, 'aws_wafv2_rule_group.g block "rule": missing required argument "priority"'),
        (7, 'aws_wafv2_rule_group.g block "rule": unknown argument "priorty"')]


# --------------------------------------------------------------------------- 4: required / min / max

def test_missing_required_argument(schema):
    problems = run(schema, """
        resource "aws_s3_bucket_versioning" "v" {
          versioning_configuration {
            status = "Enabled"
          }
        }
    """)
    assert [str(p) for p in problems] == [
        'iac/main.tf:1: aws_s3_bucket_versioning.v: missing required argument "bucket"']


def test_missing_required_nested_argument(schema):
    problems = run(schema, """
        resource "aws_s3_bucket_versioning" "v" {
          bucket = "b"
          versioning_configuration {
            mfa_delete = "Disabled"
          }
        }
    """)
    assert [(p.line, p.message) for p in problems] == [
        (3, 'aws_s3_bucket_versioning.v block "versioning_configuration": missing required argument "status"')]


def test_min_items_block_missing(schema):
    problems = run(schema, 'resource "aws_s3_bucket_versioning" "v" {\n  bucket = "b"\n}\n')
    assert messages(problems) == [
        'aws_s3_bucket_versioning.v: needs at least 1 "versioning_configuration" block(s), found 0']


def test_min_items_satisfied_by_dynamic(schema):
    problems = run(schema, """
        resource "aws_s3_bucket_versioning" "v" {
          bucket = "b"
          dynamic "versioning_configuration" {
            for_each = ["Enabled"]
            content {
              status = versioning_configuration.value
            }
          }
        }
    """)
    assert problems == []


def test_max_items_one_block_twice(schema):
    problems = run(schema, """
        resource "aws_s3_bucket_versioning" "v" {
          bucket = "b"
          versioning_configuration {
            status = "Enabled"
          }
          versioning_configuration {
            status = "Suspended"
          }
        }
    """)
    assert [(p.line, p.message) for p in problems] == [
        (6, 'aws_s3_bucket_versioning.v: at most 1 "versioning_configuration" block(s) allowed, found 2')]


def test_max_items_skipped_with_dynamic(schema):
    problems = run(schema, """
        resource "aws_s3_bucket_versioning" "v" {
          bucket = "b"
          versioning_configuration {
            status = "Enabled"
          }
          dynamic "versioning_configuration" {
            for_each = []
            content {
              status = "Suspended"
            }
          }
        }
    """)
    assert problems == []


def test_single_nesting_block_counts_as_max_one(schema):
    problems = run(schema, """
        resource "aws_kms_key" "k" {
          timeouts {
            create = "5m"
          }
          timeouts {
            create = "6m"
          }
        }
    """)
    assert messages(problems) == ['aws_kms_key.k: at most 1 "timeouts" block(s) allowed, found 2']


# --------------------------------------------------------------------------- 5: provider block

def test_provider_block_default_tags_passes(schema):
    problems = run(schema, """
        provider "aws" {
          region = "eu-west-1"
          alias  = "west"
          default_tags {
            tags = { Project = "dw" }
          }
          assume_role {
            role_arn = "arn:aws:iam::123456789012:role/deploy"
          }
        }
    """)
    assert problems == []


def test_provider_block_bad_argument(schema):
    problems = run(schema, """
        provider "aws" {
          regoin = "eu-west-1"
          default_tags {
            tagz = { Project = "dw" }
          }
        }
        provider "azurerm" {}
    """)
    assert [(p.line, p.message) for p in problems] == [
        (2, 'provider "aws": unknown argument "regoin"'),
        (4, 'provider "aws" block "default_tags": unknown argument "tagz"'),
        (7, 'provider "azurerm": not in the provider schema'),
    ]


# --------------------------------------------------------------------------- 6: references

REF_BASE = """
    variable "v" {
      type = string
    }
    locals {
      l = "x"
    }
    module "m" {
      source = "./m"
    }
    data "aws_caller_identity" "me" {}
    resource "aws_kms_key" "k" {
      count = 1
    }
    resource "aws_kms_key" "named" {
      for_each = { a = 1 }
    }
"""


@pytest.mark.parametrize("expr", [
    "aws_kms_key.k[0].arn",
    'aws_kms_key.named["a"].arn',
    "aws_kms_key.named[var.v].key_id",
    "aws_kms_key.k[*].arn",
    "aws_kms_key.k.*.arn",
    "aws_kms_key.k[0].id",
    "aws_kms_key.k[0].timeouts",
    "data.aws_caller_identity.me.account_id",
    '"arn:${data.aws_caller_identity.me.account_id}:${var.v}-${local.l}"',
    "module.m.anything",
    "var.v == \"a\" ? local.l : upper(var.v)",
    "[for s in [var.v] : s.field]",
    "{for k_x, v_y in { a = 1 } : k_x => v_y.other}",
    '"%{ for x_item in [var.v] }${x_item.name}%{ endfor }"',
    '"literal aws_kms_key.nope.arn and var.nope text"',
    'jsonencode({ Action = "s3:GetObject", Resource = "arn:aws:s3:::aws_bucket.name/*" })',
    '"escaped $${var.nope} is literal"',
    "provider::aws::arn_parse(aws_kms_key.k[0].arn).region",
])
def test_references_that_resolve(schema, expr):
    problems = run(schema, REF_BASE + f"""
    output "o" {{
      value = {expr}
    }}
    """)
    assert problems == []


@pytest.mark.parametrize("expr, message", [
    ("aws_kms_key.nope.arn", 'reference to undeclared resource "aws_kms_key.nope"'),
    ("aws_kms_key.k.not_an_attr", 'reference to unknown attribute "not_an_attr" of aws_kms_key.k'),
    ("aws_kms_key.k[0].not_an_attr", 'reference to unknown attribute "not_an_attr" of aws_kms_key.k'),
    ('aws_kms_key.named["a"].nope', 'reference to unknown attribute "nope" of aws_kms_key.named'),
    ("aws_kms_key.k[*].nope", 'reference to unknown attribute "nope" of aws_kms_key.k'),
    ("var.undeclared", 'reference to undeclared input variable "var.undeclared"'),
    ("local.nope", 'reference to undeclared local value "local.nope"'),
    ("module.nope.out", 'reference to undeclared module "module.nope"'),
    ("data.aws_caller_identity.nope.arn", 'reference to undeclared data source "data.aws_caller_identity.nope"'),
    ("data.aws_caller_identity.me.nope", 'reference to unknown attribute "nope" of data.aws_caller_identity.me'),
    ('"arn:${data.aws_partition.current.partition}:s3:::x"',
     'reference to undeclared data source "data.aws_partition.current"'),
    ('jsonencode({ Resource = ["${aws_s3_bucket.gone.arn}/*"] })', 'reference to undeclared resource "aws_s3_bucket.gone"'),
    ('merge({ a = "aws_x.y.z" }, { b = local.nope })', 'reference to undeclared local value "local.nope"'),
    ("[for s in var.v : s.id if local.nope]", 'reference to undeclared local value "local.nope"'),
    ("aws_kms_key.k[var.nope].arn", 'reference to undeclared input variable "var.nope"'),
    ("!var.nope", 'reference to undeclared input variable "var.nope"'),
])
def test_dangling_references(schema, expr, message):
    text = textwrap.dedent(REF_BASE).lstrip("\n") + f'output "o" {{\n  value = {expr}\n}}\n'
    problems = validate_files({"iac/refs.tf": text}, schema)
    assert messages(problems) == [message]
    assert problems[0].line == text.splitlines().index(f"  value = {expr}") + 1


def test_references_in_heredoc_and_nested_blocks_resolve_across_files(schema):
    problems = run(schema, """
        resource "aws_iam_policy" "p" {
          policy = <<-EOF
            {"Statement": [{"Action": "s3:GetObject", "Resource": "${aws_s3_bucket.b.arn}/*"},
                           {"Resource": "${aws_s3_bucket.missing.arn}"}]}
          EOF
        }
        resource "aws_s3_bucket_versioning" "v" {
          bucket = aws_s3_bucket.b.id
          versioning_configuration {
            status = var.versioning
          }
        }
    """, extra={"iac/other.tf": 'resource "aws_s3_bucket" "b" {}\n'})
    assert [str(p) for p in problems] == [
        'iac/main.tf:2: reference to undeclared resource "aws_s3_bucket.missing"',
        'iac/main.tf:10: reference to undeclared input variable "var.versioning"',
    ]


def test_ignored_roots_and_provider_meta(schema):
    problems = run(schema, """
        resource "aws_s3_bucket" "b" {
          count    = 2
          provider = aws.not_a_resource
          bucket   = "${path.root}-${count.index}-${terraform.workspace}"
        }
    """)
    assert problems == []


# --------------------------------------------------------------------------- 7: duplicates

@pytest.mark.parametrize("block, message", [
    ('resource "aws_kms_key" "k" {}', 'duplicate resource "aws_kms_key.k" (first declared at iac/a.tf:1)'),
    ('data "aws_partition" "p" {}', 'duplicate data "aws_partition.p" (first declared at iac/a.tf:1)'),
    ('variable "v" {}', 'duplicate variable "v" (first declared at iac/a.tf:1)'),
    ('output "o" {\n  value = 1\n}', 'duplicate output "o" (first declared at iac/a.tf:1)'),
    ('module "m" {\n  source = "./m"\n}', 'duplicate module "m" (first declared at iac/a.tf:1)'),
])
def test_duplicate_declarations(schema, block, message):
    problems = validate_files({"iac/a.tf": block + "\n", "iac/b.tf": "\n" + block + "\n"}, schema)
    assert [str(p) for p in problems] == [f"iac/b.tf:2: {message}"]


def test_duplicate_local_across_blocks(schema):
    problems = run(schema, """
        locals {
          a = 1
        }
        locals {
          b = 2
          a = 3
        }
    """)
    assert [str(p) for p in problems] == ['iac/main.tf:6: duplicate local "a" (first declared at iac/main.tf:2)']


def test_same_name_different_type_is_not_a_duplicate(schema):
    problems = run(schema, 'resource "aws_kms_key" "x" {}\nresource "aws_s3_bucket" "x" {}\ndata "aws_kms_key" "x" {\n  key_id = "k"\n}\n')
    assert problems == []


# --------------------------------------------------------------------------- parsing

def test_parse_error_reports_line(schema):
    problems = run(schema, """
        resource "aws_kms_key" "k" {
          description = "ok"
          policy      = @
        }
    """, file="iac/broken.tf")
    assert len(problems) == 1
    assert problems[0].file == "iac/broken.tf" and problems[0].line == 3
    assert problems[0].message.startswith("HCL parse error")


def test_unclosed_quote_reports_line(schema):
    problems = run(schema, 'resource "aws_kms_key" "k" {\n  description = "ok\n}\n')
    assert [(p.line, p.message.startswith("HCL parse error")) for p in problems] == [(2, True)]


def test_unexpected_top_level_block(schema):
    problems = run(schema, 'resouce "aws_kms_key" "k" {}\n')
    assert [str(p) for p in problems] == ['iac/main.tf:1: unexpected top-level "resouce"']
