"""The rendered stack under the real Terraform on PATH and the real hashicorp/aws provider (offline).

- `terraform init` + `terraform validate` of the example and of the every-feature spec: the
  provider's own validators run (enums, regexes, conflicts), which no schema copy can.
- `dwctl test`: the rendered iac/tests/guards.tftest.hcl under `terraform test` with
  `mock_provider "aws"` (Terraform plans in memory; the provider's schema is real, its API answers
  are mocked: the AWS API is the one external boundary here). Each run proves one guard of issue 12
  stops a plan that would fail or mis-govern on a real account, and that the example plans cleanly
  when the account is as the guards want it.
"""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from dwctl.cli import cli
from tests.gates.test_scan import every_feature
from tests.support.realtf import init, real_provider_env, terraform, write_iac  # noqa: F401  (fixture)


def validate(env: dict[str, str], iac) -> dict:
    init(env, iac)
    done = terraform(env, iac, "validate", "-json", check=False)
    return json.loads(done.stdout)


def test_the_example_validates_with_the_real_provider(real_provider_env, rendered, tmp_path):
    result = validate(real_provider_env, write_iac(rendered, tmp_path))
    assert result["valid"], result["diagnostics"]
    assert result["diagnostics"] == []  # no deprecation warnings either
    lock = (tmp_path / "iac" / ".terraform.lock.hcl").read_text()
    version = re.search(r'provider "registry.terraform.io/hashicorp/aws" \{\s+version\s+= "([0-9.]+)"', lock)[1]
    major, minor = map(int, version.split(".")[:2])
    assert (5, 100) <= (major, minor) < (7, 0), version


def test_the_every_feature_spec_validates_with_the_real_provider(real_provider_env, example_text, tmp_path):
    spec = tmp_path / "everything.yaml"
    spec.write_text(every_feature(example_text), encoding="utf-8")
    out = tmp_path / "out"
    rendered = CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(out)], catch_exceptions=False)
    assert rendered.exit_code == 0, rendered.output
    main = (out / "iac" / "main.tf").read_text()
    assert 'backend "s3" {}' in main  # -backend=false below: validate needs no state bucket
    tfvars = json.loads((out / "iac" / "terraform.tfvars.json").read_text())
    assert tfvars["create_dms_account_roles"] and tfvars["manage_lakeformation_settings"] and tfvars["cdc_path"]
    assert tfvars["s3_endpoint_route_table_ids"] and tfvars["source_ca_bundle_file"]
    assert tfvars["redshift_usage_limit_deactivate_amount"] == 192
    result = validate(real_provider_env, out / "iac")
    assert result["valid"], result["diagnostics"]
    assert [d for d in result["diagnostics"] if d["severity"] == "error"] == []


def test_dwctl_test_runs_the_rendered_native_tests(real_provider_env, example_text, tmp_path, monkeypatch):
    """`dwctl render` writes iac/tests/guards.tftest.hcl; `dwctl test` runs it with the mock provider."""
    for key, value in real_provider_env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the mocks need no credentials at all
        monkeypatch.delenv(key)
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(example_text, encoding="utf-8")
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["render", "-c", str(spec), "-o", str(out)]).exit_code == 0
    result = runner.invoke(cli, ["test", "-c", str(spec), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runs = dict(re.findall(r'run "([a-z0-9_]+)"\.\.\. (pass|fail|skip)', result.output))
    declared = re.findall(r'^run "([a-z0-9_]+)"', (out / "iac" / "tests" / "guards.tftest.hcl").read_text(), re.M)
    assert len(declared) >= 13 and runs == {name: "pass" for name in declared}, result.output


def test_a_guard_removed_from_the_stack_fails_its_native_test(real_provider_env, rendered, tmp_path):
    """The runs expecting a failure are not vacuous: without the AZ precondition, its run fails."""
    iac = write_iac(rendered, tmp_path)
    redshift = iac / "redshift.tf"
    guard = "length(local.workgroup_zones) >= local.workgroup_zones_need"
    assert guard in redshift.read_text()
    redshift.write_text(redshift.read_text().replace(guard, "length(local.workgroup_zones) >= 1"))
    init(real_provider_env, iac)
    done = terraform(real_provider_env, iac, "test", check=False)
    assert done.returncode != 0
    assert 'run "subnets_in_one_zone"... fail' in done.stdout, done.stdout


CA_RUN = '''
run "the_endpoint_uses_the_imported_bundle" {
  command = plan

  override_resource {
    target          = aws_dms_certificate.source
    override_during = plan
    values = { certificate_arn = "arn:aws:dms:eu-west-1:123456789012:cert:imported-by-the-stack" }
  }

  assert {
    condition     = aws_dms_endpoint.source.certificate_arn == "arn:aws:dms:eu-west-1:123456789012:cert:imported-by-the-stack"
    error_message = "the source endpoint must verify against the certificate the stack imported"
  }

  assert {
    condition     = aws_dms_certificate.source[0].certificate_pem == file("${path.module}/../certs/rds-global-bundle.pem")
    error_message = "the certificate is the PEM file the spec names"
  }
}
'''


def test_the_ca_bundle_file_becomes_the_endpoint_certificate(real_provider_env, example_text, tmp_path):
    """Planned in memory with the rendered mocks; the certificate's ARN is what AWS would return."""
    from tests.render.test_fresh_account import CA_SPEC

    spec = tmp_path / "pipeline.yaml"
    spec.write_text(example_text.replace(*CA_SPEC), encoding="utf-8")
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(out)]).exit_code == 0
    (out / "certs").mkdir()
    (out / "certs" / "rds-global-bundle.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    iac = out / "iac"
    guards = (iac / "tests" / "guards.tftest.hcl").read_text()
    mocks = guards[guards.index('mock_provider "aws"'):guards.index('run "')]  # the account the guards want
    (iac / "tests" / "guards.tftest.hcl").unlink()  # only the run below
    (iac / "tests" / "ca.tftest.hcl").write_text(mocks + CA_RUN, encoding="utf-8")
    init(real_provider_env, iac)
    done = terraform(real_provider_env, iac, "test", check=False)
    assert 'run "the_endpoint_uses_the_imported_bundle"... pass' in done.stdout, done.stdout + done.stderr


def test_dwctl_validate_reads_the_schema_after_init_without_the_backend(real_provider_env, example_text, tmp_path):
    """What CI and the pre-commit hook do for a spec with a `backend:`: `terraform init -backend=false`,
    then `dwctl validate --strict`. Terraform refuses `providers schema` until the backend is initialised
    (its rule, checked below), so the schema check reads it from a copy without the backend block; iac/ is
    left as it was."""
    spec = tmp_path / "everything.yaml"
    spec.write_text(every_feature(example_text), encoding="utf-8")
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(out)]).exit_code == 0
    iac = out / "iac"
    init(real_provider_env, iac)
    refused = terraform(real_provider_env, iac, "providers", "schema", "-json", check=False)
    assert refused.returncode != 0 and "Backend initialization required" in refused.stderr
    before = sorted(p.relative_to(iac).as_posix() for p in iac.rglob("*"))
    result = CliRunner().invoke(cli, ["validate", "-c", str(spec), "-o", str(out), "--strict", "--format", "json"],
                                env=real_provider_env, catch_exceptions=False)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["provider schema"]["status"] == "pass", checks["provider schema"]
    assert "providers schema -json" in checks["provider schema"]["detail"]
    assert checks["terraform validate"]["status"] == "pass", checks["terraform validate"]
    assert result.exit_code == 0, result.stdout
    assert sorted(p.relative_to(iac).as_posix() for p in iac.rglob("*")) == before
