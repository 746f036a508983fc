"""The checks behind `dwctl validate`: is what sits in iac/ and sql/ fit to deploy?

It validates the tree ON DISK (that is what `plan`/`apply` and CI would use); the spec is only
needed to know what the templates render now. Each check says pass, fail or skip -- never a
silent pass: a check that cannot run (no terraform, iac/ not initialised) says why it skipped.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dwctl.errors import DwctlError, SpecError

Status = Literal["pass", "fail", "skip"]
MAX_LISTED = 50  # problems shown per check; the count is always complete


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    problems: tuple[str, ...] = ()


@dataclass
class Context:
    """What the checks share: the root, the loaded spec (or None) and the terraform binary (or why not)."""

    spec_path: Path
    root: Path
    provider_schema: Path | None = None
    terraform_bin: str | None = None
    spec: object | None = None
    binary: object | None = None
    no_binary: str = ""  # why there is no binary
    explicit_binary: bool = False
    rendered: dict | None = None  # what the spec renders now ({path: text}), once check_rendered ran

    @property
    def iac(self) -> Path:
        return self.root / "iac"

    def shown(self, rel: str) -> str:
        """A path under iac/ as the user can open it: iac/x.tf for -o ., else <root>/iac/x.tf."""
        return (self.iac / rel).as_posix()


def run_checks(spec_path: Path, root: Path, *, provider_schema: Path | None = None,
               terraform_bin: str | None = None) -> list[Check]:
    """All five checks, in order. The terraform subprocesses (fmt, validate) run in a worker thread while
    this one renders and parses HCL, so on a large stack their time hides behind the Python work."""
    from concurrent.futures import ThreadPoolExecutor

    ctx = Context(spec_path, root, provider_schema, terraform_bin, explicit_binary=bool(terraform_bin))
    spec = check_spec(ctx)
    _find_terraform(ctx)
    schema = _started(check_schema, ctx)  # parsing every .tf file, beside the render (forked before any thread)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dwctl-terraform") as pool:
        validated = pool.submit(check_terraform_validate, ctx)
        rendered = check_rendered(ctx)
        fmt = pool.submit(check_fmt, ctx)  # after the render: files that are the render need no formatter
        return [spec, rendered, fmt.result(), schema(), validated.result()]


def _started(check, ctx: Context):
    """Start `check(ctx)` in a forked child; returns a function that waits for its Check (or raises what
    it raised). Where fork is not the platform's way (not Linux), not safe (another thread is running: a
    fork copies its locks held), or the child cannot report, the check runs here instead: the result is
    the same either way, only the wall time differs."""
    import multiprocessing
    import sys
    import threading

    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return lambda: check(ctx)
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)

    def child() -> None:
        try:
            outcome = ("done", check(ctx))
        except BaseException as exc:  # noqa: BLE001  (handed to the parent, which raises it)
            outcome = ("raised", exc)
        try:
            send.send(outcome)
        except Exception:  # noqa: BLE001  (an exception that does not pickle: the parent runs the check)
            send.send(("again", None))

    process = fork.Process(target=child, name="dwctl-provider-schema", daemon=True)
    process.start()
    send.close()

    def result():
        try:
            kind, value = receive.recv()
        except EOFError:  # the child ended without a word (killed): run the check here
            kind, value = "again", None
        finally:
            receive.close()
            if process.is_alive():
                process.terminate()
            process.join()
        if kind == "raised":
            raise value
        return value if kind == "done" else check(ctx)

    return result


def _listed(items: list[str]) -> tuple[str, ...]:
    extra = len(items) - MAX_LISTED
    return tuple(items[:MAX_LISTED]) + ((f"... and {extra} more",) if extra > 0 else ())


# --- 1 and 2: the spec, and whether the tree on disk is what it renders --------------------------
def check_spec(ctx: Context) -> Check:
    from dwctl.spec.read import display_name, load_spec

    try:
        ctx.spec = load_spec(ctx.spec_path)
    except SpecError as exc:
        return Check("spec", "fail", f"{display_name(ctx.spec_path)} does not validate "
                     f"({len(exc.problems)} problem(s))", _listed(exc.problems))
    spec = ctx.spec
    return Check("spec", "pass", f"{display_name(ctx.spec_path)}: project {spec.project}, "
                 f"{len(spec.tables)} table(s), environment {spec.environment}")


def check_rendered(ctx: Context) -> Check:
    """`dwctl render --check`: the same render and comparison, listing what is stale instead of a diff."""
    if ctx.spec is None:
        return Check("rendered", "skip", "the spec does not load, so there is nothing to compare with")
    from dwctl.render.engine import render
    from dwctl.render.output import compare
    from dwctl.render.to_disk import spec_label
    from dwctl.spec.read import display_name

    files = ctx.rendered = render(ctx.spec, spec_label(ctx.spec_path, ctx.root))
    changes = compare(ctx.root, files)
    stale = [f"{(ctx.root / p).as_posix()} ({'changed' if (ctx.root / p).exists() else 'missing'})"
             for p in sorted(changes.write)]
    stale += [f"{(ctx.root / p).as_posix()} (no longer rendered)" for p in changes.delete]
    if stale:
        return Check("rendered", "fail", f"{len(stale)} file(s) differ from what {display_name(ctx.spec_path)} "
                     "renders now: run `dwctl render`", _listed(stale))
    return Check("rendered", "pass", f"iac/ and sql/ are what the spec renders ({len(files)} files)")


# --- terraform: 3 fmt, 4 provider schema, 5 validate -------------------------------------------
def _find_terraform(ctx: Context) -> None:
    from dwctl.deploy import terraform

    try:
        ctx.binary = terraform.find(ctx.terraform_bin)
    except DwctlError as exc:
        ctx.no_binary = exc.message


def _no_terraform(ctx: Context, name: str) -> Check:
    if ctx.explicit_binary:  # asked for a binary that does not work: that is a failure, not a skip
        return Check(name, "fail", ctx.no_binary)
    return Check(name, "skip", f"no terraform binary: {ctx.no_binary}")


def _terraform(ctx: Context, data_dir: Path | None = None):
    from dwctl.deploy.terraform import Terraform

    return Terraform(ctx.binary, ctx.iac, data_dir=data_dir, echo=None)


def _no_iac(ctx: Context, name: str) -> Check | None:
    if not ctx.iac.is_dir():
        return Check(name, "skip", f"{ctx.iac.as_posix()} does not exist (run `dwctl render`)")
    return None


def check_fmt(ctx: Context) -> Check:
    if (missing := _no_iac(ctx, "fmt")) or ctx.binary is None:
        return missing or _no_terraform(ctx, "fmt")
    from python_terraform import IsFlagged

    from dwctl.deploy.terraform import diagnostics

    if (rendered := _all_as_rendered(ctx)) is not None:
        return Check("fmt", "pass", f"the {rendered} file(s) `{ctx.binary.name} fmt` reads in {ctx.iac.as_posix()} are "
                     "byte for byte what dwctl renders, which is canonical by construction "
                     "(tests/render/test_fmt_property.py holds Terraform's formatter to it); no other file to check")
    result = _terraform(ctx).run("fmt", stream=False, ok=(0, 1, 2, 3), check=IsFlagged, recursive=IsFlagged)
    if result.code == 0:
        return Check("fmt", "pass", f"`{ctx.binary.name} fmt -check -recursive` finds nothing to change")
    files = [ctx.shown(line.strip()) for line in result.stdout.splitlines() if line.strip()]
    if files:
        return Check("fmt", "fail", f"{len(files)} file(s) are not in canonical format: run "
                     f"`{ctx.binary.name} fmt -recursive {ctx.iac.as_posix()}`", _listed(files))
    why = diagnostics(result.stderr) or result.stderr.strip() or f"exit {result.code}"
    return Check("fmt", "fail", f"`{ctx.binary.name} fmt` cannot parse the configuration: {why}")


# The files `terraform fmt -recursive` reads (it skips hidden folders such as .terraform/).
FMT_SUFFIXES = (".tf", ".tfvars", ".tftest.hcl", ".tfmock.hcl")


def _all_as_rendered(ctx: Context) -> int | None:
    """How many files Terraform's formatter would read, when each is byte for byte the render; else None
    (a file of your own, an edit, another line ending: then the formatter reads the whole tree). At
    1,000 tables Terraform takes ~2.5 s on the rendered HCL, more than the render itself."""
    import os

    if not ctx.rendered:
        return None
    count = 0
    for folder, subfolders, names in os.walk(ctx.iac):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        for name in names:
            if not name.endswith(FMT_SUFFIXES):
                continue
            path = Path(folder) / name
            text = ctx.rendered.get(path.relative_to(ctx.root).as_posix())
            if text is None or path.read_bytes() != text.encode("utf-8"):
                return None
            count += 1
    return count


def data_dir(ctx: Context) -> Path | None:
    """Where `terraform init` left providers: the spec's environment's data dir (`dwctl init`), another
    environment's, or plain iac/.terraform (`terraform init` by hand)."""
    from dwctl.deploy.actions import STATE_DIR

    candidates = []
    if ctx.spec is not None:
        candidates.append(ctx.iac / STATE_DIR / ctx.spec.environment / "terraform")
    candidates += sorted((ctx.iac / STATE_DIR).glob("*/terraform"))
    candidates.append(ctx.iac / ".terraform")
    return next((c for c in candidates if c.is_dir()), None)


def _uninitialised(ctx: Context) -> str:
    return (f"{ctx.iac.as_posix()} is not initialised (no .terraform/ or .dwctl/<env>/terraform/): "
            "run `dwctl init`")


def check_schema(ctx: Context) -> Check:
    """Every *.tf of the root module against --provider-schema, or the real schema of the installed providers."""
    name = "provider schema"
    if missing := _no_iac(ctx, name):
        return missing
    from dwctl.gates.provider_schema import load_schema, validate_files

    if ctx.provider_schema is not None:
        source = ctx.provider_schema.as_posix()
        try:
            schema = load_schema(ctx.provider_schema)
        except (OSError, ValueError) as exc:
            return Check(name, "fail", f"--provider-schema {source}: cannot use it: {getattr(exc, 'strerror', None) or exc}")
    else:
        found = data_dir(ctx)
        if found is None:
            return Check(name, "skip", f"no --provider-schema, and {_uninitialised(ctx)}")
        if ctx.binary is None:
            return _no_terraform(ctx, name)
        try:
            schema, source = _installed_schema(ctx, found)
        except DwctlError as exc:
            return Check(name, "fail", exc.message)
        if schema is None:
            return Check(name, "skip", f"the initialised configuration uses no providers ({source})")
    files = {ctx.shown(p.name): p.read_text(encoding="utf-8", errors="replace") for p in sorted(ctx.iac.glob("*.tf"))}
    if not files:
        return Check(name, "fail", f"{ctx.iac.as_posix()} holds no .tf files")
    problems = [str(p) for p in validate_files(files, schema)]
    if problems:
        return Check(name, "fail", f"{len(problems)} problem(s) in {len(files)} file(s) against {source}",
                     _listed(problems))
    return Check(name, "pass", f"{len(files)} file(s) match {source}")


def _installed_schema(ctx: Context, found: Path):
    """`terraform providers schema -json` with the data dir `init` used; (None, why) when there are no providers."""
    from python_terraform import IsFlagged

    from dwctl.errors import ToolError
    from dwctl.gates.provider_schema import load_schema

    data = None if found == ctx.iac / ".terraform" else found
    source = f"`{ctx.binary.name} providers schema -json` ({found.as_posix()})"
    try:
        text = _terraform(ctx, data).run("providers schema", stream=False, json=IsFlagged).stdout
    except ToolError as exc:
        if "Backend initialization required" not in (getattr(exc, "detail", "") or exc.message):
            raise
        text = _schema_without_backend(ctx, found)
    try:
        if not json.loads(text).get("provider_schemas"):
            return None, source
    except ValueError:
        raise ToolError(f"{source} did not print JSON") from None
    with tempfile.TemporaryDirectory(prefix="dwctl-schema-") as tmp:
        path = Path(tmp) / "schema.json"
        path.write_text(text, encoding="utf-8")
        return load_schema(path), source


def _schema_without_backend(ctx: Context, found: Path) -> str:
    """`providers schema` for a root module initialised with `init -backend=false` (what CI does with a spec
    that has a `backend:`): Terraform refuses the command until the backend is initialised, though the schema
    needs only the installed providers. So run it on a copy of the *.tf files and the lock file with the
    backend blocks taken out, against the same data dir; nothing in iac/ is touched."""
    import shutil

    from python_terraform import IsFlagged

    from dwctl.deploy.terraform import Terraform

    with tempfile.TemporaryDirectory(prefix="dwctl-schema-") as tmp:
        for tf_file in sorted(ctx.iac.glob("*.tf")):
            text = tf_file.read_text(encoding="utf-8", errors="replace")
            (Path(tmp) / tf_file.name).write_text(_BACKEND_BLOCK.sub("", text), encoding="utf-8")
        lock = ctx.iac / ".terraform.lock.hcl"
        if lock.is_file():
            shutil.copyfile(lock, Path(tmp) / lock.name)
        tf = Terraform(ctx.binary, Path(tmp), data_dir=found, echo=None)
        return tf.run("providers schema", stream=False, json=IsFlagged).stdout


# A backend block as `terraform fmt` lays it out (fmt runs first): one line, or indented lines up to the
# closing brace at the same indentation.
_BACKEND_BLOCK = re.compile(r'^([ \t]*)backend[ \t]+"[^"\n]*"[ \t]*\{(?:[ \t]*\}|.*?\n\1\})[ \t]*$',
                            re.MULTILINE | re.DOTALL)


def check_terraform_validate(ctx: Context) -> Check:
    name = "terraform validate"
    if missing := _no_iac(ctx, name):
        return missing
    found = data_dir(ctx)
    if found is None:
        return Check(name, "skip", f"providers are not installed: {_uninitialised(ctx)}")
    if ctx.binary is None:
        return _no_terraform(ctx, name)
    from python_terraform import IsFlagged

    tf = _terraform(ctx, None if found == ctx.iac / ".terraform" else found)
    result = tf.run("validate", stream=False, ok=(0, 1), json=IsFlagged)
    try:
        report = json.loads(result.stdout)
    except ValueError:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        return Check(name, "fail", f"`{ctx.binary.name} validate -json` printed no JSON: {tail[0] if tail else ''}")
    problems = [_diagnostic(ctx, d) for d in report.get("diagnostics") or [] if d.get("severity") == "error"]
    if not report.get("valid") or problems:
        return Check(name, "fail", f"{len(problems)} error(s) from `{ctx.binary.name} validate` "
                     f"({found.as_posix()})", _listed(problems))
    warnings = sum(1 for d in report.get("diagnostics") or [] if d.get("severity") == "warning")
    return Check(name, "pass", f"the configuration is valid ({ctx.binary.describe()}"
                 + (f", {warnings} warning(s)" if warnings else "") + ")")


def _diagnostic(ctx: Context, d: dict) -> str:
    where = d.get("range") or {}
    place = ""
    if where.get("filename"):
        place = f"{ctx.shown(where['filename'])}:{(where.get('start') or {}).get('line', 1)}: "
    detail = " ".join(str(d.get("detail") or "").split())
    return f"{place}{d.get('summary', 'error')}" + (f": {detail}" if detail else "")


# --- output --------------------------------------------------------------------------------------
def counts(checks: list[Check]) -> dict[str, int]:
    return {s: sum(1 for c in checks if c.status == s) for s in ("pass", "fail", "skip")}


def ok(checks: list[Check], strict: bool = False) -> bool:
    """No check failed; with `strict`, none skipped either (a skipped check checked nothing)."""
    return not any(c.status == "fail" or (strict and c.status == "skip") for c in checks)


def to_text(checks: list[Check], strict: bool = False, paint=lambda text, status: text) -> str:
    """An aligned table (FAIL in capitals), each failure's problems indented under it, then the totals.
    `paint(text, status)` may colour the status column (the command layer decides whether to)."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'STATUS':<6}  {'CHECK':<{width}}  DETAIL"]
    for c in checks:
        status = paint(f"{c.status.upper() if c.status == 'fail' else c.status:<6}", c.status)
        lines.append(f"{status}  {c.name:<{width}}  {c.detail}")
        lines += [f"{'':<6}  {'':<{width}}    {p}" for p in c.problems]
    n = counts(checks)
    lines.append(f"validate: {n['pass']} pass, {n['fail']} fail, {n['skip']} skip")
    if strict and n["skip"]:
        skipped = ", ".join(c.name for c in checks if c.status == "skip")
        lines.append(f"strict: {n['skip']} skipped check(s) fail the run ({skipped}); make them runnable "
                     "(`terraform -chdir=iac init -backend=false` or --provider-schema), or drop --strict")
    return "\n".join(lines)


def to_json(checks: list[Check], strict: bool = False) -> str:
    return json.dumps({
        "ok": ok(checks, strict),
        "strict": strict,
        "counts": counts(checks),
        "checks": [{"name": c.name, "status": c.status, "detail": c.detail, "problems": list(c.problems)}
                   for c in checks],
    }, indent=2)

