"""The load job's real runtime, rebuilt here: Glue Python shell 3.9 with its preinstalled boto3/botocore.

AWS Glue Developer Guide, add-job-python.html, "Supported libraries for Python shell jobs": Python 3.9
with library set `analytics` has boto3 1.21.21 / botocore 1.24.21; with `none`, botocore 1.23.5 (boto3
1.20.5 is the boto3 release built on it). `make setup-test` runs this file to build one virtualenv per
library set under .venv-glue/ (pip from PyPI, at set-up time: the tests themselves contact nothing).

How Python 3.9 is found: `python3.9` on PATH, else the newest 3.9 under pyenv's versions folder
($PYENV_ROOT, default ~/.pyenv). Where there is none, set-up prints why and the runtime tests fail
when CI=true (CI must run them) and skip with that reason elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".venv-glue"
# library set -> the pins Glue documents for Python shell 3.9
RUNTIMES = {
    "analytics": ("boto3==1.21.21", "botocore==1.24.21"),
    "none": ("boto3==1.20.5", "botocore==1.23.5"),
}


def find_python39() -> str | None:
    """A CPython 3.9 interpreter that runs: python3.9 on PATH (a pyenv shim may be there and refuse),
    else pyenv's newest 3.9.x."""
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    pyenv = sorted(versions.glob("3.9.*/bin/python3.9"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")], reverse=True)
    for candidate in [shutil.which("python3.9"), *map(str, pyenv)]:
        if candidate and _is_python39(candidate):
            return candidate
    return None


def _is_python39(python: str) -> bool:
    try:
        out = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


def python_of(library_set: str) -> Path | None:
    """The interpreter of a built runtime, or None when set-up could not build it."""
    python = VENVS / library_set / "bin" / "python"
    stamp = VENVS / library_set / ".pins"
    ok = python.exists() and stamp.exists() and stamp.read_text() == " ".join(RUNTIMES[library_set])
    return python if ok else None


def missing_reason() -> str:
    if find_python39() is None:
        return ("no Python 3.9 (python3.9 on PATH or under ~/.pyenv/versions): the Glue job's runtime cannot be "
                "rebuilt; install CPython 3.9, then run `make setup-test`")
    return "the Glue runtime virtualenvs under .venv-glue/ are missing: run `make setup-test`"


def setup() -> int:
    python = find_python39()
    if python is None:
        print("glue runtime: " + missing_reason(), file=sys.stderr)
        return 0  # the tests say it again, and fail in CI
    for library_set, pins in RUNTIMES.items():
        if python_of(library_set):
            continue
        venv = VENVS / library_set
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *pins], check=True)
        (venv / ".pins").write_text(" ".join(pins))
        print(f"glue runtime {library_set}: {' '.join(pins)} on {python}")
    return 0


if __name__ == "__main__":
    sys.exit(setup())
