"""Summary jobs in AWS: the Summaries state machine (plan -> Distributed Map over the plan in S3 -> reduce), its
retries, catches and bounds; the worker Lambda; the schedule group and the scheduler role; who may do what."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from quarry.errors import UpstreamError
from quarry.local.handlers import LocalContext, load_handler
from quarry.models import utcnow
from quarry.ports import WorkflowName
from quarry.services.models_registry import ModelRegistry
from quarry.services.summaries import SummaryService, SummarySpec
from quarry.settings import Settings
from quarry.summary_models import SummaryStatus
from quarry.summary_protocol import SummaryIn
from quarry.wiring import build_services, install_services, reset_services
from stacks.api_schemas import request_schema
from stacks.summaries import (
    BATCH_ATTEMPTS,
    BLOB_PREFIX,
    MAX_CONCURRENCY,
    SCHEDULE_ACTIONS,
    SUMMARY_STEPS,
    schedule_group_name,
)
from tests.cdk.cdk_synth import Synth, actions, flatten, function, logical_id, policy_statements, state_machine
from tests.fakes import fake_overrides
from tests.rehearsal.states import Execution, StateMachine, TaskFailed
from tests.unit.services.summary_fixtures import OWNER, SummaryWorld, review

pytestmark = pytest.mark.cdk


def _states(synth: Synth) -> dict[str, Any]:
    return dict(state_machine(synth, "Summaries")["States"])


def _batch_states(synth: Synth) -> dict[str, Any]:
    return dict(_states(synth)["MapBatches"]["ItemProcessor"]["States"])


def _catches_to(state: dict[str, Any], target: str) -> bool:
    return any(
        c["Next"] == target and c["ErrorEquals"] == ["States.ALL"] and c["ResultPath"] == "$.error"
        for c in state.get("Catch", [])
    )


def _own_retry(state: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in state["Retry"] if r["ErrorEquals"] == ["States.ALL"])


def _statements(synth: Synth, role: Any) -> list[dict[str, Any]]:
    return policy_statements(synth, logical_id(synth, role))


def _text(value: Any) -> str:
    """A resource as text with each intrinsic kept (so a test can see which resource it names)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _granted(statements: list[dict[str, Any]], action: str) -> list[str]:
    out: list[str] = []
    for s in statements:
        if action in actions(s):
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            out += [_text(r) for r in resources]
    return out


def _ref(synth: Synth, construct: Any) -> str:
    return logical_id(synth, construct)


# ------------------------------------------------------------------ the state machine


def test_plan_then_distributed_map_then_reduce(any_synth: Synth) -> None:
    asl = state_machine(any_synth, "Summaries")
    states = asl["States"]
    assert asl["StartAt"] == "Plan"
    assert states["Plan"]["Next"] == "Skipped?"
    choice = states["Skipped?"]
    assert choice["Type"] == "Choice" and choice["Default"] == "MapBatches"
    (rule,) = choice["Choices"]
    assert rule["Next"] == "Skipped" and states["Skipped"]["Type"] == "Succeed"
    assert rule["And"] == [
        {"Variable": "$.skipped", "IsPresent": True},
        {"Variable": "$.skipped", "BooleanEquals": True},
    ]
    assert states["MapBatches"]["Next"] == "Reduce"
    assert states["Reduce"]["Next"] == "Summarised" and states["Summarised"]["Type"] == "Succeed"
    # the plan gets the whole input (a scheduled start has no run_id yet); its answer becomes the state
    plan = states["Plan"]
    assert plan["Parameters"]["Payload"] == {"step": "plan", "payload.$": "$"}
    assert plan["OutputPath"] == "$.Payload"
    assert states["Reduce"]["Parameters"]["Payload"] == {
        "step": "reduce",
        "payload": {"workspace_id.$": "$.workspace_id", "job_id.$": "$.job_id", "run_id.$": "$.run_id"},
    }
    assert asl["TimeoutSeconds"] == 12 * 3600


def test_a_run_that_cannot_finish_fails_its_job(any_synth: Synth) -> None:
    states = _states(any_synth)
    for name in ("Plan", "MapBatches", "Reduce"):
        assert _catches_to(states[name], "FailRun"), name
    for name in ("Plan", "Reduce"):
        retry = _own_retry(states[name])
        assert retry["MaxAttempts"] == BATCH_ATTEMPTS and retry["BackoffRate"] == 2, name
    fail_run = states["FailRun"]
    assert fail_run["Parameters"]["Payload"] == {"step": "fail_run", "payload.$": "$"}
    assert fail_run["ResultPath"] is None and fail_run["Next"] == "SummaryFailed"
    assert states["SummaryFailed"] == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}


def test_the_map_reads_the_plan_from_the_processing_bucket_bounded_and_tolerant(any_synth: Synth) -> None:
    mapped = _states(any_synth)["MapBatches"]
    assert mapped["Type"] == "Map"
    assert mapped["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert mapped["MaxConcurrency"] == MAX_CONCURRENCY == 4
    assert mapped["ToleratedFailurePercentage"] == 100  # a failed batch is reported, never fatal
    assert mapped["ResultPath"] is None  # the plan's fields reach the reduce
    reader = mapped["ItemReader"]
    assert reader["Resource"].endswith(":states:::s3:getObject")
    assert reader["ReaderConfig"] == {"InputType": "JSON"}
    assert reader["Parameters"]["Key.$"] == "$.plan_key"
    raw = next(r for k, r in any_synth.resources("AWS::StepFunctions::StateMachine").items() if "Summaries" in k)[
        "Properties"
    ]["DefinitionString"]
    assert {"Ref": _ref(any_synth, any_synth.stack.storage.processing)} in raw["Fn::Join"][1]  # the bucket


def test_a_batch_is_retried_exponentially_then_recorded_as_failed(any_synth: Synth) -> None:
    states = _batch_states(any_synth)
    batch = states["MapBatch"]
    assert batch["Parameters"]["Payload"] == {"step": "map_batch", "payload.$": "$"}  # the plan's item
    assert batch["ResultPath"] is None and batch["End"] is True
    retry = _own_retry(batch)
    assert retry["IntervalSeconds"] == 10 and retry["BackoffRate"] == 2 and retry["JitterStrategy"] == "FULL"
    assert retry["MaxAttempts"] == BATCH_ATTEMPTS == 3
    lambda_errors = {e for r in batch["Retry"] for e in r["ErrorEquals"]}
    assert {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"} <= lambda_errors
    assert _catches_to(batch, "RecordFailedBatch")
    record = states["RecordFailedBatch"]
    assert record["Parameters"]["Payload"] == {
        "step": "record_failed_batch",
        "payload": {
            "workspace_id.$": "$.workspace_id",
            "job_id.$": "$.job_id",
            "run_id.$": "$.run_id",
            "index.$": "$.index",
            "error.$": "$.error",
        },
    }
    # the child execution fails (counted by the Map Run, tolerated), after the failure was recorded
    assert record["Next"] == "BatchFailed" and states["BatchFailed"]["Type"] == "Fail"


def test_every_step_is_the_worker_and_the_worker_knows_every_step(default_synth: Synth) -> None:
    from quarry.local.handlers import load_module

    asl = state_machine(default_synth, "Summaries")
    tasks = {**asl["States"], **asl["States"]["MapBatches"]["ItemProcessor"]["States"]}
    steps = {s["Parameters"]["Payload"]["step"] for s in tasks.values() if s["Type"] == "Task"}
    assert steps == set(SUMMARY_STEPS)
    assert set(load_module("summary_worker").STEPS) == set(SUMMARY_STEPS)
    assert all(callable(getattr(SummaryService, step, None)) for step in SUMMARY_STEPS)
    worker = _ref(default_synth, default_synth.stack.functions.functions["summary_worker"])
    assert all(s["Resource"].endswith(":states:::lambda:invoke") for s in tasks.values() if s["Type"] == "Task")
    raw = json.dumps(
        next(r for k, r in default_synth.resources("AWS::StepFunctions::StateMachine").items() if "Summaries" in k)
    )
    assert f'"Fn::GetAtt": ["{worker}", "Arn"]' in raw


def test_the_worker_is_built_for_model_calls(any_synth: Synth) -> None:
    props = function(any_synth, "summary_worker")["Properties"]
    assert props["Timeout"] == 900 and props["MemorySize"] == 1024
    assert "VpcConfig" not in props  # catalog (DynamoDB), blobs (S3) and models only: no Postgres
    env = props["Environment"]["Variables"]
    assert env["QUARRY_SUMMARY_SCHEDULES"] == "eventbridge"
    assert env["QUARRY_DAILY_TOKEN_BUDGET"] == "500000"  # a run stops when its owner's allowance is spent
    # the machine invokes the worker: the worker must not name the machine (a dependency cycle)
    assert "QUARRY_SUMMARIES_STATE_MACHINE_ARN" not in env


def test_the_state_machine_logs_traces_and_reads_only_its_plans(default_synth: Synth) -> None:
    machine = default_synth.stack.summaries.state_machine
    props = default_synth.resources("AWS::StepFunctions::StateMachine")[_ref(default_synth, machine)]["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["StateMachineName"] == "quarry-summaries"
    statements = _statements(default_synth, machine.role)
    processing = _ref(default_synth, default_synth.stack.storage.processing)
    (objects,) = _granted(statements, "s3:GetObject")
    assert processing in objects and objects.endswith('"/*"]]}')
    assert not [s for s in statements if {"s3:PutObject", "s3:DeleteObject"} & set(actions(s))]
    worker = _ref(default_synth, default_synth.stack.functions.functions["summary_worker"])
    assert all(worker in r for r in _granted(statements, "lambda:InvokeFunction"))
    # the Distributed Map runs its children as executions of this machine, and only of it
    assert _granted(statements, "states:StartExecution") == [json.dumps({"Ref": _ref(default_synth, machine)})]


# ------------------------------------------------------------------ schedules


def test_one_schedule_group_and_a_scheduler_role_that_may_only_start_summaries(any_synth: Synth) -> None:
    groups = any_synth.resources("AWS::Scheduler::ScheduleGroup")
    assert [g["Properties"]["Name"] for g in groups.values()] == ["quarry-summaries"]
    assert schedule_group_name(any_synth.config) == "quarry-summaries"
    summaries = any_synth.stack.summaries
    role = any_synth.resources("AWS::IAM::Role")[_ref(any_synth, summaries.scheduler_role)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = _statements(any_synth, summaries.scheduler_role)
    assert [(actions(s), s["Resource"]) for s in statements] == [
        (["states:StartExecution"], {"Ref": _ref(any_synth, summaries.state_machine)})
    ]


def test_rest_api_starts_runs_and_keeps_schedules_scoped(any_synth: Synth) -> None:
    summaries = any_synth.stack.summaries
    statements = _statements(any_synth, any_synth.stack.functions.roles["rest_api"])
    machine = json.dumps({"Ref": _ref(any_synth, summaries.state_machine)})
    assert machine in _granted(statements, "states:StartExecution")
    assert not _granted(statements, "states:StopExecution")  # cancelling is a marker the steps check
    for action in SCHEDULE_ACTIONS:
        (arn,) = _granted(statements, action)
        assert flatten(json.loads(arn)).endswith(":schedule/quarry-summaries/*"), action
    assert {a for s in statements for a in actions(s) if a.startswith("scheduler:")} == set(SCHEDULE_ACTIONS)
    (passrole,) = [s for s in statements if "iam:PassRole" in actions(s)]
    assert passrole["Resource"] == {"Fn::GetAtt": [_ref(any_synth, summaries.scheduler_role), "Arn"]}
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    # cancel markers and a deleted job's runs: writes and deletes only under summaries/ of the processing bucket
    processing = _ref(any_synth, any_synth.stack.storage.processing)
    for action in ("s3:PutObject", "s3:DeleteObject"):
        on_processing = [r for r in _granted(statements, action) if processing in r]
        assert on_processing and all(r.endswith(f'"/{BLOB_PREFIX}*"]]}}') for r in on_processing), action


def test_rest_api_gets_the_summaries_settings(any_synth: Synth) -> None:
    summaries = any_synth.stack.summaries
    env = function(any_synth, "rest_api")["Properties"]["Environment"]["Variables"]
    assert env["QUARRY_SUMMARIES_STATE_MACHINE_ARN"] == {"Ref": _ref(any_synth, summaries.state_machine)}
    assert env["QUARRY_SUMMARY_SCHEDULER_ROLE_ARN"] == {
        "Fn::GetAtt": [_ref(any_synth, summaries.scheduler_role), "Arn"]
    }
    assert env["QUARRY_SUMMARY_SCHEDULE_GROUP"] == "quarry-summaries"
    assert env["QUARRY_SUMMARY_SCHEDULES"] == "eventbridge"
    fields = set(Settings.model_fields)
    assert {k.removeprefix("QUARRY_").lower() for k in env if k.startswith("QUARRY_")} <= fields


def test_the_worker_holds_only_what_its_steps_use(any_synth: Synth) -> None:
    statements = _statements(any_synth, any_synth.stack.functions.roles["summary_worker"])
    granted = {a for s in statements for a in actions(s)}
    assert not {a for a in granted if a.startswith(("states:", "scheduler:", "iam:", "sns:", "sqs:", "rds-data:"))}
    assert "bedrock:Rerank" not in granted  # it generates and embeds, never reranks
    processing = _ref(any_synth, any_synth.stack.storage.processing)
    writes = [r for r in _granted(statements, "s3:PutObject")]
    assert writes and all(processing in r and r.endswith(f'"/{BLOB_PREFIX}*"]]}}') for r in writes)
    assert not _granted(statements, "s3:DeleteObject")
    tables = _granted(statements, "dynamodb:PutItem")
    catalog = _ref(any_synth, any_synth.stack.storage.tables["catalog"])
    chat = _ref(any_synth, any_synth.stack.storage.tables["chat"])
    assert any(catalog in r for r in tables)  # jobs live in the catalog table
    assert any(chat in r for r in tables)  # the usage counters each batch adds to, beside the chat history
    assert all(catalog in r or chat in r for r in tables)


def test_the_workspace_purge_may_delete_the_groups_schedules_and_only_that(any_synth: Synth) -> None:
    """Deleting a workspace (``ingest_status``'s purge step) deletes its summary jobs' schedules."""
    statements = _statements(any_synth, any_synth.stack.functions.roles["ingest_status"])
    (arn,) = _granted(statements, "scheduler:DeleteSchedule")
    assert flatten(json.loads(arn)).endswith(":schedule/quarry-summaries/*")
    assert {a for s in statements for a in actions(s) if a.startswith(("scheduler:", "iam:PassRole"))} == {
        "scheduler:DeleteSchedule"
    }
    env = function(any_synth, "ingest_status")["Properties"]["Environment"]["Variables"]
    assert env["QUARRY_SUMMARY_SCHEDULE_GROUP"] == "quarry-summaries"
    assert env["QUARRY_SUMMARY_SCHEDULES"] == "eventbridge"
    assert "QUARRY_SUMMARIES_STATE_MACHINE_ARN" not in env  # it deletes schedules, never makes one


# ------------------------------------------------------------------ the definition driving the worker's handler


class _Others:
    """The bus, notifier and workflow of the other services: summaries use none of them."""

    def start(self, name: WorkflowName, payload: Mapping[str, Any], *, run_id: str | None = None) -> str:
        raise AssertionError("only the summary service starts runs here")

    def publish(self, topic: str, message: Mapping[str, Any], *, attributes: Mapping[str, str] | None = None) -> None:
        raise AssertionError("summaries publish nothing")

    def send(self, connection_id: str, payload: Mapping[str, Any]) -> bool:
        raise AssertionError("summaries notify nobody")


@pytest.fixture
def world(tmp_path: Any) -> Iterator[SummaryWorld]:
    """Reviews in a workspace, batches of two, and the process-wide services the handler finds, whose summary
    service is the world's (its starts are recorded, not run)."""
    world = SummaryWorld(batch_documents=2, inline=False)
    for aspects in (("battery",), ("battery", "dim"), ("cheap",), ("price", "battery"), ("charges",)):
        world.add(review(*aspects))
    others = _Others()
    overrides = fake_overrides(others, ModelRegistry(), catalog=world.catalog, blob_store=world.blobs)
    install_services(replace(build_services(Settings(data_dir=tmp_path), overrides=overrides), summaries=world.service))
    yield world
    reset_services()


def _started(world: SummaryWorld) -> dict[str, Any]:
    """The input of the run the service started last, as ``quarry.adapters.stepfunctions`` sends it."""
    return {**world.started[-1], "workflow": WorkflowName.SUMMARIZE.value}


def _interpret(synth: Synth, world: SummaryWorld, execution_input: Mapping[str, Any]) -> Execution:
    """The synthesized definition, each task the worker's handler in this process, the ItemReader the blobs."""
    handler = load_handler("summary_worker")

    def invoke(parameters: Mapping[str, Any]) -> Any:
        try:
            result = handler(dict(parameters["Payload"]), LocalContext("summary_worker"))
        except Exception as exc:  # a function error, as Lambda reports it to Step Functions
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            raise TaskFailed(type(exc).__name__, json.dumps(error)) from exc
        return {"Payload": result, "StatusCode": 200}

    def read_items(parameters: Mapping[str, Any]) -> Any:
        return json.loads(world.blobs.get(parameters["Key"]))

    asl = state_machine(synth, "Summaries")
    tasks = {"arn:<token>:states:::lambda:invoke": invoke, "arn:<token>:states:::s3:getObject": read_items}
    return StateMachine(asl, tasks).run(dict(execution_input))


def test_the_definition_runs_a_job_through_the_handler_and_reports_a_failed_batch(
    default_synth: Synth, world: SummaryWorld
) -> None:
    w = world

    def second_call_fails(call: int) -> None:  # the interpreter does not retry: its batch is recorded failed
        if call == 2:
            raise UpstreamError("Bedrock ConverseStream failed: ServiceUnavailableException")

    w.chat.before_map = second_call_fails
    job = w.service.create(OWNER, w.workspace_id, SummarySpec(kind="pros_cons"))
    execution = _interpret(default_synth, w, _started(w))
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.visited == ["Plan", "Skipped?", "MapBatches", "Reduce", "Summarised"]
    (mapped,) = execution.maps
    assert len(mapped.items) == 3 and mapped.failed == 1
    (failed,) = [child for child in mapped.children if child.status == "FAILED"]
    assert failed.visited == ["MapBatch", "RecordFailedBatch", "BatchFailed"] and failed.error == "UpstreamError"
    done = w.store.get_job(w.workspace_id, job.id)
    assert done is not None and done.status is SummaryStatus.SUCCEEDED, done
    assert done.progress.batches_failed == 1 and done.progress.batches_done == 2
    assert done.error is not None and "1 of 3 batches failed" in done.error
    assert done.result is not None and done.result.points
    cited = {doc for point in done.result.points for doc in point.document_ids}
    assert cited and cited <= {d.id for d in w.catalog.list_documents(w.workspace_id).items}


def test_a_scheduled_start_plans_its_own_run(default_synth: Synth, world: SummaryWorld) -> None:
    w = world
    job = w.service.create(OWNER, w.workspace_id, SummarySpec(kind="themes", schedule="rate(1 day)"))
    assert w.schedules.schedules == {(w.workspace_id, job.id): "rate(1 day)"}
    assert _interpret(default_synth, w, _started(w)).status == "SUCCEEDED"
    w.add(review("charges"), name="new-review.txt", updated_at=utcnow())
    # what the schedule sends (quarry.adapters.eventbridge_schedules): the ids, no run_id
    execution = _interpret(default_synth, w, {"workspace_id": w.workspace_id, "job_id": job.id})
    assert execution.status == "SUCCEEDED" and execution.visited[-1] == "Summarised"
    done = w.store.get_job(w.workspace_id, job.id)
    assert done is not None and done.status is SummaryStatus.SUCCEEDED and done.runs == 2
    assert done.progress.documents_total == 1  # only the new review: an incremental run


def test_a_run_whose_plan_keeps_failing_ends_its_job_failed(
    default_synth: Synth, world: SummaryWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    job = w.service.create(OWNER, w.workspace_id, SummarySpec(kind="pros_cons"))

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise UpstreamError("DynamoDB Query failed: InternalServerError")

    monkeypatch.setattr(w.catalog, "list_documents", unavailable)
    execution = _interpret(default_synth, w, _started(w))
    assert execution.status == "FAILED" and execution.visited == ["Plan", "FailRun", "SummaryFailed"]
    assert execution.error == "UpstreamError"
    failed = w.store.get_job(w.workspace_id, job.id)
    assert failed is not None and failed.status is SummaryStatus.FAILED
    assert failed.error == "the run failed: DynamoDB Query failed: InternalServerError"


# ------------------------------------------------------------------ the gateway's body model


def test_the_gateway_takes_every_summary_body_the_handler_takes(default_synth: Synth) -> None:
    """POST /summaries has a draft-4 model (API Gateway rejects a malformed body first); it names the
    ``filters`` alias and leaves the Unicode-aware language pattern to the handler."""
    import jsonschema

    models = default_synth.resources("AWS::ApiGateway::Model").values()
    (schema,) = [m["Properties"]["Schema"] for m in models if m["Properties"]["Name"] == SummaryIn.__name__]
    assert schema == request_schema(SummaryIn)
    validator = jsonschema.Draft4Validator(schema)
    for body in (
        {"kind": "pros_cons"},
        {"kind": "themes", "filters": {"product": "X"}, "language": "Português", "schedule": "rate(1 day)"},
        {"kind": "custom", "filter": {}, "instructions": "What about the battery?", "max_points": 20},
    ):
        assert not list(validator.iter_errors(body)), body
        SummaryIn.model_validate(body)  # and the handler's model takes it too
    for body in ({"kind": "poem"}, {"kind": "themes", "max_points": 21}, {"kind": "themes", "colour": "red"}):
        assert list(validator.iter_errors(body)), body
