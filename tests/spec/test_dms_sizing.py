"""The DMS instance-size warnings (dwctl/spec/dms_sizing.py): the rules, their numbers and the class they suggest."""

from __future__ import annotations

from dwctl.spec import dms_sizing
from dwctl.spec.read import parse_spec
from tests.support.many_tables import many_tables_text


def sized(n: int, instance_class: str = "dms.t3.medium", dms: str = "") -> list[str]:
    text = many_tables_text(n, dms=dms).replace("instance_class: dms.t3.medium", f"instance_class: {instance_class}")
    return dms_sizing.warnings(parse_spec(text, "test.yaml"))


def test_the_example_size_needs_no_warning(example_spec):
    assert dms_sizing.warnings(example_spec) == []
    assert sized(100) == []  # one default task: 1 GiB of change caches, 8 subtasks on 2 vCPUs
    [cpu] = sized(200)  # two: 2 GiB is still half the memory, but 16 subtasks on 2 vCPUs are too many
    assert "load 16 tables or segments at once" in cpu


def test_a_thousand_tables_on_the_default_class_warn_with_the_reason_and_a_class_that_fits():
    memory, cpu = sized(1000)
    assert memory.startswith("dms.t3.medium is too small for 1000 table(s) in 10 DMS task(s)")
    assert "10 GiB in all, more than half of its 4 GiB" in memory and "dms.c6i.8xlarge is the smallest class" in memory
    assert "load 80 tables or segments at once" in cpu and "more than 4 per vCPU on its 2 vCPU(s)" in cpu
    assert sized(1000, "dms.c6i.8xlarge") == []  # 32 vCPUs, 64 GiB: the suggestion passes both rules
    [cpu_only] = sized(1000, "dms.r5.xlarge")  # 32 GiB is memory enough, 4 vCPUs are not
    assert "on its 4 vCPU(s)" in cpu_only


def test_fewer_subtasks_per_task_need_less_cpu():
    assert sized(1000, "dms.r5.xlarge", dms="  max_full_load_subtasks: 1") == []
    assert any("vCPU" in w for w in sized(1000, "dms.r5.xlarge"))


def test_more_than_eight_subtasks_in_a_task_is_warned_about():
    [advice] = sized(10, "dms.c5.4xlarge", dms="  max_full_load_subtasks: 16")
    assert "loads 16 tables at once: AWS advises at most 8" in advice


def test_an_unknown_class_is_said_to_be_unchecked():
    assert sized(5, "dms.x9.huge") == ["dwctl has no vCPU and memory figures for dms.x9.huge: the DMS instance "
                                       "size is not checked"]
