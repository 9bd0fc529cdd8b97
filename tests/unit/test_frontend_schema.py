"""The frontend's schema.json is exactly what quarry.protocol and quarry.summary_protocol export, and it describes
real messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from quarry import protocol, summary_protocol
from quarry.models import DocumentStatus, SearchMode
from quarry.schema_export import SCHEMA_PATH, export_schema, main, render_schema
from quarry.summary_models import (
    PointKind,
    SummaryJob,
    SummaryKind,
    SummaryPoint,
    SummaryProgress,
    SummaryResult,
    SummaryStatus,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / SCHEMA_PATH
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _validator(schema: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    doc = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(doc)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return export_schema()


def test_committed_schema_is_up_to_date() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_schema(), (
        "frontend/src/api/schema.json is stale: run `python -m quarry.schema_export`"
    )


def test_every_protocol_model_is_exported(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    for module in (protocol, summary_protocol):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, BaseModel) and name != "ListOut":
                assert name in defs, name
    for name in (
        "ListOut_WorkspaceOut_",
        "ListOut_DocumentOut_",
        "ListOut_SessionOut_",
        "ListOut_SummaryJobOut_",
        "ClientMessage",
        "ServerMessage",
    ):
        assert name in defs, name


def test_summary_jobs_are_described_as_the_api_sends_and_takes_them(schema: dict[str, Any]) -> None:
    """The summary endpoints' bodies (``quarry.summary_protocol``) are in the schema the frontend's types come from."""
    job = SummaryJob(
        id="j1",
        workspace_id="w",
        owner="o",
        kind=SummaryKind.PROS_CONS,
        filter={"product": "X"},
        schedule="rate(1 day)",
        status=SummaryStatus.SUCCEEDED,
        progress=SummaryProgress(documents_total=2, documents_read=2, batches_total=1, batches_done=1),
        result=SummaryResult(
            points=(SummaryPoint(PointKind.PRO, "Long battery life", ("d1", "d2"), 2),),
            documents_read=2,
            document_names={"d1": "a.txt", "d2": "b.txt"},
        ),
        created_at=NOW,
        updated_at=NOW,
    )
    out = summary_protocol.SummaryJobOut.of(job, next_run_at=NOW)
    _validator(schema, "SummaryJobOut").validate(json.loads(out.model_dump_json()))
    listing = protocol.ListOut[summary_protocol.SummaryJobOut](items=[out])
    _validator(schema, "ListOut_SummaryJobOut_").validate(json.loads(listing.model_dump_json()))
    assert set(schema["$defs"]["SummaryJobOut"]["required"]) == set(summary_protocol.SummaryJobOut.model_fields)
    sent = {"kind": "custom", "filter": {"stars": {"gte": 4}}, "instructions": "What about the battery?"}
    _validator(schema, "SummaryIn").validate(sent)
    assert summary_protocol.SummaryIn.model_validate(sent).kind == "custom"
    assert schema["$defs"]["SummaryIn"]["required"] == ["kind"]
    with pytest.raises(jsonschema.ValidationError):
        _validator(schema, "SummaryIn").validate({"kind": "themes", "max_points": 21})


def test_message_unions_are_discriminated(schema: dict[str, Any]) -> None:
    server = schema["$defs"]["ServerMessage"]["discriminator"]
    assert server["propertyName"] == "type"
    assert set(server["mapping"]) == {"token", "progress", "final", "error", "document_status", "pong"}
    client = schema["$defs"]["ClientMessage"]["discriminator"]
    assert client["propertyName"] == "action"
    assert set(client["mapping"]) == {"chat", "ping", "cancel"}


def test_outputs_require_every_field_inputs_only_what_has_no_default(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    assert set(defs["DocumentStatusEvent"]["required"]) == set(protocol.DocumentStatusEvent.model_fields)
    assert set(defs["TokenEvent"]["required"]) == {"type", "session_id", "message_id", "sequence", "text"}
    assert defs["ChatAction"]["required"] == ["action", "text"]
    assert defs["WorkspaceIn"]["properties"]["chunk_size"]["minimum"] == 16


def _server_messages() -> list[BaseModel]:
    citation = protocol.CitationOut(n=1, chunk_id="c", document_id="d", title="t", text="x", start=0, end=1, score=0.5)
    return [
        protocol.TokenEvent(session_id="s", message_id="m", sequence=0, text="Hi"),
        protocol.FinalEvent(
            session_id="s",
            message_id="m",
            answer="A [1]",
            citations=[citation],
            usage=protocol.UsageOut(prompt_tokens=1, completion_tokens=2),
            timings={"total": 0.1},
            grounded=True,
            standalone_question="q",
        ),
        protocol.ErrorEvent(code="bad_request", message="no"),
        protocol.DocumentStatusEvent(
            workspace_id="w", document_id="d", name="a.pdf", status=DocumentStatus.ERROR, reason="broken"
        ),
        protocol.PongEvent(),
    ]


@pytest.mark.parametrize("message", _server_messages(), ids=lambda m: type(m).__name__)
def test_serialized_server_messages_match_the_schema(schema: dict[str, Any], message: BaseModel) -> None:
    payload = json.loads(message.model_dump_json())
    _validator(schema, "ServerMessage").validate(payload)
    _validator(schema, type(message).__name__).validate(payload)


def test_serialized_rest_outputs_match_the_schema(schema: dict[str, Any]) -> None:
    ws = protocol.WorkspaceOut(
        id="w",
        name="n",
        owner="o",
        embedding_model="e",
        dimensions=3,
        chunk_size=256,
        chunk_overlap=32,
        hybrid=True,
        reranker=None,
        created_at=NOW,
    )
    listing = protocol.ListOut[protocol.WorkspaceOut](items=[ws])
    _validator(schema, "ListOut_WorkspaceOut_").validate(json.loads(listing.model_dump_json()))
    out = protocol.SearchOut(hits=[], mode=SearchMode.HYBRID, took_ms=1.0)
    _validator(schema, "SearchOut").validate(json.loads(out.model_dump_json()))
    err = protocol.ErrorOut(error=protocol.ErrorBody(code="not_found", message="gone"))
    _validator(schema, "ErrorOut").validate(json.loads(err.model_dump_json()))


def test_what_the_frontend_sends_is_accepted_by_the_backend(schema: dict[str, Any]) -> None:
    chat = {"action": "chat", "text": "What is Quarry?", "session_id": None, "workspace_id": "w1", "model": None}
    _validator(schema, "ClientMessage").validate(chat)
    assert protocol.client_message_adapter.validate_python(chat).action == "chat"
    bad = {"action": "chat", "text": ""}
    with pytest.raises(jsonschema.ValidationError):
        _validator(schema, "ClientMessage").validate(bad)


def test_main_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    assert main([str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == export_schema()
