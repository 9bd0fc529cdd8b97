"""The REST Lambda refuses bodies it cannot read as JSON with 415 / 400, never a 500 (issue #13).

Events are API Gateway's own shape (tests/events/apigw_rest_post_workspaces.json) with the body and its
Content-Type changed as a client would send them; behind the handler are the fakes of tests/fakes.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from quarry.wiring import Services
from tests.unit.lambdas.test_handlers import event, invoke, recorder, services

__all__ = ["recorder", "services"]


def post_workspaces(body: str, content_type: str | None) -> dict[str, Any]:
    request = event("apigw_rest_post_workspaces.json") | {"body": body}
    headers = {k: v for k, v in request["headers"].items() if k.lower() != "content-type"}
    multi = {k: v for k, v in request["multiValueHeaders"].items() if k.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"], multi["Content-Type"] = content_type, [content_type]
    return request | {"headers": headers, "multiValueHeaders": multi}


def error_of(response: dict[str, Any]) -> tuple[int, str]:
    return response["statusCode"], json.loads(response["body"])["error"]["code"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"name": "handbook"}', "text/plain"),
        ('{"name": "handbook"}', "text/plain;charset=UTF-8"),  # what fetch() sends for a string body
        ("name=handbook", "application/x-www-form-urlencoded"),  # a form whose field matches the model
        ("<workspace/>", "application/xml"),
    ],
)
def test_a_body_that_is_not_json_is_415(services: Services, body: str, content_type: str) -> None:
    response = invoke("rest_api", post_workspaces(body, content_type))
    assert error_of(response) == (415, "unsupported_media_type")
    assert "application/json" in json.loads(response["body"])["error"]["message"]
    assert services.workspaces.list_workspaces("7d8ca528-4931-4254-9273-ea5ee853f271") == []


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", None])
def test_json_and_an_absent_content_type_are_read_as_json(services: Services, content_type: str | None) -> None:
    response = invoke("rest_api", post_workspaces('{"name": "handbook"}', content_type))
    assert response["statusCode"] == 201, response["body"]


@pytest.mark.parametrize("depth", [10_000, 65])
def test_json_nested_too_deep_is_400(services: Services, depth: int) -> None:
    # 10,000 levels overflow the parser's recursion limit; 65 parse but pass the 64-level bound.
    body = '{"name": "x", "embedding_model": ' + "[" * depth + "]" * depth + "}"
    response = invoke("rest_api", post_workspaces(body, "application/json"))
    assert error_of(response) == (400, "malformed_json")
    assert "deeper than 64" in json.loads(response["body"])["error"]["message"]


def test_json_within_the_depth_bound_reaches_validation(services: Services) -> None:
    body = '{"name": "x", "embedding_model": ' + "[" * 30 + "]" * 30 + "}"
    response = invoke("rest_api", post_workspaces(body, "application/json"))
    assert error_of(response) == (422, "invalid_input")  # a list is not a model name: the model says so
