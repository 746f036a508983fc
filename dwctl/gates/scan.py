"""`dwctl scan`: one in-process checkov run over iac/ (or a saved plan's JSON), written in every format asked for.

Why in-process (`checkov.main.Checkov`, with its own argument parser and run flow): one interpreter,
one scan, and the reports in hand. Checkov's CLI can write several formats from one run, but it
always prints its banner, and SARIF "to the console" also drops a results.sarif in the cwd; so the
formats are rendered here from the same reports with checkov's own report classes (the code its
CLI uses), to stdout or to results_<format>.* files in --output-dir.

Spec skips: `--skip-check` would drop a check without a trace, and a reviewer reading the SARIF
could not see what was waived, where, or why. So the spec's IDs are evaluated and their results are
marked SKIPPED with the spec's reason as the suppression comment -- what an inline
`#checkov:skip=ID:reason` produces -- and every format (CLI, JSON, JUnit, SARIF suppressions)
shows them with their justification. They can never fail the scan.

Offline by design: `--skip-download`, so no policy metadata is fetched from the Prisma/Bridgecrew API
(without it checkov waits on those requests where there is no network).

Large stacks (issue 14): checkov parses each .tf file with hcl2 under a 10 s alarm
(HCL_PARSE_TIMEOUT_SEC) and reports a file that takes longer as "could not be parsed", so at 1,000
tables on a busy machine glue.tf, dms.tf and lakeformation.tf went unscanned. During dwctl's run the
parse is dwctl.gates.hcl_parse (hcl2's result, each block shape parsed once: a fraction of the
time) and, unless HCL_PARSE_TIMEOUT_SEC is set, without the alarm: the files are dwctl's own output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dwctl.errors import ToolError

FORMATS = ("cli", "json", "junitxml", "sarif")
FILE_NAMES = {"cli": "results_cli.txt", "json": "results_json.json", "junitxml": "results_junitxml.xml",
              "sarif": "results_sarif.sarif"}  # the names checkov itself uses in --output-file-path
INSTALL_HINT = "install it with `pip install 'checkov>=3.2,<4'` (dwctl depends on it; reinstall dwctl to get it back)"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Target:
    """What checkov scans: the iac/ directory, or a plan JSON (`terraform show -json`)."""

    path: Path
    framework: str = "terraform"  # or terraform_plan
    enrich: Path | None = None  # for a plan: the iac/ it came from, so findings point at .tf lines

    @property
    def label(self) -> str:
        return self.path.as_posix()


@dataclass
class Scan:
    """The reports of one run plus checkov's parsed configuration (JUnit properties come from it)."""

    reports: list[Any]
    config: Any
    skipped_by_spec: dict[str, int]

    def counts(self) -> dict[str, int]:
        total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
        for report in self.reports:
            total["passed"] += len(report.passed_checks)
            total["failed"] += len(report.failed_checks)
            total["skipped"] += len(report.skipped_checks)
            total["parsing_errors"] += len(report.parsing_errors)
        return total


def checkov_available() -> None:
    """Import checkov.main, keeping our Ctrl-C handling: at import it sets SIGINT to `sys.exit('')`."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    try:
        import checkov.main  # noqa: F401
    except ImportError as exc:
        raise ToolError(f"checkov is not installed ({exc}): {INSTALL_HINT}.") from None
    finally:
        if threading.current_thread() is threading.main_thread() and previous is not None:
            signal.signal(signal.SIGINT, previous)


def run_checkov(target: Target, skips: dict[str, str], *, progress: bool = True) -> Scan:
    """Scan once; then turn the spec's skipped IDs into SKIPPED results carrying their reasons."""
    checkov_available()
    from checkov.main import Checkov
    from checkov.terraform.plan_runner import Runner as PlanRunner
    from checkov.terraform.runner import Runner as TerraformRunner

    class Collect(Checkov):
        def print_results(self, *args, **kwargs) -> int:  # dwctl renders the formats itself
            return 0

    # --quiet only silences checkov's own tqdm bar (dwctl's indicator replaces it); output is rendered here.
    argv = ["--framework", target.framework, "--skip-download", "--quiet"]
    if target.framework == "terraform":
        argv += ["--directory", str(target.path)]
    else:
        argv += ["--file", str(target.path)]
        if target.enrich is not None:
            argv += ["--repo-root-for-plan-enrichment", str(target.enrich)]
    logging.getLogger("dwctl").info("running: checkov %s (in-process)", shlex.join(argv))
    ckv = Collect(argv)
    # Fresh runners: checkov's default runner instances cache parsed definitions between runs.
    ckv.runners = [TerraformRunner() if target.framework == "terraform" else PlanRunner()]
    interrupts = _Interrupts()
    try:
        with interrupts, _shape_cached_hcl(), Progress(f"checkov: scanning {target.label}", enabled=progress):
            ckv.run()
    except (KeyboardInterrupt, SystemExit) as exc:
        if interrupts.seen or isinstance(exc, KeyboardInterrupt):
            from dwctl.deploy.terraform import Interrupted

            raise Interrupted(f"interrupted: checkov stopped scanning {target.label}; nothing was written.") from None
        raise ToolError(f"checkov stopped (exit {exc.code}) while scanning {target.label}; run `checkov "
                        f"{' '.join(argv)}` to see its messages.") from None
    reports = [r for r in ckv.scan_reports if r is not None]
    for report in reports:
        if report.errors:
            raise ToolError(f"checkov could not scan {target.label}: " + "; ".join(
                f"{kind}: {', '.join(map(str, where))}" for kind, where in report.errors.items()))
    return Scan(reports, ckv.config, apply_skips(reports, skips))


@contextlib.contextmanager
def _shape_cached_hcl():
    """checkov's terraform parser reads .tf files through the shape-cached parse, and without its alarm
    unless the user set HCL_PARSE_TIMEOUT_SEC; both restored afterwards."""
    from checkov.common.util.env_vars_config import env_vars_config
    from checkov.terraform import parser_utils

    from dwctl.gates.hcl_parse import Parser

    parser = Parser()
    shim = types.SimpleNamespace(load=lambda f: parser.loads(f.read()), loads=parser.loads)
    saved = parser_utils.hcl2, env_vars_config.HCL_PARSE_TIMEOUT_SEC
    parser_utils.hcl2 = shim
    if "HCL_PARSE_TIMEOUT_SEC" not in os.environ:
        env_vars_config.HCL_PARSE_TIMEOUT_SEC = 0
    try:
        yield
    finally:
        parser_utils.hcl2, env_vars_config.HCL_PARSE_TIMEOUT_SEC = saved


def apply_skips(reports: list[Any], skips: dict[str, str]) -> dict[str, int]:
    """Mark every failed result of a skipped ID as SKIPPED with the reason; {id: results skipped} for each
    skip. A waiver covers the resources that fail the check: the ones that pass it stay PASSED (the landing
    bucket passes CKV_AWS_145, which only the access-log bucket fails), and a skip nothing fails any more
    is reported as matching nothing, so a stale waiver shows."""
    from checkov.common.models.enums import CheckResult

    hits = {check_id: 0 for check_id in skips}
    for report in reports:
        moved, keep = [], []
        for record in report.failed_checks:
            if record.check_id in skips:
                record.check_result = {**record.check_result, "result": CheckResult.SKIPPED,
                                       "suppress_comment": f"dwctl spec scan.skip: {skips[record.check_id]}"}
                moved.append(record)
                hits[record.check_id] += 1
            else:
                keep.append(record)
        report.failed_checks[:] = keep
        report.skipped_checks.extend(moved)
    return hits


class _Interrupts:
    """Ctrl-C during the scan: checkov catches KeyboardInterrupt, logs its traceback and exits 2. We note
    the signal, keep that traceback off the terminal, and report one line (exit 130, like a shell)."""

    def __init__(self) -> None:
        self.seen = False
        self._previous = None

    def _handle(self, _signum, _frame) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def _quiet(self, _record) -> bool:
        return not self.seen

    def __enter__(self) -> "_Interrupts":
        import logging
        import signal

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._quiet)
        return self

    def __exit__(self, *exc) -> None:
        import logging
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._quiet)


# --- formats -------------------------------------------------------------------------------------
def render_format(scan: Scan, fmt: str, *, quiet: bool = False, color: bool = False) -> str:
    """One format as text, from the same reports (the code paths of checkov's own print_reports)."""
    import json

    from checkov.common.output.report import Report
    from checkov.common.util.json_utils import CustomJSONEncoder

    reports = [r for r in scan.reports if not r.is_empty()]
    if fmt == "cli":
        text = "".join(r.print_console(is_quiet=quiet) for r in reports) or "checkov: nothing to scan\n"
        return text if color else ANSI.sub("", text)
    if fmt == "json":
        dicts = [r.get_dict(is_quiet=quiet) for r in reports]
        data = dicts[0] if len(dicts) == 1 else (dicts or Report("").get_summary())
        return json.dumps(data, indent=4, cls=CustomJSONEncoder) + "\n"
    if fmt == "junitxml":
        scan.config.quiet = quiet
        properties = Report.create_test_suite_properties_block(scan.config)
        suites = [r.get_test_suite(properties=properties) for r in reports] or \
            [Report("").get_test_suite(properties=properties)]
        return Report.get_junit_xml_string(suites)
    if fmt == "sarif":
        from checkov.common.output.sarif import Sarif
        from checkov.common.util.banner import default_tool

        return json.dumps(Sarif(reports=reports, tool=default_tool).json, indent=2, cls=CustomJSONEncoder) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


def write_outputs(scan: Scan, formats: list[str], output_dir: Path, *, quiet: bool = False) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = output_dir / FILE_NAMES[fmt]
        path.write_text(render_format(scan, fmt, quiet=quiet), encoding="utf-8")
        written.append(path)
    return written


def summary_line(counts: dict[str, int]) -> str:
    line = f"checkov: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    if counts["parsing_errors"]:
        line += f", {counts['parsing_errors']} file(s) could not be parsed"
    return line


def skip_lines(skips: dict[str, str], hits: dict[str, int]) -> list[str]:
    """One line per spec skip with its reason; a skip that matched nothing says so (it may be stale)."""
    return [f"  skipped by the spec: {check_id} "
            f"({f'{hits[check_id]} result(s)' if hits.get(check_id) else 'matched nothing'}): {reason}"
            for check_id, reason in skips.items()]


# --- progress ------------------------------------------------------------------------------------
class Progress:
    """A spinner with elapsed seconds on stderr while checkov works; only on a terminal, so logs stay clean.

    Written with os.write on the raw descriptor: checkov forks workers, and a child must never
    inherit a held lock of Python's buffered stderr.
    """

    FRAMES = "|/-\\"

    def __init__(self, label: str, *, fd: int | None = None, enabled: bool = True, interval: float = 0.25):
        self.label, self.interval = label, interval
        self.fd = _stderr_fd() if fd is None else fd
        self.active = enabled and self.fd is not None and _isatty(self.fd)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0

    def __enter__(self) -> "Progress":
        if self.active:
            self._start = time.monotonic()
            try:
                self._draw(0)  # at once: even a short scan shows that something runs
                self._thread = threading.Thread(target=self._spin, daemon=True)
                self._thread.start()
            except BaseException:  # Ctrl-C right here: __exit__ would not run, so clean up now
                self.__exit__()
                raise
        return self

    def _spin(self) -> None:
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            self._draw(tick)

    def _draw(self, tick: int) -> None:
        elapsed = time.monotonic() - self._start
        frame = f"\r{self.FRAMES[tick % len(self.FRAMES)]} {self.label} ({elapsed:.0f}s)\x1b[K"
        try:
            os.write(self.fd, frame.encode())
        except OSError:
            self._stop.set()

    def __exit__(self, *exc) -> None:
        if self.active:
            self._stop.set()
            if self._thread is not None and self._thread.is_alive():
                self._thread.join()
            try:
                os.write(self.fd, b"\r\x1b[K")
            except OSError:
                pass


def _stderr_fd() -> int | None:
    """The descriptor behind sys.stderr (None when it has none, e.g. captured by a test runner)."""
    import sys

    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


# --- the saved plan --------------------------------------------------------------------------------
def saved_plan_json(spec: Any, root: Path, env: str | None, terraform_bin: str | None, warn) -> Path:
    """Write the JSON of the plan `dwctl plan` saved (iac/.dwctl/<env>/plan.tfplan) beside it; return its path.

    `terraform show -json` runs with that environment's data dir, as the plan did; a plan that no
    longer matches the spec or iac/ is still scanned (it is what `apply` was about to do), with a warning.
    """
    import json

    from dwctl.deploy import actions as deploy
    from dwctl.deploy import terraform
    from dwctl.errors import NotReady

    stack = deploy.stack_for(spec, root, env)
    planfile = stack.plan_path("plan")
    if not planfile.is_file():
        raise NotReady(f"no saved plan for {stack.env.name}: {planfile.as_posix()} does not exist. Run "
                         f"`dwctl plan --env {stack.env.name}` first, or scan the configuration without --plan.")
    binary = terraform.find(terraform_bin)
    data = deploy.driver(stack, binary, echo=None).show_json(stack.rel(planfile.name))
    try:
        record = json.loads(stack.fingerprint_path("plan").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    reasons = deploy.stale_reasons(stack, binary, record) if record else ["it has no fingerprint"]
    if reasons:
        warn(f"warning: the saved plan for {stack.env.name} is stale ({'; '.join(reasons)}); scanning it anyway.")
    out = stack.dir / "plan.tfplan.json"
    out.write_text(json.dumps(data), encoding="utf-8")
    warn(f"dwctl: scanning the saved plan for {stack.env.name}: {planfile.as_posix()} "
         f"(made with {binary.describe()})")
    return out
