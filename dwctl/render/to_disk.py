"""Render a spec to disk, or check/diff it against what is there: one code path for all three."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dwctl.render.engine import render
from dwctl.render.output import compare, unified_diff, write_tree
from dwctl.spec.read import display_name, load_spec


def rendered_files(spec_path: Path) -> dict[str, str]:
    """Load, validate and render in memory; raises before anything touches the disk."""
    spec = load_spec(spec_path)
    return render(spec, display_name(spec_path))


def render_to_disk(spec_path: Path, root: Path, *, check: bool = False, show_diff: bool = False,
                   echo: Callable[[str], None] = print) -> int:
    """Exit code: 0 written or up to date; 1 with --check when stale."""
    from dwctl.render.environments import warnings

    spec = load_spec(spec_path)
    files = render(spec, display_name(spec_path))
    for warning in warnings(spec):
        echo(f"warning: {warning}")
    changes = compare(root, files)
    if check or show_diff:
        if not changes.clean:
            echo(unified_diff(root, files, changes).rstrip("\n"))
        if check:
            stale = len(changes.stale)
            echo(f"{stale} file(s) stale under {root}; run `dwctl render`." if stale else "up to date")
            return 1 if stale else 0
        return 0
    write_tree(root, changes)
    echo(f"rendered {len(files)} files under {root}: {len(changes.write)} written, "
         f"{len(changes.delete)} deleted, {len(changes.unchanged)} unchanged")
    return 0
