"""init / plan / apply / destroy / output for one environment: the safety rules around the driver.

Everything per environment lives in iac/.dwctl/<env>/: Terraform's data directory (TF_DATA_DIR, so
each environment keeps its own backend and workspace and can never run against another's state),
the saved plan, its fingerprint, and logs of what Terraform printed. `apply` applies only a plan that
`plan` saved, and only while its fingerprint (spec, files under iac/, binary, environment) still holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from dwctl.deploy import plan_summary as plansummary
from dwctl.deploy.terraform import Binary, Terraform
from dwctl.errors import DwctlError, NotReady, ToolError, UsageError
from dwctl.render.environments import EnvTarget, target
from dwctl.spec.model import Spec

STATE_DIR = ".dwctl"
LOCKFILE_MIN = (1, 10, 0)  # S3-native state locking (use_lockfile)
# Not configuration: state, Terraform's own caches and ours.
IGNORED = re.compile(r"^(\.|terraform\.tfstate)")

Echo = Callable[[str], None]


class Aborted(DwctlError):
    """The user declined at a confirmation prompt; nothing was changed."""

    exit_code = 1


@dataclass(frozen=True)
class Options:
    """Pass-through to terraform: -lock-timeout, -parallelism, -target and anything after `--`."""

    lock_timeout: str | None = None
    parallelism: int | None = None
    targets: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stack:
    """One environment of one rendered iac/ tree."""

    iac: Path
    env: EnvTarget
    spec_sha256: str
    protect_data: bool = True  # the spec's flag: destroy is refused while it is set

    @property
    def dir(self) -> Path:
        return self.iac / STATE_DIR / self.env.name

    @property
    def data_dir(self) -> Path:
        return self.dir / "terraform"

    def rel(self, name: str) -> str:
        """A path under the environment's dir as terraform (cwd iac/) sees it."""
        return f"{STATE_DIR}/{self.env.name}/{name}"

    def plan_path(self, kind: str) -> Path:
        return self.dir / f"{kind}.tfplan"

    def fingerprint_path(self, kind: str) -> Path:
        return self.dir / f"{kind}.json"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        ignore = self.iac / STATE_DIR / ".gitignore"
        if not ignore.exists():  # plan files and state caches can hold secrets: never commit them
            ignore.write_text("*\n", encoding="utf-8")


def spec_sha256(spec: Spec) -> str:
    canonical = json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def stack_for(spec: Spec, root: Path, env: str | None) -> Stack:
    return Stack(root / "iac", target(spec, env), spec_sha256(spec), spec.protect_data)


def ensure_rendered(spec: Spec, spec_path: Path, root: Path, *, render: bool, echo: Echo) -> None:
    """Refuse to run Terraform on an iac/ that the (already loaded) spec would render differently (unless --render)."""
    from dwctl.render.engine import render as render_files
    from dwctl.render.output import compare, write_tree
    from dwctl.render.to_disk import spec_label

    changes = compare(root, render_files(spec, spec_label(spec_path, root)))
    stale = [p for p in changes.stale if p.startswith("iac/")]
    if not stale:
        return
    if render:
        write_tree(root, changes)
        echo(f"rendered: {len(changes.write)} file(s) written, {len(changes.delete)} deleted under {root}")
        return
    shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    raise NotReady(f"{root / 'iac'} is stale: {len(stale)} file(s) differ from what {spec_path} renders "
                     f"({shown}). Run `dwctl render` first, or pass --render.")


def files_digest(iac: Path) -> dict[str, str]:
    """sha256 of every configuration file Terraform reads under iac/ (not state, caches or .dwctl/)."""
    out = {}
    for path in sorted(iac.rglob("*")):
        rel = path.relative_to(iac)
        if path.is_file() and not any(IGNORED.match(part) for part in rel.parts):
            out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def driver(stack: Stack, binary: Binary, **kwargs) -> Terraform:
    """A driver bound to this environment's data dir and workspace; environments share one provider cache."""
    extra_env = {}
    if not os.environ.get("TF_PLUGIN_CACHE_DIR"):
        stack.prepare()
        cache = stack.iac / STATE_DIR / "plugin-cache"
        cache.mkdir(exist_ok=True)
        extra_env["TF_PLUGIN_CACHE_DIR"] = str(cache.resolve())
    return Terraform(binary, stack.iac, data_dir=stack.data_dir, workspace=stack.env.workspace,
                     extra_env=extra_env, **kwargs)


def _write_log(stack: Stack, verb: str, tf: Terraform) -> None:
    if tf.transcript:
        stack.prepare()
        (stack.dir / f"{verb}.log").write_text("".join(tf.transcript), encoding="utf-8")


def _require_inputs(stack: Stack) -> None:
    for rel in (stack.env.var_file, stack.env.backend_file):
        if rel and not (stack.iac / rel).is_file():
            raise NotReady(f"{stack.iac / rel} is missing: run `dwctl render` (it renders one tfvars file and "
                             f"one backend config per environment).")


def _backend_block(iac: Path) -> bool:
    pattern = re.compile(r'\bbackend\s+"s3"\s*\{')
    return any(pattern.search(p.read_text(encoding="utf-8", errors="replace")) for p in iac.glob("*.tf"))


# --- init ---------------------------------------------------------------------------------------
def init(stack: Stack, tf: Terraform, opts: Options = Options(), *, echo: Echo = print) -> None:
    """`terraform init` with this environment's backend config, then select (or create) its workspace."""
    _require_inputs(stack)
    backend = stack.env.backend
    if backend is not None:
        if backend.use_lockfile and tf.binary.version < LOCKFILE_MIN:
            raise ToolError(f"the spec's backend uses use_lockfile, which needs Terraform >= 1.10; "
                            f"{tf.binary.describe()} is older. Install a newer Terraform or use dynamodb_table.")
        if not _backend_block(stack.iac):
            raise UsageError(f"the spec sets a backend, but no .tf file in {stack.iac} declares `backend \"s3\" {{}}` "
                             "in its terraform block, so Terraform would keep the state locally; refusing.")
    else:
        echo(f"note: the spec sets no backend: {stack.env.name}'s state stays on this machine under {stack.iac}.")
    stack.prepare()
    try:
        tf.init(backend_config=stack.env.backend_file, lock_timeout=opts.lock_timeout, extra=opts.extra)
        created = tf.select_workspace(stack.env.workspace)
    finally:
        _write_log(stack, "init", tf)
    record = {"env": stack.env.name, "workspace": stack.env.workspace, "backend_file": stack.env.backend_file,
              "backend_sha256": _sha256(stack.iac / stack.env.backend_file) if stack.env.backend_file else None,
              "terraform": {"path": tf.binary.path, "version": tf.binary.version_text}}
    (stack.dir / "init.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    echo(f"{stack.env.name}: initialised; workspace {stack.env.workspace!r} {'created' if created else 'selected'}.")


def require_init(stack: Stack) -> None:
    hint = f"run `dwctl init --env {stack.env.name}`"
    try:
        record = json.loads((stack.dir / "init.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotReady(f"environment {stack.env.name!r} is not initialised in {stack.iac}: {hint}.") from None
    now = _sha256(stack.iac / stack.env.backend_file) if stack.env.backend_file else None
    if record.get("backend_file") != stack.env.backend_file or record.get("backend_sha256") != now:
        raise NotReady(f"the backend configuration of {stack.env.name!r} changed since it was initialised: {hint} "
                         "(add `-- -migrate-state` to move existing state, as Terraform will ask).")


# --- plan ---------------------------------------------------------------------------------------
def plan(stack: Stack, tf: Terraform, opts: Options = Options(), *, kind: str = "plan",
         spec: Spec | None = None) -> tuple[int, plansummary.Summary]:
    """Plan to iac/.dwctl/<env>/<kind>.tfplan and fingerprint it. Returns (0 no changes | 2 changes, summary).
    With the spec, the summary says which warehouse migrations the plan implies."""
    require_init(stack)
    _require_inputs(stack)
    stack.prepare()
    planfile, fingerprint = stack.plan_path(kind), stack.fingerprint_path(kind)
    fingerprint.unlink(missing_ok=True)  # the old plan is void from here on, whatever happens
    planfile.unlink(missing_ok=True)
    try:
        code = tf.plan(stack.rel(planfile.name), var_files=[stack.env.var_file] if stack.env.var_file else [],
                       targets=opts.targets, lock_timeout=opts.lock_timeout, parallelism=opts.parallelism,
                       destroy=kind == "destroy", extra=opts.extra)
    except DwctlError:
        planfile.unlink(missing_ok=True)  # Terraform also saves a plan that errored: leave none behind
        raise
    finally:
        _write_log(stack, kind, tf)
    shown = tf.show_json(stack.rel(planfile.name))
    summary = plansummary.summarize(shown)
    if spec is not None and kind == "plan":
        summary = replace(summary, migrations=tuple(_migrations(stack, shown, spec)))
    files = files_digest(stack.iac)
    record = {
        "kind": kind,
        "env": stack.env.name,
        "workspace": stack.env.workspace,
        "spec_sha256": stack.spec_sha256,
        "files_sha256": hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest(),
        "files": files,
        "terraform": {"path": tf.binary.path, "version": tf.binary.version_text},
        "plan_sha256": _sha256(planfile),
        "exit_code": code,
        "summary": summary.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    fingerprint.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return code, summary


def _migrations(stack: Stack, shown: dict, spec: Spec) -> list[str]:
    """From the columns the state holds to the job config about to be uploaded (iac/ is fresh here)."""
    from dwctl.render import job_config
    from dwctl.render.migration_plan import describe_plan

    config = stack.iac.parent / job_config.PATH
    return describe_plan(shown, config.read_text(encoding="utf-8"), spec) if config.is_file() else []


def stale_reasons(stack: Stack, binary: Binary, record: dict, kind: str = "plan") -> list[str]:
    """Why a saved plan no longer matches what `apply` would run with; empty when it still does."""
    reasons = []
    if record.get("env") != stack.env.name or record.get("workspace") != stack.env.workspace:
        reasons.append(f"it was made for environment {record.get('env')!r}, not {stack.env.name!r}")
    if record.get("spec_sha256") != stack.spec_sha256:
        reasons.append("the spec changed")
    old, new = record.get("files", {}), files_digest(stack.iac)
    changed = [f"{p} (changed)" for p in sorted(old) if p in new and new[p] != old[p]]
    changed += [f"{p} (added)" for p in sorted(new) if p not in old]
    changed += [f"{p} (removed)" for p in sorted(old) if p not in new]
    if changed:
        reasons.append(f"files under {stack.iac} changed: {', '.join(changed[:8])}"
                       f"{f' and {len(changed) - 8} more' if len(changed) > 8 else ''}")
    was = record.get("terraform", {})
    if (was.get("path"), was.get("version")) != (binary.path, binary.version_text):
        reasons.append(f"it was made with terraform {was.get('version')} at {was.get('path')}, "
                       f"now {binary.describe()}")
    if record.get("plan_sha256") != _sha256(stack.plan_path(kind)):
        reasons.append(f"the plan file {stack.plan_path(kind)} is missing or was modified")
    return reasons


def report(stack: Stack, code: int, summary: plansummary.Summary) -> dict:
    """The machine-readable result of `dwctl plan --json`."""
    return {"env": stack.env.name, "workspace": stack.env.workspace, "exit_code": code,
            "plan_file": str(stack.plan_path("plan")), **summary.to_dict()}


def show_summary(stack: Stack, summary: plansummary.Summary, echo: Echo, warn: Echo) -> None:
    echo(f"{stack.env.name} (workspace {stack.env.workspace}): {plansummary.headline(summary)}")
    if summary.has_changes:
        echo(plansummary.table(summary))
    said = plansummary.migrations(summary)
    if said:
        echo(said)
    loud = plansummary.warning(summary)
    if loud:
        warn(loud)


# --- apply --------------------------------------------------------------------------------------
def apply(stack: Stack, tf: Terraform, opts: Options = Options(), *, yes: bool = False,
          confirm: Callable[[str], bool] | None = None, echo: Echo = print, warn: Echo = print) -> None:
    """Apply exactly the saved plan. `confirm` is None when nobody can answer (not a terminal)."""
    require_init(stack)
    record = _saved(stack, "plan")
    reasons = stale_reasons(stack, tf.binary, record)
    if reasons:
        raise NotReady(f"refusing to apply the saved plan for {stack.env.name}: it is stale: "
                         f"{'; '.join(reasons)}. Run `dwctl plan --env {stack.env.name}` again.")
    summary = plansummary.Summary.from_dict(record["summary"])
    show_summary(stack, summary, echo, warn)
    if record.get("exit_code") == 0:
        _discard(stack, "plan")
        echo("Nothing to apply.")
        return
    _confirm(f"Apply this plan to {stack.env.name}?", yes, confirm, what="apply the saved plan")
    try:
        tf.apply(stack.rel(stack.plan_path("plan").name), lock_timeout=opts.lock_timeout,
                 parallelism=opts.parallelism, extra=opts.extra)
    finally:
        _write_log(stack, "apply", tf)
    _discard(stack, "plan")  # a plan applies once; Terraform would call it stale anyway


def _saved(stack: Stack, kind: str) -> dict:
    try:
        return json.loads(stack.fingerprint_path(kind).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise NotReady(f"no saved plan for {stack.env.name}: run `dwctl plan --env {stack.env.name}` first "
                         "(apply only applies a plan that dwctl plan saved).") from None


def _discard(stack: Stack, kind: str) -> None:
    stack.fingerprint_path(kind).unlink(missing_ok=True)
    stack.plan_path(kind).unlink(missing_ok=True)


def _confirm(question: str, yes: bool, confirm: Callable[[str], bool] | None, *, what: str) -> None:
    if yes:
        return
    if confirm is None:
        raise UsageError(f"standard input is not a terminal, so nobody can confirm: pass --yes to {what}.")
    if not confirm(question):
        raise Aborted("aborted: nothing was changed.")


# --- destroy ------------------------------------------------------------------------------------
def refuse_guarded(stack: Stack) -> None:
    """Refuse while the spec or prevent_destroy guards protect data (checked before any terraform is needed)."""
    from dwctl.deploy.guards import guards

    if stack.protect_data:
        raise UsageError(f"refusing to destroy {stack.env.name}: the spec protects its data (`protect_data: true`, "
                         "the default), so the landing bucket, warehouse namespace, catalog and DMS task carry "
                         "prevent_destroy guards. To destroy them and their data, set `protect_data: false` in "
                         "the spec, run `dwctl render` and `dwctl destroy` again.")
    guarded = guards(stack.iac)
    if guarded:
        listed = ", ".join(f"{g.address} ({g.file})" for g in guarded[:8])
        raise UsageError(f"refusing to destroy {stack.env.name}: {len(guarded)} resource(s) in {stack.iac} carry "
                         f"prevent_destroy guards: {listed}. They hold data. To destroy them and their data, set "
                         "`protect_data: false` in the spec, run `dwctl render` and `dwctl destroy` again "
                         "(guards you wrote yourself you must remove yourself).")


def destroy(stack: Stack, tf: Terraform, opts: Options = Options(), *, yes: bool = False,
            ask: Callable[[str], str] | None = None, echo: Echo = print, warn: Echo = print) -> int:
    """Refuse while data is guarded; plan the destroy, show it, have the user type the env name, apply."""
    refuse_guarded(stack)
    require_init(stack)
    code, summary = plan(stack, tf, opts, kind="destroy")
    show_summary(stack, summary, echo, warn)
    if code == 0:
        _discard(stack, "destroy")
        echo("Nothing to destroy.")
        return 0
    if not yes:
        if ask is None:
            _discard(stack, "destroy")
            raise UsageError(f"standard input is not a terminal, so nobody can type the environment name: "
                             f"pass --yes to destroy {stack.env.name}.")
        typed = ask(f"This destroys everything above in {stack.env.name}. Type the environment name to confirm")
        if typed.strip() != stack.env.name:
            _discard(stack, "destroy")
            raise Aborted(f"aborted: {typed.strip()!r} is not {stack.env.name!r}; nothing was destroyed.")
    try:
        tf.apply(stack.rel(stack.plan_path("destroy").name), lock_timeout=opts.lock_timeout,
                 parallelism=opts.parallelism)
    finally:
        _write_log(stack, "destroy", tf)
        _discard(stack, "destroy")
    return 0


# --- output -------------------------------------------------------------------------------------
def output(stack: Stack, tf: Terraform, *, as_json: bool = False) -> str:
    require_init(stack)
    return tf.output(as_json=as_json)
