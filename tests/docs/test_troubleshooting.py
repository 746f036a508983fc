"""docs/troubleshooting.md stays complete as the code changes: every user-facing message dwctl can produce
has an entry there, found by reading the code (ast over dwctl/, the stack's templates), never a hand-kept list.

What counts as a message, and its "stable text" the page must quote:
- every `raise`/construction of a user-facing error (the DwctlError hierarchy found by introspection, the load
  job's JobError, the spec model's ValueError/LocatedError that SpecError shows at file:line:col);
- every problem the load job reports at the end of a run (`problems.append`, `migration.problems.append`),
  every quarantine and held reason, every `dwctl status` finding that needs action;
- every doctor / validate / smoke / tools check row that can fail or warn (its name: the item id);
- every `error_message` of a Terraform check or precondition the rendered stack carries;
- every exit code a command can end with.
A message's stable text is its longest literal run (between placeholders), cut to MAX_TEXT characters; the page
writes placeholders as <name>, so the literal runs appear on it verbatim. A message with no run of MIN_TEXT
characters (all names, like `<what>: <AWS error>`) is not checked: the page still explains it.
The last tests run the CLI (CliRunner) on broken specs and check the page holds what the user really sees.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import re
import shutil
from pathlib import Path

import pytest

import dwctl
from dwctl.errors import DwctlError
from tests.conftest import EXAMPLE, ROOT
from tests.support.cli import run

PAGE = ROOT / "docs" / "troubleshooting.md"
MIN_TEXT, MAX_TEXT = 10, 48

# Calls that build a message a user reads. The DwctlError subclasses are added by introspection below.
RAISED_ELSEWHERE = {"JobError", "ValueError", "LocatedError", "ClickException", "BadParameter", "CannotImport"}
# ValueErrors outside these modules are internal (they never reach a user as they are).
VALUE_ERROR_MODULES = ("dwctl/spec/", "dwctl/warehouse/load_job.py", "dwctl/warehouse/verifier.py")
PLACEHOLDER = re.compile(r"<[^<>]*>|%(?:\([a-z_]+\))?[-0-9.]*[sdrfg]")


@functools.cache
def _all_error_classes() -> frozenset[type]:
    """DwctlError and every subclass, after importing every dwctl module (subclasses live beside their commands)."""
    for info in pkgutil.walk_packages(dwctl.__path__, "dwctl."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found, todo = set(), [DwctlError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo += cls.__subclasses__()
    return frozenset(found)


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _template(node: ast.expr | None) -> str | None:
    """A message's text with each computed part as <...>; None when no part of it is literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "<>" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _template(node.left)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        return None if left is None and right is None else (left or "<>") + (right or "<>")
    if isinstance(node, ast.Call) and _name(node.func) in ("held_reason", "format") and node.args:
        return _template(node.args[0])
    if isinstance(node, ast.List) and len(node.elts) == 1:  # SpecError([message])
        return _template(node.elts[0])
    return None


def _flat(text: str) -> str:
    return " ".join(text.split())


def stable_text(template: str) -> str | None:
    """The message's longest literal run (the most distinctive), cut to MAX_TEXT at a word's end; None when
    no run reaches MIN_TEXT characters (a message made only of what it reports)."""
    run_ = max((_flat(r).strip(" :;,.(") for r in PLACEHOLDER.split(template)), key=len)
    if len(run_) < MIN_TEXT:
        return None
    if len(run_) <= MAX_TEXT:
        return run_
    cut = run_[:MAX_TEXT]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def _sources():
    for path in sorted((ROOT / "dwctl").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def messages() -> dict[str, str]:
    """stable text -> where it is made (file:line), for every message described in the module docstring."""
    raisers = {cls.__name__ for cls in _all_error_classes()} | RAISED_ELSEWHERE
    found: dict[str, str] = {}
    for rel, tree in _sources():
        reasons = _reasons(tree)
        for node in ast.walk(tree):
            template = _message_in(node, rel, raisers, reasons)
            if template and (text := stable_text(template)):
                found.setdefault(text, f"{rel}:{node.lineno}")
    return found


def _reasons(tree: ast.AST) -> set[int]:
    """The returns of the functions that say why something is refused (`-> str | None`, documented "Why ..."
    or named *_refuse*): import's skip reasons, the spec's source-name and range-column problems."""
    found = set()
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef) and func.returns is not None and ast.unparse(func.returns) == \
                "str | None" and ((ast.get_docstring(func) or "").startswith("Why") or "_refuse" in func.name):
            found |= {id(n) for n in ast.walk(func) if isinstance(n, ast.Return)}
    return found


def _message_in(node: ast.AST, rel: str, raisers: set[str], reasons: set[int] = frozenset()) -> str | None:
    """The message template `node` builds, if it builds one a user reads."""
    if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2 \
            and _literal(node.value.elts[0]) == "held":  # the load job's verdict on a file: ("held", why)
        return _template(node.value.elts[1])
    if isinstance(node, ast.FunctionDef) and node.name == "held_reason":  # a held file's reason and fix
        return _template(next(n.value for n in ast.walk(node) if isinstance(n, ast.Return)))
    if isinstance(node, ast.Return) and node.value is not None and id(node) in reasons:  # why a table is refused
        return _template(node.value)
    if not isinstance(node, ast.Call) or not node.args:
        return None
    name = _name(node.func)
    if name in raisers and name != "LocatedError" and (name != "ValueError" or rel.startswith(VALUE_ERROR_MODULES)):
        return _template(node.args[0])
    if name in ("_at", "LocatedError") and len(node.args) > 1:  # the spec model's located ValueError (loc, message)
        return _template(node.args[1])
    if name == "held_reason":  # a held file's reason
        return _template(node.args[0])
    if name == "append" and _name(node.func.value) == "problems":  # the load job's end-of-run problems
        return _template(node.args[0])
    if name == "quarantine" and rel.endswith("load_job.py"):  # a quarantine reason
        return _template(node.args[-1])
    if name == "Finding" and len(node.args) > 1 and _literal(node.args[0]) == "action":  # dwctl status
        return _template(node.args[1])
    return None


def _literal(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def check_items() -> dict[str, str]:
    """Each checklist row that can fail or warn (doctor, tools, validate, smoke): the literal start of its name,
    also where the name is a local (`name = "binlog retention"`) or a parameter (`setting("log_bin", ...)`)."""
    found: dict[str, str] = {}
    for rel, tree in _sources():
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args]
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            local = {t.id: n.value for n in ast.walk(func) if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name)}
            params = [a.arg for a in func.args.args]
            for node in ast.walk(func):
                if not (isinstance(node, ast.Call) and _name(node.func) in ("Check", "Tool") and len(node.args) >= 2):
                    continue
                if _literal(node.args[1]) not in ("fail", "warn", None):
                    continue
                names = [node.args[0]]
                if isinstance(node.args[0], ast.Name) and node.args[0].id in local:
                    names = [local[node.args[0].id]]
                elif isinstance(node.args[0], ast.Name) and node.args[0].id in params:  # given by each caller
                    at = params.index(node.args[0].id)
                    names = [c.args[at] for c in calls if _name(c.func) == func.name and len(c.args) > at]
                for name in names:
                    head = PLACEHOLDER.split(_template(name) or "")[0].strip()
                    if head:
                        found.setdefault(head, f"{rel}:{node.lineno}")
    return found


def stack_checks() -> dict[str, str]:
    """The error_message of every check and precondition in the rendered stack (variable validations aside:
    the spec refuses those values first)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "templates" / "iac").glob("*.tf.j2")):
        if path.name == "variables.tf.j2":
            continue
        for match in re.finditer(r'error_message\s*=\s*"(.*)"\s*$', path.read_text(encoding="utf-8"), re.M):
            template = re.sub(r"\$\{(?:[^{}]|\{[^{}]*\})*\}", "<>", match.group(1)).replace('\\"', '"')
            if text := stable_text(template):
                found.setdefault(text, path.name)
    return found


def exit_codes() -> set[int]:
    """Every exit code: the error classes' own, and every literal `sys.exit(N)` / `ctx.exit(N)` in dwctl."""
    codes = {cls.exit_code for cls in _all_error_classes()} | {0}
    for _rel, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == "exit" and node.args:
                value = _literal(node.args[0])
                if isinstance(value, int):
                    codes.add(value)
    return codes


@pytest.fixture(scope="module")
def page() -> str:
    assert PAGE.exists(), f"{PAGE.relative_to(ROOT)} is missing"
    return _flat(PAGE.read_text(encoding="utf-8").replace("\\|", "|"))


def _missing(wanted: dict[str, str], page: str) -> list[str]:
    return [f"{where}: {text!r}" for text, where in sorted(wanted.items(), key=lambda kv: kv[1]) if text not in page]


def test_the_code_yields_messages_to_check():
    """The collectors see the code: if they found little, the test below would pass by checking nothing."""
    assert len(messages()) > 200 and len(check_items()) > 20 and len(stack_checks()) > 10


def test_every_error_message_has_an_entry(page):
    missing = _missing(messages(), page)
    assert not missing, "docs/troubleshooting.md lacks an entry for these messages (quote each, meaning, fix):\n" \
        + "\n".join(missing)


def test_every_check_item_has_an_entry(page):
    missing = _missing({f"`{name}": where for name, where in check_items().items()}, page)
    assert not missing, "docs/troubleshooting.md lacks these doctor/tools/validate/smoke rows:\n" + "\n".join(missing)


def test_every_stack_check_has_an_entry(page):
    missing = _missing(stack_checks(), page)
    assert not missing, "docs/troubleshooting.md lacks these Terraform check messages:\n" + "\n".join(missing)


def test_every_error_class_and_exit_code_is_explained(page):
    classes = sorted(cls.__name__ for cls in _all_error_classes())
    assert [c for c in classes if f"`{c}`" not in page] == []
    assert "`JobError`" in page
    assert [code for code in sorted(exit_codes()) if f"| {code} |" not in page] == []


# --- what the user really sees: the CLI on broken specs ---------------------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    (tmp_path / "config").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "config" / "pipeline.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _break(project: Path, old: str, new: str) -> None:
    spec = project / "config" / "pipeline.yaml"
    text = spec.read_text(encoding="utf-8")
    assert old in text, f"the example spec no longer holds {old!r}: pick another line to break"
    spec.write_text(text.replace(old, new, 1), encoding="utf-8")


def _seen(result) -> str:
    """The error the user saw: Click's `Error: ` line (Usage lines and dwctl's notes aside), without its
    `Error: ` and a spec error's file:line:col: field: prefix."""
    line = next((line for line in result.output.splitlines() if line.startswith("Error: ")), "")
    line = line.removeprefix("Error: ")
    return re.sub(r"^\S+:\d+:\d+: (?:[^\s:]+: )?", "", line)


def _stale_iac(project: Path) -> None:
    assert run("render").exit_code == 0
    with (project / "iac" / "main.tf").open("a", encoding="utf-8") as main:
        main.write("# edited by hand\n")


def _no_table_in_task(project: Path) -> None:
    _break(project, "dms:\n", "dms:\n  tasks: {spare: {}}\n")


# case -> (how the project is broken, the command, its exit code, the beginning of what the user sees with the
# names in it marked <so>: the page must quote the text between them)
CASES = {
    "no spec": (lambda p: (p / "config" / "pipeline.yaml").unlink(), ("render",), 2,
                "<config/pipeline.yaml>: spec file not found (start a project with"),
    "malformed YAML": (lambda p: _break(p, "project:", "project: [\n"), ("render",), 2, "malformed YAML"),
    "unknown key": (lambda p: _break(p, "multi_az:", "multi_azz:"), ("render",), 2,
                    "unknown key (check the spelling; `dwctl schema` lists every key)"),
    "nullable key": (lambda p: _break(p, "nullable: false", "nullable: true"), ("render",), 2,
                     "primary key column <'customer_id'> must not be nullable (set nullable: false)"),
    "unknown type": (lambda p: _break(p, "type: bigint", "type: bigintt"), ("render",), 2,
                     "<'bigintt'> is not a known <postgres> type (known: "),
    "no table in a task": (_no_table_in_task, ("render",), 2,
                           "no table is in task <'spare'>: a task without tables fails (FailOnNoTablesCaptured); "
                           "set `task: <spare>` on a table or remove the entry"),
    "stale iac": (_stale_iac, ("plan",), 1,
                  "<iac> is stale: <1> file(s) differ from what <config/pipeline.yaml> renders"),
    "unknown environment": (lambda p: None, ("plan", "--env", "nope"), 1,
                            "unknown environment <'nope'>: the spec declares"),
    "not initialised": (lambda p: run("render"), ("plan",), 1, "environment <'prod'> is not initialised in <iac>"),
    "no saved plan": (lambda p: run("render"), ("scan", "--plan"), 1, "no saved plan for <prod>: "),
    "doctor without a source": (lambda p: None, ("doctor",), 2,
                                "give --dsn DSN (the source database), or --tools (this machine's deploy tools)"),
    "bad DSN scheme": (lambda p: None, ("import", "--dsn", "oracle://u@h/db"), 2,
                       "--dsn: unknown scheme <oracle://>; use postgresql:// or mysql:// (mariadb:// works too)"),
    "no landed data": (lambda p: None, ("sql", "verify", "--data", "nowhere"), 2,
                       "<nowhere>: no such folder (pass --data with the landed DMS files)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_real_message_is_on_the_page(case, project, page):
    """The CLI's real message starts as the case says (names marked), and the page quotes its words."""
    breaks, args, code, expected = CASES[case]
    breaks(project)
    result = run(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    seen = _seen(result)
    assert seen.startswith(expected.replace("<", "").replace(">", "")), \
        f"{case}: the CLI now says {seen!r}; update the case (and the page)"
    words = [part for part in re.split(r"<[^<>]*>", expected) if len(part.strip(" :;,.(")) >= MIN_TEXT // 2]
    assert words
    missing = [part for part in words if _flat(part).strip() not in page]
    assert not missing, f"{case}: docs/troubleshooting.md does not quote what the user sees: {missing}"


def test_a_held_file_stops_the_load_as_the_page_says(tmp_path, page):
    """The load job's loud stop, run for real (`dwctl sql verify`, the job's own run on DuckDB): a file with a
    column the spec lacks is held, the run fails naming the table and the fix, and the page quotes both."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from dwctl.render.engine import table_view
    from dwctl.spec.read import load_spec
    from tests.support import dms_files

    view = table_view(spec := load_spec(EXAMPLE), next(t for t in spec.tables if t.name == "customers"))
    when = dt.datetime(2024, 1, 1, 10, tzinfo=dt.timezone.utc)
    row = dict(customer_id=1, email="a@example.com", full_name="A", country_code="DE", marketing_opt_in=True,
               created_at=when, updated_at=when)
    folder = dms_files.table_dir(tmp_path, view)
    dms_files.write(folder / "LOAD00000001.parquet", view, [dms_files.change("I", "2024-01-01 12:00:00", None, **row)])
    change = dms_files.change("U", "2024-01-01 12:00:05", 5, **row)
    columns = {f.name: [dms_files.landed_value(change.get(f.name), f.type)] for f in dms_files.schema(view)}
    pq.write_table(pa.table(columns).append_column("loyalty_tier", pa.array(["gold"])), folder / dms_files.cdc_name(5))

    result = run("sql", "verify", "-c", str(EXAMPLE), "--data", str(tmp_path))
    assert result.exit_code == 1, result.output
    seen = _seen(result) + " " + _flat(result.output)
    for words in ("problem(s); the other files and tables were loaded:", "quarantined: held: it carries column(s) ",
                  " that the spec does not have. Update the spec (dwctl import, or by hand), render and deploy"):
        assert words in seen, result.output
        assert _flat(words).strip() in page, f"docs/troubleshooting.md does not quote {words!r}"
