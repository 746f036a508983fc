"""Parse Terraform files as `hcl2.loads` does, but parse each top-level block's shape only once.

Why: at 1,000 tables the rendered HCL is megabytes of blocks that differ only in their string
literals (a table's name, its S3 path) and in the resource names they refer to, and hcl2's lark
parser dominated `dwctl validate`. So each top-level block is cut out of the file, every plain
string literal and every resource name in a reference (`aws_glue_catalog_table.<name>.arn`) is
replaced by a placeholder numbered within the block (blocks of one template get the same text),
the skeleton is parsed once per distinct text, and each block's own literals are put back into a
copy of the skeleton's tree, line numbers shifted to the block's place. A long run inside a block --
a tuple (`name = [` or `"key" = [` at any depth: the DMS table-mapping rules, two per table, per
task) or nested blocks of one type (the crawler's s3_target, one per table) -- is parsed element
by element the same way: the skeleton holds one marker element in its place, which the elements
replace.

The result equals `hcl2.loads(text)` (tests/gates/test_hcl_parse.py compares them): a literal is
replaced only where hcl2 copies its text verbatim (no escape, quote, interpolation or
non-printable character), and anything the cut cannot handle -- a block or element that does not
parse alone, a text already holding the placeholder mark, a parse error -- falls back to
`hcl2.loads` on the whole file, so errors are reported exactly as before.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import hcl2

MARK = "__dwctl_lit"
_PLACEHOLDER = re.compile(MARK + r"(\d+)__")
# a string literal hcl2 shows verbatim: no escape, no quote of either kind, no ${ or %{
_PLAIN_STRING = re.compile(r'"((?:[^"\\\n$%\']|\$(?!\{)|%(?!\{))*)"')
_ANY_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_HEREDOC = re.compile(r'<<-?([A-Za-z_][\w-]*)\s*$')
_SPECIAL = re.compile(r'["#/<]')
_INLINE_COMMENT = re.compile(r"/\*.*?\*/")
_LINE_COMMENT = re.compile(r"#|//")
_LINE_KEYS = ("__start_line__", "__end_line__")


class Parser:
    """hcl2.loads with a cache of parsed block skeletons, shared by every file given to `loads`."""

    def __init__(self) -> None:
        self.trees: dict[str, dict] = {}

    def loads(self, text: str) -> dict:
        if MARK in text:
            return hcl2.loads(text)
        blocks = top_level_blocks(text)
        if blocks is None:
            return hcl2.loads(text)
        result: dict[str, list] = {}
        try:
            for first_line, lines, codes, deltas in blocks:
                tree = self.block(lines, codes, deltas, first_line - 1)
                if tree is None:
                    return hcl2.loads(text)  # the cut was wrong
                for kind, entries in tree.items():
                    result.setdefault(kind, []).extend(entries)
        except Exception:  # lark or hcl2 errors: let the whole file's parse report them
            return hcl2.loads(text)
        return result

    def parsed(self, text: str) -> tuple[dict, list[str]] | None:
        """The skeleton's tree (parsed once) and the text's literals; None unless it is one block."""
        literals: list[str] = []
        skeleton = _PLAIN_STRING.sub(lambda m: _hole(m, literals), text)
        skeleton = _RESOURCE_NAME.sub(lambda m: m.group(1) + _hole_name(m.group(2), literals), skeleton)
        tree = self.trees.get(skeleton)
        if tree is None:
            tree = hcl2.loads(skeleton)
            if len(tree) != 1 or len(next(iter(tree.values()))) != 1:
                return None
            self.trees[skeleton] = tree
        return tree, literals

    def block(self, lines: list[str], codes: list[str], deltas: list[int], shift: int) -> dict | None:
        """One top-level block; each long run in it (a tuple's elements, or nested blocks of one type) is
        replaced by a marker element, and parsed element by element, so repeated elements share a skeleton."""
        runs = _long_runs(codes, deltas)
        kept = list(lines)
        for n, (kind, name, first, last) in enumerate(runs):
            marker = f'"{MARK}_run{n}__"'
            if kind == "tuple":  # the elements' lines: one marker element, then blank lines
                kept[first + 1:last] = [marker + ","] + [""] * (last - first - 2)
            else:  # the blocks' lines: an attribute of the blocks' name holding the marker
                kept[first:last + 1] = [f"{name} = {marker}"] + [""] * (last - first)
        found = self.parsed("\n".join(kept) + "\n")
        if found is None:
            return None
        tree = _fill(*found, shift)
        places = _markers(tree) if runs else {}
        for n, (kind, name, first, last) in enumerate(runs):
            place = places.get(f"{MARK}_run{n}__")
            if place is None:
                return None
            elements = []
            for a, b in _elements(codes, deltas, first + 1 if kind == "tuple" else first, last if kind == "tuple" else last + 1):
                text = "\n".join(lines[a:b + 1]).rstrip()
                if kind == "tuple":
                    one = self.parsed("locals {\n" + _ELEMENT + " = " + text.removesuffix(",") + "\n}\n")
                    if one is None:
                        return None
                    elements.append(_fill(*one, 0)["locals"][0][_ELEMENT][0])
                else:
                    one = self.parsed(text + "\n")
                    if one is None or list(one[0]) != [name]:
                        return None
                    elements.append(_fill(*one, 0)[name][0])
            place[:] = elements
        return tree


_ELEMENT = MARK + "_element"
# a resource name in a reference (aws_glue_catalog_table.<name>.arn): per table, so a placeholder too
_RESOURCE_NAME = re.compile(r"(?<![\w.-])([a-z][a-z0-9]*_[a-z0-9_]+\.)([A-Za-z_][\w-]*)(?=\.)")
# a tuple's opening line (strings blanked: a quoted key is "")
_TUPLE_OPEN = re.compile(r'\s*(?:[A-Za-z_][\w-]*|"")\s*=\s*\[\s*$')
_BLOCK_OPEN = re.compile(r"\s*([A-Za-z_][\w-]*)\s*\{\s*$")  # a nested block without labels
_LONG = 16  # elements worth parsing one by one


def _markers(tree: Any) -> dict[str, list]:
    """{marker: the list holding only it} of the runs' markers in a block's tree (one walk, before any
    run's elements are in); a marker found twice is left out (the block then falls back)."""
    found: dict[str, list] = {}
    twice: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, list):
            if len(value) == 1 and isinstance(value[0], str) and value[0].startswith(MARK + "_run"):
                if value[0] in found:
                    twice.add(value[0])
                found[value[0]] = value
            else:
                for v in value:
                    walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
    walk(tree)
    return {k: v for k, v in found.items() if k not in twice}


def _hole(match: re.Match, literals: list[str]) -> str:
    content = match.group(1)
    if not content.isprintable():
        return match.group(0)
    literals.append(content)
    return f'"{MARK}{len(literals) - 1}__"'


def _hole_name(name: str, literals: list[str]) -> str:
    if name.startswith(MARK):
        return name
    literals.append(name)
    return f"{MARK}{len(literals) - 1}__"


def _delta(code: str) -> int:
    """How much a line's code changes the bracket depth."""
    if not code:
        return 0
    return (code.count("{") + code.count("(") + code.count("[")
            - code.count("}") - code.count(")") - code.count("]"))


def _long_runs(codes: list[str], deltas: list[int]) -> list[tuple[str, str, int, int]]:
    """(kind, name, first line, last line) of each long run in a block: a tuple attribute with many
    elements ("tuple": its opening and closing lines), or many consecutive nested blocks of one type
    ("blocks": the first block's first line and the last block's last line), at any depth."""
    found, i, depths, depth = [], 0, [], 0
    inside: set[int] = set()
    for d in deltas:
        depth += d
        depths.append(depth)
    while i < len(codes):
        before = depths[i - 1] if i else 0
        opens = codes[i].rstrip()[-1:] if deltas[i] == 1 and before >= 1 else ""  # an opening line: [ or {
        if not opens:
            i += 1
            continue
        if opens == "[" and _TUPLE_OPEN.fullmatch(codes[i]):
            j = next((k for k in range(i + 1, len(codes)) if depths[k] == before), None)
            if j is None or codes[j].strip() != "]":
                return []
            if len(_elements(codes, deltas, i + 1, j)) >= _LONG:
                found.append(("tuple", "", i, j))
                i = j
        elif opens == "{" and i not in inside and (opening := _BLOCK_OPEN.fullmatch(codes[i])):
            name, last, count, k = opening.group(1), None, 0, i
            while k < len(codes):  # blocks of this type, one after another (blank lines between)
                if not codes[k].strip():
                    k += 1
                    continue
                if not ((depths[k - 1] if k else 0) == before and (m := _BLOCK_OPEN.fullmatch(codes[k]))
                        and m.group(1) == name):
                    break
                close = next((e for e in range(k, len(codes)) if depths[e] == before), None)
                if close is None:
                    return []
                if k != i:
                    inside.add(k)  # a later block of this run: scanned from here, not again from it
                last, count, k = close, count + 1, close + 1
            if count >= _LONG:
                found.append(("blocks", name, i, last))
                i = last
        i += 1
    return found


def _elements(codes: list[str], deltas: list[int], first: int, stop: int) -> list[tuple[int, int]]:
    """(first, last) line of each element of a tuple whose elements are on lines first..stop-1."""
    out, start, depth = [], None, 0
    for k in range(first, stop):
        code = codes[k]
        if start is None:
            if not code.strip():
                continue
            start = k
        depth += deltas[k]
        if depth == 0:
            out.append((start, k))
            start = None
    return out if start is None else []


def _fill(value: Any, literals: list[str], shift: int) -> Any:
    """A copy of a skeleton's tree with the block's literals back in and line numbers shifted."""
    if isinstance(value, str):
        if MARK not in value:
            return value
        if value.startswith(MARK) and value.endswith("__") and value[len(MARK):-2].isdigit():
            return literals[int(value[len(MARK):-2])]  # the whole string is one literal: most of them
        return _PLACEHOLDER.sub(lambda m: literals[int(m.group(1))], value)
    if isinstance(value, list):
        return [_fill(v, literals, shift) for v in value]
    if isinstance(value, dict):
        return {_fill(k, literals, shift): (v + shift if k in _LINE_KEYS and isinstance(v, int)
                                            else _fill(v, literals, shift)) for k, v in value.items()}
    return value


def code_lines(lines: list[str]) -> tuple[list[str], bool]:
    """Each line's code: strings blanked, comments and heredoc bodies dropped (brackets then count);
    and whether the text ends outside any heredoc or block comment."""
    codes, heredoc, in_comment = [], None, False
    for raw in lines:
        if heredoc:
            heredoc = None if raw.strip() == heredoc else heredoc
            codes.append("")
            continue
        if not in_comment and not _SPECIAL.search(raw):
            codes.append(raw)  # most lines: no string, comment or heredoc
            continue
        code = _ANY_STRING.sub('""', raw) if '"' in raw else raw
        if in_comment:
            if "*/" not in code:
                codes.append("")
                continue
            code, in_comment = code.split("*/", 1)[1], False
        code = _INLINE_COMMENT.sub(" ", code)
        code = _LINE_COMMENT.split(code, maxsplit=1)[0]
        if "/*" in code:
            code, in_comment = code.split("/*", 1)[0], True
        if m := _HEREDOC.search(code):
            heredoc = m.group(1)
        codes.append(code)
    return codes, not heredoc and not in_comment


@lru_cache(maxsize=4)
def text_code(text: str) -> tuple[list[str], list[str], bool]:
    """(lines, code_lines' codes, clean) of a file's text, kept for the next caller: `dwctl validate`
    cuts each file into blocks here and outlines it (provider_schema._outline) from the same lines.
    Callers do not change the lists."""
    lines = text.splitlines()
    codes, clean = code_lines(lines)
    return lines, codes, clean


def top_level_blocks(text: str) -> list[tuple[int, list[str], list[str], list[int]]] | None:
    """(first line, lines, their code, their bracket deltas) of each top-level block: from its header line to the line
    closing it. Comment and blank lines between blocks are left out. None when the text does not
    cut cleanly (anything at depth 0 that is not a block, brackets that do not balance)."""
    lines, codes, clean = text_code(text)
    if not clean:
        return None
    deltas = [_delta(code) for code in codes]
    blocks, depth, start = [], 0, None
    for no, code in enumerate(codes):
        if depth == 0 and start is None:
            if not code.strip():
                continue
            if "{" not in code:
                return None
            start = no
        depth += deltas[no]
        if depth < 0 or (depth == 0 and not code.rstrip().endswith("}")):
            return None  # a line closing more than it opens: let hcl2 judge the file
        if depth == 0:
            blocks.append((start + 1, lines[start:no + 1], codes[start:no + 1], deltas[start:no + 1]))
            start = None
    return None if depth or start is not None else blocks
