"""The default deployment, rehearsed end to end: what ``cdk deploy`` ships, run as AWS would run it.

Upload through the presigned POST -> S3's notification -> ``ingest_trigger`` -> the ingestion state machine's
own steps (the status function and the Batch image's entry point) -> ``processed``, pushed to the user's
WebSocket; then a chat over the WebSocket -> SNS -> SQS -> ``chat_worker`` -> a cited ``final``. Every AWS
call each function made must be allowed by its own synthesized role.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.rehearsal.dockerfile_check import ImageRoot
from tests.rehearsal.flows import Identity, chat, connect, create_workspace, ingest, rest, sign_in, upload
from tests.rehearsal.iam_check import format_denials
from tests.rehearsal.platform import JOB, Rehearsal
from tests.rehearsal.states import Execution
from tests.rehearsal.wire import recorded_answer

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]

HANDBOOK = b"""# Leave policy

Employees get 25 days of paid leave a year. Part-time staff get leave in proportion to their hours.
Unused leave of up to five days may be carried over to the next year with the manager's approval.
"""


@dataclass
class Story:
    identity: Identity
    workspace_id: str
    document_id: str
    execution: Execution
    frames: list[dict[str, Any]]
    chat_frames: list[dict[str, Any]]


@pytest.fixture(scope="module")
def job_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch") / "job.log"


@pytest.fixture(scope="module")
def story(default_rehearsal: Rehearsal, batch_image: ImageRoot, job_log: Path) -> Iterator[Story]:
    r = default_rehearsal
    identity = sign_in(r, "alice@example.com")
    policy = connect(r, identity, "conn-alice")
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow", policy
    workspace_id = create_workspace(r, identity, "handbook")
    document_id = upload(r, identity, workspace_id, "leave.md", HANDBOOK, "text/markdown")
    execution = ingest(r, lambda overrides: r.run_job(batch_image, overrides, job_log))
    frames = list(r.servers.management.frames["conn-alice"])
    chat_frames = chat(r, "conn-alice", identity.sub, workspace_id, "How many days of paid leave do employees get?")
    yield Story(identity, workspace_id, document_id, execution, frames, chat_frames)


def test_an_upload_reaches_processed_through_the_synthesized_state_machine(
    story: Story, default_rehearsal: Rehearsal, job_log: Path
) -> None:
    execution = story.execution
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause, job_log.read_text()[-4000:])
    assert execution.visited == ["SetProcessing", "SubmitBatchJob", "SetProcessed", "Done"]
    status, document = rest(
        default_rehearsal, story.identity, "GET", f"/workspaces/{story.workspace_id}/documents/{story.document_id}"
    )
    assert status == 200 and document["status"] == "processed" and document["chunk_count"] >= 1, document


def test_the_document_status_is_pushed_to_the_users_websocket(story: Story) -> None:
    statuses = [f["status"] for f in story.frames if f.get("type") == "document_status"]
    assert statuses[-1:] == ["processed"], story.frames
    assert "processing" in statuses


def test_a_chat_streams_tokens_and_a_cited_final(story: Story) -> None:
    tokens = [f for f in story.chat_frames if f["type"] == "token"]
    final = next(f for f in story.chat_frames if f["type"] == "final")
    assert [t["sequence"] for t in tokens] == list(range(len(tokens)))
    assert "".join(t["text"] for t in tokens).strip().startswith(recorded_answer().split(" [")[0][:20])
    assert final["citations"], final
    assert final["citations"][0]["document_id"] == story.document_id
    assert "25 days" in final["citations"][0]["text"]


def test_search_over_rest_finds_the_document(story: Story, default_rehearsal: Rehearsal) -> None:
    status, body = rest(
        default_rehearsal,
        story.identity,
        "POST",
        f"/workspaces/{story.workspace_id}/search",
        {"query": "carry over unused leave", "top_k": 3, "mode": "hybrid"},
    )
    assert status == 200, body
    assert body["hits"][0]["document_id"] == story.document_id


def test_progress_comes_before_the_first_token(story: Story) -> None:
    kinds = [f["type"] for f in story.chat_frames]
    assert "progress" in kinds and "token" in kinds, kinds
    assert max(i for i, k in enumerate(kinds) if k == "progress") < kinds.index("token")
    assert [f["phase"] for f in story.chat_frames if f["type"] == "progress"][-1] == "writing"


def test_the_daily_budget_is_deployed_and_counted(story: Story, default_rehearsal: Rehearsal) -> None:
    """The chat functions carry the configured budget; the chat above was counted against it (the usage table)."""
    status, usage = rest(default_rehearsal, story.identity, "GET", "/usage")
    assert status == 200, usage
    allowance = usage["allowance"]
    assert allowance["daily_token_budget"] == 500_000  # spend.daily_token_budget_per_user's default
    assert allowance["tokens_today"] > 0 and allowance["tokens_left_today"] == 500_000 - allowance["tokens_today"]


def test_preview_and_source_link_work_as_deployed(story: Story, default_rehearsal: Rehearsal) -> None:
    """The preview text the Batch job stored (processing bucket) is read by rest_api; the source link is a
    presigned GET of the upload that S3 (moto) answers with the uploaded bytes."""
    base = f"/workspaces/{story.workspace_id}/documents/{story.document_id}"
    status, preview = rest(default_rehearsal, story.identity, "GET", f"{base}/preview")
    assert status == 200 and preview["available"], preview
    assert "25 days of paid leave" in preview["text"]

    status, link = rest(default_rehearsal, story.identity, "GET", f"{base}/source")
    assert status == 200, link
    url = urlsplit(link["url"])
    got = requests.get(
        f"{default_rehearsal.servers.moto}{url.path}?{url.query}", headers={"Host": url.netloc}, timeout=30
    )
    assert got.status_code == 200 and got.content == HANDBOOK


def test_another_users_token_is_refused_and_a_forged_one_denied(story: Story, default_rehearsal: Rehearsal) -> None:
    forged = Identity(story.identity.sub, story.identity.id_token[:-8] + "AAAAAAAA")
    policy = connect(default_rehearsal, forged, "conn-forged")
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_every_aws_call_was_allowed_by_the_callers_own_role(story: Story, default_rehearsal: Rehearsal) -> None:
    called = {name for name, calls in default_rehearsal.calls.items() if calls}
    # the flows exercised the functions that talk to AWS
    for short in ("rest_api", "ws_connect", "ws_message", "chat_worker", "ingest_trigger", "ingest_status"):
        assert default_rehearsal.name(short) in called, short
    assert JOB in called  # the Batch job's calls are checked against its job role
    denials = default_rehearsal.denials()
    assert not denials, format_denials(denials)
