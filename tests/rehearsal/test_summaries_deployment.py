"""Summary jobs as deployed: a scheduled pros-and-cons job over two ingested reviews, end to end.

``POST /workspaces/{id}/summaries`` through ``rest_api`` (which creates the job's EventBridge Scheduler
schedule, passing the scheduler role, and starts the summaries state machine) -> the synthesized definition
interpreted: ``plan``, the Distributed Map reading the plan from the processing bucket and summarising each
batch in a child execution, ``reduce``, every task the ``summary_worker`` function from its staged asset,
its chat model Bedrock's ConverseStream (the rehearsal's stand-in model) -> the job ``succeeded`` in
DynamoDB with points citing the reviews. Then the schedule fires (as EventBridge Scheduler would: its target
started as its role) and the incremental run finds nothing new; deleting the job removes its schedule.
Finally a second scheduled job runs and the workspace is deleted: the deletion state machine's purge step
(``ingest_status``) removes the job, its schedule and its stored runs with the workspace. Every AWS call,
the functions', the state machines' and the scheduler's, is checked against the caller's role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.rehearsal.dockerfile_check import ImageRoot
from tests.rehearsal.flows import (
    Identity,
    create_workspace,
    delete_workspace,
    fire_schedule,
    ingest,
    rest,
    run_summaries,
    sign_in,
    state_machine_caller,
    summarize,
    upload,
)
from tests.rehearsal.iam_check import format_denials
from tests.rehearsal.platform import Rehearsal
from tests.rehearsal.states import Execution

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]

REVIEWS = {
    "review-battery.md": b"The battery lasts three full days on one charge. The screen is bright and sharp.\n",
    "review-strap.md": b"The strap broke after a single week of use. Support answered within a day.\n",
}
SCHEDULE = "rate(1 day)"


@dataclass
class Leftovers:
    """What the workspace's summary jobs have stored: DynamoDB items, processing-bucket blobs, schedules."""

    items: list[str]  # sort keys in the workspace's summaries partition of the catalog table
    blobs: list[str]
    schedules: list[str]


def _leftovers(r: Rehearsal, workspace_id: str, bucket: str) -> Leftovers:
    ddb, s3, scheduler = (r.cloud.client(name) for name in ("dynamodb", "s3", "scheduler"))
    table = next(
        r.cloud.resolver.refs[k]
        for k, res in r.template["Resources"].items()
        if res["Type"] == "AWS::DynamoDB::Table" and "Catalog" in k
    )
    items = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SUMMARIES#{workspace_id}"}},
    )["Items"]
    prefix = f"summaries/{workspace_id}/"
    blobs = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    group = "quarry-summaries"

    def started_with(name: str) -> Any:
        return json.loads(scheduler.get_schedule(Name=name, GroupName=group)["Target"]["Input"])

    listed = scheduler.list_schedules(GroupName=group)["Schedules"]
    schedules = [s["Name"] for s in listed if started_with(s["Name"])["workspace_id"] == workspace_id]
    return Leftovers([item["sk"]["S"] for item in items], blobs, schedules)


@dataclass
class Story:
    identity: Identity
    workspace_id: str
    documents: dict[str, str]  # id -> file name
    created: dict[str, Any]
    first: Execution
    after_first: dict[str, Any]
    schedule_caller: str
    scheduled: Execution
    after_scheduled: dict[str, Any]
    blobs: list[str]
    batch_results: list[dict[str, Any]]  # the runs' map-<i>.json (documents, points, the model's replies)
    deleted: int
    second: dict[str, Any]  # a scheduled job that ran, left for the workspace deletion
    before_purge: Leftovers
    purge_status: int
    purge: Execution
    after_purge: Leftovers


@pytest.fixture(scope="module")
def job_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch-summaries") / "job.log"


@pytest.fixture(scope="module")
def story(default_rehearsal: Rehearsal, batch_image: ImageRoot, job_log: Path) -> Iterator[Story]:
    r = default_rehearsal
    identity = sign_in(r, "carol@example.com")
    workspace_id = create_workspace(r, identity, "reviews")
    documents = {}
    for name, content in REVIEWS.items():
        document_id = upload(r, identity, workspace_id, name, content, "text/markdown")
        ingested = ingest(r, lambda overrides: r.run_job(batch_image, overrides, job_log))
        assert ingested.status == "SUCCEEDED", (ingested.error, ingested.cause, job_log.read_text()[-4000:])
        documents[document_id] = name
    status, created, executions = summarize(
        r, identity, workspace_id, {"kind": "pros_cons", "filter": {}, "max_points": 5, "schedule": SCHEDULE}
    )
    assert status == 202, created
    assert len(executions) == 1, executions
    first = run_summaries(r, executions[0])
    job_path = f"/workspaces/{workspace_id}/summaries/{created['id']}"
    _, after_first = rest(r, identity, "GET", job_path)
    schedule_arn = fire_schedule(r, workspace_id, created["id"])
    schedule_caller = next(c for c in r.calls if c.startswith("scheduler:"))
    scheduled = run_summaries(r, schedule_arn)
    _, after_scheduled = rest(r, identity, "GET", job_path)
    s3 = r.cloud.client("s3")
    bucket = next(
        r.cloud.resolver.refs[k]
        for k, res in r.template["Resources"].items()
        if res["Type"] == "AWS::S3::Bucket" and "Processing" in k
    )
    prefix = f"summaries/{workspace_id}/{created['id']}/"
    blobs = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    batch_results = [
        json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        for key in sorted(blobs)
        if re.fullmatch(r"map-\d+\.json", key.rsplit("/", 1)[-1])
    ]
    deleted, _ = rest(r, identity, "DELETE", job_path)
    status, second, started = summarize(
        r, identity, workspace_id, {"kind": "themes", "filter": {}, "max_points": 3, "schedule": SCHEDULE}
    )
    assert status == 202 and len(started) == 1, second
    second_run = run_summaries(r, started[0])
    assert second_run.status == "SUCCEEDED", (second_run.error, second_run.cause)
    before_purge = _leftovers(r, workspace_id, bucket)
    purge_status, purge = delete_workspace(r, identity, workspace_id)
    after_purge = _leftovers(r, workspace_id, bucket)
    yield Story(
        identity,
        workspace_id,
        documents,
        created,
        first,
        after_first,
        schedule_caller,
        scheduled,
        after_scheduled,
        blobs,
        batch_results,
        deleted,
        second,
        before_purge,
        purge_status,
        purge,
        after_purge,
    )


def test_the_job_runs_through_the_synthesized_state_machine(story: Story) -> None:
    first = story.first
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    assert first.visited == ["Plan", "Skipped?", "MapBatches", "Reduce", "Summarised"]
    (mapped,) = first.maps
    assert len(mapped.items) >= 1 and mapped.failed == 0
    assert all(child.visited == ["MapBatch"] for child in mapped.children)
    assert len({item["run_id"] for item in mapped.items}) == 1
    assert [item["index"] for item in mapped.items] == list(range(len(mapped.items)))
    assert first.output == {"status": "succeeded", "points": len(story.after_first["result"]["points"])}
    assert story.created["status"] == "queued" and story.created["schedule"] == SCHEDULE


def test_the_job_succeeds_with_points_citing_the_reviews(story: Story) -> None:
    job = story.after_first
    assert job["status"] == "succeeded", (job["error"], story.batch_results)
    points = job["result"]["points"]
    assert points, job
    assert {p["kind"] for p in points} == {"pro", "con"}  # the stand-in model: the broken strap is a con
    cited = {c["document_id"] for p in points for c in p["citations"]}
    assert cited == set(story.documents)  # every review supports a point, nothing else is cited
    for point in points:
        assert point["count"] == len({c["document_id"] for c in point["citations"]})
        for citation in point["citations"]:
            assert citation["document_name"] == story.documents[citation["document_id"]]
    strap = next(p for p in points if p["kind"] == "con")
    assert "strap broke" in strap["text"].lower()
    progress = job["progress"]
    assert progress["documents_total"] == progress["documents_read"] == len(REVIEWS)
    assert progress["batches_done"] == progress["batches_total"] >= 1 and progress["batches_failed"] == 0
    assert job["result"]["documents_read"] == len(REVIEWS)
    assert job["prompt_tokens"] > 0 and job["runs"] == 1 and job["next_run_at"]


def test_plan_batches_and_result_are_kept_in_the_processing_bucket(story: Story) -> None:
    names = {key.rsplit("/", 1)[-1] for key in story.blobs}
    assert {"plan.json", "run.json", "map-0.json", "result.json", "batch-0.json"} <= names, names


def test_the_schedule_starts_an_incremental_run_as_the_scheduler_role(story: Story) -> None:
    scheduled = story.scheduled
    assert scheduled.status == "SUCCEEDED", (scheduled.error, scheduled.cause)
    # nothing new since the first run: no batch, and the reduce keeps the result
    assert scheduled.visited == ["Plan", "Skipped?", "MapBatches", "Reduce", "Summarised"]
    assert [len(m.items) for m in scheduled.maps] == [0]
    job = story.after_scheduled
    assert job["status"] == "succeeded" and job["runs"] == 2, job
    assert job["result"]["points"] == story.after_first["result"]["points"]
    assert job["progress"]["documents_total"] == 0


def test_deleting_the_finished_job_removes_its_schedule(story: Story, default_rehearsal: Rehearsal) -> None:
    assert story.deleted == 204
    scheduler = default_rehearsal.cloud.client("scheduler")
    remaining = scheduler.list_schedules(GroupName="quarry-summaries")["Schedules"]
    assert not [s for s in remaining if story.created["id"] in s["Name"]]
    operations = [c.operation for c in default_rehearsal.calls[default_rehearsal.name("rest_api")]]
    assert {"CreateSchedule", "DeleteSchedule", "StartExecution"} <= set(operations)


def test_deleting_the_workspace_purges_its_summary_jobs_schedules_and_runs(
    story: Story, default_rehearsal: Rehearsal
) -> None:
    before, after = story.before_purge, story.after_purge
    assert f"JOB#{story.second['id']}" in before.items and len(before.schedules) == 1
    assert {"plan.json", "map-0.json", "result.json"} <= {key.rsplit("/", 1)[-1] for key in before.blobs}
    assert story.purge_status == 204
    assert story.purge.status == "SUCCEEDED", (story.purge.error, story.purge.cause)
    assert story.purge.visited == ["WhatToDelete", "PurgeWorkspace", "Deleted"]
    assert (after.items, after.blobs, after.schedules) == ([], [], [])
    r = default_rehearsal
    purger = {f"{c.service}.{c.operation}" for c in r.calls[r.name("ingest_status")]}
    assert {"scheduler.DeleteSchedule", "s3.ListObjectsV2", "s3.DeleteObjects"} <= purger
    status, _ = rest(r, story.identity, "GET", f"/workspaces/{story.workspace_id}/summaries/{story.second['id']}")
    assert status == 404


def test_every_call_was_allowed_by_its_callers_role(story: Story, default_rehearsal: Rehearsal) -> None:
    r = default_rehearsal
    machine = state_machine_caller(r, "Summaries")
    worker_calls = {f"{c.service}.{c.operation}" for c in r.calls[r.name("summary_worker")]}
    assert {"bedrock-runtime.ConverseStream", "bedrock-runtime.InvokeModel", "s3.PutObject"} <= worker_calls
    machine_calls = {f"{c.service}.{c.operation}" for c in r.calls[machine]}
    assert machine_calls == {"lambda.Invoke", "s3.GetObject", "stepfunctions.StartExecution"}
    assert [f"{c.service}.{c.operation}" for c in r.calls[story.schedule_caller]] == ["stepfunctions.StartExecution"]
    started = json.loads(r.calls[story.schedule_caller][0].params["input"])
    assert started == {"workspace_id": story.workspace_id, "job_id": story.created["id"]}
    denials = r.denials()
    assert not denials, format_denials(denials)
