"""Gates benchmark: `dwctl scan` against raw checkov on the same tree, and `dwctl validate` at 4 and 1,000 tables.

Targets (issue 5): `dwctl scan` wall time at most 1.1x `checkov -d iac --framework terraform`.
Both get `--skip-download` (dwctl always passes it): without it, on a machine with no network,
checkov spends most of its time waiting on the Prisma API and the ratio would flatter dwctl.
Runs are interleaved and the median is reported, since other jobs share the machine.
Run: `python bench/bench_gates.py [--repeat N] [--validate-repeat N] [--literal]` (--literal also times the bare command once).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402
from bench_render import spec_text  # noqa: E402

BIN = Path(sys.executable).parent
SCHEMA = ROOT.parent / "shared" / "aws-provider-schema" / "schema.json"


def timed(args: list[str], cwd: Path) -> tuple[float, int, float]:
    """(wall seconds, exit code, CPU seconds of the process and its children, e.g. checkov's workers)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_utime + usage.ru_stime


def big_spec(tables: int) -> str:
    """bench_render's generator, with its two grants made disjoint: the spec now refuses a second grant
    for the same principal and table (one Lake Formation permission per principal and table)."""
    data = yaml.safe_load(spec_text(tables))
    column_grant_tables = {t for g in data["governance"]["grants"] if g.get("columns") for t in g["tables"]}
    for grant in data["governance"]["grants"]:
        if not grant.get("columns") and isinstance(grant["tables"], list):
            grant["tables"] = [t for t in grant["tables"] if t not in column_grant_tables]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200)


def render(spec: Path, root: Path) -> None:
    subprocess.run([str(BIN / "dwctl"), "render", "-c", str(spec), "-o", str(root)], check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="scan and raw checkov runs each")
    parser.add_argument("--validate-repeat", type=int, default=3)
    parser.add_argument("--literal", action="store_true", help="also time bare `checkov -d iac --framework terraform`")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dwctl-bench-gates-") as tmp:
        work = Path(tmp)
        example = work / "example"
        example.mkdir()
        spec = example / "pipeline.yaml"
        spec.write_text((ROOT / "config" / "pipeline.yaml").read_text())
        render(spec, example)

        raw_cmd = [str(BIN / "checkov"), "-d", "iac", "--framework", "terraform", "--skip-download"]
        scan_cmd = [str(BIN / "dwctl"), "scan", "-c", "pipeline.yaml", "-o", ".", "--soft-fail"]
        raw, scan = [], []
        for _ in range(opts.repeat):
            raw.append(timed(raw_cmd, example))
            scan.append(timed(scan_cmd, example))
        for name, runs in (("checkov -d iac --framework terraform --skip-download", raw), ("dwctl scan", scan)):
            print(f"{name:<52} wall {statistics.median(r[0] for r in runs):6.2f} s  cpu "
                  f"{statistics.median(r[2] for r in runs):6.2f} s  (wall runs: {', '.join(f'{r[0]:.2f}' for r in runs)})")
        wall = statistics.median(r[0] for r in scan) / statistics.median(r[0] for r in raw)
        cpu = statistics.median(r[2] for r in scan) / statistics.median(r[2] for r in raw)
        print(f"ratio dwctl/raw: wall {wall:.2f}x, cpu {cpu:.2f}x (target <= 1.1x; cpu is the steadier figure "
              "on a shared machine)")
        if opts.literal:
            literal = timed([str(BIN / "checkov"), "-d", "iac", "--framework", "terraform"], example)[0]
            print(f"bare `checkov -d iac --framework terraform` (fetches policy metadata): {literal:6.2f} s")

        validate_cmd = [str(BIN / "dwctl"), "validate", "-c", "pipeline.yaml", "-o", ".",
                        "--provider-schema", str(SCHEMA)]
        times = []
        for _ in range(opts.validate_repeat):
            seconds, code, _ = timed(validate_cmd, example)
            assert code == 0, "dwctl validate fails on the example"
            times.append(seconds)
        print(f"dwctl validate, example ({len(list((example / 'iac').glob('*.tf')))} .tf files): "
              f"{statistics.median(times):6.2f} s")

        big = work / "big"
        big.mkdir()
        (big / "pipeline.yaml").write_text(big_spec(1000))
        render(big / "pipeline.yaml", big)
        size = sum(p.stat().st_size for p in (big / "iac").glob("*.tf")) / 2**20
        times = []
        for _ in range(opts.validate_repeat):
            seconds, code, _ = timed(validate_cmd, big)
            assert code == 0, "dwctl validate fails on the 1,000-table spec"
            times.append(seconds)
        print(f"dwctl validate, 1,000 tables ({size:.1f} MiB of HCL): {statistics.median(times):6.2f} s")


if __name__ == "__main__":
    main()
