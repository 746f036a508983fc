"""Render a spec to disk, or check/diff it against what is there: one code path for all three."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dwctl.render.engine import render
from dwctl.render.output import compare, unified_diff, write_tree
from dwctl.spec.read import load_spec


def spec_label(spec_path: Path, root: Path) -> str:
    """The spec's name in the generated headers: relative to the output root when it lives under it, else its
    file name. Never relative to the cwd, so rendering from any directory writes the same bytes."""
    try:
        return spec_path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return spec_path.name


def render_to_disk(spec_path: Path, root: Path, *, check: bool = False, show_diff: bool = False,
                   echo: Callable[[str], None] = print, as_json: bool = False) -> int:
    """Exit code: 0 written or up to date; 1 with --check when stale. `as_json`: one JSON document, no diff."""
    from dwctl.render.environments import warnings

    spec = load_spec(spec_path)
    files = render(spec, spec_label(spec_path, root))
    for warning in [] if as_json else warnings(spec) + _migrations(root, files, spec):
        echo(warning if warning.startswith(("warning: ", "migration ")) else f"warning: {warning}")
    changes = compare(root, files)
    stale = len(changes.stale)
    if check or show_diff:
        if as_json:
            echo(_json(root, changes, ok=not (check and stale), written=False))
        elif not changes.clean:
            echo(unified_diff(root, files, changes).rstrip("\n"))
        if check and not as_json:
            echo(f"{stale} file(s) stale under {root}; run `dwctl render`." if stale else "up to date")
        return 1 if check and stale else 0
    write_tree(root, changes)
    total = len(changes.write) + len(changes.unchanged)  # the manifest counts: it is a file dwctl writes
    if as_json:
        echo(_json(root, changes, ok=True, written=True))
    else:
        echo(f"rendered {total} files under {root}: {len(changes.write)} written, "
             f"{len(changes.delete)} deleted, {len(changes.unchanged)} unchanged")
    return 0


def _migrations(root: Path, files: dict[str, str], spec) -> list[str]:
    """What the spec change does to the warehouse's tables, against the job config rendered before."""
    from dwctl.render import job_config
    from dwctl.render.migration_plan import describe

    previous = root / job_config.PATH
    return describe(previous.read_text(encoding="utf-8") if previous.is_file() else None, files[job_config.PATH], spec,
                    files.get(job_config.COLUMNS_PATH))


def _json(root: Path, changes, *, ok: bool, written: bool) -> str:
    import json

    key = "written" if written else "would_write"
    return json.dumps({"ok": ok, "root": root.as_posix(), key: sorted(changes.write),
                       ("deleted" if written else "would_delete"): changes.delete,
                       "unchanged": len(changes.unchanged)}, indent=2)
