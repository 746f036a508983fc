"""A native Terraform test that applies and destroys the rendered stack in memory (mock_provider "aws").

The rendered iac/tests/guards.tftest.hcl holds the mocked data sources (an account ready for the
stack); apply also needs the computed attributes later resources take as arguments (ARNs, ids) in
shapes the real provider's own validators accept, as AWS returns them, so they are added here.
`terraform test` then plans, applies, checks the outputs and destroys everything it applied: the
same graph walk a real apply and destroy make, with the real provider's schema and validation.
"""

from __future__ import annotations

import re

APPLY_MOCKS = """
  # Apply needs computed values the provider's own validators accept (ARNs, ids), as AWS returns them.
  mock_resource "aws_kms_key" {
    defaults = {
      arn    = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000001"
      key_id = "00000000-0000-0000-0000-000000000001"
    }
  }

  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/dwctl-mock"
    }
  }

  mock_resource "aws_s3_bucket" {
    defaults = {
      arn = "arn:aws:s3:::dwctl-mock-bucket"
    }
  }

  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:eu-west-1:123456789012:dwctl-mock"
    }
  }

  mock_resource "aws_sqs_queue" {
    defaults = {
      arn = "arn:aws:sqs:eu-west-1:123456789012:dwctl-mock"
      url = "https://sqs.eu-west-1.amazonaws.com/123456789012/dwctl-mock"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    defaults = {
      arn = "arn:aws:logs:eu-west-1:123456789012:log-group:dwctl-mock"
    }
  }

  mock_resource "aws_cloudwatch_event_rule" {
    defaults = {
      arn = "arn:aws:events:eu-west-1:123456789012:rule/dwctl-mock"
    }
  }

  mock_resource "aws_redshiftserverless_namespace" {
    defaults = {
      arn                       = "arn:aws:redshift-serverless:eu-west-1:123456789012:namespace/00000000-0000-0000-0000-000000000002"
      admin_password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redshift!mock-admin-AbCdEf"
    }
  }

  mock_resource "aws_redshiftserverless_workgroup" {
    defaults = {
      arn = "arn:aws:redshift-serverless:eu-west-1:123456789012:workgroup/00000000-0000-0000-0000-000000000003"
    }
  }

  mock_resource "aws_dms_replication_instance" {
    defaults = {
      replication_instance_arn = "arn:aws:dms:eu-west-1:123456789012:rep:DWCTLMOCK"
    }
  }

  mock_resource "aws_dms_endpoint" {
    defaults = {
      endpoint_arn = "arn:aws:dms:eu-west-1:123456789012:endpoint:DWCTLMOCKSOURCE"
    }
  }

  mock_resource "aws_dms_s3_endpoint" {
    defaults = {
      endpoint_arn = "arn:aws:dms:eu-west-1:123456789012:endpoint:DWCTLMOCKTARGET"
    }
  }

  mock_resource "aws_dms_replication_task" {
    defaults = {
      replication_task_arn = "arn:aws:dms:eu-west-1:123456789012:task:DWCTLMOCK"
    }
  }

  mock_resource "aws_glue_catalog_database" {
    defaults = {
      arn = "arn:aws:glue:eu-west-1:123456789012:database/dwctl-mock"
    }
  }

  mock_resource "aws_security_group" {
    defaults = {
      id  = "sg-0000000000000mock"
      arn = "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0000000000000mock"
    }
  }
"""


def lifecycle_test(guards_text: str, runs: str) -> str:
    """The guards file's mock_provider block, with APPLY_MOCKS added, followed by `runs`."""
    block = re.search(r'^mock_provider "aws" \{.*?^\}\n', guards_text, re.M | re.S)[0]
    return block[:block.rindex("}")] + APPLY_MOCKS + "}\n" + runs
