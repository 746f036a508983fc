"""What makes a large render fast must not change what it does (issue 24): a first render swaps whole new
directories in (and rolls them back on failure), files are compared as bytes yet CRLF copies stay
unchanged, compiled templates and job code come from the user cache only for the very same source,
and the migration notes plan only the tables whose columns changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from dwctl.cli import cli
from dwctl.render import compiled, engine, job_config, migration_plan
from dwctl.render.engine import render
from dwctl.spec.read import parse_spec
from tests.conftest import EXAMPLE
from tests.render.test_render_cli import snapshot


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_first_render_that_fails_half_way_leaves_no_output(tmp_path, monkeypatch):
    """The first render moves iac/ and sql/ in whole; an I/O error on the second (injected at the
    os.replace boundary) takes the first back out: no half tree, no stage folder."""
    import dwctl.render.output

    out = tmp_path / "out"
    real_replace = os.replace
    moved = []

    def replace(src, dst):
        if "/new/" in str(src) and Path(dst).parent == out and Path(src).is_dir():
            moved.append(Path(dst).name)
            if len(moved) == 2:
                raise OSError(5, "Input/output error", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(dwctl.render.output.os, "replace", replace)
    result = invoke("render", "-c", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 2 and "Input/output error" in result.output, result.output
    assert moved == ["iac", "sql"]
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_first_render_writes_the_same_tree_as_file_by_file(tmp_path):
    """Whole-directory swaps (a new root) and file-by-file swaps (a root with iac/ already) give the same bytes."""
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    (existing / "iac").mkdir(parents=True)
    (existing / "iac" / "override.tf").write_text("# mine\n")
    for root in (fresh, existing):
        assert invoke("render", "-c", str(EXAMPLE), "-o", str(root)).exit_code == 0
    theirs = snapshot(existing)
    assert theirs.pop("iac/override.tf")
    assert snapshot(fresh) == theirs


def test_crlf_copies_of_the_output_are_up_to_date(tmp_path):
    """A checkout that turned LF into CRLF (git's autocrlf) is not stale: the bytes differ, the text does not."""
    out = tmp_path / "out"
    assert invoke("render", "-c", str(EXAMPLE), "-o", str(out)).exit_code == 0
    main = out / "iac" / "main.tf"
    main.write_bytes(main.read_bytes().replace(b"\n", b"\r\n"))
    result = invoke("render", "--check", "-c", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 0 and "up to date" in result.output, result.output
    main.write_bytes(main.read_bytes() + b"# edited\r\n")
    result = invoke("render", "--check", "-c", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 1 and "1 file(s) stale" in result.output


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(compiled.CACHE_ENV, str(folder))
    return folder


def test_templates_compiled_once_come_from_the_cache(cache, example_spec, rendered):
    """A second environment (a second run) loads every template compiled and renders the same bytes."""
    compiles = []

    def counting(env):
        real = env.compile
        env.compile = lambda *a, **k: compiles.append(a[1]) or real(*a, **k)
        return env

    first = counting(engine.environment.__wrapped__())
    assert {t: first.get_template(t) for t in first.list_templates(extensions=["j2"])}
    assert len(compiles) > 10 and list(cache.glob("templates-*/*.cache"))
    compiles.clear()
    second = counting(engine.environment.__wrapped__())
    for name in second.list_templates(extensions=["j2"]):
        second.get_template(name)
    assert compiles == []
    assert engine._render(example_spec, "config/pipeline.yaml") == rendered


def test_a_changed_or_damaged_template_entry_is_compiled_again(cache, tmp_path):
    """The cache serves only the very text it compiled (Jinja's checksum); a damaged entry is no error."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.j2").write_text("{{ x | upper }}")
    options = dict(undefined=StrictUndefined, trim_blocks=True)

    def render_once() -> str:
        env = SandboxedEnvironment(loader=FileSystemLoader(str(folder)), bytecode_cache=compiled.template_cache(options),
                                   **options)
        return env.get_template("t.j2").render(x="a")

    assert render_once() == "A"
    (folder / "t.j2").write_text("{{ x }}!")
    assert render_once() == "a!"
    for entry in cache.glob("templates-*/*.cache"):
        entry.write_bytes(entry.read_bytes()[:20])
    assert render_once() == "a!"


def test_no_usable_cache_folder_still_renders(tmp_path, monkeypatch, example_spec, rendered):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(compiled.CACHE_ENV, str(blocker / "cache"))
    assert compiled.template_cache({}) is None
    assert engine.environment.__wrapped__() is not None
    code = compiled.compiled("x = 6 * 7", "answer.py")
    namespace = {}
    exec(code, namespace)
    assert namespace["x"] == 42
    monkeypatch.setenv(compiled.CACHE_ENV, "")
    assert compiled.cache_folder("code", "") is None


def test_job_code_from_the_cache_is_the_code_of_that_source(cache):
    first = compiled.compiled("y = 'one'", "job.py")
    [entry] = cache.glob("code-*/*.marshal")
    assert compiled.compiled("y = 'one'", "job.py").co_consts == first.co_consts
    entry.write_bytes(b"damaged")
    namespace = {}
    exec(compiled.compiled("y = 'one'", "job.py"), namespace)
    assert namespace["y"] == "one"
    exec(compiled.compiled("y = 'two'", "job.py"), namespace)
    assert namespace["y"] == "two"


def _config(data: dict):
    spec = parse_spec(yaml.safe_dump(data, sort_keys=False), "pipeline.yaml")
    return spec, render(spec, "pipeline.yaml")[job_config.PATH]


def test_planning_only_changed_tables_gives_the_notes_of_planning_all(example_text):
    """The job's planner finds nothing for a table whose warehouse columns are the config's, so describe
    plans only the others: same notes as planning every table, for adds, widenings, narrowings, drops
    and renames, and none at all for an unchanged config."""
    job = migration_plan._job()
    base = yaml.safe_load(example_text)
    spec, before = _config(base)
    for previous, current in [(before, before)]:
        found = migration_plan.previous_columns(json.loads(previous))
        assert job["plan_migrations"](job["Config"](json.loads(current)), found,
                                      migration_plan.previous_keys(json.loads(previous))) == {}
    edited = json.loads(json.dumps(base))
    tables = edited["tables"]
    tables[0]["columns"].append({"name": "added_col", "type": "integer"})
    tables[1]["columns"][1]["type"] = "varchar(3000)"
    del tables[2]["columns"][-1]
    renamed = tables[3]["columns"][3]
    renamed["renamed_from"], renamed["name"] = renamed["name"], renamed["name"] + "_renamed"
    tables[0]["columns"][2]["type"] = "varchar(10)"
    spec_after, after = _config(edited)
    for (old, new, now) in [(before, after, spec_after), (after, before, spec)]:
        doc = json.loads(old)
        config = job["Config"](json.loads(new))
        everything = job["plan_migrations"](config, migration_plan.previous_columns(doc), migration_plan.previous_keys(doc))
        only_changed = job["plan_migrations"](config, migration_plan._differing(migration_plan.previous_columns(doc), config),
                                              migration_plan.previous_keys(doc))
        assert len(everything) >= 4
        assert {t: (m.notes, m.problems, m.batch, m.in_place) for t, m in everything.items()} == \
            {t: (m.notes, m.problems, m.batch, m.in_place) for t, m in only_changed.items()}
        assert migration_plan.describe(old, new, now)


def test_the_sandbox_still_guards_what_its_fast_paths_skip():
    """Views, loop objects and plain format strings skip the generic checks; everything they guard still fails."""
    from jinja2.exceptions import SecurityError

    env = engine.environment()
    assert env.from_string('{{ "CAST({} AS {})".format("a", 1) }}').render() == "CAST(a AS 1)"
    for unsafe in ('{{ "{0.__class__}".format("a") }}', '{{ "{0.__class__.__mro__}".format(t) }}',
                   "{{ t.__class__ }}", "{{ t.__dict__ }}", "{{ layout.__dict__ }}", "{{ spec.__class__ }}",
                   "{% for x in [1] %}{{ loop.__class__ }}{% endfor %}"):
        with pytest.raises(SecurityError):
            env.from_string(unsafe).render(t=engine.Constants(engine), layout=engine.Constants(engine),
                                           spec=parse_spec(EXAMPLE.read_text(), "p.yaml"))
