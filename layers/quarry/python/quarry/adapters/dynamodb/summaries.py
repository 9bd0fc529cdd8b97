"""``ports.SummaryStore`` on DynamoDB, in the catalog table (``{prefix}-catalog``) under its own keys.

Items (beside the catalog's, see ``tables``)::

    job          SUMMARIES#{ws}   JOB#{job}                   lsi1sk = JOB#{created}#{job};
                                                              gsi1pk = SUMMARY#SCHEDULED, gsi1sk = {ws}#{job}
                                                              (only while the job has a schedule)
    result part  SUMMARIES#{ws}   RESULT#{job}#{hash}#{n}     data (bytes), part n of the job's result

A job item holds its record (``quarry.summary_models.job_to_record``) without the result as a JSON string
(so floats and nesting round-trip exactly), and the result as zlib-compressed JSON: inline in the item
(``result``) when that is small, which it nearly always is, otherwise split into part items of at most
300 KB (DynamoDB items stop at 400 KB; 200 points citing 50 documents each, with the cited documents'
names, is around a megabyte of JSON). The parts are content-addressed (``hash``: the compressed bytes'
SHA-256), and the job item names them (``result_hash``, ``result_parts``). A write that changes the parts
is one transaction: put the new parts and the job item (on the condition that the job still names the
parts it read) and delete the old parts, so a job item never names parts that are not there; a write
whose result is unchanged (progress updates) rewrites only the job item. A reader that finds parts
missing (replaced between its two reads) reads again. ``put_job_if`` adds ``updated_at = <the version the
caller read>`` to the same conditions, so concurrent progress updates are compare-and-set, never lost.

lsi1 lists a workspace's jobs newest first (creation time, then id, both descending; exact pages, like
the SQL store); gsi1 is sparse over the scheduled jobs of every workspace.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError

from quarry.adapters.aws_errors import error_code
from quarry.adapters.dynamodb.codec import Item, attribute_values, from_item, timestamp, to_item
from quarry.adapters.dynamodb.table import (
    CHECK_FAILED,
    OPTIMISTIC_ATTEMPTS,
    Table,
    cancellation_codes,
    translated_errors,
)
from quarry.errors import Conflict, InvalidInput, UpstreamError
from quarry.ports import Page
from quarry.summary_models import SummaryJob, job_from_record, job_to_record

__all__ = ["INLINE_RESULT_BYTES", "MAX_RESULT_BYTES", "PART_BYTES", "DynamoSummaryStore"]

#: A compressed result up to this size stays inside the job item.
INLINE_RESULT_BYTES = 64 * 1024
#: Larger ones are split into parts of this size (an item holds 400 KB, key and attribute names included).
PART_BYTES = 300 * 1024
#: New parts, the old ones' deletes and the job item form one transaction (100 items, 4 MB in all).
MAX_RESULT_PARTS = 12
MAX_RESULT_BYTES = MAX_RESULT_PARTS * PART_BYTES

_SCHEDULED = "SUMMARY#SCHEDULED"


def _partition(workspace_id: str) -> str:
    return f"SUMMARIES#{workspace_id}"


def _job_key(workspace_id: str, job_id: str) -> dict[str, str]:
    return {"pk": _partition(workspace_id), "sk": f"JOB#{job_id}"}


def _part_prefix(job_id: str) -> str:
    return f"RESULT#{job_id}#"


def _part_key(workspace_id: str, job_id: str, digest: str, index: int) -> dict[str, str]:
    return {"pk": _partition(workspace_id), "sk": f"{_part_prefix(job_id)}{digest}#{index:03d}"}


def _part_keys(workspace_id: str, job_id: str, digest: str, count: int) -> list[dict[str, str]]:
    return [_part_key(workspace_id, job_id, digest, index) for index in range(count)]


def _bytes(value: Any) -> bytes:
    return value.value if isinstance(value, Binary) else bytes(value)


class _Encoded:
    """A job as items: the job item's attributes, and the result's parts when it does not fit inline."""

    def __init__(self, job: SummaryJob) -> None:
        record = job_to_record(job)  # InvalidInput for a naive datetime, before anything is written
        result = record.pop("result")
        blob = None if result is None else zlib.compress(json.dumps(result, separators=(",", ":")).encode())
        self.parts: list[bytes] = []
        self.digest: str | None = None
        if blob is not None and len(blob) > INLINE_RESULT_BYTES:
            if len(blob) > MAX_RESULT_BYTES:
                raise InvalidInput(f"summary result too large to store ({len(blob)} bytes compressed)")
            self.parts = [blob[start : start + PART_BYTES] for start in range(0, len(blob), PART_BYTES)]
            self.digest = hashlib.sha256(blob).hexdigest()
        scheduled = job.schedule is not None
        self.item: Item = {
            **_job_key(job.workspace_id, job.id),
            "kind": "summary_job",
            "lsi1sk": f"JOB#{timestamp(job.created_at)}#{job.id}",
            "gsi1pk": _SCHEDULED if scheduled else None,
            "gsi1sk": f"{job.workspace_id}#{job.id}" if scheduled else None,
            "workspace_id": job.workspace_id,
            "id": job.id,
            "status": record["status"],
            "updated_at": timestamp(job.updated_at),
            "job": json.dumps(record, separators=(",", ":"), ensure_ascii=False),
            "result": blob if blob is not None and not self.parts else None,
            "result_hash": self.digest,
            "result_parts": len(self.parts) if self.parts else None,
        }


def _stored_parts(item: Mapping[str, Any] | None) -> tuple[str | None, int]:
    """The hash and number of the result parts a job item names (None, 0: none)."""
    if item is None or not item.get("result_hash"):
        return None, 0
    return str(item["result_hash"]), int(item["result_parts"])


def _parts_of(item: Mapping[str, Any]) -> list[dict[str, str]]:
    """The keys of the result parts a job item names."""
    digest, count = _stored_parts(item)
    return [] if digest is None else _part_keys(item["workspace_id"], item["id"], digest, count)


class DynamoSummaryStore(Table):
    """Summary jobs in the catalog table; results too large for an item go to part items beside them."""

    _spec = "catalog"

    # ------------------------------------------------------------------ writes

    def put_job(self, job: SummaryJob) -> None:
        """Upsert the whole job (last writer wins); optimistic on the result parts the job item names."""
        if not self._write(job, expected=None):
            raise Conflict(f"summary job {job.id} is being written concurrently; try again")

    def put_job_if(self, job: SummaryJob, expected_updated_at: datetime) -> bool:
        """Replace the job while its item's ``updated_at`` is still ``expected_updated_at``: the same writes
        as ``put_job``, each conditional on it too (a missing job is not created)."""
        if expected_updated_at.tzinfo is None:
            raise InvalidInput("datetimes must be timezone-aware")
        return self._write(job, expected=timestamp(expected_updated_at))

    def _write(self, job: SummaryJob, *, expected: str | None) -> bool:
        """False: ``expected`` is given and the stored job is not that version (or is gone). Raises
        ``Conflict`` when the result parts keep changing under it."""
        encoded = _Encoded(job)
        key = _job_key(job.workspace_id, job.id)
        for _ in range(OPTIMISTIC_ATTEMPTS):
            with translated_errors("get"):
                response = self._client().get_item(
                    TableName=self.table,
                    Key=to_item(key),
                    ConsistentRead=True,
                    ProjectionExpression="result_hash, result_parts, updated_at",
                )
            item = from_item(response["Item"]) if "Item" in response else None
            if expected is not None and (item is None or item.get("updated_at") != expected):
                return False
            if self._try_put(job, encoded, _stored_parts(item), expected):
                return True
        if expected is not None:
            return False  # changed under every attempt: someone else's write won
        raise Conflict(f"summary job {job.id} is being written concurrently; try again")

    def _try_put(
        self, job: SummaryJob, encoded: _Encoded, stored: tuple[str | None, int], expected: str | None
    ) -> bool:
        old_digest, old_count = stored
        clauses = ["attribute_not_exists(result_hash)" if old_digest is None else "result_hash = :digest"]
        values: dict[str, Any] = {} if old_digest is None else {"digest": old_digest}
        if expected is not None:
            clauses.append("updated_at = :expected")
            values["expected"] = expected
        condition: dict[str, Any] = {"ConditionExpression": " AND ".join(clauses)}
        if values:
            condition["ExpressionAttributeValues"] = attribute_values(**values)
        if encoded.digest == old_digest:  # the parts stay as they are (or there are none): one conditional put
            try:
                self._client().put_item(TableName=self.table, Item=to_item(encoded.item), **condition)
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                with translated_errors("put_job"):
                    raise
            return True
        put = self._put(encoded.item)
        put["Put"] |= condition
        items = [put]
        if encoded.digest is not None:
            keys = _part_keys(job.workspace_id, job.id, encoded.digest, len(encoded.parts))
            items += [
                self._put({**part_key, "kind": "summary_result_part", "data": data})
                for part_key, data in zip(keys, encoded.parts, strict=True)
            ]
        if old_digest is not None:
            items += [self._delete(part) for part in _part_keys(job.workspace_id, job.id, old_digest, old_count)]
        try:
            self._transact(items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if CHECK_FAILED in codes or "TransactionConflict" in codes:
                return False
            raise UpstreamError(f"DynamoDB put_job cancelled: {codes}") from exc
        return True

    def delete_job(self, workspace_id: str, job_id: str) -> None:
        """The job item and every result part of the job (idempotent)."""
        parts = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :parts)",
            ExpressionAttributeValues=attribute_values(pk=_partition(workspace_id), parts=_part_prefix(job_id)),
            ProjectionExpression="pk, sk",
        )
        keys = [_job_key(workspace_id, job_id), *({"pk": item["pk"], "sk": item["sk"]} for item in parts)]
        self._delete_keys(keys)

    # ------------------------------------------------------------------ reads

    def get_job(self, workspace_id: str, job_id: str) -> SummaryJob | None:
        for _ in range(OPTIMISTIC_ATTEMPTS):
            item = self._get(_job_key(workspace_id, job_id))
            if item is None:
                return None
            jobs = self._decode([item])
            if jobs:
                return jobs[0]
        raise Conflict(f"summary job {job_id} is being written concurrently; try again")

    def list_jobs(self, workspace_id: str, *, limit: int = 50, cursor: str | None = None) -> Page[SummaryJob]:
        """Newest first: lsi1 backwards, so pages stay exact."""
        pk = _partition(workspace_id)
        params: dict[str, Any] = {
            "IndexName": "lsi1",
            "KeyConditionExpression": "pk = :pk AND begins_with(lsi1sk, :job)",
            "ExpressionAttributeValues": attribute_values(pk=pk, job="JOB#"),
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        items, next_cursor = self._query_page(
            params, listing="summaries", limit=limit, cursor=cursor, names=("pk", "sk", "lsi1sk"), scope={"pk": pk}
        )
        return Page(items=self._hydrate(items), cursor=next_cursor)

    def scheduled_jobs(self) -> list[SummaryJob]:
        """gsi1, sparse: only jobs with a schedule carry its keys (ordered by workspace, then job)."""
        items = list(
            self._query_all(
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues=attribute_values(pk=_SCHEDULED),
            )
        )
        return self._hydrate(items)

    def _hydrate(self, items: Sequence[Item]) -> list[SummaryJob]:
        """Jobs of ``items`` in their order; a job whose parts were replaced meanwhile is read again."""
        decoded = {(job.workspace_id, job.id): job for job in self._decode(items)}
        jobs: list[SummaryJob] = []
        for item in items:
            job = decoded.get((item["workspace_id"], item["id"])) or self.get_job(item["workspace_id"], item["id"])
            if job is not None:  # deleted between the listing and the re-read
                jobs.append(job)
        return jobs

    def _decode(self, items: Iterable[Item]) -> list[SummaryJob]:
        """The jobs of ``items`` whose result could be read (parts fetched in batches); the others are left out."""
        items = list(items)
        wanted = [key for item in items for key in _parts_of(item)]
        found = {(part["pk"], part["sk"]): _bytes(part["data"]) for part in self._batch_get(wanted)} if wanted else {}
        jobs: list[SummaryJob] = []
        for item in items:
            record = json.loads(item["job"])
            blob: bytes | None = None
            if keys := _parts_of(item):
                chunks = [found.get((key["pk"], key["sk"])) for key in keys]
                if any(chunk is None for chunk in chunks):
                    continue
                blob = b"".join(chunk for chunk in chunks if chunk is not None)
            elif item.get("result") is not None:
                blob = _bytes(item["result"])
            record["result"] = None if blob is None else json.loads(zlib.decompress(blob))
            jobs.append(job_from_record(record))
        return jobs
