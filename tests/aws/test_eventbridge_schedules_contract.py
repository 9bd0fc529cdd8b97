"""EventBridgeSummarySchedules under the SummarySchedules contract, on moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from quarry.adapters.eventbridge_schedules import EventBridgeSummarySchedules
from quarry.settings import Settings
from tests.contracts import SummarySchedulesContract

pytestmark = pytest.mark.aws

GROUP = "quarry-summaries"
ROLE = "arn:aws:iam::123456789012:role/quarry-summaries-scheduler"


class TestEventBridgeSummarySchedules(SummarySchedulesContract):
    @pytest.fixture
    def summary_schedules(self, session: boto3.Session) -> EventBridgeSummarySchedules:
        scheduler = session.client("scheduler")
        scheduler.create_schedule_group(Name=GROUP)
        definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
        sfn = session.client("stepfunctions")
        machine = sfn.create_state_machine(name="quarry-summaries", definition=definition, roleArn=ROLE)
        settings = Settings(
            summary_schedules="eventbridge",
            summaries_state_machine_arn=machine["stateMachineArn"],
            summary_scheduler_role_arn=ROLE,
            summary_schedule_group=GROUP,
        )
        return EventBridgeSummarySchedules.from_settings(settings, client=scheduler)

    @pytest.fixture
    def expression(self, summary_schedules: EventBridgeSummarySchedules) -> Callable[[str, str], str | None]:
        def held(workspace_id: str, job_id: str) -> str | None:
            found: dict[str, Any] | None = summary_schedules.get(workspace_id, job_id)
            return str(found["ScheduleExpression"]) if found is not None else None

        return held
