"""The README's spec reference and type table, generated from the model so they cannot drift."""

from __future__ import annotations

import json

from dwctl.spec.model import json_schema
from dwctl.spec.type_mapping import mapping_table

BEGIN = "<!-- BEGIN GENERATED REFERENCE (dwctl schema --format markdown) -->"
END = "<!-- END GENERATED REFERENCE -->"


def _describe(prop: dict) -> str:
    """A short human type for one JSON Schema property."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in prop:
        parts = [_describe(p) for p in prop["anyOf"] if p.get("type") != "null"]
        nullable = any(p.get("type") == "null" for p in prop["anyOf"])
        return " or ".join(parts) + (" (optional)" if nullable else "")
    if "enum" in prop or "const" in prop:
        return " \\| ".join(f"`{v}`" for v in prop.get("enum", [prop.get("const")]))
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_describe(prop.get('items', {}))}"
    if kind == "object":
        return f"map of {_describe(prop.get('additionalProperties', {}))}"
    limits = []
    if "pattern" in prop:
        limits.append(f"`{prop['pattern']}`".replace("|", "\\|"))
    for key, sign in (("minimum", ">="), ("maximum", "<="), ("multipleOf", "multiple of"), ("minLength", "length >=")):
        if key in prop:
            limits.append(f"{sign} {prop[key]}")
    return kind + (f" ({', '.join(limits)})" if limits else "")


def spec_reference() -> str:
    """Markdown: one table per model of the spec, then the documented type mapping."""
    schema = json_schema()
    models = {"Spec": schema, **schema.get("$defs", {})}
    out = [BEGIN, ""]
    for name, model in models.items():
        if "properties" not in model:
            continue
        required = set(model.get("required", []))
        out += [f"#### {name}", "", "| key | type | default | notes |", "|---|---|---|---|"]
        for key, prop in model["properties"].items():
            default = "**required**" if key in required else ""
            if "default" in prop and key not in required:
                value = prop["default"]
                default = "all defaults" if isinstance(value, dict) and "$ref" in json.dumps(prop) else f"`{json.dumps(value)}`"
            notes = prop.get("description", "").replace("|", "\\|")
            out.append(f"| `{key}` | {_describe(prop)} | {default} | {notes} |")
        out.append("")
    out += ["#### Source type mapping", "", "| engines | source types | Redshift analytics column |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in mapping_table()]
    out += ["", END]
    return "\n".join(out) + "\n"


def with_reference(readme: str) -> str:
    """README text with the generated block replaced by the current reference."""
    start, end = readme.index(BEGIN), readme.index(END) + len(END) + 1
    return readme[:start] + spec_reference() + readme[end:]
