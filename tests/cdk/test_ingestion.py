"""Ingestion: the state machines' states, retries and catches; Batch on Fargate; the sweeper schedule."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.ingestion import JOB_ENV_DOCUMENT, JOB_ENV_WORKSPACE, STATUS_ACTIONS, TRANSIENT_BATCH_ERRORS
from tests.cdk.cdk_synth import ROOT, Synth, function, state_machine

pytestmark = pytest.mark.cdk


def _catches_to(state: dict[str, Any], target: str) -> bool:
    return any(c["Next"] == target and c["ErrorEquals"] == ["States.ALL"] for c in state.get("Catch", []))


def test_ingestion_state_machine(any_synth: Synth) -> None:
    asl = state_machine(any_synth, "Ingest")
    states = asl["States"]
    assert asl["StartAt"] == "SetProcessing"
    assert states["SetProcessing"]["Next"] == "SubmitBatchJob"
    assert states["SubmitBatchJob"]["Next"] == "SetProcessed"
    assert states["SetProcessed"]["Next"] == "Done"
    assert states["SetError"]["Next"] == "IngestionFailed"
    assert states["IngestionFailed"]["Type"] == "Fail"
    for name in ("SetProcessing", "SubmitBatchJob", "SetProcessed"):
        assert _catches_to(states[name], "SetError"), name
        assert states[name]["Catch"][0]["ResultPath"] == "$.error"
    assert states["SetProcessing"]["Parameters"]["Payload"]["action"] == "set_processing"
    assert states["SetProcessed"]["Parameters"]["Payload"]["action"] == "set_processed"
    error_payload = states["SetError"]["Parameters"]["Payload"]
    assert error_payload["action"] == "set_error" and error_payload["error.$"] == "$.error"


def test_batch_step_is_sync_and_retried_with_backoff(any_synth: Synth) -> None:
    submit = state_machine(any_synth, "Ingest")["States"]["SubmitBatchJob"]
    assert submit["Resource"].endswith(":states:::batch:submitJob.sync")
    retry = next(r for r in submit["Retry"] if r["ErrorEquals"] == TRANSIENT_BATCH_ERRORS)
    assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] == 4 and retry["JitterStrategy"] == "FULL"
    env = {e["Name"]: e["Value.$"] for e in submit["Parameters"]["ContainerOverrides"]["Environment"]}
    assert env == {JOB_ENV_WORKSPACE: "$.workspace_id", JOB_ENV_DOCUMENT: "$.document_id"}


def test_lambda_steps_retry_service_errors(default_synth: Synth) -> None:
    step = state_machine(default_synth, "Ingest")["States"]["SetProcessing"]
    errors = {e for r in step["Retry"] for e in r["ErrorEquals"]}
    assert {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"} <= errors


def test_deletion_state_machine(default_synth: Synth) -> None:
    asl = state_machine(default_synth, "Delete")
    states = asl["States"]
    choice = states[asl["StartAt"]]
    assert choice["Type"] == "Choice"
    assert {c["StringEquals"]: c["Next"] for c in choice["Choices"]} == {
        "delete_document": "PurgeDocument",
        "delete_workspace": "PurgeWorkspace",
    }
    assert choice["Default"] == "UnknownWorkflow"
    for scope in ("Document", "Workspace"):
        state = states[f"Purge{scope}"]
        assert state["Next"] == "Deleted"
        assert state["Parameters"]["Payload"]["action"] == f"purge_{scope.lower()}"
        assert _catches_to(state, "DeletionFailed")
        assert any(r["ErrorEquals"] == ["States.TaskFailed"] for r in state["Retry"])
    assert "document_id.$" in states["PurgeDocument"]["Parameters"]["Payload"]
    assert "document_id.$" not in states["PurgeWorkspace"]["Parameters"]["Payload"]


def test_state_machines_log_and_trace(any_synth: Synth) -> None:
    for machine in any_synth.resources("AWS::StepFunctions::StateMachine").values():
        props = machine["Properties"]
        assert props["TracingConfiguration"] == {"Enabled": True}
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_batch_on_fargate_in_public_subnets_without_nat(default_synth: Synth, full_synth: Synth) -> None:
    for synth, kind in ((default_synth, "FARGATE"), (full_synth, "FARGATE_SPOT")):
        env = next(iter(synth.resources("AWS::Batch::ComputeEnvironment").values()))["Properties"]
        assert env["Type"] == "managed"
        assert env["ComputeResources"]["Type"] == kind
        job = next(iter(synth.resources("AWS::Batch::JobDefinition").values()))["Properties"]
        assert job["PlatformCapabilities"] == ["FARGATE"]
        container = job["ContainerProperties"]
        assert container["NetworkConfiguration"] == {"AssignPublicIp": "ENABLED"}
        names = {e["Name"] for e in container["Environment"]}
        assert {"QUARRY_RUNTIME", "QUARRY_PG_DSN", "QUARRY_UPLOAD_BUCKET", "POWERTOOLS_SERVICE_NAME"} <= names
        assert job["RetryStrategy"]["Attempts"] == 2
        assert job["RetryStrategy"]["EvaluateOnExit"][-1] == {"Action": "EXIT", "OnReason": "*"}
        assert job["Timeout"] == {"AttemptDurationSeconds": 3600}
    default_synth.template.has_resource_properties("AWS::Batch::JobQueue", {"JobQueueName": "quarry-ingest"})


def test_sweeper_runs_on_a_schedule(default_synth: Synth) -> None:
    default_synth.template.has_resource_properties(
        "AWS::Events::Rule", {"ScheduleExpression": "rate(15 minutes)", "State": "ENABLED"}
    )


def test_status_handler_knows_every_action() -> None:
    from quarry.local.handlers import load_module

    assert set(load_module("ingest_status").STEPS) == set(STATUS_ACTIONS)


def test_batch_worker_reads_the_ids_the_state_machine_passes() -> None:
    source = (ROOT / "batch_ingest" / "main.py").read_text()
    assert JOB_ENV_WORKSPACE in source and JOB_ENV_DOCUMENT in source


def test_the_sweeper_waits_longer_than_a_job_can_run(any_synth: Synth) -> None:
    """The sweeper fails a document only after every attempt of its Batch job could have run to its timeout."""
    job = next(iter(any_synth.resources("AWS::Batch::JobDefinition").values()))["Properties"]
    longest_run = job["Timeout"]["AttemptDurationSeconds"] * job["RetryStrategy"]["Attempts"]
    sweeper = function(any_synth, "sweeper")["Properties"]["Environment"]["Variables"]
    timeout = int(sweeper["QUARRY_PROCESSING_TIMEOUT_SECONDS"])
    assert timeout > longest_run
    assert timeout - longest_run >= 15 * 60  # room to queue for vCPUs and start a Fargate task
    # the same value everywhere it is read (the worker's Settings too)
    job_env = {e["Name"]: e["Value"] for e in job["ContainerProperties"]["Environment"]}
    assert int(job_env["QUARRY_PROCESSING_TIMEOUT_SECONDS"]) == timeout
