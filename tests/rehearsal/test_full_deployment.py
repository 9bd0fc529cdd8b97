"""The full configuration (VPC access, OpenSearch, SageMaker endpoints, Bedrock rerank, crawler), rehearsed
where the machine allows: its functions on their own template, the SageMaker embedding endpoint answered by
the inference code of the model archive synthesis staged, Bedrock Rerank in its wire format, and every AWS
call checked against the caller's role. OpenSearch has no offline server, so the flows that index and search
run on the default configuration (``test_default_deployment.py``)."""

from __future__ import annotations

import math

import pytest

from tests.rehearsal.flows import Identity, rest, sign_in
from tests.rehearsal.iam_check import format_denials
from tests.rehearsal.platform import Rehearsal

pytestmark = [pytest.mark.rehearsal, pytest.mark.slow]

TEXTS = ["Employees get 25 days of paid leave a year.", "Bananas are rich in potassium."]


@pytest.fixture(scope="module")
def bob(full_rehearsal: Rehearsal) -> Identity:
    return sign_in(full_rehearsal, "bob@example.com")


def test_embeddings_come_from_the_sagemaker_endpoint_serving_the_staged_archive(
    full_rehearsal: Rehearsal, bob: Identity
) -> None:
    status, body = rest(full_rehearsal, bob, "POST", "/embeddings", {"texts": TEXTS})
    assert status == 200, body
    assert body["dimensions"] == 384 and len(body["embeddings"]) == 2
    invocations = [r for r in full_rehearsal.servers.models.requests if r.path.endswith("/invocations")]
    assert invocations, "the embedder did not call the SageMaker endpoint"
    assert invocations[-1].headers.get("accept", "").startswith("application/x-npy")  # the compact answer
    expected = full_rehearsal.servers.models.embed(TEXTS)
    for got, want in zip(body["embeddings"], expected, strict=True):
        cosine = sum(a * b for a, b in zip(got, want, strict=True)) / math.hypot(*got) / math.hypot(*want)
        assert cosine > 0.9999


def test_rerank_goes_to_bedrock_with_the_configured_model(full_rehearsal: Rehearsal, bob: Identity) -> None:
    status, body = rest(
        full_rehearsal, bob, "POST", "/rerank", {"query": "how much paid leave?", "passages": list(reversed(TEXTS))}
    )
    assert status == 200, body
    assert body["ranking"][0] == 1, body  # the leave passage first
    call = next(c for c in full_rehearsal.calls[full_rehearsal.name("rest_api")] if c.operation == "Rerank")
    model = call.params["rerankingConfiguration"]["bedrockRerankingConfiguration"]["modelConfiguration"]["modelArn"]
    assert model.endswith("foundation-model/cohere.rerank-v3-5:0")


def test_every_chat_model_of_the_config_is_offered(full_rehearsal: Rehearsal, bob: Identity) -> None:
    status, body = rest(full_rehearsal, bob, "GET", "/models")
    assert status == 200, body
    offered = {m["id"] for m in body["llms"]}
    assert {"anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0"} <= offered


def test_every_aws_call_was_allowed_by_the_callers_own_role(full_rehearsal: Rehearsal, bob: Identity) -> None:
    rest(full_rehearsal, bob, "GET", "/workspaces")
    assert full_rehearsal.calls[full_rehearsal.name("rest_api")]
    denials = full_rehearsal.denials()
    assert not denials, format_denials(denials)
