"""`dwctl scan`: checkov (for real, in-process) on hand-written insecure HCL, a plan, and the rendered example.

checkov runs take seconds each, so each run below asserts everything it can.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dwctl.cli import cli
from tests.conftest import EXAMPLE, ROOT

INSECURE = 'resource "aws_s3_bucket" "insecure" {\n  bucket = "dwctl-scan-test"\n}\n'
SKIPS = {
    "CKV_AWS_21": "Test fixture: versioning is waived to see a reason travel into every format.",
    "CKV_AWS_144": "Test fixture: no cross-region replica for a scratch bucket.",
}
# Long-standing checkov checks an unencrypted, unlogged bucket fails (not waived above).
EXPECTED_FAILURES = {"CKV_AWS_145", "CKV_AWS_18"}
PLAN = {
    "format_version": "0.2",
    "terraform_version": "1.0.3",
    "planned_values": {"root_module": {"resources": [{
        "address": "aws_s3_bucket.planned", "mode": "managed", "type": "aws_s3_bucket", "name": "planned",
        "provider_name": "registry.terraform.io/hashicorp/aws", "schema_version": 0,
        "values": {"bucket": "dwctl-plan-test", "force_destroy": False, "tags": None}}]}},
    "resource_changes": [{
        "address": "aws_s3_bucket.planned", "mode": "managed", "type": "aws_s3_bucket", "name": "planned",
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": ["create"], "before": None,
                   "after": {"bucket": "dwctl-plan-test", "force_destroy": False, "tags": None},
                   "after_unknown": {"arn": True, "id": True}}}],
}


def scan(*args: str):
    return CliRunner().invoke(cli, ["scan", *args], catch_exceptions=False)


def spec_with_skips(path: Path, skips: dict[str, str]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["scan"] = {"skip": [{"id": k, "reason": v} for k, v in skips.items()]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def insecure(tmp_path) -> tuple[Path, Path]:
    """(spec with SKIPS, root whose iac/ holds one unencrypted bucket written by hand)."""
    root = tmp_path / "root"
    (root / "iac").mkdir(parents=True)
    (root / "iac" / "bucket.tf").write_text(INSECURE)
    return spec_with_skips(tmp_path / "spec.yaml", SKIPS), root


def summary_counts(line: str) -> tuple[int, int, int]:
    words = line.replace(",", "").split()  # checkov: N passed N failed N skipped
    assert words[0] == "checkov:" and words[2::2][:3] == ["passed", "failed", "skipped"], line
    return int(words[1]), int(words[3]), int(words[5])


def test_failures_exit_1_and_json_on_stdout_stays_parseable(insecure):
    spec, root = insecure
    result = scan("-c", str(spec), "-o", str(root), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)  # nothing but the report on stdout
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert EXPECTED_FAILURES <= failed and not failed & set(SKIPS)
    summary = result.stderr.splitlines()[0]
    passed, failed_n, skipped = summary_counts(summary)
    assert (passed, failed_n, skipped) == (report["summary"]["passed"], report["summary"]["failed"],
                                           report["summary"]["skipped"])
    assert f"FAILED CKV_AWS_145 aws_s3_bucket.insecure {root.as_posix()}/iac/bucket.tf:1 " in result.stderr
    assert "checkov: scanning" not in result.stderr  # no progress indicator when stderr is not a terminal
    assert not list(Path.cwd().glob("results*.sarif"))


def test_soft_fail_and_every_format_from_one_run_with_the_spec_skips_and_reasons(insecure, tmp_path):
    spec, root = insecure
    out = tmp_path / "reports"
    result = scan("-c", str(spec), "-o", str(root), "--soft-fail", "--output-dir", str(out),
                  "--format", "sarif", "--format", "junitxml", "--format", "json", "--format", "cli")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "results_cli.txt", "results_json.json", "results_junitxml.xml", "results_sarif.sarif"]
    lines = result.stdout.splitlines()
    assert lines[:4] == [f"wrote {(out / n).as_posix()}" for n in (
        "results_sarif.sarif", "results_junitxml.xml", "results_json.json", "results_cli.txt")]
    passed, failed, skipped = summary_counts(lines[4])
    assert failed >= len(EXPECTED_FAILURES) and skipped == 2  # the bucket once per waived check
    for check_id, reason in SKIPS.items():
        assert f"skipped by the spec: {check_id} (1 result(s)): {reason}" in result.stdout
    assert "soft fail: exit 0" in result.stdout
    assert "FAILED CKV_AWS_145 aws_s3_bucket.insecure" in result.stdout

    report = json.loads((out / "results_json.json").read_text())
    assert report["summary"]["failed"] == failed and report["summary"]["passed"] == passed
    waived = {c["check_id"]: c["check_result"] for c in report["results"]["skipped_checks"]}
    assert set(waived) == set(SKIPS)
    for check_id, outcome in waived.items():
        assert outcome["result"] == "SKIPPED" and SKIPS[check_id] in outcome["suppress_comment"]

    sarif = json.loads((out / "results_sarif.sarif").read_text())
    results = sarif["runs"][0]["results"]
    suppressed = {r["ruleId"]: r["suppressions"][0]["justification"] for r in results if r.get("suppressions")}
    assert set(suppressed) == set(SKIPS) and all(SKIPS[k] in v for k, v in suppressed.items())
    assert EXPECTED_FAILURES <= {r["ruleId"] for r in results if not r.get("suppressions")}

    suite = ET.parse(out / "results_junitxml.xml").getroot().find("testsuite")
    assert int(suite.get("failures")) == failed and int(suite.get("skipped")) == 2
    messages = [s.get("message") for s in suite.iter("skipped")]
    assert sorted(messages) == sorted(f"dwctl spec scan.skip: {r}" for r in SKIPS.values())

    cli_text = (out / "results_cli.txt").read_text()
    assert "FAILED for resource: aws_s3_bucket.insecure" in cli_text and "\x1b[" not in cli_text
    assert f"Suppress comment: dwctl spec scan.skip: {SKIPS['CKV_AWS_21']}" in cli_text


def on_terminal(args: list[str], *, interrupt: bool = False) -> tuple[subprocess.CompletedProcess, str]:
    """Run dwctl with stderr on a pseudo-terminal (stdout piped); optionally press Ctrl-C once the
    progress indicator shows, i.e. while checkov runs. Returns the process and what the terminal got."""
    import signal

    master, slave = os.openpty()
    seen = bytearray()
    shown = threading.Event()

    def drain():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen.extend(chunk)
            if seen.count(b"checkov: scanning") >= 2:  # the spinner turns: checkov is running
                shown.set()
        shown.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    dwctl = str(Path(sys.executable).parent / "dwctl")
    proc = subprocess.Popen([dwctl, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            text=True, cwd=ROOT)
    os.close(slave)
    if interrupt:
        shown.wait()
        proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate()
    reader.join()
    os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, ""), seen.decode(errors="replace")


def test_progress_on_a_terminal_and_cli_output_on_stdout(insecure):
    """A real process whose stderr is a terminal: the indicator shows there, the report goes to stdout."""
    spec, root = insecure
    done, terminal = on_terminal(["scan", "-c", str(spec), "-o", str(root)])
    assert done.returncode == 1
    assert "terraform scan results:" in done.stdout and "FAILED for resource: aws_s3_bucket.insecure" in done.stdout
    assert done.stdout.rstrip().splitlines()[-3].startswith("checkov: ")  # summary, then the two skips
    assert f"checkov: scanning {root.as_posix()}/iac (0s)" in terminal
    assert terminal.endswith("\r\x1b[K")  # the indicator erases itself


def test_ctrl_c_stops_the_scan_with_one_line(tmp_path):
    root = tmp_path / "out"
    assert CliRunner().invoke(cli, ["render", "-c", str(EXAMPLE), "-o", str(root)]).exit_code == 0
    out = tmp_path / "reports"
    done, terminal = on_terminal(["scan", "-c", str(EXAMPLE), "-o", str(root), "--output-dir", str(out)],
                                 interrupt=True)
    assert done.returncode == 130
    assert "interrupted: checkov stopped scanning" in terminal
    assert "Traceback" not in terminal and not out.exists()


def test_without_a_spec_at_the_default_path_nothing_is_waived(tmp_path, monkeypatch):
    (tmp_path / "iac").mkdir()
    (tmp_path / "iac" / "bucket.tf").write_text(INSECURE)
    monkeypatch.chdir(tmp_path)
    result = scan("--format", "json", "--quiet")
    assert result.exit_code == 1
    assert "note: config/pipeline.yaml not found: scanning without the spec's skips" in result.stderr
    failed = {c["check_id"] for c in json.loads(result.stdout)["results"]["failed_checks"]}
    assert set(SKIPS) | EXPECTED_FAILURES <= failed


def test_hcl_checkov_cannot_parse_fails_the_scan(tmp_path):
    (tmp_path / "iac").mkdir()
    (tmp_path / "iac" / "broken.tf").write_text('resource "aws_s3_bucket" "b" {\n  bucket =\n')
    result = scan("-c", str(EXAMPLE), "-o", str(tmp_path), "--format", "sarif")
    assert result.exit_code == 1
    assert "checkov: 0 passed, 0 failed, 0 skipped, 1 file(s) could not be parsed" in result.stderr
    assert f"NOT PARSED {(tmp_path / 'iac' / 'broken.tf').as_posix()}" in result.stderr
    assert json.loads(result.stdout)["version"] == "2.1.0"  # SARIF alone on stdout


def test_a_plan_json_is_scanned_with_the_plan_framework(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    spec = spec_with_skips(tmp_path / "spec.yaml", SKIPS)
    result = scan("-c", str(spec), "-o", str(tmp_path), "--plan-json", str(plan), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["check_type"] == "terraform_plan"
    assert EXPECTED_FAILURES <= {c["check_id"] for c in report["results"]["failed_checks"]}
    assert {c["check_id"] for c in report["results"]["skipped_checks"]} == set(SKIPS)
    assert {c["resource"] for c in report["results"]["failed_checks"]} == {"aws_s3_bucket.planned"}


def test_the_saved_plan_of_an_environment_is_scanned(tmp_path, terraform_bin):
    from tests.support.tf_fixtures import make_project, planned

    root = make_project(tmp_path / "proj")  # provider-less: a real saved plan without AWS
    stack, code, _ = planned(root, "dev")
    assert code == 2 and stack.plan_path("plan").is_file()
    result = scan("-c", str(root / "spec.yaml"), "-o", str(root), "--plan", "--env", "dev", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # a plan with outputs only: nothing for checkov to check
    assert (report["passed"], report["failed"], report["resource_count"]) == (0, 0, 0)
    assert f"scanning the saved plan for dev: {stack.plan_path('plan').as_posix()}" in result.stderr
    assert "checkov: 0 passed, 0 failed, 0 skipped" in result.stderr
    assert "stale" not in result.stderr
    assert not (stack.dir / "plan.tfplan.json").exists()  # the clear-text JSON is not left behind
    assert stack.plan_path("plan").is_file()  # the saved plan itself is untouched

    with (root / "iac" / "main.tf").open("a") as f:
        f.write("# edited after the plan\n")
    again = scan("-c", str(root / "spec.yaml"), "-o", str(root), "--plan", "--env", "dev", "--format", "json")
    assert again.exit_code == 0
    assert "warning: the saved plan for dev is stale" in again.stderr and "main.tf (changed)" in again.stderr


def test_plan_needs_a_saved_plan(tmp_path):
    root = tmp_path / "root"
    (root / "iac").mkdir(parents=True)
    result = scan("-c", str(EXAMPLE), "-o", str(root), "--plan")
    assert result.exit_code == 1  # not ready (no saved plan): the operation cannot run
    assert "no saved plan for prod" in result.output and "dwctl plan --env prod" in result.output
    assert "Traceback" not in result.output
    both = scan("-c", str(EXAMPLE), "-o", str(root), "--plan", "--plan-json", str(EXAMPLE))
    assert both.exit_code == 2 and "not both" in both.output


def test_no_iac_is_a_usage_error(tmp_path):
    result = scan("-c", str(EXAMPLE), "-o", str(tmp_path))
    assert result.exit_code == 2 and "does not exist: run `dwctl render` first" in result.output


def test_missing_checkov_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['checkov'] = None; sys.argv = ['dwctl', 'scan', '-c', sys.argv[1], '-o', "
            "sys.argv[2]]; from dwctl.cli import main; main()")
    (tmp_path / "iac").mkdir()
    done = subprocess.run([sys.executable, "-c", code, str(EXAMPLE), str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "checkov is not installed" in done.stderr and "pip install 'checkov>=3.2,<4'" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------------------
# THE CLEAN-BY-CONSTRUCTION GATE (issue 5). The rendered example must have ZERO failed checkov checks,
# and nothing skipped but the spec's own skips. It fails until the templates are checkov-clean:
# that is expected, and it stays.
# ---------------------------------------------------------------------------------------------------
def test_GATE_rendered_example_has_zero_failed_checks_and_only_the_spec_skips(tmp_path, example_spec):
    root = tmp_path / "out"
    rendered = CliRunner().invoke(cli, ["render", "-c", str(EXAMPLE), "-o", str(root)], catch_exceptions=False)
    assert rendered.exit_code == 0, rendered.output
    out = tmp_path / "reports"
    result = scan("-c", str(EXAMPLE), "-o", str(root), "--format", "json", "--output-dir", str(out))
    report = json.loads((out / "results_json.json").read_text())
    failed = sorted({(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]})
    assert failed == [], "failed checkov checks on the rendered example:\n" + "\n".join(f"{i} {n}" for i, n in failed)
    assert result.exit_code == 0, result.output
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 0
    spec_skips = {s.id: s.reason for s in example_spec.scan.skip}
    for check in report["results"]["skipped_checks"]:
        assert check["check_id"] in spec_skips, f"{check['check_id']} skipped but not a spec skip"
        assert spec_skips[check["check_id"]] in check["check_result"]["suppress_comment"]
    # a waiver covers only what fails: the landing bucket passes CKV_AWS_145 and is reported as PASSED,
    # the access-log bucket (SSE-S3, as S3 server access logging requires) is the one skipped
    by_outcome = {kind: {c["resource"] for c in report["results"][kind] if c["check_id"] == "CKV_AWS_145"}
                  for kind in ("passed_checks", "skipped_checks")}
    assert by_outcome["skipped_checks"] == {"aws_s3_bucket.logs"}, by_outcome
    assert "aws_s3_bucket.landing" in by_outcome["passed_checks"], by_outcome


def every_feature(example_text: str) -> str:
    """The example with every optional feature on: account-wide DMS roles and Lake Formation settings, CIDR
    source access, VPC endpoints with the S3 gateway, the CA bundle imported by the stack, a hard usage limit,
    a named bucket with a CDC path and expiry, an include-list column grant, remote state and a second
    environment."""
    text = (example_text
            .replace("create_account_roles: false", "create_account_roles: true")
            .replace("  source_security_group_id: sg-0a1b2c3d4e5f60099", "  source_cidr_blocks: [10.1.0.0/16]\n"
                     "  egress: endpoints\n  s3_endpoint_route_table_ids: [rtb-0a1b2c3d4e5f60001]")
            .replace("  certificate_arn: arn:aws:dms:eu-west-1:123456789012:cert:rds-ca-rsa2048-g1",
                     "  ca_bundle_file: certs/rds-global-bundle.pem  #")
            .replace("    breach_action: emit-metric\n", "    breach_action: emit-metric\n    deactivate_amount: 192\n")
            .replace("landing:\n  prefix: raw\n", "landing:\n  prefix: raw\n  bucket: shop-landing-zone\n"
                     "  cdc_path: cdc/changes\n")
            .replace("    transition_to_glacier_days: 180\n", "    transition_to_glacier_days: 180\n    expire_days: 400\n")
            .replace("        exclude: [email, full_name, phone]", "        include: [customer_id, country_code]")
            .replace("governance:\n", "governance:\n  manage_data_lake_settings: true\n", 1))
    return text + """
backend:
  bucket: shop-tfstate-123456789012
  dynamodb_table: shop-tf-locks
environments:
  dev:
    account_id: "210987654321"
    region: eu-central-1
    warehouse: {base_capacity: 8, usage_limit: {amount: 16}}
    dms: {instance_class: dms.t3.small, multi_az: false}
    landing: {bucket: shop-dev-landing-zone}
"""


def test_GATE_every_optional_feature_on_has_zero_failed_checks(tmp_path, example_text):
    from dwctl.spec.read import parse_spec

    spec_path = tmp_path / "everything.yaml"
    spec_path.write_text(every_feature(example_text), encoding="utf-8")
    spec = parse_spec(spec_path.read_text(), "everything.yaml")
    assert spec.dms.create_account_roles and spec.backend and spec.environments and spec.landing.cdc_path
    root = tmp_path / "out"
    rendered = CliRunner().invoke(cli, ["render", "-c", str(spec_path), "-o", str(root)], catch_exceptions=False)
    assert rendered.exit_code == 0, rendered.output
    assert 'backend "s3" {}' in (root / "iac" / "main.tf").read_text()
    from dwctl.gates.provider_schema import validate_files
    from tests.conftest import PROVIDER_SCHEMA

    tf = {p.relative_to(root).as_posix(): p.read_text() for p in (root / "iac").glob("*.tf")}
    assert [str(p) for p in validate_files(tf, PROVIDER_SCHEMA)] == []
    fmt = subprocess.run(["terraform", "fmt", "-check", "-recursive", str(root / "iac")], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    out = tmp_path / "reports"
    result = scan("-c", str(spec_path), "-o", str(root), "--format", "json", "--output-dir", str(out))
    report = json.loads((out / "results_json.json").read_text())
    failed = sorted({(c["check_id"], c["check_name"]) for c in report["results"]["failed_checks"]})
    assert failed == [], "failed checkov checks with every feature on:\n" + "\n".join(f"{i} {n}" for i, n in failed)
    assert result.exit_code == 0, result.output
    assert {c["check_id"] for c in report["results"]["skipped_checks"]} <= {s.id for s in spec.scan.skip}


def test_the_shape_cached_parse_gives_the_results_of_checkovs_own_cli(tmp_path):
    """dwctl scan parses through dwctl.gates.hcl_parse without checkov's per-file alarm; every result on the
    rendered example equals what the checkov CLI (hcl2, no alarm either) reports, and checkov is left as found."""
    import hcl2
    from checkov.common.util.env_vars_config import env_vars_config
    from checkov.terraform import parser_utils

    from dwctl.gates import scan as scanning

    root = tmp_path / "out"
    assert CliRunner().invoke(cli, ["render", "-c", str(EXAMPLE), "-o", str(root)]).exit_code == 0
    alarm = env_vars_config.HCL_PARSE_TIMEOUT_SEC
    reports = scanning.run_checkov(scanning.Target(root / "iac"), {}, progress=False).reports
    assert parser_utils.hcl2 is hcl2 and env_vars_config.HCL_PARSE_TIMEOUT_SEC == alarm
    ours = {(r.check_id, r.resource, r.file_path, tuple(r.file_line_range), r.check_result["result"].value)
            for report in reports for r in [*report.passed_checks, *report.failed_checks]}
    done = subprocess.run([str(Path(sys.executable).parent / "checkov"), "-d", "iac", "--framework", "terraform",
                           "--skip-download", "-o", "json"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "HCL_PARSE_TIMEOUT_SEC": "0"}, timeout=600)
    report = json.loads(done.stdout)
    theirs = {(c["check_id"], c["resource"], c["file_path"], tuple(c["file_line_range"]), c["check_result"]["result"])
              for kind in ("passed_checks", "failed_checks") for c in report["results"][kind]}
    assert report["summary"]["parsing_errors"] == 0 and len(theirs) > 100
    assert ours == theirs
