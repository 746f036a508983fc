"""Load a spec from YAML keeping line/column marks, so every error reads `file:line:col: field: problem`."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dwctl.errors import SpecError
from dwctl.spec.model import LocatedError, Spec

Path_ = tuple  # a field path such as ("tables", 2, "columns", 0, "name")


STR_TAG, BOOL_TAG = "tag:yaml.org,2002:str", "tag:yaml.org,2002:bool"


class Marked:
    """Plain data built from a YAML node tree; the tree is kept to find the line/col of a field on error.
    Building tracks no field paths: the rare error that needs one (a duplicate or non-text key) finds its
    node's path in the tree afterwards (path_of), so the common case pays for nothing it does not use."""

    def __init__(self, source: str):
        self.source = source
        self.root: yaml.Node | None = None
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node) -> Any:
        self.root = node
        return self._build(node)

    def _build(self, node: yaml.Node) -> Any:
        kind = node.__class__
        if kind is yaml.MappingNode:
            data: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node, node)
                if key in data:
                    path = self.path_of(node) + (key,)
                    raise SpecError([f"{self.where(key_node.start_mark)}: {dotted(path)}: duplicate key"])
                data[key] = self._build(value_node)
            return data
        if kind is yaml.SequenceNode:
            return [self._build(item) for item in node.value]
        if node.tag == STR_TAG:  # the common cases, without the constructor's bookkeeping
            return node.value
        if node.tag == BOOL_TAG:
            return yaml.constructor.SafeConstructor.bool_values[node.value.lower()]
        return self._constructor.construct_object(node, deep=True)

    def _key(self, node: yaml.Node, mapping: yaml.Node) -> Any:
        if node.__class__ is not yaml.ScalarNode:
            raise SpecError([f"{self.where(node.start_mark)}: {dotted(self.path_of(mapping))}: "
                             "mapping keys must be plain text"])
        return node.value if node.tag == STR_TAG else self._constructor.construct_object(node)

    def path_of(self, target: yaml.Node) -> Path_:
        """The field path of a node of the tree (its keys and indexes from the root), for an error message."""
        stack: list[tuple[yaml.Node, Path_]] = [(self.root, ())] if self.root is not None else []
        while stack:
            node, path = stack.pop()
            if node is target:
                return path
            if isinstance(node, yaml.MappingNode):
                stack.extend((value, path + (self._key(key, node),)) for key, value in node.value
                             if isinstance(key, yaml.ScalarNode))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, path + (i,)) for i, item in enumerate(node.value))
        return ()

    def nodes_at(self, path: Path_) -> list[tuple[yaml.Node | None, yaml.Node]]:
        """(key node, value node) for each step of `path` that exists in the document, root first."""
        found: list[tuple[yaml.Node | None, yaml.Node]] = [(None, self.root)] if self.root is not None else []
        node = self.root
        for part in path:
            step = None
            if isinstance(node, yaml.MappingNode):
                step = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                step = (None, node.value[part])
            if step is None:
                break
            found.append(step)
            node = step[1]
        return found

    def where(self, mark: yaml.Mark | None) -> str:
        if mark is None:
            return self.source
        return f"{self.source}:{mark.line + 1}:{mark.column + 1}"


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML was built with it


class _Loader(_Base):
    """The safe loader, with each distinct scalar's implicit tag worked out once per document (a spec of
    thousands of tables repeats the same names and types), and no path resolvers (safe_load has none)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._tags: dict[tuple, str] = {}

    def resolve(self, kind, value, implicit):
        if kind is not yaml.ScalarNode:
            return _Base.resolve(self, kind, value, implicit)
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = _Base.resolve(self, kind, value, implicit)
        return tag

    def descend_resolver(self, current_node, current_index):
        pass

    def ascend_resolver(self):
        pass


@contextmanager
def paused_gc():
    """Building a spec or a tree of thousands of small objects makes the cyclic GC rescan them over and
    over; nothing here creates garbage cycles, so pause it for the duration (a large share of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def dotted(path: Path_) -> str:
    """("tables", 2, "name") -> tables[2].name"""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def display_name(spec_path: Path) -> str:
    """The spec's name in messages: the path as the user gave it, so they can open it from where they are."""
    return spec_path.as_posix()


MISSING_HINT = "start a project with `dwctl new --engine postgres|mysql`, or pass -c PATH"


def read_spec_text(spec_path: Path, missing_hint: str = MISSING_HINT) -> tuple[str, str]:
    """(display name, text) of a spec file; a missing or unreadable file is a located SpecError."""
    name = display_name(spec_path)
    try:
        return name, spec_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{name}: spec file not found ({missing_hint})"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{name}: cannot read the spec: {getattr(exc, 'strerror', None) or exc}"]) from None


def load_spec(spec_path: Path) -> Spec:
    """Read and validate a spec file; raise SpecError with located, one-line-per-problem messages."""
    name, text = read_spec_text(spec_path)
    return parse_spec(text, name)


def parse_spec(text: str, name: str = "<spec>") -> Spec:
    """Validate YAML text as a Spec; `name` is what error messages call the file."""
    with paused_gc():
        return _parse_spec(text, name)


def _parse_spec(text: str, name: str) -> Spec:
    marked = Marked(name)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError([f"{marked.where(mark)}: malformed YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{name}: malformed YAML: {exc}"]) from None
    if node is None:
        raise SpecError([f"{name}:1:1: the spec is empty; expected a mapping with project, source, tables, ..."])
    data = marked.build(node)
    if not isinstance(data, dict):
        raise SpecError([f"{marked.where(node.start_mark)}: the spec must be a mapping, not a {type(data).__name__}"])
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_problems(exc, data, marked)) from None


def _problems(exc: ValidationError, data: Any, marked: Marked) -> list[str]:
    grouped: dict[Path_, list[str]] = {}
    kinds: dict[Path_, str] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        located = (err.get("ctx") or {}).get("error")
        if isinstance(located, LocatedError):
            loc += located.loc
            message = str(located)
        path = _clean(loc, data)
        if err["type"] not in ("missing", "extra_forbidden") and not isinstance(located, LocatedError):
            shown = repr(err.get("input"))
            if not isinstance(err.get("input"), (dict, list)):
                message += f" (got {shown[:80]}{'...' if len(shown) > 80 else ''})"
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; `dwctl schema` lists every key)"
        kinds.setdefault(path, err["type"])
        if message not in grouped.setdefault(path, []):
            grouped[path].append(message)
    lines = []
    for path, messages in grouped.items():
        mark = _mark_for(path, kinds[path], marked)
        lines.append(f"{marked.where(mark)}: {dotted(path)}: {'; or '.join(messages)}")
    return lines


def _clean(loc: Path_, data: Any) -> Path_:
    """Drop pydantic's union-member tags from a loc, keeping only real keys and indexes."""
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part == loc[-1]:
            node = None  # a missing or unknown key: keep it for the message
        else:
            continue
        path.append(part)
    return tuple(path)


def _mark_for(path: Path_, kind: str, marked: Marked) -> yaml.Mark | None:
    """Unknown keys point at the key; wrong values at the value; missing keys at their parent mapping."""
    steps = marked.nodes_at(path)
    if not steps:
        return None
    key_node, value_node = steps[-1]
    if kind == "extra_forbidden" and key_node is not None and len(steps) == len(path) + 1:
        return key_node.start_mark
    return value_node.start_mark
