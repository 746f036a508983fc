"""Is the replication instance class big enough for the tasks the spec runs? Warnings that say why (issue 14).

AWS's sizing guidance: "LOBs affect memory, and task count or parallelism affect the CPU"; "The number of
tasks and the number of threads impact CPU consumption. Avoid using more than eight MaxFullLoadSubTasks"
(https://docs.aws.amazon.com/dms/latest/userguide/CHAP_BestPractices.SizingReplicationInstance.html).
dwctl turns that into two simple, deliberately rough rules, both against the class's vCPUs and memory
(https://docs.aws.amazon.com/dms/latest/userguide/CHAP_ReplicationInstance.Types.html):

- memory: each task may hold MemoryLimitTotal (1024 MB in dms.tf's ChangeProcessingTuning) of changes in
  memory before spilling to disk ("Sets the maximum size (in MB) that all transactions can occupy in memory",
  CHAP_Tasks.CustomizingTasks.TaskSettings.ChangeProcessingTuning). Full loads and LOBs need the rest, so the
  change caches of all tasks together should take at most half the instance's memory;
- CPU: all tasks together load sum(MaxFullLoadSubTasks) tables or segments at once. DMS's default, one task
  loading 8, on the 2 vCPUs of the smallest class the spec defaults to (dms.t3.medium) is 4 per vCPU: more
  than that per vCPU is warned about. A task above the eight AWS advises is warned about too.
They are a floor, not a capacity plan: watch CPUUtilization, FreeableMemory and CDC latency (alarms in
monitoring.tf) and resize from what they show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dwctl.spec.model import Spec

TASK_CHANGE_CACHE_GIB = 1.0  # MemoryLimitTotal = 1024 (MB) in templates/iac/dms.tf.j2
SUBTASKS_PER_VCPU = 4  # one default task (8) on dms.t3.medium (2 vCPUs)
ADVISED_SUBTASKS = 8

# class -> (vCPUs, memory GiB), from the replication instance types page above.
CLASSES: dict[str, tuple[int, float]] = {
    "dms.t2.micro": (1, 1), "dms.t2.small": (1, 2), "dms.t2.medium": (2, 4), "dms.t2.large": (2, 8),
    "dms.t3.micro": (2, 1), "dms.t3.small": (2, 2), "dms.t3.medium": (2, 4), "dms.t3.large": (2, 8),
    "dms.c4.large": (2, 3.75), "dms.c4.xlarge": (4, 7.5), "dms.c4.2xlarge": (8, 15), "dms.c4.4xlarge": (16, 30),
    "dms.c5.large": (2, 4), "dms.c5.xlarge": (4, 8), "dms.c5.2xlarge": (8, 16), "dms.c5.4xlarge": (16, 32),
    "dms.c5.9xlarge": (36, 72), "dms.c5.12xlarge": (48, 96), "dms.c5.18xlarge": (72, 144),
    "dms.c5.24xlarge": (96, 192),
    "dms.c6i.large": (2, 4), "dms.c6i.xlarge": (4, 8), "dms.c6i.2xlarge": (8, 16), "dms.c6i.4xlarge": (16, 32),
    "dms.c6i.8xlarge": (32, 64), "dms.c6i.12xlarge": (48, 96), "dms.c6i.16xlarge": (64, 128),
    "dms.c6i.24xlarge": (96, 192), "dms.c6i.32xlarge": (128, 256),
    "dms.r4.large": (2, 15.25), "dms.r4.xlarge": (4, 30.5), "dms.r4.2xlarge": (8, 61), "dms.r4.4xlarge": (16, 122),
    "dms.r4.8xlarge": (32, 244),
    "dms.r5.large": (2, 16), "dms.r5.xlarge": (4, 32), "dms.r5.2xlarge": (8, 64), "dms.r5.4xlarge": (16, 128),
    "dms.r5.8xlarge": (32, 256), "dms.r5.12xlarge": (48, 384), "dms.r5.16xlarge": (64, 512),
    "dms.r5.24xlarge": (96, 768),
    "dms.r6i.large": (2, 16), "dms.r6i.xlarge": (4, 32), "dms.r6i.2xlarge": (8, 64), "dms.r6i.4xlarge": (16, 128),
    "dms.r6i.8xlarge": (32, 256), "dms.r6i.12xlarge": (48, 384), "dms.r6i.16xlarge": (64, 512),
    "dms.r6i.24xlarge": (96, 768), "dms.r6i.32xlarge": (128, 1024),
}


def smallest_fitting(tasks: int, subtasks: int) -> str | None:
    """The class with the fewest vCPUs, then the least memory, that both rules accept."""
    fits = [(cpu, mem, name) for name, (cpu, mem) in CLASSES.items()
            if tasks * TASK_CHANGE_CACHE_GIB <= mem / 2 and subtasks <= SUBTASKS_PER_VCPU * cpu]
    return min(fits)[2] if fits else None


def warnings(spec: "Spec") -> list[str]:
    """One sentence per rule the spec's instance class breaks, with the numbers and a class that fits."""
    from dwctl.spec.dms_tasks import task_plans

    plans = task_plans(spec)
    tables = len(spec.tables)
    klass = spec.dms.instance_class
    out = [f"DMS task {p.name} loads {p.max_full_load_subtasks} tables at once: AWS advises at most "
           f"{ADVISED_SUBTASKS} MaxFullLoadSubTasks per task (more threads cost CPU and memory)"
           for p in plans if p.max_full_load_subtasks > ADVISED_SUBTASKS]
    if klass not in CLASSES:
        return out + [f"dwctl has no vCPU and memory figures for {klass}: the DMS instance size is not checked"]
    cpu, mem = CLASSES[klass]
    subtasks = sum(p.max_full_load_subtasks for p in plans)
    what = f"{tables} table(s) in {len(plans)} DMS task(s)"
    fit = smallest_fitting(len(plans), subtasks)
    advice = f"; {fit} is the smallest class that fits" if fit else "; split the tables over more instances"
    if len(plans) * TASK_CHANGE_CACHE_GIB > mem / 2:
        out.append(f"{klass} is too small for {what}: each task may keep {TASK_CHANGE_CACHE_GIB:g} GiB of changes "
                   f"in memory (MemoryLimitTotal), {len(plans) * TASK_CHANGE_CACHE_GIB:g} GiB in all, more than half "
                   f"of its {mem:g} GiB, so changes spill to disk and CDC latency grows{advice}")
    if subtasks > SUBTASKS_PER_VCPU * cpu:
        out.append(f"{klass} is too small for {what}: together they load {subtasks} tables or segments at once "
                   f"(MaxFullLoadSubTasks), more than {SUBTASKS_PER_VCPU} per vCPU on its {cpu} vCPU(s), so full "
                   f"loads and CDC compete for CPU{advice}")
    return out
