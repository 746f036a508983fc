"""`dwctl validate` and `dwctl scan`: the gates CI runs before a plan. Click wiring only.

Imported by `dwctl --help`, so only click and light dwctl modules are imported at module level;
the checks live in dwctl.gates.validate, the checkov run in dwctl.gates.scan.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dwctl.cli_options import (
    color_wanted,
    env_option,
    format_option,
    json_failures,
    output_option,
    spec_option,
)

FORMATS = ("cli", "json", "junitxml", "sarif")  # dwctl.scan.FORMATS, spelled out to keep this import light
OUTPUT_DELIMITER = "\n--- OUTPUT DELIMITER ---\n"  # what checkov prints between formats on stdout
MAX_FAILURES_LISTED = 50

terraform_bin_option = click.option(
    "--terraform-bin", metavar="PATH",
    help="Terraform/OpenTofu binary [default: $DWCTL_TERRAFORM, then terraform, then tofu on PATH].")


@click.command("validate")
@spec_option
@output_option
@click.option("--provider-schema", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Provider schema JSON (`terraform providers schema -json`) to check the HCL against "
                   "[default: the installed providers' schema when iac/ is initialised].")
@terraform_bin_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Fail when any check was skipped (CI and hooks: every check must run).")
def validate(spec_path: Path, output_root: Path, provider_schema: Path | None, terraform_bin: str | None,
             fmt: str, strict: bool) -> None:
    """Check what is on disk in iac/ and sql/: spec, freshness, fmt, provider schema, terraform validate.

    Prints one row per check (pass / fail / skip, with the reason) and exits 1 when any check fails,
    or with --strict when any check was skipped.
    """
    from dwctl.gates.validate import ok, run_checks, to_json, to_text

    checks = run_checks(spec_path, output_root, provider_schema=provider_schema, terraform_bin=terraform_bin)
    colors = {"pass": "green", "fail": "red", "skip": "yellow"}  # click.echo drops them off a terminal / --no-color
    paint = (lambda text, status: click.style(text, fg=colors[status], bold=status == "fail"))
    click.echo(to_json(checks, strict) if fmt == "json" else to_text(checks, strict, paint))
    sys.exit(0 if ok(checks, strict) else 1)


@click.command("scan")
@spec_option
@output_option
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Output format; repeat for several from the one run [default: cli].")
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="Write each format to DIR/results_<format>.* (checkov's names) instead of standard output.")
@click.option("--soft-fail", is_flag=True, help="Exit 0 even when checks fail.")
@click.option("--quiet", is_flag=True, help="Show failed checks only (cli and json formats).")
@click.option("--plan", "use_plan", is_flag=True,
              help="Scan the JSON of the plan `dwctl plan` saved for --env instead of the configuration.")
@click.option("--plan-json", type=click.Path(path_type=Path, dir_okay=False, exists=True), metavar="FILE",
              help="Scan this plan JSON (`terraform show -json PLAN`) instead of the configuration.")
@env_option("Environment of the saved plan")
@terraform_bin_option
@click.pass_context
@json_failures(lambda p: p["output_dir"] is None and p["formats"] == ("json",))
def scan(ctx: click.Context, spec_path: Path, output_root: Path, formats: tuple[str, ...], output_dir: Path | None,
         soft_fail: bool, quiet: bool, use_plan: bool, plan_json: Path | None, env_name: str | None,
         terraform_bin: str | None) -> None:
    """Run checkov on the rendered iac/ (or a saved plan) with the spec's skips and their reasons.

    Exits 1 when any check fails or a file cannot be parsed, unless --soft-fail.
    """
    from dwctl.errors import UsageError
    from dwctl.gates import scan as scanning

    formats = tuple(dict.fromkeys(formats)) or ("cli",)
    if use_plan and plan_json:
        raise UsageError("give --plan or --plan-json, not both")
    scanning.checkov_available()
    spec = _spec_for_scan(ctx, spec_path, needed=use_plan)
    skips = {s.id: s.reason for s in spec.scan.skip} if spec is not None else {}
    iac = output_root / "iac"
    plan_file = None
    if use_plan:
        plan_file = scanning.saved_plan_json(spec, output_root, env_name, terraform_bin, _err)
        target = scanning.Target(plan_file, "terraform_plan", iac)
    elif plan_json is not None:
        target = scanning.Target(plan_json, "terraform_plan", iac if iac.is_dir() else None)
    else:
        if not iac.is_dir():
            raise UsageError(f"{iac.as_posix()} does not exist: run `dwctl render` first (or pass -o ROOT).")
        target = scanning.Target(iac)
    try:
        result = scanning.run_checkov(target, skips)
    finally:
        if plan_file is not None:
            plan_file.unlink(missing_ok=True)  # plans can hold secrets in clear; the binary plan stays

    counts = result.counts()
    to_stdout = output_dir is None
    if to_stdout:
        texts = [scanning.render_format(result, f, quiet=quiet, color=f == "cli" and color_wanted())
                 for f in formats]
        click.echo(OUTPUT_DELIMITER.join(t.rstrip("\n") for t in texts))
    else:
        for path in scanning.write_outputs(result, list(formats), output_dir, quiet=quiet):
            click.echo(f"wrote {path.as_posix()}")
    # A machine format on stdout must stay parseable: then the summary goes to stderr.
    say = _err if to_stdout and set(formats) - {"cli"} else click.echo
    say(scanning.summary_line(counts))
    for line in scanning.skip_lines(skips, result.skipped_by_spec):
        say(line)
    if not to_stdout or "cli" not in formats:
        for line in _failures(result, target):
            say(line)
    failing = counts["failed"] or counts["parsing_errors"]
    if failing and soft_fail:
        say("soft fail: exit 0 despite the failures above")
    sys.exit(1 if failing and not soft_fail else 0)


@click.command("tools")
@output_option
@terraform_bin_option
@format_option()
def tools(output_root: Path, terraform_bin: str | None, fmt: str) -> None:
    """Check this machine can deploy: Terraform/OpenTofu version, the AWS provider, AWS credentials, checkov.

    One row per tool with the fix for each problem; exits 1 when one is missing (warnings exit 0).
    Nothing is sent anywhere; credentials are named by their source, never shown.
    """
    from dwctl import report
    from dwctl.gates.tools import run_tools

    rows = run_tools(terraform_bin, output_root)
    click.echo(report.to_json(rows) if fmt == "json" else report.to_text(rows, totals="tools"))
    sys.exit(1 if any(r.status == "fail" for r in rows) else 0)


def _spec_for_scan(ctx: click.Context, spec_path: Path, *, needed: bool):
    """The spec gives the skips; scanning a tree with no spec at the default path is allowed (no skips)."""
    from dwctl.spec.read import load_spec

    explicit = ctx.get_parameter_source("spec_path") != click.core.ParameterSource.DEFAULT
    if explicit or needed or spec_path.exists():
        return load_spec(spec_path)
    _err(f"note: {spec_path} not found: scanning without the spec's skips (pass -c SPEC).")
    return None


def _failures(result, target) -> list[str]:
    """One line per failed result, file:line under the scanned directory (when checkov's CLI listing is not shown)."""
    base = target.path if target.framework == "terraform" else target.path.parent
    lines = []
    for report in result.reports:
        for r in report.failed_checks:
            start = (r.file_line_range or [0])[0]
            where = (base / str(r.file_path).lstrip("/")).as_posix()
            lines.append(f"  FAILED {r.check_id} {r.resource} {where}:{start} {r.check_name}")
        lines += [f"  NOT PARSED {Path(f).as_posix()}" for f in sorted(report.parsing_errors)]
    extra = len(lines) - MAX_FAILURES_LISTED
    return lines[:MAX_FAILURES_LISTED] + ([f"  ... and {extra} more"] if extra > 0 else [])


def _err(text: str) -> None:
    click.echo(text, err=True)
