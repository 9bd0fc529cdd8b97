"""The REST Lambda called as API Gateway calls it, and the fake platform the route tests install under it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quarry.local.handlers import LocalContext, load_handler
from quarry.services.models_registry import ModelInfo, ModelRegistry
from quarry.settings import Settings
from quarry.wiring import Services, build_services, install_services, reset_services
from tests.fakes import fake_overrides
from tests.unit.lambdas.test_handlers import ALICE, HashEmbedder, Recorder, ScriptedChat, event

__all__ = ["UI_ORIGIN", "header", "installed_services", "rest", "rest_response"]

UI_ORIGIN = "https://quarry.example.com"  # the UI, served by CloudFront: another origin than the API


def rest_response(
    method: str, path: str, body: Any = None, *, user: str = ALICE, origin: str | None = None, **query: str
) -> dict[str, Any]:
    """The handler's whole answer (status, headers, body) to ``method path`` from ``user``."""
    request = copy.deepcopy(event("apigw_rest_post_workspaces.json"))
    request |= {
        "httpMethod": method,
        "path": path,
        "resource": path,
        "body": json.dumps(body) if body is not None else None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
    }
    request["requestContext"] |= {"httpMethod": method, "path": path}
    request["requestContext"]["authorizer"]["claims"]["sub"] = user
    if origin:
        request["headers"] = request["headers"] | {"Origin": origin}
        request["multiValueHeaders"] = request["multiValueHeaders"] | {"Origin": [origin]}
    response: dict[str, Any] = load_handler("rest_api")(request, LocalContext("rest_api"))
    return response


def rest(method: str, path: str, body: Any = None, *, user: str = ALICE, **query: str) -> Any:
    """``(status, JSON body or None)``."""
    response = rest_response(method, path, body, user=user, **query)
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None


def header(response: dict[str, Any], name: str) -> str | None:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(key.lower(), values[-1])
    return headers.get(name.lower())


@contextmanager
def installed_services(tmp_path: Path, **overrides: Any) -> Iterator[Services]:
    """Fakes for every port, the hash embedder and the scripted chat model, installed for the handlers;
    ``overrides`` replace adapters (e.g. ``blob_store=``)."""
    models = ModelRegistry()
    models.embedders.register(ModelInfo("hash-16", "hash", "test", dimensions=16), HashEmbedder)
    models.chat_models.register(ModelInfo("scripted", "scripted", "test"), ScriptedChat)
    built = build_services(Settings(data_dir=tmp_path), overrides=fake_overrides(Recorder(), models, **overrides))
    install_services(built)
    try:
        yield built
    finally:
        reset_services()
