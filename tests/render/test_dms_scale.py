"""A 1,000-table spec (issue 14): it renders, validates, and passes what the example passes, per DMS task:
each table in exactly one task's table mappings, rule ids unique in each task, alarms and event rules per
task, parallel-load table-settings rules as valid JSON under the documented limits (per-table LOB settings
are refused for the S3 target: tests/spec/test_dms_tasks.py).

The table mappings are rebuilt from the rendered HCL the way Terraform builds them (locals ->
jsonencode), with rule ids evaluated as tests/render/test_iac.py does; the real provider's
`terraform validate` runs on the same tree when its offline mirror is here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwctl.cli import cli
from dwctl.render.engine import render
from dwctl.spec.dms_tasks import assign
from dwctl.spec.model import (
    MAX_FULL_LOAD_SUBTASKS,
    MAX_RANGE_BOUNDARIES,
    MAX_RANGE_COLUMNS,
)
from dwctl.spec.read import parse_spec
from tests.render.test_iac import one, rule_id, tree
from tests.support.dms_files import task_rules
from tests.support.many_tables import (
    RANGES,
    many_tables_text,
    table_yaml,
)
from tests.support.realtf import init, real_provider_env, terraform  # noqa: F401  (fixture)

N = 1000
RANGED = set(range(0, N, 50))
PINNED = (3, 500, 999)


def big_text(extra_table: str = "") -> str:
    extras = {i: RANGES for i in RANGED} | {i: "    task: big\n" + RANGES for i in PINNED}
    text = many_tables_text(N, extras, dms="  tasks:\n    big: {max_full_load_subtasks: 16}")
    if extra_table:  # into the middle of the list
        text = text.replace("\n  - schema: public\n    name: t0400\n", extra_table + "\n  - schema: public\n"
                            "    name: t0400\n", 1)
    return text.replace("instance_class: dms.t3.medium", "instance_class: dms.c6i.8xlarge")


@pytest.fixture(scope="module")
def big_spec():
    return parse_spec(big_text(), "big.yaml")


@pytest.fixture(scope="module")
def big(big_spec) -> dict[str, str]:
    return render(big_spec, "big.yaml")


@pytest.fixture(scope="module")
def big_mappings(big) -> dict[str, dict]:
    return task_mappings(big)


@pytest.fixture(scope="module")
def big_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("big")
    (root / "big.yaml").write_text(big_text(), encoding="utf-8")
    done = CliRunner().invoke(cli, ["render", "-c", str(root / "big.yaml"), "-o", str(root)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return root


_PARSED: dict[tuple[str, int], dict] = {}


def parsed(files: dict[str, str], path: str) -> dict:
    """hcl2 takes seconds on a 1,000-table file: parse each rendered file once."""
    key = (path, hash(files[path]))
    if key not in _PARSED:
        _PARSED[key] = tree(files, path)
    return _PARSED[key]


def resources(files: dict[str, str], path: str, rtype: str) -> dict[str, dict]:
    return {name: body for block in parsed(files, path).get("resource", []) for name, body in block.get(rtype, {}).items()}


def task_mappings(files: dict[str, str]) -> dict[str, dict]:
    """task -> the JSON document its table_mappings argument becomes: jsonencode({rules = [...]}) of the
    rules local.dms_task_rules gives that task."""
    return {task: json.loads(json.dumps({"rules": [{**rule, "rule-id": str(rule_id(rule))} for rule in rules]}))
            for task, rules in task_rules(files).items()}


def test_a_thousand_tables_render_formatted_and_validate(big_root, provider_schema_path):
    result = CliRunner().invoke(cli, ["validate", "-c", str(big_root / "big.yaml"), "-o", str(big_root),
                                      "--provider-schema", str(provider_schema_path), "--format", "json"])
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert {name: c["status"] for name, c in checks.items()} == {
        "spec": "pass", "rendered": "pass", "fmt": "pass", "provider schema": "pass", "terraform validate": "skip"}


def test_a_thousand_tables_pass_the_real_providers_terraform_validate(real_provider_env, big_root):
    iac = big_root / "iac"
    init(real_provider_env, iac)
    done = terraform(real_provider_env, iac, "validate", "-json", check=False)
    result = json.loads(done.stdout)
    assert result["valid"], result["diagnostics"]
    assert [d for d in result["diagnostics"] if d["severity"] == "error"] == []


def test_every_table_is_in_exactly_one_tasks_mappings_with_unique_rule_ids(big, big_spec, big_mappings):
    mappings = big_mappings
    tfvars = json.loads(big["iac/terraform.tfvars.json"])["dms_max_full_load_subtasks"]
    assert sorted(mappings) == sorted(tfvars) == sorted(assign(big_spec))
    assert tfvars["big"] == 16 and len(mappings) == 1 + 10  # big, and ceil(997 / 100) default tasks
    selected = {}
    for task, document in mappings.items():
        ids = [r["rule-id"] for r in document["rules"]]
        assert len(ids) == len(set(ids)), task
        assert all(0 < int(i) < 2**31 for i in ids)
        for rule in document["rules"]:
            table = rule["object-locator"]["table-name"]
            if rule["rule-type"] == "selection":
                assert table not in selected, f"{table} in {selected.get(table)} and {task}"
                selected[table] = task
    assert sorted(selected) == [t.name for t in big_spec.tables]
    assert [name for name, task in selected.items() if task == "big"] == [f"t{i:04d}" for i in PINNED]
    for task, document in mappings.items():  # a table's other rules travel with its selection
        assert {r["object-locator"]["table-name"] for r in document["rules"]} == \
            {t for t, where in selected.items() if where == task}
        changes = {r["object-locator"]["table-name"] for r in document["rules"] if r.get("rule-action") == "add-column"}
        assert changes == {t for t, where in selected.items() if where == task}  # the change sequence column


def test_parallel_load_rules_are_valid_json_under_the_documented_limits(big_mappings):
    settings = {r["object-locator"]["table-name"]: r for doc in big_mappings.values() for r in doc["rules"]
                if r["rule-type"] == "table-settings"}
    assert sorted(settings) == sorted(f"t{i:04d}" for i in RANGED | set(PINNED))
    for table, rule in settings.items():
        i = int(table[1:])
        assert rule["object-locator"] == {"schema-name": "public", "table-name": table}  # no wildcard allowed
        assert "lob-settings" not in rule
        if i in RANGED or i in PINNED:
            load = rule["parallel-load"]
            assert load["type"] == "ranges"
            assert 1 <= len(load["columns"]) <= MAX_RANGE_COLUMNS == 10
            assert 1 <= len(load["boundaries"]) <= MAX_RANGE_BOUNDARIES == MAX_FULL_LOAD_SUBTASKS - 1 == 48
            assert all(len(b) == len(load["columns"]) and all(isinstance(v, str) for v in b)
                       for b in load["boundaries"])
            assert [int(b[0]) for b in load["boundaries"]] == sorted(int(b[0]) for b in load["boundaries"])
            # one fixed folder per segment (CHAP_Target.S3, parallel load): the load job reads each as a stream
            assert load["segment-names"] == [f"segment{n:02d}" for n in range(1, len(load["boundaries"]) + 2)]
        else:
            assert "parallel-load" not in rule


def test_every_task_has_its_alarms_event_rule_settings_and_outputs(big, big_spec, big_mappings):
    tasks = sorted(assign(big_spec))
    task = resources(big, "iac/dms.tf", "aws_dms_replication_task")["this"]
    assert one(task, "for_each") == "${var.dms_max_full_load_subtasks}"
    assert "MaxFullLoadSubTasks             = each.value" in big["iac/dms.tf"]
    for kind, name in (("aws_cloudwatch_metric_alarm", "dms_cdc_latency_source"),
                       ("aws_cloudwatch_metric_alarm", "dms_cdc_latency_target"),
                       ("aws_cloudwatch_event_rule", "dms_task")):
        assert one(resources(big, "iac/monitoring.tf", kind)[name], "for_each") == "${aws_dms_replication_task.this}"
    outputs = {k: v for block in parsed(big, "iac/outputs.tf")["output"] for k, v in block.items()}
    assert "aws_dms_replication_task.this" in one(outputs["dms_replication_task_arns"], "value")
    guards = big["iac/tests/guards.tftest.hcl"]
    selections = {task: sorted(f'"{r["object-locator"]["schema-name"]}.{r["object-locator"]["table-name"]}"'
                               for r in doc["rules"] if r["rule-type"] == "selection") for task, doc in big_mappings.items()}
    for name in tasks:  # the native tests check each task's settings and exactly its tables, once per task
        assert f'aws_dms_replication_task.this["{name}"].replication_task_settings' in guards
        head = guards.index(f'aws_dms_replication_task.this["{name}"].table_mappings')
        expected = guards[guards.index("== toset([\n", head) + 11:guards.index("\n    ])\n", head)]
        assert sorted(line.strip().removesuffix(",") for line in expected.splitlines()) == selections[name]
    assert guards.count("jsondecode(aws_dms_replication_task.this[") == 2 * len(tasks)
    assert '"public.t0500"' in selections["big"]


def test_a_table_added_in_the_middle_changes_only_its_own_lines(big, big_mappings):
    """997 unpinned tables -> 998: still ten default tasks, so no other table moves and no line goes away."""
    grown = render(parse_spec(big_text(table_yaml("zz_new")), "big.yaml"), "big.yaml")
    for path in ("iac/dms.tf", "iac/monitoring.tf", "iac/outputs.tf", "iac/terraform.tfvars.json"):
        new_lines = set(grown[path].splitlines())
        removed = [line for line in big[path].splitlines() if line not in new_lines]
        assert removed == [], (path, removed[:5])
    before, after = (
        {r["object-locator"]["table-name"]: task for task, doc in mappings.items() for r in doc["rules"]
         if r["rule-type"] == "selection"} for mappings in (big_mappings, task_mappings(grown)))
    assert {t: after[t] for t in before} == before and "zz[_]new" in after  # the locator escapes the DMS wildcard _


def test_the_native_tests_pass_with_several_tasks(real_provider_env, tmp_path, monkeypatch):
    """`dwctl test` on a spec with three default tasks and a pinned one: the per-task asserts and the
    guards on dms_max_full_load_subtasks (over 49, a task without tables) run under the mock provider.
    (At 1,000 tables the same native tests take about 10 minutes on a busy 2-core machine, too long for
    CI: bench/bench_gates.py runs and times them, and fails if they fail.)"""
    import re

    for key, value in real_provider_env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    spec = tmp_path / "tasks.yaml"
    spec.write_text(many_tables_text(10, {1: "    task: big\n" + RANGES},
                                     dms="  tables_per_task: 3\n  tasks:\n    big: {max_full_load_subtasks: 12}"))
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["render", "-c", str(spec), "-o", str(out)]).exit_code == 0
    guards = (out / "iac" / "tests" / "guards.tftest.hcl").read_text()
    assert sorted(set(re.findall(r'aws_dms_replication_task\.this\["([a-z0-9-]+)"\]', guards))) == [
        "big", "full-load-and-cdc", "full-load-and-cdc-2", "full-load-and-cdc-3"]
    result = CliRunner().invoke(cli, ["test", "-c", str(spec), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    runs = dict(re.findall(r'run "([a-z0-9_]+)"\.\.\. (pass|fail|skip)', result.output))
    declared = re.findall(r'^run "([a-z0-9_]+)"', guards, re.M)
    assert {"full_load_subtasks_above_the_dms_maximum", "a_task_without_tables"} <= set(declared)
    assert runs == {name: "pass" for name in declared}, result.output
