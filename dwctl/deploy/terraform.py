"""The one module that runs Terraform (or OpenTofu): finds the binary, builds exact command lines, streams.

python-terraform 0.10.1 is the argument builder, but its helpers do not fit Terraform >= 0.15:
`destroy()` sends the removed `-force`, every helper (`plan`, `apply`, `init`...) adds `-var-file`,
`-state`, `-target` defaults (an empty `-var-file` breaks `apply PLANFILE`) and `init()` defaults to
`-reconfigure`, which silently abandons existing state. So every command line here comes from
`Terraform.generate_cmd_string(...)` -- the builder `Terraform.cmd()` itself uses, which adds only
the options it is given -- with exactly the flags we mean.

We run that command line ourselves instead of through `cmd()`, because `cmd()` either captures
(silent until the end) or passes output through (needs real file descriptors, returns nothing), takes
no per-call environment (TF_DATA_DIR, TF_WORKSPACE), leaks `synchronous=False` into argv as
`-synchronous=false`, and lets Ctrl-C kill the child with Python. Our runner tees terraform's output
live to the user and into a transcript, starts it in its own process group and forwards Ctrl-C as
one SIGINT so Terraform stops cleanly and releases the state lock; it never kills Terraform hard.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import click

from dwctl.errors import ToolError

MIN_VERSION = (1, 0, 0)  # the flags the driver uses; the stack's own floor is its required_version (below)
STACK_MIN = "1.5"  # templates/iac/main.tf.j2 renders `required_version = ">= 1.5.0"` (a test keeps them equal)
TOFU_FIRST = (1, 6, 0)  # OpenTofu forked from Terraform 1.5/1.6: its first release, 1.6.0, is that generation
ENV_VAR = "DWCTL_TERRAFORM"
LOG = logging.getLogger("dwctl")  # -v prints each command line (dwctl.cli_options.set_verbosity)
# What -vv shows of a child's environment: only the variables dwctl itself sets (TF_VAR_* can hold secrets).
SHOWN_ENV = {"TF_IN_AUTOMATION", "CHECKPOINT_DISABLE", "TF_INPUT", "TF_DATA_DIR", "TF_WORKSPACE", "TF_PLUGIN_CACHE_DIR"}
INSTALL_HINT = (f"Install Terraform >= {STACK_MIN} (https://developer.hashicorp.com/terraform/install: HashiCorp's "
                "apt/yum repositories, `brew install hashicorp/tap/terraform`, or the zip) or OpenTofu >= "
                f"{'.'.join(map(str, TOFU_FIRST[:2]))} (https://opentofu.org/docs/intro/install/), "
                "or point --terraform-bin or DWCTL_TERRAFORM at one.")


class Interrupted(ToolError):
    """The user pressed Ctrl-C; Terraform was asked to stop and did (exit 130, like a shell)."""

    exit_code = 130


@dataclass(frozen=True)
class Binary:
    """A usable terraform/tofu executable and its version."""

    path: str
    version: tuple[int, int, int]
    name: str = "terraform"

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def describe(self) -> str:
        return f"{self.name} {self.version_text} at {self.path}"


def resolve(explicit: str | None, environ: dict[str, str] | None = None) -> str:
    """--terraform-bin, then $DWCTL_TERRAFORM, then `terraform` on PATH, then `tofu`; an absolute path."""
    environ = os.environ if environ is None else environ
    path = environ.get("PATH")
    for given, source in ((explicit, "--terraform-bin"), (environ.get(ENV_VAR) or None, ENV_VAR)):
        if given:
            found = shutil.which(given, path=path) if os.sep not in given else (
                given if os.path.isfile(given) and os.access(given, os.X_OK) else None)
            if not found:
                raise ToolError(f"{source}={given}: no such executable. {INSTALL_HINT}")
            return os.path.abspath(found)
    for name in ("terraform", "tofu"):
        found = shutil.which(name, path=path)
        if found:
            return os.path.abspath(found)
    raise ToolError(f"neither `terraform` nor `tofu` is on PATH. {INSTALL_HINT}")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The version from `version -json` output, or from the plain `Terraform v1.2.3` line."""
    try:
        found = str(json.loads(text).get("terraform_version", ""))
    except (ValueError, AttributeError):
        found = text
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", found)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def check_version(path: str, version: tuple[int, int, int] | None) -> tuple[int, int, int]:
    if version is None:
        raise ToolError(f"{path} did not report a Terraform version (is it terraform?). {INSTALL_HINT}")
    if version < MIN_VERSION:
        raise ToolError(f"{path} is Terraform {'.'.join(map(str, version))}, too old: dwctl needs >= "
                        f"{'.'.join(map(str, MIN_VERSION))}. {INSTALL_HINT}")
    return version


REQUIRED_VERSION = re.compile(r'^\s*required_version\s*=\s*"([^"]*)"', re.M)
CLAUSE = re.compile(r"^\s*(~>|>=|<=|!=|=|>|<)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$")


def satisfies(version: tuple[int, int, int], constraint: str) -> bool:
    """Terraform's version-constraint syntax (comma-separated `op X.Y.Z`); an unparsable clause is not enforced.
    https://developer.hashicorp.com/terraform/language/expressions/version-constraints"""
    for clause in constraint.split(","):
        match = CLAUSE.match(clause)
        if not match:
            continue
        op, given = match[1] or "=", [int(n) for n in match.groups()[1:] if n is not None]
        wanted = tuple(given + [0] * (3 - len(given)))
        if op == "~>":  # the rightmost given component may grow: ~> 1.5 is >= 1.5, < 2.0
            upper = (given[0] + 1, 0, 0) if len(given) <= 2 else (given[0], given[1] + 1, 0)
            ok = wanted <= version < upper
        else:
            ok = {"=": version == wanted, "!=": version != wanted, ">": version > wanted, ">=": version >= wanted,
                  "<": version < wanted, "<=": version <= wanted}[op]
        if not ok:
            return False
    return True


def require_stack_version(binary: Binary, iac: Path) -> None:
    """Refuse, before Terraform prints dozens of errors about `check` blocks, a binary the stack's
    `required_version` (its terraform block) rules out; OpenTofu must also be of the matching generation."""
    for path in sorted(Path(iac).glob("*.tf")):
        for constraint in REQUIRED_VERSION.findall(path.read_text(encoding="utf-8", errors="replace")):
            too_old_tofu = binary.name == "tofu" and binary.version < TOFU_FIRST
            if too_old_tofu or not satisfies(binary.version, constraint):
                raise ToolError(f"{binary.describe()} cannot run this stack: {path.as_posix()} requires "
                                f"required_version \"{constraint}\". {INSTALL_HINT}")


def probe(path: str) -> Binary:
    """Ask the binary its version (offline: CHECKPOINT_DISABLE) and refuse one older than 1.0."""
    argv = _builder(path, None).generate_cmd_string("version", json=_flag())
    LOG.info("running: %s", shlex.join(argv))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=base_env(), stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise ToolError(f"cannot run {path}: {exc.strerror or exc}. {INSTALL_HINT}") from None
    version = check_version(path, parse_version(done.stdout) or parse_version(done.stderr))
    return Binary(path, version, "tofu" if "tofu" in os.path.basename(path) else "terraform")


def find(explicit: str | None = None) -> Binary:
    return probe(resolve(explicit))


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0")
    return env


def _flag():
    from python_terraform import IsFlagged

    return IsFlagged


NO_STATE = "/nonexistent/dwctl-reads-no-state"


def _builder(path: str, workdir: Path | None):
    """python-terraform's object, used only for `generate_cmd_string`. Its constructor also parses a
    local state file, which we never use (and which could be huge or unreadable): point it at none."""
    from python_terraform import Terraform as PyTerraform

    return PyTerraform(working_dir=str(workdir) if workdir else None, terraform_bin_path=path, state=NO_STATE)


# --- running one process ----------------------------------------------------------------------
@dataclass
class Result:
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    interrupted: bool = False
    transcript: list[str] = field(default_factory=list)  # stdout and stderr lines as they came


Echo = Callable[[str, bool], None]  # (text, to_stderr)


def _echo(text: str, to_stderr: bool) -> None:
    click.echo(text, nl=False, err=to_stderr)


def run_process(argv: Sequence[str], *, cwd: Path, env: dict[str, str], echo: Echo | None = _echo,
                stdout_to_stderr: bool = False) -> Result:
    """Run, teeing each line to `echo` (None: silent) and into the result; Ctrl-C becomes one SIGINT."""
    lock = threading.Lock()
    out: list[str] = []
    err: list[str] = []
    transcript: list[str] = []

    def pump(stream, sink: list[str], to_stderr: bool) -> None:
        show = echo
        for raw in iter(stream.readline, b""):  # keep draining even if the user's terminal went away
            line = raw.decode("utf-8", errors="replace")
            with lock:
                sink.append(line)
                transcript.append(line)
                if show is not None:
                    try:
                        show(line, to_stderr)
                    except (OSError, ValueError):
                        show = None
        stream.close()

    LOG.info("running: %s (in %s)", shlex.join(argv), cwd)
    LOG.debug("environment: %s", " ".join(f"{k}={env[k]}" for k in sorted(SHOWN_ENV) if k in env))
    with forward_interrupts() as forwarder:  # installed before the child exists: no interrupt is lost
        try:
            proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise ToolError(f"cannot run {argv[0]}: {exc.strerror or exc}. {INSTALL_HINT}") from None
        forwarder.attach(proc)
        pumps = [threading.Thread(target=pump, args=(proc.stdout, out, stdout_to_stderr), daemon=True),
                 threading.Thread(target=pump, args=(proc.stderr, err, True), daemon=True)]
        for t in pumps:
            t.start()
        code = proc.wait()
        for t in pumps:
            t.join()
    return Result(list(argv), code, "".join(out), "".join(err), forwarder.count > 0, transcript)


class _Forwarder:
    """Turns our SIGINT/SIGTERM into one SIGINT for the child's process group.

    The child runs in its own process group, so a terminal's Ctrl-C reaches only us and Terraform gets
    exactly one interrupt: Terraform treats a second one as "exit now", which can leave a state lock
    or a half-written state behind, so later interrupts are only acknowledged, never forwarded.
    """

    def __init__(self) -> None:
        self.count = 0
        self.proc: subprocess.Popen | None = None

    def attach(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        if self.count:
            self._forward()

    def handle(self, _signum, _frame) -> None:
        self.count += 1
        if self.count == 1:
            self._forward()
        elif self.proc is not None and self.proc.poll() is None:
            click.echo(f"dwctl: still waiting for terraform (pid {self.proc.pid}) to stop cleanly; it is not "
                       "killed, so the state and its lock stay consistent.", err=True)

    def _forward(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        click.echo("\ndwctl: interrupt received; asked terraform to stop cleanly (it finishes the operations "
                   "in flight and releases the state lock). Waiting for it...", err=True)


@contextmanager
def forward_interrupts() -> Iterator[_Forwarder]:
    """Install the forwarder for the duration of one command (main thread only: Python's rule)."""
    forwarder = _Forwarder()
    if threading.current_thread() is not threading.main_thread():
        yield forwarder
        return
    previous = {sig: signal.signal(sig, forwarder.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield forwarder
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --- diagnostics --------------------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def diagnostics(text: str, limit: int = 3) -> str:
    """Terraform's `Error:` blocks squeezed into one line each: summary, location, detail."""
    lines = [ANSI.sub("", line).lstrip("│╷╵ ").rstrip() for line in text.splitlines()]
    found: list[str] = []
    i = 0
    while i < len(lines) and len(found) < limit:
        if not lines[i].startswith("Error: "):
            i += 1
            continue
        summary, where, detail = lines[i], "", []
        i += 1
        while i < len(lines) and not lines[i].startswith(("Error: ", "Warning: ")):
            line = lines[i]
            if line.startswith("on ") and not where:
                where = line.rstrip(":")
            elif line and not re.match(r"^\s*\d+:", lines[i]) and not line.startswith(("├", "│", "(and ")):
                detail.append(line.strip())
            i += 1
        found.append(f"{summary}{f' ({where})' if where else ''}{': ' + ' '.join(detail) if detail else ''}")
    return " ".join(found)


# --- the driver ---------------------------------------------------------------------------------
class Terraform:
    """Terraform commands for one working directory, data directory and workspace."""

    def __init__(self, binary: Binary, workdir: Path, *, data_dir: Path | None = None,
                 workspace: str | None = None, color: bool = False, echo: Echo | None = _echo,
                 stdout_to_stderr: bool = False, extra_env: dict[str, str] | None = None):
        self.binary = binary
        self.extra_env = dict(extra_env or {})
        self.workdir = Path(workdir)
        self.data_dir = data_dir
        self.workspace = workspace
        self.color = color
        self.echo = echo
        self.stdout_to_stderr = stdout_to_stderr
        self.transcript: list[str] = []

    def env(self, *, pin_workspace: bool = True) -> dict[str, str]:
        env = base_env()
        env.pop("TF_WORKSPACE", None)
        env.update(self.extra_env)
        if self.data_dir is not None:
            env["TF_DATA_DIR"] = str(Path(self.data_dir).resolve())
        if pin_workspace and self.workspace:
            env["TF_WORKSPACE"] = self.workspace  # plan/apply/output can never hit another workspace
        return env

    def argv(self, command: str, *args: str, **options) -> list[str]:
        """The exact command line: python-terraform's builder with only the options given here."""
        if not self.color:
            options["no_color"] = _flag()
        return _builder(self.binary.path, self.workdir).generate_cmd_string(command, *args, **options)

    def run(self, command: str, *args: str, stream: bool = True, ok: Sequence[int] = (0,),
            pin_workspace: bool = True, **options) -> Result:
        """Run one command; raise ToolError (or Interrupted) unless its exit code is in `ok`."""
        argv = self.argv(command, *args, **options)
        result = run_process(argv, cwd=self.workdir, env=self.env(pin_workspace=pin_workspace),
                             echo=self.echo if stream else None, stdout_to_stderr=self.stdout_to_stderr)
        if stream:
            self.transcript.extend(result.transcript)
        if result.interrupted:
            raise Interrupted(f"interrupted: `{self.binary.name} {command}` stopped after Ctrl-C "
                              f"(exit {result.code}); nothing more was run.")
        if result.code not in ok:
            tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
            why = diagnostics(result.stderr) or diagnostics(result.stdout) or (tail[0] if tail else "")
            shown = stream and self.echo is not None  # the user has just seen terraform's error: say it once
            error = ToolError(f"`{self.binary.name} {command}` failed (exit {result.code}) in {self.workdir}: "
                              + ("its error is above." if shown and why else why or "no message"))
            error.detail = why
            raise error
        return result

    # -- verbs (flags exactly as Terraform >= 1.0 spells them) --
    def init(self, *, backend_config: str | None = None, lock_timeout: str | None = None,
             extra: Sequence[str] = ()) -> Result:
        return self.run("init", *extra, input=False, backend_config=backend_config, lock_timeout=lock_timeout,
                        pin_workspace=False)

    def workspaces(self) -> list[str]:
        out = self.run("workspace list", stream=False, pin_workspace=False).stdout
        return [line.lstrip("* ").strip() for line in out.splitlines() if line.strip()]

    def select_workspace(self, name: str) -> bool:
        """Select `name`, creating it first when missing (1.0 has no `select -or-create`); True if created."""
        created = name not in self.workspaces()
        self.run("workspace new" if created else "workspace select", name, stream=False, pin_workspace=False)
        return created

    def plan(self, out: str, *, var_files: Sequence[str] = (), targets: Sequence[str] = (),
             lock_timeout: str | None = None, parallelism: int | None = None, destroy: bool = False,
             extra: Sequence[str] = ()) -> int:
        """0: no changes, 2: changes (-detailed-exitcode); the plan is saved to `out`."""
        result = self.run("plan", *extra, ok=(0, 2), input=False, detailed_exitcode=_flag(), out=out,
                          destroy=_flag() if destroy else None, var_file=list(var_files), target=list(targets),
                          lock_timeout=lock_timeout, parallelism=parallelism)
        return result.code

    def show_json(self, planfile: str) -> dict:
        text = self.run("show", planfile, stream=False, json=_flag()).stdout
        try:
            return json.loads(text)
        except ValueError:
            raise ToolError(f"`{self.binary.name} show -json {planfile}` did not print JSON: the saved plan is "
                            "unreadable to this Terraform; make it again with `dwctl plan`") from None

    def apply(self, planfile: str, *, lock_timeout: str | None = None, parallelism: int | None = None,
              extra: Sequence[str] = ()) -> Result:
        """Apply exactly a saved plan: no -var-file, no -auto-approve (a saved plan never asks)."""
        return self.run("apply", *extra, planfile, input=False, lock_timeout=lock_timeout, parallelism=parallelism)

    def output(self, *, as_json: bool = False) -> str:
        return self.run("output", stream=False, json=_flag() if as_json else None).stdout
