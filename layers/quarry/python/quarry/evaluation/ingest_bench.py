"""Ingestion throughput next to the raw embedder's, on the same chunks."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from quarry.evaluation.beir import BeirDataset
from quarry.evaluation.retrieval_run import corpus_items, ingest_corpus, throwaway_workspace
from quarry.wiring import Services

__all__ = ["measure_ingest"]


def measure_ingest(services: Services, dataset: BeirDataset, *, limit_docs: int | None = None) -> dict[str, Any]:
    if limit_docs is not None:
        kept = dict(list(dataset.corpus.items())[:limit_docs])
        dataset = replace(dataset, corpus=kept)
    workspace = throwaway_workspace(services)
    try:
        embedder = services.models.embedders.get(workspace.embedding_model)
        chunker = services.adapters.chunker_for(workspace.chunking)
        items = corpus_items(dataset, workspace)
        chunks = [c for doc, parsed in items for c in chunker.split(doc.id, workspace.id, parsed, base_metadata={})]
        texts = [f"{c.title}\n{c.text}" if c.title else c.text for c in chunks]
        embedder.embed_documents(texts[:64])  # warm-up: model load and first-call costs out of both timings
        batch = services.settings.embedding_batch_size
        t0 = time.perf_counter()
        for i in range(0, len(texts), batch):
            embedder.embed_documents(texts[i : i + batch])
        raw_seconds = time.perf_counter() - t0
        figures = ingest_corpus(services, workspace, dataset)
    finally:
        services.workspaces.purge(workspace.id)
    raw_cps = len(texts) / raw_seconds if raw_seconds else 0.0
    return {
        "dataset": dataset.stats(),
        "pipeline": figures.to_dict(),
        "embedder": {"chunks": len(texts), "seconds": round(raw_seconds, 3), "chunks_per_second": round(raw_cps, 2)},
        "ratio": round(figures.chunks_per_second / raw_cps, 3) if raw_cps else None,
    }
