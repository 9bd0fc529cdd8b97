"""What chatting cost: the caller's own usage (with their daily token allowance), and a workspace's for its owner."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from quarry.pricing import PRICES_AS_OF
from quarry.protocol import UsageReportOut
from routes.common import caller, services

router = APIGatewayRouter()


@router.get("/usage")
def my_usage(
    since: Annotated[date | None, Query(description="first UTC day (default: 30 days up to until)")] = None,
    until: Annotated[date | None, Query(description="last UTC day (default: today)")] = None,
) -> UsageReportOut:
    user = caller(router)
    report = services().usage.for_user(user, since=since, until=until)
    return UsageReportOut.of(report, prices_as_of=PRICES_AS_OF, allowance=services().budget.today(user))


@router.get("/workspaces/<workspace_id>/usage")
def workspace_usage(
    workspace_id: str,
    since: Annotated[date | None, Query(description="first UTC day (default: 30 days up to until)")] = None,
    until: Annotated[date | None, Query(description="last UTC day (default: today)")] = None,
) -> UsageReportOut:
    report = services().usage.for_workspace(caller(router), workspace_id, since=since, until=until)
    return UsageReportOut.of(report, prices_as_of=PRICES_AS_OF)
