"""Every AWS call the load job's source makes, read from its code (ast), not from a hand list.

A call is `<receiver>.<method>(...)` where the receiver is a boto3 client the job created with
`boto3.client("<service>")` and passed on. The job names its clients after their service
(RECEIVERS); a call on any other name whose method is an operation of one of the job's services
is reported as unknown, so a new client under a new name fails the test instead of going unchecked.
Keyword names are resolved through `**` splats of dict literals, `dict(...)`, conditional
expressions, local variables and `self.<attr>` dicts (with their `x["Key"] = ...` assignments).
Runs under any Python 3.9+ (the check itself runs in the Glue runtime, tests/support/glue_check_calls.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

# receiver name (a local or self.<name>) -> the service of the client it holds in the job
RECEIVERS = {"s3": "s3", "sqs": "sqs", "client": "redshift-data", "cloudwatch": "cloudwatch", "metrics": "cloudwatch",
             "glue": "glue", "dms": "dms"}
NOT_OPERATIONS = {"get_paginator", "get_waiter", "can_paginate", "close"}


class Unresolved(Exception):
    pass


def _receiver(node: ast.AST) -> str | None:
    """The name a client is held under: a local, or the attribute of an object (self.s3, discovery.sqs)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr
    return None


class _Scopes(ast.NodeVisitor):
    """Parent links: each call's enclosing function and class."""

    def __init__(self):
        self.function: dict[int, ast.FunctionDef] = {}
        self.klass: dict[int, ast.ClassDef] = {}

    def walk(self, tree: ast.Module) -> None:
        def visit(node, function=None, klass=None):
            for child in ast.iter_child_nodes(node):
                f, k = function, klass
                if isinstance(child, ast.ClassDef):
                    k = child
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    f = child
                self.function[id(child)], self.klass[id(child)] = f, k
                visit(child, f, k)
        visit(tree)


def _assignments(scope: ast.AST, name: str, attribute: bool):
    """Values assigned to `name` (or self.name) in scope, and keys set with `name["Key"] = ...`."""
    values, keys = [], set()
    for node in ast.walk(scope):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if attribute and isinstance(target, ast.Attribute) and target.attr == name and _receiver(target) == name:
                values.append(node.value)
            elif not attribute and isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Subscript) and _receiver(target.value) == name \
                    and isinstance(target.value, ast.Attribute) == attribute:
                key = target.slice.value if isinstance(target.slice, ast.Index) else target.slice  # 3.8 AST
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    raise Unresolved(f"{name}[...] set with a key that is not a string literal")
                keys.add(key.value)
    return values, keys


def _keys(node: ast.AST, function, klass, depth: int = 0) -> set[str]:
    """The keyword names a `**node` splat can supply."""
    if depth > 10:
        raise Unresolved("splat too deep")
    if isinstance(node, ast.Dict):
        out = set()
        for k, v in zip(node.keys, node.values):
            if k is None:
                out |= _keys(v, function, klass, depth + 1)
            elif isinstance(k, ast.Constant) and isinstance(k.value, str):
                out.add(k.value)
            else:
                raise Unresolved(f"dict key {ast.dump(k)}")
        return out
    if isinstance(node, ast.DictComp) and isinstance(node.key, ast.Name) and len(node.generators) == 1 \
            and isinstance(node.generators[0].target, ast.Name) and node.generators[0].target.id == node.key.id \
            and isinstance(node.generators[0].iter, (ast.Tuple, ast.List)):
        keys = node.generators[0].iter.elts  # {k: ... for k in ("A", "B") ...}: at most those keys
        if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
            return {k.value for k in keys}
    if isinstance(node, ast.IfExp):
        return _keys(node.body, function, klass, depth + 1) | _keys(node.orelse, function, klass, depth + 1)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        out = {kw.arg for kw in node.keywords if kw.arg}
        for kw in node.keywords:
            if kw.arg is None:
                out |= _keys(kw.value, function, klass, depth + 1)
        for arg in node.args:
            out |= _keys(arg, function, klass, depth + 1)
        return out
    name = _receiver(node)
    attribute = isinstance(node, ast.Attribute)
    scope = klass if attribute else function
    if name is None or scope is None:
        raise Unresolved(f"cannot resolve ** of {ast.dump(node)[:120]}")
    values, keys = _assignments(scope, name, attribute)
    if not values:
        raise Unresolved(f"no assignment of {name} found")
    for value in values:
        keys |= _keys(value, function, klass, depth + 1)
    return keys


def inventory(source: str, operations: dict[str, set[str]]) -> tuple[list[dict], list[str], set[str]]:
    """(calls, problems, services the job creates clients of). operations: service -> its client's
    method names (from botocore). Each call: service, method, keywords (all names it may pass), line."""
    tree = ast.parse(source)
    scopes = _Scopes()
    scopes.walk(tree)
    services_created = set()
    calls, problems = [], []
    every_operation = set().union(*operations.values())
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, _receiver(node.func.value)
        inner = node.func.value
        if method == "paginate" and isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) \
                and inner.func.attr == "get_paginator" and inner.args and isinstance(inner.args[0], ast.Constant):
            method, receiver = inner.args[0].value, _receiver(inner.func.value)  # the paginated operation
        if isinstance(node.func.value, ast.Name) and node.func.value.id == "boto3" and method == "client":
            if node.args and isinstance(node.args[0], ast.Constant):
                services_created.add(node.args[0].value)
            else:
                problems.append(f"line {node.lineno}: boto3.client with a service that is not a literal")
            continue
        if receiver not in RECEIVERS:
            if method in every_operation and method not in NOT_OPERATIONS:
                problems.append(f"line {node.lineno}: {method} on {receiver or ast.dump(node.func.value)[:60]}, "
                                "a name the check does not know as a client (tests/support/glue_calls.RECEIVERS)")
            continue
        service = RECEIVERS[receiver]
        if method in NOT_OPERATIONS:
            if method == "get_paginator":
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    problems.append(f"line {node.lineno}: get_paginator with a name that is not a literal")
                else:
                    calls.append({"service": service, "method": arg.value, "keywords": [], "line": node.lineno,
                                  "paginator": True})
            continue
        keywords = {kw.arg for kw in node.keywords if kw.arg} - {"PaginationConfig"}
        try:
            for kw in node.keywords:
                if kw.arg is None:
                    keywords |= _keys(kw.value, scopes.function.get(id(node)), scopes.klass.get(id(node)))
        except Unresolved as exc:
            problems.append(f"line {node.lineno}: {service}.{method}: {exc}")
            continue
        if node.args:
            problems.append(f"line {node.lineno}: {service}.{method} with positional arguments (boto3 takes keywords)")
        calls.append({"service": service, "method": method, "keywords": sorted(keywords), "line": node.lineno})
    return calls, problems + [f"boto3.client({s!r}) is created but no receiver name maps to it"
                              for s in sorted(services_created - set(RECEIVERS.values()))], services_created


def job_source(root: Path) -> str:
    return (root / "dwctl" / "warehouse" / "load_job.py").read_text(encoding="utf-8")
