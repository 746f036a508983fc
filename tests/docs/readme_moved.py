"""Nothing the README said is lost, only moved: run once when the README was split into docs/.

    python tests/docs/readme_moved.py <git revision of the old README>   (e.g. 4163314)

Splits the old README into its pieces (paragraphs, bullet items, table rows, code lines, headings), and
looks for each, whitespace-normalized, in README.md and docs/**/*.md. Headings count without their #s.
Prints every piece not found (a sentence corrected on the way shows up here: say why in the commit),
and exits 1 if there is one. Not a test: it needs the git history, which a shallow clone may lack.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pieces(text: str) -> list[str]:
    out, current, in_code = [], [], False

    def flush():
        if current:
            out.append(" ".join(current))
            current.clear()

    for line in text.splitlines():
        if line.startswith("```"):
            flush()
            in_code = not in_code
            continue
        if in_code or line.startswith("|") or line.startswith("#"):
            flush()
            if line.strip():
                out.append(line.lstrip("#").strip())
            continue
        if not line.strip():
            flush()
        elif re.match(r"^\s*[-*] ", line):
            flush()
            current.append(re.sub(r"^\s*[-*] ", "", line))
        else:
            current.append(line.strip())
    flush()
    return [p for p in out if p.strip()]


def normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def main(revision: str) -> int:
    old = subprocess.run(["git", "show", f"{revision}:README.md"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    new = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])
    # Headings lose their #s in the new text too, so a heading moved one level up or down is still found.
    # &lt; and &gt; are how the generated pages now write a <placeholder> that HTML would swallow.
    haystack = normalized(re.sub(r"^#+ ", "", new, flags=re.M).replace("&lt;", "<").replace("&gt;", ">"))
    found = missing = 0
    for piece in pieces(old):
        if normalized(piece) in haystack:
            found += 1
        else:
            missing += 1
            print(f"not found: {piece[:300]}")
    print(f"{found} of {found + missing} pieces of the README at {revision} found in README.md and docs/; {missing} not")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "HEAD"))
