"""Stand-ins for terraform at the process boundary: they report a version and, for other commands, print
what they are told to; the tests then check what dwctl did around them."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPT = '''#!{python}
import json, sys
if sys.argv[1:2] == ["version"]:
    print(json.dumps({{"terraform_version": "{version}"}}))
    sys.exit(0)
print("stand-in asked to run " + " ".join(sys.argv[1:]), file=sys.stderr)
print({stderr!r}, file=sys.stderr, end="")
sys.exit({code})
'''


def standin(directory: Path, version: str = "1.11.4", name: str = "terraform", *, stderr: str = "",
            code: int = 9) -> Path:
    """An executable `name` in `directory`: `version -json` says `version`; anything else prints `stderr`
    and exits `code`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(SCRIPT.format(python=sys.executable, version=version, stderr=stderr, code=code))
    path.chmod(0o755)
    return path
