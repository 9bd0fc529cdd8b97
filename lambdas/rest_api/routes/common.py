"""What every route needs: the caller, the services, JSON responses."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from quarry.auth import user_from_event
from quarry.wiring import Services, get_services

__all__ = ["caller", "created", "no_content", "services"]


def services() -> Services:
    return get_services()


def caller(router: APIGatewayRouter) -> str:
    return user_from_event(router.current_event.raw_event)


def created(model: BaseModel) -> Response[Any]:
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=model.model_dump_json())


def no_content() -> Response[Any]:
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")
