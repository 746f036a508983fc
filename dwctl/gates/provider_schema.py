"""Offline validation of rendered Terraform HCL against a provider schema.

Why: `terraform validate` needs `terraform init` (provider download, network). The JSON that
`terraform providers schema -json` prints is enough to catch what a template renderer gets
wrong -- misspelt or read-only arguments, missing required arguments, wrong nested blocks,
dangling references -- in plain unit tests.

Parsing uses `hcl2` (bc-python-hcl2 0.4.x, shipped with checkov). Its quirks shape this module:
- only top-level blocks carry `__start_line__`/`__end_line__` (resource/data/module/provider/
  variable/locals/terraform; not output, not nested blocks), so `_outline` re-scans the text
  for block headers, attribute lines and brace depth to get the best-effort lines;
- every body maps a key to a *list*: attributes to `[value]`, blocks to `[{body}, ...]`;
  a labelled block nests one dict per label (`{"local-exec": {body}}`);
- `x {}` and `x = {}` both come out as `[{}]`, so attribute vs block is decided by the schema;
- expressions are strings: `"${aws_s3_bucket.b.arn}"`, templates keep literal text around
  `${...}`, and objects/tuples inside function calls are rendered with Python `repr`
  (`jsonencode({'Action': 's3:GetObject'})`), hence single-quoted string literals.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from dwctl.gates.hcl_parse import Parser, text_code

__all__ = ["Problem", "ProviderSchema", "ProviderSchemas", "load_schema", "validate_files"]

_LINE_KEYS = frozenset({"__start_line__", "__end_line__"})
_RESOURCE_META = frozenset({"count", "for_each", "provider", "depends_on", "lifecycle",
                            "provisioner", "connection"})
_DATA_META = frozenset({"count", "for_each", "provider", "depends_on", "lifecycle"})
_PROVIDER_META = frozenset({"alias", "version"})
_LIFECYCLE_KEYS = {
    "resource": frozenset({"create_before_destroy", "prevent_destroy", "ignore_changes",
                           "replace_triggered_by", "precondition", "postcondition"}),
    "data": frozenset({"precondition", "postcondition"}),  # what Terraform accepts on data
}
_CONDITION_KEYS = frozenset({"condition", "error_message"})
_DYNAMIC_KEYS = frozenset({"for_each", "iterator", "labels", "content"})
# label count of every top-level block type Terraform knows
_TOP_LABELS = {"resource": 2, "data": 2, "provider": 1, "variable": 1, "output": 1, "module": 1,
               "check": 1, "locals": 0, "terraform": 0, "moved": 0, "import": 0, "removed": 0}
_IGNORED_ROOTS = frozenset({"each", "count", "path", "self", "terraform"})


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, eq=False)
class ProviderSchema:
    """One provider's schema; block dicts are the JSON's `block` objects, kept as-is."""
    source: str                                  # registry.terraform.io/hashicorp/aws
    provider: dict[str, Any]
    resources: dict[str, dict[str, Any]]
    data_sources: dict[str, dict[str, Any]]


@dataclass(frozen=True, eq=False)
class ProviderSchemas:
    """All providers of a schema file, by local name (`aws`), i.e. a type's prefix."""
    providers: dict[str, ProviderSchema]

    def for_type(self, type_name: str) -> ProviderSchema | None:
        return self.providers.get(type_name.split("_", 1)[0])


def load_schema(path: Path) -> ProviderSchemas:
    """Parse the JSON once and index blocks by type (lookups are then plain dict gets)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    providers: dict[str, ProviderSchema] = {}
    for source, body in (data.get("provider_schemas") or {}).items():
        local = source.rstrip("/").rsplit("/", 1)[-1]
        providers.setdefault(local, ProviderSchema(
            source=source,
            provider=(body.get("provider") or {}).get("block") or {},
            resources={k: v.get("block") or {} for k, v in (body.get("resource_schemas") or {}).items()},
            data_sources={k: v.get("block") or {}
                          for k, v in (body.get("data_source_schemas") or {}).items()},
        ))
    if not providers:
        raise ValueError(f"{path}: no provider_schemas found")
    return ProviderSchemas(providers)


# --------------------------------------------------------------------------- line outline

@dataclass
class _Node:
    """A block as seen in the text: where it starts, its attribute lines and child blocks."""
    name: str
    labels: tuple[str, ...]
    start: int
    attrs: dict[str, int] = field(default_factory=dict)
    children: list[_Node] = field(default_factory=list)
    # {name: children of that name}, made at the first lookup (after the outline): child(name, i) is
    # asked for each of 1,000 nested blocks of one name (the crawler's s3_target)
    _named: dict[str, list[_Node]] | None = field(default=None, repr=False, compare=False)

    def blocks(self, name: str) -> list[_Node]:
        if self._named is None:
            self._named = {}
            for c in self.children:
                self._named.setdefault(c.name, []).append(c)
        return self._named.get(name, [])

    def line_of(self, name: str) -> int:
        if name in self.attrs:
            return self.attrs[name]
        kids = self.blocks(name)
        return kids[0].start if kids else self.start

    def child(self, name: str, index: int) -> _Node:
        kids = self.blocks(name)
        return kids[index] if index < len(kids) else self


_HEADER = re.compile(r'\s*([A-Za-z_][\w-]*)((?:\s+(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w-]*))*)\s*\{')
_LABEL = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w-]*)')
_ATTR = re.compile(r'\s*([A-Za-z_][\w-]*)\s*=(?![=>])')
_BRACKETS = re.compile(r"[{}()\[\]]")


def _outline(text: str) -> _Node:
    """Line-based scan (strings/comments/heredocs blanked, brackets counted); best effort."""
    root = _Node("", (), 1)
    stack: list[_Node | None] = []          # one entry per open bracket; _Node for a block's {
    lines, codes, _ = text_code(text)
    for no, (raw, code) in enumerate(zip(lines, codes), 1):
        if not code:
            continue
        parent = stack[-1] if stack else root
        header = _HEADER.match(code) if parent is not None else None
        if parent is not None and not header and (a := _ATTR.match(code)):
            parent.attrs.setdefault(a.group(1), no)
        for ch in _BRACKETS.findall(code):
            if ch in "{([":
                if header and ch == "{" and parent is not None:
                    full = _HEADER.match(raw)
                    labels = tuple(a or b for a, b in _LABEL.findall(full.group(2))) if full else ()
                    node = _Node(header.group(1), labels, no)
                    parent.children.append(node)
                    stack.append(node)
                    header = None
                else:
                    stack.append(None)
            elif ch in "})]" and stack:
                stack.pop()
    return root


# --------------------------------------------------------------------------- expressions

_IDENT = re.compile(r"[A-Za-z_][\w-]*")
_FOR_VARS = re.compile(r"\bfor\s+([A-Za-z_][\w-]*)(?:\s*,\s*([A-Za-z_][\w-]*))?\s+in\b")


def _template_code(s: str, out: list[str], i: int = 0, quote: str | None = None) -> int:
    """Collect the code of every `${...}`/`%{...}` in template `s` (literal text is skipped).

    With `quote`, `s[i:]` is the inside of a string literal and scanning stops after it.
    """
    n = len(s)
    while i < n:
        c = s[i]
        if quote and c == "\\":
            i += 2
            continue
        if quote and c == quote:
            return i + 1
        if c in "$%" and s.startswith(c + c + "{", i):      # $${ and %%{ are escapes
            i += 3
            continue
        if c in "$%" and s.startswith("{", i + 1):
            buf: list[str] = []
            i = _expr_code(s, i + 2, buf, out)
            out.append("".join(buf))
            continue
        i += 1
    return i


def _expr_code(s: str, i: int, buf: list[str], out: list[str]) -> int:
    """Copy expression text up to its closing `}` into `buf`, blanking string literals."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c in "\"'":               # '...' only comes from hcl2's repr() of objects/tuples
            buf.append('""')
            i = _template_code(s, out, i + 1, quote=c)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i + 1
            depth -= 1
        buf.append(c)
        i += 1
    return i


@lru_cache(maxsize=65536)
def _string_code(s: str) -> tuple[str, ...]:
    """_template_code's fragments of one string, kept: 1,000 tables repeat the same expressions, and a
    string without `{` has none."""
    out: list[str] = []
    if "{" in s:
        _template_code(s, out)
    return tuple(out)


def _fragments(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.extend(_string_code(value))
    elif isinstance(value, list):
        for v in value:
            _fragments(v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _LINE_KEYS:
                _fragments(k, out)
                _fragments(v, out)


def _traversals(code: str):
    """Yield (root, steps) for each traversal; steps are ("attr", name) / ("index", "")."""
    for m in _IDENT.finditer(code):
        s = m.start()
        if s and (code[s - 1].isalnum() or code[s - 1] in "._:"):
            continue                      # an attribute, part of a number, or provider::fn
        steps: list[tuple[str, str]] = []
        j = m.end()
        while j < len(code) and len(steps) < 6:
            if code.startswith(".*", j):
                steps.append(("index", ""))
                j += 2
            elif code[j] == "." and (a := _IDENT.match(code, j + 1)):
                steps.append(("attr", a.group()))
                j = a.end()
            elif code[j] == "[":
                depth, k = 0, j
                while k < len(code):
                    depth += {"[": 1, "]": -1}.get(code[k], 0)
                    if depth == 0:
                        break
                    k += 1
                steps.append(("index", ""))
                j = k + 1
            else:
                break
        if steps and steps[0][0] == "attr":
            yield m.group(), steps


def _strip_expr(value: Any) -> str:
    """`"${rule}"` -> `rule` (how hcl2 returns a bare identifier)."""
    s = str(value)
    return s[2:-1] if s.startswith("${") and s.endswith("}") else s


# --------------------------------------------------------------------------- schema helpers

def _is_body(v: Any) -> bool:
    """A block body (every value a list), as opposed to an object literal."""
    return isinstance(v, dict) and all(isinstance(x, list) for k, x in v.items() if k not in _LINE_KEYS)


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _LINE_KEYS}


def _object_block(attr_type: Any) -> dict[str, Any] | None:
    """list/set-of-object attributes also accept block syntax (Terraform's attributes-as-blocks)."""
    if (isinstance(attr_type, list) and len(attr_type) == 2 and attr_type[0] in ("list", "set")
            and isinstance(attr_type[1], list) and attr_type[1][:1] == ["object"]):
        return {"attributes": {k: {"optional": True, "type": t} for k, t in attr_type[1][1].items()}}
    return None


# --------------------------------------------------------------------------- validator

class _Validator:
    def __init__(self, schema: ProviderSchemas):
        self.schema = schema
        self.problems: list[Problem] = []
        self.decl: dict[str, dict[str, tuple[str, int]]] = {
            k: {} for k in ("resource", "data", "variable", "local", "output", "module")}

    def add(self, file: str, line: int, message: str) -> None:
        self.problems.append(Problem(file, max(int(line or 1), 1), message))

    def declare(self, kind: str, name: str, file: str, line: int) -> None:
        seen = self.decl[kind]
        if name in seen:
            self.add(file, line, f'duplicate {kind} "{name}" (first declared at {seen[name][0]}:{seen[name][1]})')
        else:
            seen[name] = (file, line)

    # -- schema checks

    def check_top(self, file: str, kind: str, labels: tuple[str, ...], body: dict, node: _Node) -> None:
        if kind == "provider":
            ps = self.schema.providers.get(labels[0])
            if ps is None:
                self.add(file, node.start, f'provider "{labels[0]}": not in the provider schema')
            else:
                self.check_body(file, body, ps.provider, node, f'provider "{labels[0]}"', (), _PROVIDER_META, kind)
            return
        typ, name = labels
        addr = f"{typ}.{name}" if kind == "resource" else f"data.{typ}.{name}"
        ps = self.schema.for_type(typ)
        if ps is None:
            self.add(file, node.start, f'{addr}: no provider "{typ.split("_", 1)[0]}" in the schema')
            return
        block = (ps.resources if kind == "resource" else ps.data_sources).get(typ)
        if block is None:
            what = "resource type" if kind == "resource" else "data source"
            self.add(file, node.start, f'{addr}: unknown {what} "{typ}" in {ps.source}')
            return
        self.check_body(file, body, block, node, addr, (), _RESOURCE_META if kind == "resource" else _DATA_META, kind)

    def check_body(self, file: str, body: dict, block: dict, node: _Node, addr: str,
                   path: tuple[str, ...], meta: frozenset[str] = frozenset(), kind: str = "",
                   lenient: bool = False) -> None:
        """Check one block body at one nesting level, then recurse into nested blocks."""
        attrs = block.get("attributes") or {}
        btypes = block.get("block_types") or {}
        if not attrs and not btypes and not meta:
            return          # untyped (recursive) block in cdktf-derived schemas: anything goes
        where = f'{addr} block "{".".join(path)}"' if path else addr
        dynamic: set[str] = set()
        for i, entry in enumerate(body.get("dynamic") or []):
            dnode = node.child("dynamic", i)
            for name, dbody in (entry.items() if isinstance(entry, dict) else ()):
                dynamic.add(name)
                self.check_dynamic(file, name, _clean(dbody) if isinstance(dbody, dict) else {},
                                   attrs, btypes, dnode, addr, path, where)
        for key, vals in body.items():
            if key in _LINE_KEYS or key == "dynamic":
                continue
            vals = vals if isinstance(vals, list) else [vals]
            line = node.line_of(key)
            if key in meta:
                if key == "lifecycle":
                    self.check_lifecycle(file, vals, node, where, kind)
            elif key in attrs:
                spec = attrs[key]
                if spec.get("computed") and not spec.get("optional") and not spec.get("required"):
                    self.add(file, line, f'{where}: "{key}" is read-only (computed) and cannot be set')
                obj = _object_block(spec.get("type"))
                if obj and vals and all(_is_body(v) for v in vals):
                    for j, v in enumerate(vals):
                        self.check_body(file, _clean(v), obj, node.child(key, j), addr, path + (key,), lenient=True)
                elif len(vals) > 1:
                    self.add(file, line, f'{where}: argument "{key}" is set more than once')
            elif key in btypes:
                for j, v in enumerate(vals):
                    if isinstance(v, dict):
                        self.check_body(file, _clean(v), btypes[key].get("block") or {},
                                        node.child(key, j), addr, path + (key,))
            else:
                what = "block type" if node.blocks(key) else "argument"
                self.add(file, line, f'{where}: unknown {what} "{key}"')
        if lenient:
            return
        for name, spec in attrs.items():
            if spec.get("required") and name not in body and name not in dynamic:
                self.add(file, node.start, f'{where}: missing required argument "{name}"')
        for name, bt in btypes.items():
            if name in dynamic:
                continue                      # count unknown until apply
            n = sum(isinstance(v, dict) for v in body.get(name) or [])
            lo = bt.get("min_items") or 0
            hi = bt.get("max_items") or (1 if bt.get("nesting_mode") in ("single", "group") else 0)
            if n < lo:
                self.add(file, node.start, f'{where}: needs at least {lo} "{name}" block(s), found {n}')
            if hi and n > hi:
                self.add(file, node.child(name, hi).start, f'{where}: at most {hi} "{name}" block(s) allowed, found {n}')

    def check_dynamic(self, file: str, name: str, dbody: dict, attrs: dict, btypes: dict,
                      dnode: _Node, addr: str, path: tuple[str, ...], where: str) -> None:
        lenient = name not in btypes
        if name in btypes:
            sub = btypes[name].get("block") or {}
        else:                             # list/set-of-object attribute written as blocks
            sub = _object_block((attrs.get(name) or {}).get("type"))
        if sub is None:
            self.add(file, dnode.start, f'{where}: dynamic "{name}": no nested block type "{name}" here')
            return
        for k in dbody:
            if k not in _DYNAMIC_KEYS:
                self.add(file, dnode.line_of(k), f'{where}: dynamic "{name}": unknown argument "{k}"')
        if "for_each" not in dbody:
            self.add(file, dnode.start, f'{where}: dynamic "{name}": missing "for_each"')
        contents = [c for c in dbody.get("content") or [] if isinstance(c, dict)]
        if len(contents) != 1:
            self.add(file, dnode.start, f'{where}: dynamic "{name}": needs exactly one "content" block')
        for j, c in enumerate(contents):
            self.check_body(file, _clean(c), sub, dnode.child("content", j), addr, path + (name,), lenient=lenient)

    def check_lifecycle(self, file: str, vals: list, node: _Node, where: str, kind: str) -> None:
        allowed = _LIFECYCLE_KEYS.get(kind, frozenset())
        for i, lc in enumerate(vals):
            lnode = node.child("lifecycle", i)
            for k, v in (lc.items() if isinstance(lc, dict) else ()):
                if k in _LINE_KEYS:
                    continue
                if k not in allowed:
                    self.add(file, lnode.line_of(k), f'{where}: unknown lifecycle argument "{k}"')
                elif k in ("precondition", "postcondition"):
                    for j, cond in enumerate(v):
                        extra = set(_clean(cond)) - _CONDITION_KEYS if isinstance(cond, dict) else set()
                        for e in sorted(extra):
                            self.add(file, lnode.child(k, j).line_of(e), f'{where}: unknown {k} argument "{e}"')

    # -- references

    def scan_refs(self, file: str, body: dict, node: _Node, scope: frozenset[str], skip=frozenset()) -> None:
        """Walk a body, checking every expression; dynamic blocks add their iterator to scope."""
        for key, val in body.items():
            if key in _LINE_KEYS or key in skip:
                continue
            if key == "dynamic" and isinstance(val, list):
                for i, entry in enumerate(val):
                    dnode = node.child("dynamic", i)
                    for name, d in (entry.items() if isinstance(entry, dict) else ()):
                        if not isinstance(d, dict):
                            continue
                        it = _strip_expr((d.get("iterator") or [name])[0])
                        self.scan_value(file, dnode.line_of("for_each"), d.get("for_each"), scope)
                        inner = {k: v for k, v in d.items() if k not in ("for_each", "iterator")}
                        self.scan_refs(file, inner, dnode, scope | {it})
                continue
            kids = node.blocks(key)
            for i, item in enumerate(val if isinstance(val, list) else [val]):
                if isinstance(item, dict) and kids:
                    inner_skip = frozenset({"ignore_changes"}) if key == "lifecycle" else frozenset()
                    self.scan_refs(file, item, node.child(key, i), scope, inner_skip)
                else:
                    self.scan_value(file, node.line_of(key), item, scope)

    def scan_value(self, file: str, line: int, value: Any, scope: frozenset[str]) -> None:
        frags: list[str] = []
        _fragments(value, frags)
        local = set(scope)
        for frag in frags:
            for m in _FOR_VARS.finditer(frag):
                local.update(v for v in m.groups() if v)
        for frag in frags:
            for root, steps in _traversals(frag):
                if root not in _IGNORED_ROOTS and root not in local:
                    self.check_ref(file, line, root, steps)

    def check_ref(self, file: str, line: int, root: str, steps: list[tuple[str, str]]) -> None:
        first = steps[0][1]
        simple = {"var": ("variable", "input variable"), "local": ("local", "local value"),
                  "module": ("module", "module")}
        if root in simple:
            kind, what = simple[root]
            if first not in self.decl[kind]:
                self.add(file, line, f'reference to undeclared {what} "{root}.{first}"')
            return
        if root == "data":
            if len(steps) < 2 or steps[1][0] != "attr":
                return
            kind, typ, name, rest, prefix = "data", first, steps[1][1], steps[2:], "data."
        elif "_" in root:                 # resource types always have a provider prefix
            kind, typ, name, rest, prefix = "resource", root, first, steps[1:], ""
        else:
            return
        addr = f"{prefix}{typ}.{name}"
        if f"{typ}.{name}" not in self.decl[kind]:
            what = "resource" if kind == "resource" else "data source"
            self.add(file, line, f'reference to undeclared {what} "{addr}"')
            return
        while rest and rest[0][0] == "index":
            rest = rest[1:]
        ps = self.schema.for_type(typ)
        block = ps and (ps.resources if kind == "resource" else ps.data_sources).get(typ)
        if rest and block and rest[0][1] != "id":
            attr = rest[0][1]
            if attr not in (block.get("attributes") or {}) and attr not in (block.get("block_types") or {}):
                self.add(file, line, f'reference to unknown attribute "{attr}" of {addr}')


def _parse_error_line(exc: Exception, text: str) -> int:
    line = getattr(exc, "line", None)
    if isinstance(line, int) and line > 0:
        return line
    msg = str(exc)
    if ": " in msg:                       # "Line has unclosed quote marks: <line text>"
        needle = msg.split(": ", 1)[1]
        for no, raw in enumerate(text.splitlines(), 1):
            if needle and raw == needle:
                return no
    return 1


def _top_blocks(tree: dict, root: _Node):
    """Yield (kind, labels, body, node) for each top-level block, matched to its outline node."""
    index: dict[tuple[str, tuple[str, ...]], list[_Node]] = {}
    for c in root.children:
        index.setdefault((c.name, c.labels), []).append(c)
    for kind, entries in tree.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            if kind not in _TOP_LABELS or not isinstance(entry, dict):
                yield kind, (), entry, None
                continue
            labels, body = (), entry
            for _ in range(_TOP_LABELS[kind]):
                if len(body) != 1:
                    break
                (label, body), = body.items()
                labels += (label,)
            if not isinstance(body, dict) or len(labels) != _TOP_LABELS[kind]:
                continue
            nodes = index.get((kind, labels))
            node = nodes.pop(0) if nodes else _Node(kind, labels, body.get("__start_line__") or 1)
            yield kind, labels, _clean(body), node


def validate_files(files: dict[str, str], schema: ProviderSchemas | Path | str) -> list[Problem]:
    """Validate the `*.tf` files of one Terraform root module; returns problems sorted by place."""
    if not isinstance(schema, ProviderSchemas):
        schema = load_schema(Path(schema))
    v = _Validator(schema)
    parser = Parser()  # blocks of one shape (one template, many tables) are parsed once
    parsed = []
    for file, text in files.items():
        if not file.endswith(".tf"):
            continue
        try:
            tree = parser.loads(text)
        except Exception as exc:  # lark errors, hcl2's ValueError for unclosed quotes, ...
            v.add(file, _parse_error_line(exc, text), f"HCL parse error: {str(exc).strip().splitlines()[0]}")
            continue
        root = _outline(text)
        blocks = list(_top_blocks(tree, root))
        parsed.append((file, root, blocks))
        for kind, labels, body, node in blocks:
            if node is None:
                v.add(file, root.line_of(kind), f'unexpected top-level "{kind}"')
            elif kind in ("resource", "data"):
                v.declare(kind, ".".join(labels), file, node.start)
            elif kind in ("variable", "output", "module"):
                v.declare(kind, labels[0], file, node.start)
            elif kind == "locals":
                for name in body:
                    v.declare("local", name, file, node.line_of(name))
    for file, root, blocks in parsed:
        for kind, labels, body, node in blocks:
            if node is None:
                continue
            if kind in ("resource", "data", "provider"):
                v.check_top(file, kind, labels, body, node)
            if kind in ("terraform", "moved", "removed"):
                continue                  # addresses there need not (or must not) exist
            skip = {"resource": {"provider"}, "data": {"provider"}, "module": {"providers"},
                    "variable": {"type"}}.get(kind, set())
            v.scan_refs(file, body, node, frozenset(), frozenset(skip))
    return sorted(set(v.problems), key=lambda p: (p.file, p.line, p.message))
