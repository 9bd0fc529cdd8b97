"""EventBridge Scheduler behind ``ports.SummarySchedules``: one schedule per scheduled summary job.

Each schedule lives in the deployment's schedule group (``Settings.summary_schedule_group``, by default
``quarry-summaries``) and starts the summaries state machine with ``{"workspace_id", "job_id"}`` (the
machine's ``plan`` step gives such a run a fresh ``run_id``), through the scheduler role the stack creates
(``Settings.summary_scheduler_role_arn``; the caller needs ``iam:PassRole`` on it). Expressions are
EventBridge Scheduler's own (``cron(...)``, ``rate(...)``), evaluated in UTC.

The schedule's name is a pure function of the job's ids, so ``put`` replaces the job's one schedule and
``delete`` finds it again without storing anything; deleting a schedule that is not there is fine.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import boto3
from botocore.exceptions import ClientError

from quarry.adapters.aws_clients import LazyClient
from quarry.adapters.aws_errors import error_code
from quarry.errors import InvalidInput, QuarryError, Throttled, UpstreamError
from quarry.settings import MissingSetting, Settings
from quarry.summary_models import SummaryJob

__all__ = ["EventBridgeSummarySchedules", "schedule_name"]

MAX_NAME = 64  # EventBridge Scheduler: 1-64 of [0-9a-zA-Z-_.]
_DIGEST = 12
_DISALLOWED = re.compile(r"[^0-9A-Za-z_.-]")
_THROTTLING = {"ThrottlingException", "Throttling", "TooManyRequestsException"}
# How EventBridge Scheduler retries a start that Step Functions refused (throttled, briefly unavailable).
RETRY_POLICY = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}


def schedule_name(workspace_id: str, job_id: str) -> str:
    """A valid schedule name for the job: its id (cleaned, shortened) and a digest of both ids, so two
    jobs never share a schedule even if their ids only differ in characters the name cannot hold."""
    if not workspace_id or not job_id:
        raise InvalidInput("a summary schedule needs the workspace id and the job id")
    digest = hashlib.sha256(f"{workspace_id}/{job_id}".encode()).hexdigest()[:_DIGEST]
    return f"{_DISALLOWED.sub('-', job_id)[: MAX_NAME - _DIGEST - 1]}-{digest}"


class EventBridgeSummarySchedules:
    def __init__(
        self,
        *,
        group: str,
        state_machine_arn: str,
        role_arn: str,
        client: Any = None,
        session: boto3.Session | None = None,
        region: str | None = None,
    ) -> None:
        self.group = group
        self._state_machine_arn = state_machine_arn
        self._role_arn = role_arn
        self._client = LazyClient("scheduler", client=client, session=session, region=region)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, client: Any = None, session: boto3.Session | None = None
    ) -> EventBridgeSummarySchedules:
        # Read, not required, here: functions that never manage schedules build the services too. ``put``
        # names the missing variable when a deployment forgot one.
        return cls(
            group=settings.summary_schedule_group,
            state_machine_arn=settings.summaries_state_machine_arn,
            role_arn=settings.summary_scheduler_role_arn,
            client=client,
            session=session,
            region=settings.aws_region,
        )

    def put(self, job: SummaryJob) -> None:
        """Create or replace the job's schedule; a job without a schedule has none afterwards."""
        if not job.schedule:
            self.delete(job.workspace_id, job.id)
            return
        if not self._state_machine_arn:
            raise MissingSetting("QUARRY_SUMMARIES_STATE_MACHINE_ARN is not set; the summary schedules need it")
        if not self._role_arn:
            raise MissingSetting("QUARRY_SUMMARY_SCHEDULER_ROLE_ARN is not set; the summary schedules need it")
        request = self._request(job)
        try:
            self._client().update_schedule(**request)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise _failure("UpdateSchedule", exc) from exc
            self._create(request)

    def _create(self, request: dict[str, Any]) -> None:
        try:
            self._client().create_schedule(**request)
        except ClientError as exc:
            if error_code(exc) != "ConflictException":  # created meanwhile by a concurrent put: replace it
                raise _failure("CreateSchedule", exc) from exc
            try:
                self._client().update_schedule(**request)
            except ClientError as again:
                raise _failure("UpdateSchedule", again) from again

    def delete(self, workspace_id: str, job_id: str) -> None:
        try:
            self._client().delete_schedule(Name=schedule_name(workspace_id, job_id), GroupName=self.group)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise _failure("DeleteSchedule", exc) from exc

    def get(self, workspace_id: str, job_id: str) -> dict[str, Any] | None:
        """The job's schedule as EventBridge Scheduler describes it, or None."""
        try:
            response = self._client().get_schedule(Name=schedule_name(workspace_id, job_id), GroupName=self.group)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise _failure("GetSchedule", exc) from exc
        return {k: v for k, v in response.items() if k != "ResponseMetadata"}

    def _request(self, job: SummaryJob) -> dict[str, Any]:
        return {
            "Name": schedule_name(job.workspace_id, job.id),
            "GroupName": self.group,
            "ScheduleExpression": job.schedule,
            "ScheduleExpressionTimezone": "UTC",
            "Description": f"Quarry summary job {job.id} of workspace {job.workspace_id}",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "Target": {
                "Arn": self._state_machine_arn,
                "RoleArn": self._role_arn,
                "Input": json.dumps({"workspace_id": job.workspace_id, "job_id": job.id}, sort_keys=True),
                "RetryPolicy": RETRY_POLICY,
            },
        }


def _failure(operation: str, exc: ClientError) -> QuarryError:
    code = error_code(exc)
    if code in _THROTTLING:
        return Throttled(f"EventBridge Scheduler {operation} throttled")
    if code == "ValidationException":
        return InvalidInput(f"EventBridge Scheduler refused the schedule: {exc.response['Error'].get('Message', code)}")
    return UpstreamError(f"EventBridge Scheduler {operation} failed: {code}")
