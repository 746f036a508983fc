"""Tables grouped into DMS tasks (issue 14): each table in exactly one task, stable when tables are added
anywhere in the list, and the per-table parallel-load and LOB settings validated with located errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dwctl.errors import SpecError
from dwctl.spec.dms_tasks import assign, task_plans
from dwctl.spec.read import parse_spec
from tests.support.dms_files import spec_with_tables
from tests.support.many_tables import (
    LOB,
    RANGES,
    many_tables_text,
    table_yaml,
)

NAME = "test.yaml"



def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, NAME)
    return info.value.problems


def line_of(text: str, needle: str, after: str = "") -> int:
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


def tasks_of(spec) -> dict[str, str]:
    return {t.name: task for task, tables in assign(spec).items() for t in tables}


def spec_of(names: list[str], per_task: int):
    return spec_with_tables("".join(table_yaml(n) for n in names)).model_copy(
        update={"dms": spec_with_tables(table_yaml("x")).dms.model_copy(update={"tables_per_task": per_task})})


# --- assignment ------------------------------------------------------------------------------------
def test_the_example_keeps_its_single_task():
    spec = parse_spec(many_tables_text(4), NAME)
    assert list(assign(spec)) == ["full-load-and-cdc"]
    assert [p.max_full_load_subtasks for p in task_plans(spec)] == [8]


def test_unpinned_tables_fill_about_tables_per_task_each_and_every_table_is_in_one_task():
    spec = parse_spec(many_tables_text(1000, dms="  tables_per_task: 100"), NAME)
    tasks = assign(spec)
    assert sorted(tasks) == sorted(["full-load-and-cdc"] + [f"full-load-and-cdc-{i}" for i in range(2, 11)])
    names = [t.name for tables in tasks.values() for t in tables]
    assert sorted(names) == [t.name for t in spec.tables]  # exactly once each
    assert all(60 <= len(tables) <= 140 for tables in tasks.values()), {k: len(v) for k, v in tasks.items()}


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), per_task=st.integers(1, 120), where=st.floats(0, 1), seed=st.integers(0, 10**6))
def test_adding_a_table_anywhere_moves_no_other_table_unless_the_task_count_changes(n, per_task, where, seed):
    names = [f"t{(i * 7919 + seed) % 100003:06d}x{i}" for i in range(n)]
    before = tasks_of(spec_of(names, per_task))
    names.insert(int(where * n), "added_table")
    after = tasks_of(spec_of(names, per_task))
    moved = {t for t in before if before[t] != after[t]}
    if math.ceil((n + 1) / per_task) == math.ceil(n / per_task):
        assert moved == set()
    else:  # a new default task: only tables that go to it move
        new_task = f"full-load-and-cdc-{math.ceil((n + 1) / per_task)}"
        assert {after[t] for t in moved} <= {new_task}


def test_reordering_the_list_moves_nothing():
    names = [f"t{i:03d}" for i in range(250)]
    assert tasks_of(spec_of(names, 50)) == tasks_of(spec_of(list(reversed(names)), 50))


def test_an_explicit_task_wins_and_gets_its_own_settings():
    text = many_tables_text(5, extras={1: "    task: big-orders\n", 3: "    task: big-orders\n"},
                            dms="  max_full_load_subtasks: 12\n  tasks:\n    big-orders: {max_full_load_subtasks: 49}")
    spec = parse_spec(text, NAME)
    tasks = assign(spec)
    assert [t.name for t in tasks["big-orders"]] == ["t0001", "t0003"]
    assert [t.name for t in tasks["full-load-and-cdc"]] == ["t0000", "t0002", "t0004"]
    assert {p.name: p.max_full_load_subtasks for p in task_plans(spec)} == {"big-orders": 49, "full-load-and-cdc": 12}


# --- located errors ---------------------------------------------------------------------------------
def test_a_task_setting_without_tables_is_refused_at_its_key():
    text = many_tables_text(2, dms="  tasks:\n    ghost: {max_full_load_subtasks: 4}")
    [problem] = problems(text)
    assert problem.startswith(f"{NAME}:{line_of(text, 'ghost:')}:")
    assert "dms.tasks.ghost" in problem and "no table is in task 'ghost'" in problem


def test_max_full_load_subtasks_stops_at_the_dms_maximum_of_49():
    text = many_tables_text(2, dms="  max_full_load_subtasks: 50")
    [problem] = problems(text)
    assert "dms.max_full_load_subtasks" in problem and "49" in problem


def test_a_task_name_too_long_for_its_event_rule_is_refused_at_the_table():
    task = "a" * 30
    text = many_tables_text(2, extras={1: f"    task: {task}\n"}).replace("project: shop\n", "project: shop-analytics-platform\n")
    [problem] = problems(text)
    assert problem.startswith(f"{NAME}:{line_of(text, 'task: aaa')}:")
    assert "tables[1].task" in problem and "EventBridge rule" in problem and "AWS allows 64" in problem


@pytest.mark.parametrize("load, needle, field, message", [
    ("    parallel_load: {type: partitions-auto}\n", "partitions-auto", "tables[1].parallel_load.type",
     "needs a MySQL source"),
    ("    parallel_load: {type: ranges, columns: [body], boundaries: [[m]]}\n", "columns: [body]",
     "tables[1].parallel_load.columns[0]", "must be NOT NULL"),
    ("    parallel_load: {type: ranges, columns: [nope], boundaries: [[1]]}\n", "columns: [nope]",
     "tables[1].parallel_load.columns[0]", "is not a column"),
    ("    parallel_load: {type: ranges, columns: [id, created_at], boundaries: [[1]]}\n", "boundaries: [[1]]",
     "tables[1].parallel_load.boundaries[0]", "1 value(s) for 2 range column(s)"),
    ("    parallel_load: {type: ranges, columns: [id], boundaries: [[5], [3]]}\n", "boundaries: [[5], [3]]",
     "tables[1].parallel_load.boundaries[1]", "boundaries must increase"),
    ("    parallel_load: {type: ranges, columns: [id], boundaries: [" + ", ".join(f"[{i}]" for i in range(49))
     + "]}\n", "boundaries: [[0]", "tables[1].parallel_load.boundaries", "at most 48"),
    ("    parallel_load: {type: ranges, columns: [" + ", ".join(["id"] * 11) + "], boundaries: [[1]]}\n",
     "columns: [id, id", "tables[1].parallel_load.columns", "at most 10"),
    ("    parallel_load: {type: subpartitions-auto}\n", "subpartitions-auto", "tables[1].parallel_load", ""),
])
def test_parallel_load_errors_name_their_field_and_line(load, needle, field, message):
    text = many_tables_text(3, extras={1: load})
    [problem] = problems(text)
    assert problem.startswith(f"{NAME}:{line_of(text, needle, after='name: t0001')}:"), problem
    assert field in problem and message in problem, problem


def test_range_columns_cannot_be_floats():
    table = ("\n  - schema: public\n    name: readings\n    columns:\n"
             "      - {name: id, type: bigint, nullable: false}\n      - {name: value, type: double precision, "
             "nullable: false}\n    primary_key: [id]\n"
             "    parallel_load: {type: ranges, columns: [value], boundaries: [['1.5']]}\n")
    [problem] = problems(many_tables_text(1).replace("\ngovernance:", table + "governance:", 1))
    assert "tables[1].parallel_load.columns[0]" in problem and "floating-point" in problem


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_a_per_table_lob_setting_is_refused_with_the_dms_reason(engine):
    """The DMS User Guide lists per-table lob-settings for Oracle, SQL Server, MySQL, PostgreSQL and SAP ASE
    targets, not S3: the spec says so at the table's lob line, on either source engine."""
    text = many_tables_text(3, extras={1: LOB}, engine=engine)
    [problem] = problems(text)
    assert problem.startswith(f"{NAME}:{line_of(text, 'max_size_kb', after='name: t0001')}:"), problem  # the mapping's first line
    assert "tables[1].lob" in problem and "not supported with the S3 target" in problem
    assert "SAP ASE targets only" in problem and "dms_lob_max_size_kb" in problem


def test_mysql_tables_may_load_by_partitions():
    extras = {0: "    parallel_load: {type: partitions-list, partitions: [p2023, p2024]}\n",
              1: "    parallel_load: {type: partitions-auto}\n", 2: RANGES}
    spec = parse_spec(many_tables_text(3, extras=extras, engine="mysql"), NAME)
    assert spec.tables[0].parallel_load.partitions == ["p2023", "p2024"]


def test_parallel_load_is_accepted_and_ranges_name_their_segments():
    """The load job reads segment and partition folders (tests/warehouse/test_parallel_load.py), so the
    spec takes parallel_load; a ranges load renders one fixed folder name per segment."""
    from dwctl.spec.dms_tasks import segment_names

    spec = parse_spec(many_tables_text(3, extras={1: RANGES}), NAME)
    assert spec.tables[1].parallel_load.type == "ranges"
    assert segment_names(len(spec.tables[1].parallel_load.boundaries)) == ["segment01", "segment02", "segment03",
                                                                             "segment04"]


def test_a_partitioned_table_is_not_also_loaded_in_parallel_segments():
    """DMS loads each partition as a table of its own; a parallel-load rule on top is refused at the table."""
    text = many_tables_text(3, extras={1: "    partitions: [t0001_a, t0001_b]\n" + RANGES})
    [problem] = problems(text)
    assert "tables[1].parallel_load" in problem and "partitioned table cannot also be loaded" in problem, problem
