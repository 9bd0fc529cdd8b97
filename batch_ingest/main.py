"""The Batch ingestion job: one document in (ids from the environment), its chunks indexed.

Run by the ingestion state machine's SubmitBatchJob step (container overrides set
QUARRY_JOB_WORKSPACE_ID and QUARRY_JOB_DOCUMENT_ID); adapters come from the usual
QUARRY_* settings. Exit 0 when the document's chunks are written (the state machine's
SetProcessed step records the count); on failure the reason is written on the document
first, so the user sees why, then the job exits 1 and the state machine's SetError keeps it.
A retried job replaces the document's chunks in one transaction: never duplicates.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from quarry.errors import QuarryError
from quarry.settings import Settings
from quarry.wiring import build_services

logger = Logger(service="quarry-batch-ingest")
metrics = Metrics(namespace="Quarry", service="ingestion")


def run(env: Mapping[str, str], settings: Settings | None = None) -> int:
    workspace_id = env.get("QUARRY_JOB_WORKSPACE_ID", "")
    document_id = env.get("QUARRY_JOB_DOCUMENT_ID", "")
    if not workspace_id or not document_id:
        logger.error("QUARRY_JOB_WORKSPACE_ID and QUARRY_JOB_DOCUMENT_ID must be set")
        return 2
    logger.append_keys(workspace_id=workspace_id, document_id=document_id, job_id=env.get("AWS_BATCH_JOB_ID", "local"))
    services = build_services(settings)
    try:
        report = services.ingestion.run(workspace_id, document_id)
    except QuarryError as exc:
        services.ingestion_steps.fail(workspace_id, document_id, exc)
        metrics.add_metric(name="DocumentsFailed", unit=MetricUnit.Count, value=1)
        logger.warning("ingestion failed", extra={"reason": exc.message})
        return 1
    except Exception as exc:
        services.ingestion_steps.fail(workspace_id, document_id, exc)
        logger.exception("ingestion crashed")
        return 1
    finally:
        metrics.flush_metrics()
        services.close()
    metrics.add_metric(name="ChunksWritten", unit=MetricUnit.Count, value=report.chunks)
    metrics.add_metric(name="SecondsPerDocument", unit=MetricUnit.Seconds, value=report.seconds)
    metrics.flush_metrics()
    logger.info("document indexed", extra={"chunks": report.chunks, "seconds": round(report.seconds, 3)})
    print(json.dumps({"document_id": document_id, "chunks": report.chunks}))
    return 0


def main() -> None:
    sys.exit(run(os.environ))


if __name__ == "__main__":
    main()
