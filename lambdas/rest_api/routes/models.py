"""Health, the models on offer, search, and the models alone (rerank, embeddings)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from quarry.filters import Filter
from quarry.models import SearchRequest
from quarry.protocol import EmbeddingsIn, EmbeddingsOut, HitOut, RerankIn, RerankOut, SearchIn, SearchOut
from routes.common import caller, services

router = APIGatewayRouter()


@router.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/models")
def models() -> dict[str, Any]:
    return services().models.describe()


@router.post("/workspaces/<workspace_id>/search")
def search(workspace_id: str, body: SearchIn) -> SearchOut:
    request = SearchRequest(
        workspace_id=workspace_id,
        query=body.query,
        top_k=body.top_k,
        mode=body.mode,
        rerank=body.rerank,
        filters=Filter.parse(body.filters, where="filters"),
    )
    result = services().search.search(caller(router), request)
    return SearchOut(hits=[HitOut.of(h) for h in result.hits], mode=result.mode, took_ms=round(result.took_ms, 2))


@router.post("/rerank")
def rerank(body: RerankIn) -> RerankOut:
    caller(router)
    result = services().model_calls.rerank(body.query, body.passages, model=body.model)
    return RerankOut(scores=result.scores, ranking=result.ranking, model=result.model)


@router.post("/embeddings")
def embeddings(body: EmbeddingsIn) -> EmbeddingsOut:
    caller(router)
    result = services().model_calls.embed(body.texts, model=body.model)
    return EmbeddingsOut(model=result.model, dimensions=result.dimensions, embeddings=result.vectors)
