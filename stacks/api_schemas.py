"""API Gateway request models from the pydantic REST bodies in :mod:`quarry.protocol`.

API Gateway validates bodies against JSON Schema draft 4; pydantic emits draft 2020-12 with ``$defs``.
:func:`draft4` inlines the references and rewrites the few keywords draft 4 spells differently, so the
gateway rejects malformed bodies before a Lambda runs, with the same rules as the handler.

Two things the handler accepts that a literal translation would refuse: a field's other names
(``validation_alias=AliasChoices(...)``) are properties too, since the models say
``additionalProperties: false``; and a ``pattern`` using ``\\w``/``\\W``/``\b`` is left to the handler,
since Python's classes are Unicode-aware and the gateway's regular expressions are not (a language named
"Português" would be refused at the gateway). The handler still checks both, naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import AliasChoices, BaseModel

__all__ = ["draft4", "request_schema"]

_DROP = {"discriminator", "title", "$defs", "examples"}
# Character classes whose meaning differs between Python's re (Unicode) and the gateway's regex (ASCII).
_UNICODE_CLASSES = re.compile(r"\\[wWbB]")


def _resolve(ref: str, defs: dict[str, Any]) -> Any:
    name = ref.rsplit("/", 1)[-1]
    if name not in defs:
        raise ValueError(f"unresolvable $ref {ref}")
    return defs[name]


def _convert(node: Any, defs: dict[str, Any], depth: int = 0) -> Any:
    if depth > 32:
        raise ValueError("schema nests too deeply (recursive model?)")
    if isinstance(node, list):
        return [_convert(item, defs, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        merged = {**_resolve(node["$ref"], defs), **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, depth + 1)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or value is None:  # CloudFormation drops nulls: keep the schema as deployed
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "pattern" and isinstance(value, str) and _UNICODE_CLASSES.search(value):
            continue
        elif key == "properties":
            out[key] = {name: _convert(sub, defs, depth + 1) for name, sub in value.items()}
        else:
            out[key] = _convert(value, defs, depth + 1)
    return out


def draft4(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs", {})
    converted = _convert({k: v for k, v in schema.items() if k != "$defs"}, defs)
    return {"$schema": "http://json-schema.org/draft-04/schema#", **converted}


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The draft-4 schema of a request body model (validation mode: defaults make fields optional), naming
    every alias a field accepts."""
    schema = draft4(model.model_json_schema(mode="validation"))
    properties = schema.get("properties", {})
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if not isinstance(alias, AliasChoices):
            continue
        names = [choice for choice in alias.choices if isinstance(choice, str)]
        known = next((n for n in (*names, name) if n in properties), None)
        if known is None:
            continue
        for other in names:
            properties.setdefault(other, {**properties[known], "description": f"Alias of {known}."})
    return schema
