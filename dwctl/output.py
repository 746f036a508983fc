"""Put a rendered tree on disk all-or-nothing, and compare it with what is there (black-style).

A manifest (`.dwctl-manifest.json` in the output root) lists what dwctl generated last
time, so the files of a removed table are deleted while files a user added by hand to
iac/ or sql/ are never touched.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from dwctl.errors import OutputError

MANIFEST = ".dwctl-manifest.json"


@dataclass
class Changes:
    """What writing `files` under `root` would do."""

    write: dict[str, str] = field(default_factory=dict)  # new or changed files
    delete: list[str] = field(default_factory=list)  # generated before, not any more
    unchanged: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.write and not self.delete


def previous_manifest(root: Path) -> list[str]:
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        return [p for p in data["files"] if _safe_relative(p)]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _safe_relative(path: str) -> bool:
    parts = Path(path).parts
    return bool(parts) and not Path(path).is_absolute() and ".." not in parts


def manifest_text(files: dict[str, str]) -> str:
    return json.dumps({"generator": "dwctl", "files": sorted(files)}, indent=2) + "\n"


def compare(root: Path, files: dict[str, str]) -> Changes:
    """Classify every file against the disk; includes the manifest itself."""
    files = {**files, MANIFEST: manifest_text(files)}
    changes = Changes()
    for path, text in files.items():
        target = root / path
        try:
            current = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        (changes.unchanged.append(path) if current == text else changes.write.__setitem__(path, text))
    changes.delete = sorted(p for p in previous_manifest(root) if p not in files and (root / p).is_file())
    return changes


def unified_diff(root: Path, files: dict[str, str], changes: Changes) -> str:
    chunks = []
    for path in sorted(changes.write):
        target = root / path
        old = target.read_text(encoding="utf-8", errors="replace") if target.is_file() else ""
        chunks.extend(difflib.unified_diff(old.splitlines(True), changes.write[path].splitlines(True),
                                           f"a/{path}", f"b/{path}"))
    for path in changes.delete:
        old = (root / path).read_text(encoding="utf-8", errors="replace")
        chunks.extend(difflib.unified_diff(old.splitlines(True), [], f"a/{path}", "/dev/null"))
    return "".join(line if line.endswith("\n") else line + "\n" for line in chunks)


def write_tree(root: Path, changes: Changes) -> None:
    """Stage every new file beside its target, then swap them in; on any failure restore what was there."""
    if changes.clean:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".dwctl-stage-", dir=root))
    except OSError as exc:
        raise OutputError(f"{root}: cannot write the output: {exc.strerror or exc}. Nothing was changed.") from None
    done: list[tuple[Path, Path | None]] = []  # (target, backup or None when the target was new)
    try:
        for i, (path, text) in enumerate(sorted(changes.write.items())):
            staged = stage / "new" / str(i)
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_text(text, encoding="utf-8", newline="\n")
        for i, path in enumerate(sorted(changes.write)):
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            backup = _move_aside(target, stage, f"w{i}")
            done.append((target, backup))
            os.replace(stage / "new" / str(i), target)
        for i, path in enumerate(changes.delete):
            target = root / path
            done.append((target, _move_aside(target, stage, f"d{i}")))
    except OSError as exc:
        _restore(done)
        where = getattr(exc, "filename", None) or root
        raise OutputError(f"{where}: cannot write the output: {exc.strerror or exc}. "
                          f"Nothing was changed under {root}.") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    _prune_empty_dirs(root, changes.delete)


def _move_aside(target: Path, stage: Path, name: str) -> Path | None:
    if not target.exists():
        return None
    backup = stage / "old" / name
    backup.parent.mkdir(parents=True, exist_ok=True)
    os.replace(target, backup)
    return backup


def _restore(done: list[tuple[Path, Path | None]]) -> None:
    for target, backup in reversed(done):
        try:
            if backup is None:
                target.unlink(missing_ok=True)
            else:
                os.replace(backup, target)
        except OSError:
            pass


def _prune_empty_dirs(root: Path, deleted: list[str]) -> None:
    for path in deleted:
        parent = (root / path).parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
