"""IAM's policy evaluation logic for one account, small enough to read, for the stack's own policies.

No maintained package evaluates a request against policies offline (PyPI, checked for this:
policy-sentry writes policies, cloudsplaining and parliament lint them, policyuniverse parses them
and matches ARNs, principalmapper's simulator was last released in 2022, works on its own account
graph and treats StringNotLike on a missing key as false; iam-ape and aws-why do not evaluate
conditions offline; there is no iam-simulator). So this module implements what the IAM User Guide
documents, and tests/support/test_iam_eval.py holds it to the Guide's own examples:

- reference_policies_evaluation-logic.html: an explicit Deny in any policy wins; otherwise an Allow
  in an identity-based policy or in a resource-based policy naming the principal allows, within one
  account; role trust policies and KMS key policies must allow the principal themselves (a key
  policy allowing the account root delegates to the account's IAM policies: KMS Developer Guide,
  key-policy-default.html).
- reference_policies_elements_condition_operators.html: operators String*, Arn*, Bool, Null,
  ...IfExists; a missing key makes a positive operator false and a negated one true, ...IfExists
  makes it true, Null tests presence; ArnLike matches each of the six colon-separated parts alone.
- reference_policies_condition-logic-multiple-context-keys-or-values.html: operators and keys are
  ANDed, a key's values ORed, and a negated operator's values NORed; ForAnyValue / ForAllValues.
- reference_policies_variables.html: ${aws:userid} and the like in Resource and in String/Arn
  condition values, from the request context; a variable the request does not have makes the
  statement not apply. Context keys are case-insensitive.

Not modelled (the stack uses none): NotPrincipal, permissions boundaries, SCPs, session policies,
numeric, date and IP operators (an unknown operator raises, so none is silently ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

VARIABLE = re.compile(r"\$\{([^}]+)\}")
SPECIAL = {"*": "*", "?": "?", "$": "$"}  # ${*} ${?} ${$}: the literal characters


class Unresolved(Exception):
    """A policy variable the request context does not hold: the statement does not apply."""


@dataclass(frozen=True)
class Principal:
    """Who sends the request: an IAM identity (a role session by its role ARN) or an AWS service principal."""
    account: str
    arn: str | None = None
    service: str | None = None


@dataclass
class Request:
    principal: Principal
    action: str
    resource: str
    context: dict = field(default_factory=dict)  # condition keys (any case) -> str | list[str]

    def value(self, key: str):
        for k, v in self.context.items():
            if k.lower() == key.lower():
                return v
        return None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _regex(pattern: str, request: Request, wildcards: bool) -> str:
    """A policy value as a regular expression: variables replaced by the request's values (matched
    literally), and with `wildcards`, * any run of characters and ? one character."""
    regex, pos = "", 0

    def plain(text):
        if not wildcards:
            return re.escape(text)
        return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)

    for m in VARIABLE.finditer(pattern):
        regex += plain(pattern[pos:m.start()])
        name = m.group(1)
        got = name if name in SPECIAL else request.value(name)
        if got is None or isinstance(got, list):
            raise Unresolved(name)
        regex += re.escape(got)
        pos = m.end()
    return regex + plain(pattern[pos:])


def _matches(pattern: str, value: str, request: Request, wildcards: bool, ignore_case: bool = False) -> bool:
    return re.fullmatch(_regex(pattern, request, wildcards), value, re.S | (re.I if ignore_case else 0)) is not None


def _arn_like(pattern: str, value: str, request: Request) -> bool:
    """Each of the six colon-delimited parts matched separately (the sixth keeps its colons)."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return False
    return all(_matches(a, b, request, True) for a, b in zip(p, v))


def _one_value(base: str, policy_value: str, request_value: str, request: Request) -> bool:
    """Does one request value match one policy value under the positive form of the operator?"""
    if base in ("StringEquals", "StringEqualsIgnoreCase"):
        return _matches(policy_value, request_value, request, False, base.endswith("IgnoreCase"))
    if base == "StringLike":
        return _matches(policy_value, request_value, request, True)
    if base in ("ArnEquals", "ArnLike"):
        return _arn_like(policy_value, request_value, request)
    if base == "Bool":
        return str(policy_value).lower() == str(request_value).lower()
    raise ValueError(f"condition operator {base} is not modelled")


NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
           "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
POSITIVE = {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "Bool"}


def condition_holds(operator: str, key: str, policy_values, request: Request) -> bool:
    """One operator and key of a Condition block against the request (condition_operators.html)."""
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(policy_values)]
    present = request.value(key)
    if operator == "Null":
        want_absent = values[0].lower() == "true"
        return (present is None) == want_absent
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op[:-len("IfExists")] if if_exists else op
    if op not in POSITIVE and op not in NEGATED:
        raise ValueError(f"condition operator {operator} is not modelled")
    negated = op in NEGATED
    base = NEGATED.get(op, op)
    if present is None:
        if if_exists:
            return True
        if qualifier == "ForAllValues":
            return True  # no value in the request: every one of them matches
        return negated and qualifier != "ForAnyValue"
    request_values = _as_list(present)

    def matches(rv):
        return any(_one_value(base, pv, str(rv).lower() if isinstance(rv, bool) else str(rv), request) for pv in values)

    if qualifier == "ForAllValues":
        return all((not matches(rv)) if negated else matches(rv) for rv in request_values)
    if qualifier == "ForAnyValue":
        return any((not matches(rv)) if negated else matches(rv) for rv in request_values)
    hit = any(matches(rv) for rv in request_values)
    return not hit if negated else hit  # values ORed; a negated operator's values NORed


def _principal_matches(statement: dict, principal: Principal) -> tuple[bool, bool]:
    """(matches, only as the account): a resource policy's Principal against the request's."""
    given = statement.get("Principal")
    if "NotPrincipal" in statement:
        raise ValueError("NotPrincipal is not modelled")
    if given is None:
        return True, False  # an identity-based policy: the principal is the one it is attached to
    if given == "*":
        return True, False
    for kind, names in given.items():
        for name in _as_list(names):
            if kind == "AWS":
                if name == "*":
                    return True, False
                if name in (principal.account, f"arn:aws:iam::{principal.account}:root") and principal.arn:
                    return True, True
                if principal.arn and name == principal.arn:
                    return True, False
            elif kind == "Service" and principal.service == name:
                return True, False
    return False, False


def _action_matches(statement: dict, request: Request) -> bool:
    """Actions are case-insensitive and take * and ? (reference_policies_elements_action.html)."""
    key = "NotAction" if "NotAction" in statement else "Action"
    hit = any(_matches(a, request.action, request, True, ignore_case=True) for a in _as_list(statement[key]))
    return not hit if key == "NotAction" else hit


def _resource_matches(statement: dict, request: Request) -> bool:
    def hit(pattern):
        return pattern == "*" or _arn_like(pattern, request.resource, request)
    if "NotResource" in statement:
        return not any(hit(r) for r in _as_list(statement["NotResource"]))
    return any(hit(r) for r in _as_list(statement.get("Resource", "*")))


@dataclass(frozen=True)
class Match:
    effect: str
    sid: str
    account_only: bool  # a resource policy's statement naming the account, not the principal


def matching(policy: dict | None, request: Request) -> list[Match]:
    """The statements of one policy that apply to the request."""
    found = []
    for statement in _as_list((policy or {}).get("Statement", [])):
        try:
            ok, account_only = _principal_matches(statement, request.principal)
            if not (ok and _action_matches(statement, request) and _resource_matches(statement, request)):
                continue
            if all(condition_holds(op, key, values, request)
                   for op, keys in statement.get("Condition", {}).items() for key, values in keys.items()):
                found.append(Match(statement["Effect"], statement.get("Sid", ""), account_only))
        except Unresolved:
            continue
    return found


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    def __bool__(self):
        return self.allowed


def decide(request: Request, identity: list[dict] = (), resource: dict | None = None, *,
           resource_policy_required: bool = False) -> Decision:
    """Allow or deny, within one account (reference_policies_evaluation-logic.html).

    `identity`: the principal's identity-based policies (none for a service principal).
    `resource`: the resource-based policy it meets (bucket, key, queue, topic, log, trust policy).
    `resource_policy_required`: KMS keys and role trust policies, which must themselves allow the
    principal; a key policy statement for the account root then delegates to the IAM policies.
    """
    from_identity = [m for p in identity for m in matching(p, request)]
    from_resource = matching(resource, request)
    for m in from_identity + from_resource:
        if m.effect == "Deny":
            return Decision(False, f"explicit Deny: {m.sid or 'a statement'}")
    identity_allows = any(m.effect == "Allow" for m in from_identity)
    direct = [m for m in from_resource if m.effect == "Allow" and not m.account_only]
    delegated = [m for m in from_resource if m.effect == "Allow" and m.account_only]
    if direct:
        return Decision(True, f"resource policy allows: {direct[0].sid}")
    if resource_policy_required:
        if delegated and identity_allows:
            return Decision(True, "key policy delegates to IAM, and an identity policy allows")
        return Decision(False, "implicit deny: the resource policy does not allow this principal"
                        + (" (the identity policy alone cannot)" if identity_allows else ""))
    if identity_allows:
        return Decision(True, "identity policy allows")
    return Decision(False, "implicit deny: no statement allows it")
