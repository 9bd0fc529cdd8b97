"""JSON Schema of every wire type in :mod:`quarry.protocol` and :mod:`quarry.summary_protocol`, the one source
of the frontend's types.

``main()`` writes ``frontend/src/api/schema.json``; the frontend generates its TypeScript types from that
file at build time, and ``tests/unit/test_frontend_schema.py`` checks the committed file against
:func:`export_schema`, so the Python and TypeScript sides cannot drift.

Request bodies (what the browser sends) are exported in *validation* mode: fields with defaults are
optional. Responses and server events are exported in *serialization* mode with every field required,
because the API always serializes every field (``None`` included), so the frontend may rely on them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

if TYPE_CHECKING:
    from pydantic._internal._core_utils import CoreSchemaOrField

from quarry import protocol, summary_protocol

__all__ = ["SCHEMA_PATH", "export_schema", "main", "render_schema"]

REF_TEMPLATE = "#/$defs/{model}"
SCHEMA_PATH = Path("frontend/src/api/schema.json")

# The modules whose ``__all__`` models are the wire types (one namespace: their names must not clash).
PROTOCOL_MODULES = (protocol, summary_protocol)

# Generic envelopes are exported once per concrete item type that an endpoint returns.
LIST_MODELS: tuple[type[BaseModel], ...] = (
    protocol.ListOut[protocol.WorkspaceOut],
    protocol.ListOut[protocol.DocumentOut],
    protocol.ListOut[protocol.SessionOut],
    protocol.ListOut[summary_protocol.SummaryJobOut],
)

# Discriminated unions exported as named definitions: (name, annotated union, mode).
UNIONS: tuple[tuple[str, Any, JsonSchemaMode], ...] = (
    ("ClientMessage", protocol.ClientMessage, "validation"),
    ("ServerMessage", protocol.ServerMessage, "serialization"),
)


class WireSchema(GenerateJsonSchema):
    """Every serialized field is required (outputs always carry all their fields); no per-field titles.

    Field titles add nothing to the TypeScript types and would become one type alias per field.
    """

    def field_title_should_be_set(self, schema: CoreSchemaOrField) -> bool:
        return False

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude") is not True
        return super().field_is_required(field, total)


def _is_generic(model: type[BaseModel]) -> bool:
    return bool(model.__pydantic_generic_metadata__["parameters"])


def _mode(model: type[BaseModel]) -> JsonSchemaMode:
    """Outputs (built ``from_attributes``) are serialized by the API; everything else is validated."""
    return "serialization" if model.model_config.get("from_attributes") else "validation"


def _protocol_models() -> Iterator[type[BaseModel]]:
    seen: dict[str, str] = {}
    for module in PROTOCOL_MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseModel) and not _is_generic(obj):
                if name in seen:
                    raise RuntimeError(f"{name} is exported by both {seen[name]} and {module.__name__}")
                seen[name] = module.__name__
                yield obj
    yield from LIST_MODELS


def _union_schema(name: str, union: Any, mode: JsonSchemaMode, defs: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(union).json_schema(mode=mode, ref_template=REF_TEMPLATE, schema_generator=WireSchema)
    for def_name, def_schema in schema.pop("$defs", {}).items():
        if defs.get(def_name) != def_schema:
            raise RuntimeError(f"{name}: member schema {def_name!r} differs from the exported model schema")
    return {"title": name, **schema}


def export_schema() -> dict[str, Any]:
    """One JSON Schema document whose ``$defs`` hold every model and message union of the wire protocol."""
    models: Sequence[tuple[type[BaseModel], JsonSchemaMode]] = [(m, _mode(m)) for m in _protocol_models()]
    _, top = models_json_schema(models, ref_template=REF_TEMPLATE, schema_generator=WireSchema)
    defs: dict[str, Any] = dict(top["$defs"])
    for name, union, mode in UNIONS:
        defs[name] = _union_schema(name, union, mode, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "QuarryProtocol",
        "description": (
            "Generated from quarry.protocol and quarry.summary_protocol by quarry.schema_export; do not edit."
        ),
        "$defs": dict(sorted(defs.items())),
    }


def render_schema() -> str:
    """The exact text of ``schema.json``: stable key order, two-space indent, trailing newline."""
    return json.dumps(export_schema(), indent=2, sort_keys=True) + "\n"


def _repo_root() -> Path:
    # layers/quarry/python/quarry/schema_export.py -> the repository root
    return Path(__file__).resolve().parents[4]


def main(argv: Sequence[str] | None = None) -> int:
    """Write the schema to ``argv[0]`` or to ``frontend/src/api/schema.json`` in the repository."""
    args = list(sys.argv[1:] if argv is None else argv)
    target = Path(args[0]) if args else _repo_root() / SCHEMA_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_schema(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
