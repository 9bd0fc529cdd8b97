"""EventBridgeSummarySchedules on moto: one schedule per scheduled job in the summaries group, starting the
summaries state machine with the job's ids as the scheduler role; replaced on put, gone on delete (twice is
fine). AWS's refusals (botocore Stubber) become the platform's errors."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from quarry.adapters.eventbridge_schedules import RETRY_POLICY, EventBridgeSummarySchedules, schedule_name
from quarry.errors import InvalidInput, Throttled, UpstreamError
from quarry.settings import MissingSetting, Settings
from quarry.summary_models import SummaryJob, SummaryKind

pytestmark = pytest.mark.aws

GROUP = "quarry-summaries"
ROLE = "arn:aws:iam::123456789012:role/quarry-summaries-scheduler"
VALID_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")


@pytest.fixture
def scheduler(session: boto3.Session) -> Any:
    client = session.client("scheduler")
    client.create_schedule_group(Name=GROUP)
    return client


@pytest.fixture
def machine(session: boto3.Session) -> str:
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
    sfn = session.client("stepfunctions")
    return str(
        sfn.create_state_machine(name="quarry-summaries", definition=definition, roleArn=ROLE)["stateMachineArn"]
    )


@pytest.fixture
def schedules(scheduler: Any, machine: str) -> EventBridgeSummarySchedules:
    settings = Settings(
        summary_schedules="eventbridge",
        summaries_state_machine_arn=machine,
        summary_scheduler_role_arn=ROLE,
        summary_schedule_group=GROUP,
    )
    return EventBridgeSummarySchedules.from_settings(settings, client=scheduler)


def _job(schedule: str | None = "cron(0 6 * * ? *)", *, job_id: str = "j" * 32) -> SummaryJob:
    return SummaryJob(id=job_id, workspace_id="w" * 32, owner="alice", kind=SummaryKind.PROS_CONS, schedule=schedule)


def test_put_creates_the_jobs_schedule_starting_the_state_machine(
    schedules: EventBridgeSummarySchedules, scheduler: Any, machine: str
) -> None:
    job = _job()
    schedules.put(job)
    got = scheduler.get_schedule(Name=schedule_name(job.workspace_id, job.id), GroupName=GROUP)
    assert got["GroupName"] == GROUP and got["State"] == "ENABLED"
    assert got["ScheduleExpression"] == "cron(0 6 * * ? *)" and got["ScheduleExpressionTimezone"] == "UTC"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = got["Target"]
    assert target["Arn"] == machine and target["RoleArn"] == ROLE
    assert json.loads(target["Input"]) == {"workspace_id": job.workspace_id, "job_id": job.id}  # plan adds run_id
    assert target["RetryPolicy"] == RETRY_POLICY
    assert schedules.get(job.workspace_id, job.id) is not None


def test_put_again_replaces_the_one_schedule(schedules: EventBridgeSummarySchedules, scheduler: Any) -> None:
    job = _job()
    schedules.put(job)
    schedules.put(replace(job, schedule="rate(2 hours)"))
    listed = scheduler.list_schedules(GroupName=GROUP)["Schedules"]
    assert [s["Name"] for s in listed] == [schedule_name(job.workspace_id, job.id)]
    got = schedules.get(job.workspace_id, job.id)
    assert got is not None and got["ScheduleExpression"] == "rate(2 hours)"


def test_a_job_without_a_schedule_has_none_and_delete_is_idempotent(
    schedules: EventBridgeSummarySchedules, scheduler: Any
) -> None:
    job = _job()
    schedules.put(job)
    other = _job("rate(1 day)", job_id="k" * 32)
    schedules.put(other)
    schedules.put(replace(job, schedule=None))  # the schedule was removed from the job
    assert schedules.get(job.workspace_id, job.id) is None
    schedules.delete(other.workspace_id, other.id)
    schedules.delete(other.workspace_id, other.id)  # gone already: fine
    schedules.delete("no-such-workspace", "no-such-job")
    assert scheduler.list_schedules(GroupName=GROUP)["Schedules"] == []


def test_schedule_names_are_valid_stable_and_distinct() -> None:
    ids = [("w" * 32, "j" * 32), ("a/b", "c d"), ("x", "y" * 200), ("w" * 32, "j" * 31 + "k")]
    names = [schedule_name(w, j) for w, j in ids]
    assert all(VALID_NAME.fullmatch(n) for n in names), names
    assert len(set(names)) == len(names)
    assert names == [schedule_name(w, j) for w, j in ids]
    assert schedule_name("w" * 32, "j" * 32).startswith("j" * 32)  # findable by the job id in the console
    with pytest.raises(InvalidInput):
        schedule_name("", "job")


def test_a_deployment_without_the_arns_names_the_missing_variable(scheduler: Any) -> None:
    schedules = EventBridgeSummarySchedules.from_settings(Settings(summary_schedule_group=GROUP), client=scheduler)
    with pytest.raises(MissingSetting, match="QUARRY_SUMMARIES_STATE_MACHINE_ARN"):
        schedules.put(_job())
    schedules.delete("w", "j")  # needs neither


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, Throttled),
        ("ValidationException", 400, InvalidInput),
        ("InternalServerException", 500, UpstreamError),
    ],
)
def test_aws_refusals_become_platform_errors(code: str, status: int, expected: type[Exception]) -> None:
    client = boto3.client("scheduler", region_name="us-east-1")
    schedules = EventBridgeSummarySchedules(
        group=GROUP, state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:s", role_arn=ROLE, client=client
    )
    with Stubber(client) as stub:
        stub.add_client_error("update_schedule", service_error_code=code, http_status_code=status)
        with pytest.raises(expected):
            schedules.put(_job())
        stub.add_client_error("delete_schedule", service_error_code=code, http_status_code=status)
        with pytest.raises(expected):
            schedules.delete("w", "j")
