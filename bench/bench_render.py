"""Render benchmark: 10, 100 and 1,000 generated tables (wall time, peak memory), and `dwctl --help` start-up.

Targets (issue 2): 1,000 tables under 1 s; the 1,000-table time under 10x the 10-table time;
`dwctl --help` within 1.5x of `python -c "import click"`. Run: `make bench`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dwctl.render.engine import environment, render  # noqa: E402
from dwctl.spec.read import parse_spec  # noqa: E402


def spec_text(tables: int) -> str:
    """The bundled example with its tables replaced by `tables` generated ones."""
    data = yaml.safe_load((ROOT / "config" / "pipeline.yaml").read_text())
    data["tables"] = [
        {
            "schema": "public",
            "name": f"table_{i:04d}",
            "columns": [{"name": "id", "type": "bigint", "nullable": False}]
            + [{"name": f"col_{j}", "type": t} for j, t in enumerate(
                ["varchar(100)", "numeric(12,2)", "timestamptz", "jsonb", "boolean", "integer", "text", "date"])],
            "primary_key": ["id"],
            "sort_keys": ["id"],
        }
        for i in range(tables)
    ]
    data["governance"]["grants"] = [
        {"principal": "arn:aws:iam::123456789012:role/Analyst", "tables": [f"table_{i:04d}" for i in range(1, tables)],
         "permissions": ["SELECT"]},
        {"principal": "arn:aws:iam::123456789012:role/Analyst", "tables": ["table_0000"],
         "permissions": ["SELECT"], "columns": {"exclude": ["col_0"]}},
    ]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200)


def measure_render(tables: int, repeat: int = 3) -> tuple[float, float, int]:
    """(median seconds for load+validate+render, peak MiB, files) for a spec of `tables` tables."""
    text = spec_text(tables)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        files = render(parse_spec(text, "bench.yaml"), "bench.yaml")
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    render(parse_spec(text, "bench.yaml"), "bench.yaml")
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(times), peak, len(files)


def measure_cli_render(tables: int, repeat: int = 3) -> float:
    """Median wall time of a whole `dwctl render` process (start-up, imports, template compilation, write)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(spec_text(tables))
        dwctl = str(Path(sys.executable).parent / "dwctl")
        times = []
        for i in range(repeat):
            start = time.perf_counter()
            subprocess.run([dwctl, "render", "-c", str(spec), "-o", str(Path(tmp) / f"out{i}")], check=True,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def measure_command(args: list[str], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    environment()  # template compilation is a one-off per process; keep it out of the per-size figures
    results = {n: measure_render(n) for n in (10, 100, 1000)}
    for n, (seconds, peak, files) in results.items():
        print(f"render {n:>5} tables: {seconds * 1000:8.1f} ms  peak {peak:7.1f} MiB  {files} files")
    ratio = results[1000][0] / results[10][0]
    print(f"in-process load+render, 1000/10 time ratio: {ratio:.1f}x; 1000 tables under 1 s: {results[1000][0] < 1.0}")
    cli = {n: measure_cli_render(n) for n in (10, 100, 1000)}
    for n, seconds in cli.items():
        print(f"`dwctl render` process, {n:>5} tables: {seconds * 1000:8.1f} ms")
    print(f"`dwctl render` 1000/10 time ratio: {cli[1000] / cli[10]:.1f}x (target < 10x)")
    floor = measure_command([sys.executable, "-c", "import click"])
    dwctl = str(Path(sys.executable).parent / "dwctl")
    help_time = measure_command([dwctl, "--help"])
    print(f"`python -c 'import click'`: {floor * 1000:.0f} ms; `dwctl --help`: {help_time * 1000:.0f} ms; "
          f"ratio {help_time / floor:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
