"""Round-trip a spec file with ruamel.yaml so that untouched parts come back byte for byte.

ruamel keeps comments, key order and quoting, but it writes one indentation style for the
whole file. So we find the style the file already uses: guess it, then prove the guess by
dumping the untouched document and comparing with the text (trying a few common styles).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from dwctl.errors import SpecError

_KEY_ONLY = re.compile(r"^(\s*)[^\s#-][^#]*:\s*(#.*)?$")
_CONTENT = re.compile(r"^(\s*)(- |[^\s#])")


@dataclass(frozen=True)
class Style:
    mapping: int = 2
    sequence: int = 4
    offset: int = 2


@dataclass
class Document:
    """A loaded spec and the style that dumps it back unchanged (`exact` False if none does)."""

    data: Any
    style: Style
    exact: bool

    def dump(self) -> str:
        out = io.StringIO()
        _yaml(self.style).dump(self.data, out)
        return out.getvalue()


def _yaml(style: Style):
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip mode
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return yaml


def guess_style(text: str) -> Style:
    """Read the indentation of the first nested mapping and the first block sequence."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping = sequence = offset = None
    for here, nxt in zip(lines, lines[1:]):
        key, child = _KEY_ONLY.match(here), _CONTENT.match(nxt)
        if not key or not child:
            continue
        step = len(child[1]) - len(key[1])
        if child[2] == "- " and offset is None and step >= 0:
            offset, sequence = step, step + 2
        elif child[2] != "- " and mapping is None and step > 0:
            mapping = step
    return Style(mapping or 2, sequence if sequence is not None else 2, offset if offset is not None else 0)


def load(text: str, name: str) -> Document:
    """Parse for round-tripping; SpecError (file:line:col) when the YAML itself is broken."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    guess = guess_style(text)
    candidates = [guess] + [Style(m, s, o) for m in (2, 4) for s, o in ((2, 0), (4, 2), (4, 0), (3, 1))]
    try:
        data = _yaml(guess).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise SpecError([f"{where}: malformed YAML: {exc.problem or exc.context}"]) from None
    except YAMLError as exc:
        raise SpecError([f"{name}: malformed YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{name}:1:1: the spec must be a mapping with project, source, tables, ..."])
    for style in dict.fromkeys(candidates):
        doc = Document(data, style, True)
        if doc.dump() == text:
            return doc
    return Document(data, guess, False)
