"""The checklist output `dwctl doctor` and `dwctl tools` share: an aligned table with the fix for each
problem, or the same rows as JSON. Rows are Checks (name, status, detail, fix)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

STATUSES = ("pass", "warn", "fail")
Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def counts(rows) -> dict[str, int]:
    return {s: sum(1 for r in rows if r.status == s) for s in STATUSES}


def to_text(rows, totals: str = "checks", paint=lambda text, status: text) -> str:
    """An aligned table (FAIL in capitals), then a totals line, then one fix per problem. `paint`
    colours a status (click.style; click.echo drops it off a terminal)."""
    width = max(len(r.name) for r in rows)
    lines = [f"{'STATUS':<6}  {'CHECK':<{width}}  DETAIL"]
    shown = lambda status: paint(f"{status.upper() if status == 'fail' else status:<6}", status)  # noqa: E731
    lines += [f"{shown(r.status)}  {r.name:<{width}}  {r.detail}" for r in rows]
    n = counts(rows)
    lines.append(f"{totals}: {n['pass']} pass, {n['warn']} warn, {n['fail']} fail")
    fixes = [r for r in rows if r.fix and r.status != "pass"]
    if fixes:
        lines.append("fixes:")
        lines += [f"  {r.status} {r.name}: {r.fix}" for r in fixes]
    return "\n".join(lines)


def to_json(rows, **context) -> str:
    return json.dumps({
        **context,
        "ok": not any(r.status == "fail" for r in rows),
        "counts": counts(rows),
        "checks": [{"name": r.name, "status": r.status, "detail": r.detail, "fix": r.fix} for r in rows],
    }, indent=2)
