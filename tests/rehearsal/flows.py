"""The user's flows, driven through the rehearsal as AWS would drive them: each step is an AWS-shaped event
handed to the synthesized function, or a message that moto's own S3, SNS and SQS delivered."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.rehearsal.iam_check import ApiCall
from tests.rehearsal.platform import Rehearsal
from tests.rehearsal.states import Execution, StateMachine, TaskFailed
from tests.rehearsal.template import ACCOUNT, REGION

__all__ = [
    "Identity",
    "JobRunner",
    "chat",
    "connect",
    "create_workspace",
    "fire_schedule",
    "ingest",
    "rest",
    "run_summaries",
    "sign_in",
    "state_machine_caller",
    "summarize",
    "upload",
]

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
S3_GET_OBJECT = "arn:aws:states:::s3:getObject"

EVENTS = Path(__file__).resolve().parents[1] / "events"
JobRunner = Callable[[Mapping[str, str]], int]  # the submit's environment overrides -> exit code


@dataclass(frozen=True)
class Identity:
    sub: str
    id_token: str


def sign_in(rehearsal: Rehearsal, email: str) -> Identity:
    """A user of the template's user pool, signed in through Cognito (moto issues the RS256 id token)."""
    cognito = rehearsal.cloud.client("cognito-idp")
    pool_id = rehearsal.cloud.resolver.refs[_only(rehearsal, "AWS::Cognito::UserPool")]
    client_id = rehearsal.cloud.resolver.refs[_only(rehearsal, "AWS::Cognito::UserPoolClient")]
    password = "Rehearsal-Passw0rd!"
    user = cognito.admin_create_user(
        UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS", UserAttributes=[{"Name": "email", "Value": email}]
    )["User"]
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
    auth = cognito.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    return Identity(sub, auth["AuthenticationResult"]["IdToken"])


def _only(rehearsal: Rehearsal, kind: str) -> str:
    ids = [k for k, r in rehearsal.template["Resources"].items() if r["Type"] == kind]
    assert len(ids) == 1, f"expected one {kind}, found {ids}"
    return ids[0]


# ---------------------------------------------------------------------- REST (API Gateway, Cognito authorizer)


def rest(rehearsal: Rehearsal, identity: Identity, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    event = json.loads((EVENTS / "apigw_rest_post_workspaces.json").read_text())
    event |= {
        "path": path,
        "httpMethod": method,
        "resource": path,
        "body": None if body is None else json.dumps(body),
        "pathParameters": None,
    }
    event["requestContext"] |= {
        "httpMethod": method,
        "path": "/prod" + path,
        "resourcePath": path,
        "requestId": str(uuid.uuid4()),
    }
    event["requestContext"]["authorizer"]["claims"] |= {"sub": identity.sub}
    response = rehearsal.invoke("rest_api", event).result
    payload = json.loads(response["body"]) if response.get("body") else None
    return int(response["statusCode"]), payload


def create_workspace(rehearsal: Rehearsal, identity: Identity, name: str) -> str:
    status, body = rest(rehearsal, identity, "POST", "/workspaces", {"name": name})
    assert status == 201, body
    return str(body["id"])


# ---------------------------------------------------------------------- WebSocket


def connect(rehearsal: Rehearsal, identity: Identity, connection_id: str) -> dict[str, Any]:
    """``$connect``: the authorizer Lambda verifies the token (JWKS from Cognito), then ``ws_connect`` runs."""
    base = json.loads((EVENTS / "ws_connect.json").read_text())
    method_arn = f"arn:aws:execute-api:us-east-1:123456789012:{base['requestContext']['apiId']}/prod/$connect"
    authorizer_event = {
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": base["headers"],
        "queryStringParameters": {"token": identity.id_token},
        "requestContext": {**base["requestContext"], "connectionId": connection_id},
    }
    policy = rehearsal.invoke("ws_authorizer", authorizer_event).result
    event = copy.deepcopy(base)
    event["queryStringParameters"] = {"token": identity.id_token}
    event["requestContext"] |= {
        "connectionId": connection_id,
        "authorizer": {"principalId": policy["principalId"], **policy["context"]},
    }
    if policy["policyDocument"]["Statement"][0]["Effect"] == "Allow":
        assert rehearsal.invoke("ws_connect", event).result == {"statusCode": 200}
        rehearsal.servers.management.connect(connection_id)
    return dict(policy)


def _ws_message(connection_id: str, user: str, body: dict[str, Any]) -> dict[str, Any]:
    event = json.loads((EVENTS / "ws_message.json").read_text())
    event["body"] = json.dumps(body)
    event["requestContext"] |= {
        "connectionId": connection_id,
        "requestId": str(uuid.uuid4()),
        "authorizer": {"principalId": user, "user": user},
    }
    return dict(event)


# ---------------------------------------------------------------------- SQS deliveries


def _receive(rehearsal: Rehearsal, queue_logical_fragment: str, *, wait_s: float = 20) -> dict[str, Any]:
    """Messages moto delivered to a queue of the template, as the Lambda event source mapping hands them over."""
    logical = next(
        k
        for k, r in rehearsal.template["Resources"].items()
        if r["Type"] == "AWS::SQS::Queue" and queue_logical_fragment in k and "Dlq" not in k and "DeadLetter" not in k
    )
    url = rehearsal.cloud.resolver.refs[logical]
    arn = rehearsal.cloud.resolver.attrs[(logical, "Arn")]
    sqs = rehearsal.cloud.client("sqs")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if got:
            for message in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return {"Records": [_sqs_record(m, arn) for m in got]}
    raise AssertionError(f"nothing arrived on {logical} within {wait_s} s")


def _sqs_record(message: Mapping[str, Any], arn: str) -> dict[str, Any]:
    attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": None,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }


# ---------------------------------------------------------------------- upload and ingestion


def upload(
    rehearsal: Rehearsal, identity: Identity, workspace_id: str, name: str, content: bytes, content_type: str
) -> str:
    """The presigned POST from ``rest_api``, sent to S3 (moto) as a browser would."""
    status, target = rest(
        rehearsal,
        identity,
        "POST",
        f"/workspaces/{workspace_id}/documents/upload-url",
        {"filename": name, "content_type": content_type, "size_bytes": len(content)},
    )
    assert status in (200, 201), target
    url = urlsplit(target["url"])
    response = requests.post(
        rehearsal.servers.moto + (url.path or "/"),
        data=target["fields"],
        files={"file": (name, content, content_type)},
        headers={"Host": url.netloc},
        timeout=30,
    )
    assert response.status_code in (200, 201, 204), response.text
    return str(target["document_id"])


def _machine_id(rehearsal: Rehearsal, fragment: str) -> str:
    return next(
        k
        for k, r in rehearsal.template["Resources"].items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and fragment in k
    )


def _executions(rehearsal: Rehearsal, machine: str) -> set[str]:
    sfn = rehearsal.cloud.client("stepfunctions")
    return {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"]}


def _invoke_task(rehearsal: Rehearsal, caller: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    """``lambda:invoke``: the function named by the task runs from its staged asset; a function error is the
    task's failure (its ``errorType`` the error, the whole error the cause, as Step Functions reports it).
    With ``caller``, the invocation is recorded as that state machine role's call."""

    def invoke(parameters: Mapping[str, Any]) -> Any:
        if caller is not None:
            rehearsal.calls[caller].append(
                ApiCall("lambda", "Invoke", {"FunctionName": parameters["FunctionName"]}, REGION, ACCOUNT)
            )
        function = parameters["FunctionName"].rsplit(":", 1)[-1]
        short = function.removeprefix("quarry-").replace("-", "_")
        invocation = rehearsal.invoke(short, parameters["Payload"], check=False)
        if not invocation.ok:
            assert invocation.error is not None
            raise TaskFailed(invocation.error["errorType"], json.dumps(invocation.error))
        return {"Payload": invocation.result, "StatusCode": 200}

    return invoke


def ingest(rehearsal: Rehearsal, run_job: JobRunner) -> Execution:
    """S3's notification -> ``ingest_trigger`` -> the execution it started, run through the synthesized definition."""
    sfn = rehearsal.cloud.client("stepfunctions")
    machine = rehearsal.cloud.resolver.refs[_machine_id(rehearsal, "Ingest")]
    before = _executions(rehearsal, machine)
    assert rehearsal.invoke("ingest_trigger", _receive(rehearsal, "IngestQueue")).result == {"batchItemFailures": []}
    started_now = sorted(_executions(rehearsal, machine) - before)
    assert len(started_now) == 1, f"ingest_trigger started {len(started_now)} executions, not one"
    started = sfn.describe_execution(executionArn=started_now[0])
    definition = sfn.describe_state_machine(stateMachineArn=machine)["definition"]
    invoke_status = _invoke_task(rehearsal)

    def submit_job(parameters: Mapping[str, Any]) -> Any:
        overrides = {e["Name"]: e["Value"] for e in parameters.get("ContainerOverrides", {}).get("Environment", [])}
        code = run_job(overrides)
        if code != 0:
            raise TaskFailed("States.TaskFailed", json.dumps({"Status": "FAILED", "StatusReason": f"exit code {code}"}))
        return {"JobId": "rehearsal-job", "JobName": parameters.get("JobName"), "Status": "SUCCEEDED"}

    machine_run = StateMachine.from_json(
        definition, {LAMBDA_INVOKE: invoke_status, "arn:aws:states:::batch:submitJob": submit_job}
    )
    return machine_run.run(json.loads(started["input"]))


def delete_workspace(rehearsal: Rehearsal, identity: Identity, workspace_id: str) -> tuple[int, Execution]:
    """``DELETE /workspaces/{id}`` through ``rest_api`` -> the deletion execution it started, run through the
    synthesized definition (its purge step the ``ingest_status`` function from its staged asset)."""
    sfn = rehearsal.cloud.client("stepfunctions")
    machine = rehearsal.cloud.resolver.refs[_machine_id(rehearsal, "Delete")]
    before = _executions(rehearsal, machine)
    status, _ = rest(rehearsal, identity, "DELETE", f"/workspaces/{workspace_id}")
    started_now = sorted(_executions(rehearsal, machine) - before)
    assert len(started_now) == 1, f"rest_api started {len(started_now)} deletions, not one"
    started = sfn.describe_execution(executionArn=started_now[0])
    definition = sfn.describe_state_machine(stateMachineArn=machine)["definition"]
    run = StateMachine.from_json(definition, {LAMBDA_INVOKE: _invoke_task(rehearsal)})
    return status, run.run(json.loads(started["input"]))


# ---------------------------------------------------------------------- summary jobs


def summarize(
    rehearsal: Rehearsal, identity: Identity, workspace_id: str, body: Mapping[str, Any]
) -> tuple[int, Any, list[str]]:
    """``POST /workspaces/{id}/summaries`` through ``rest_api``: its answer, and the executions of the summaries
    state machine it started (in moto)."""
    machine = rehearsal.cloud.resolver.refs[_machine_id(rehearsal, "Summaries")]
    before = _executions(rehearsal, machine)
    status, job = rest(rehearsal, identity, "POST", f"/workspaces/{workspace_id}/summaries", dict(body))
    return status, job, sorted(_executions(rehearsal, machine) - before)


def _role_of(rehearsal: Rehearsal, arn: str) -> str:
    """The logical id of the template's role whose ARN is ``arn``."""
    for logical_id, resource in rehearsal.template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role" and rehearsal.cloud.resolver.attrs.get((logical_id, "Arn")) == arn:
            return logical_id
    raise KeyError(f"no role of the template has the ARN {arn}")


def state_machine_caller(rehearsal: Rehearsal, fragment: str) -> str:
    """The caller name under which a state machine's own AWS calls are kept, checked against its role."""
    logical_id = _machine_id(rehearsal, fragment)
    role = rehearsal.template["Resources"][logical_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    caller = f"states:{logical_id}"
    rehearsal.roles[caller] = role
    return caller


def run_summaries(rehearsal: Rehearsal, execution_arn: str) -> Execution:
    """One execution of the summaries state machine (from moto, with its input), run through the synthesized
    definition: each task invokes ``summary_worker`` from its staged asset; the Distributed Map reads its items
    with S3 GetObject from moto and runs a child execution per item. What the service does as the machine's
    role is recorded for the IAM check: the Lambda invocations, the ItemReader's GetObject, and the start of
    each child execution (a Distributed Map starts them as executions of the machine itself)."""
    sfn = rehearsal.cloud.client("stepfunctions")
    s3 = rehearsal.cloud.client("s3")
    machine = rehearsal.cloud.resolver.refs[_machine_id(rehearsal, "Summaries")]
    caller = state_machine_caller(rehearsal, "Summaries")
    started = sfn.describe_execution(executionArn=execution_arn)
    definition = sfn.describe_state_machine(stateMachineArn=machine)["definition"]

    def read_items(parameters: Mapping[str, Any]) -> Any:
        bucket, key = parameters["Bucket"], parameters["Key"]
        rehearsal.calls[caller].append(ApiCall("s3", "GetObject", {"Bucket": bucket, "Key": key}, REGION, ACCOUNT))
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey as exc:
            raise TaskFailed("States.ItemReaderFailed", f"s3://{bucket}/{key}: {exc}") from exc
        return json.loads(body)

    run = StateMachine.from_json(
        definition, {LAMBDA_INVOKE: _invoke_task(rehearsal, caller), S3_GET_OBJECT: read_items}
    )
    execution = run.run(json.loads(started["input"]))
    for map_run in execution.maps:
        rehearsal.calls[caller] += [
            ApiCall("stepfunctions", "StartExecution", {"stateMachineArn": machine}, REGION, ACCOUNT)
            for _ in map_run.children
        ]
    return execution


def fire_schedule(rehearsal: Rehearsal, workspace_id: str, job_id: str) -> str:
    """EventBridge Scheduler fires a summary job's schedule: the schedule ``rest_api`` created (read back from
    moto) starts its target with its input, as the schedule's role (recorded for the IAM check). Returns the
    execution's ARN."""
    scheduler = rehearsal.cloud.client("scheduler")
    groups = [
        rehearsal.cloud.resolver.refs[k]
        for k, r in rehearsal.template["Resources"].items()
        if r["Type"] == "AWS::Scheduler::ScheduleGroup"
    ]
    wanted = {"workspace_id": workspace_id, "job_id": job_id}
    found = [
        got
        for group in groups
        for listed in scheduler.list_schedules(GroupName=group)["Schedules"]
        if json.loads(
            (got := scheduler.get_schedule(Name=listed["Name"], GroupName=group))["Target"].get("Input", "{}")
        )
        == wanted
    ]
    assert len(found) == 1, f"{len(found)} schedules start {wanted}"
    target = found[0]["Target"]
    caller = f"scheduler:{found[0]['Name']}"
    rehearsal.roles[caller] = _role_of(rehearsal, target["RoleArn"])
    start = {"stateMachineArn": target["Arn"], "input": target["Input"]}
    rehearsal.calls[caller].append(ApiCall("stepfunctions", "StartExecution", start, REGION, ACCOUNT))
    return str(rehearsal.cloud.client("stepfunctions").start_execution(**start)["executionArn"])


# ---------------------------------------------------------------------- chat


def chat(rehearsal: Rehearsal, connection_id: str, user: str, workspace_id: str, text: str) -> list[dict[str, Any]]:
    """``ws_message`` -> SNS -> (filter policy) -> the chat queue -> ``chat_worker``; returns the frames pushed."""
    before = len(rehearsal.servers.management.frames[connection_id])
    message = {"action": "chat", "text": text, "workspace_id": workspace_id}
    assert rehearsal.invoke("ws_message", _ws_message(connection_id, user, message)).result == {"statusCode": 200}
    pushed = rehearsal.servers.management.frames[connection_id][before:]
    errors = [f for f in pushed if f.get("type") == "error"]
    assert not errors, errors
    result = rehearsal.invoke("chat_worker", _receive(rehearsal, "ChatQueue")).result
    assert result == {"batchItemFailures": []}, result
    return rehearsal.servers.management.frames[connection_id][before:]
