"""Find `prevent_destroy` guards in the rendered Terraform, so `dwctl destroy` refuses early and clearly.

Terraform would also refuse, but only after planning, with a message that does not say the guard
comes from the spec (`protect_data`). `prevent_destroy` must be a literal, so reading the .tf files
is exact; python-hcl2 parses them (a regular expression is the fallback for files it cannot parse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dwctl.deploy.plan_summary import DATA_HOLDING

SKIP_DIRS = {".terraform", ".dwctl"}


@dataclass(frozen=True)
class Guard:
    address: str  # type.name (as written in the file, module-relative)
    file: str  # relative to the scanned directory

    @property
    def holds_data(self) -> bool:
        return self.address.split(".")[0] in DATA_HOLDING


def tf_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tf")
                  if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts))


def guards(root: Path) -> list[Guard]:
    """Every resource under `root` whose lifecycle has `prevent_destroy = true`."""
    found: list[Guard] = []
    for path in tf_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "prevent_destroy" not in text:
            continue
        rel = path.relative_to(root).as_posix()
        try:
            addresses = _parsed(text)
        except Exception:  # noqa: BLE001 - any parser failure falls back to the text scan
            addresses = _scanned(text)
        found.extend(Guard(a, rel) for a in addresses)
    return found


def _truthy(value) -> bool:
    value = value[0] if isinstance(value, list) and value else value
    return value is True or str(value).strip().lower() == "true"


def _parsed(text: str) -> list[str]:
    import hcl2

    out = []
    for block in hcl2.loads(text).get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                for lifecycle in body.get("lifecycle", []) if isinstance(body, dict) else []:
                    if _truthy(lifecycle.get("prevent_destroy")):
                        out.append(f"{rtype}.{name}")
    return out


HEADER = re.compile(r'^\s*resource\s+"([^"]+)"\s+"([^"]+)"', re.M)
GUARD = re.compile(r"\bprevent_destroy\s*=\s*true\b")


def _scanned(text: str) -> list[str]:
    """Fallback: each resource's text runs to the next resource header."""
    heads = list(HEADER.finditer(text))
    out = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        if GUARD.search(text, head.end(), end):
            out.append(f"{head[1]}.{head[2]}")
    return out
