"""Stand-ins for terraform at the process boundary: they report a version and, for other commands, print
what they are told to; the tests then check what dwctl did around them."""

from __future__ import annotations

import json
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


OUTPUTS_SCRIPT = '''#!{python}
import json, sys
args = sys.argv[1:]
if args[:1] == ["version"]:
    print(json.dumps({{"terraform_version": "{version}"}}))
elif args[:2] == ["workspace", "list"]:
    print("* default")
elif args[:1] in (["init"], ["workspace"]):
    pass
elif args[:1] == ["output"]:
    print(json.dumps({outputs!r}))
else:
    print("stand-in asked to run " + " ".join(args), file=sys.stderr)
    sys.exit(9)
'''


def applied_standin(directory: Path, outputs: dict, version: str = "1.11.4") -> Path:
    """A terraform whose state holds `outputs` (name -> value): `init` and workspaces succeed, and
    `output -json` prints them as Terraform does ({name: {sensitive, type, value}})."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "terraform"
    shown = {k: {"sensitive": False, "type": "string" if isinstance(v, str) else ["map", "string"], "value": v}
             for k, v in outputs.items()}
    path.write_text(OUTPUTS_SCRIPT.format(python=sys.executable, version=version, outputs=json.loads(json.dumps(shown))))
    path.chmod(0o755)
    return path
