"""``UsageLedger`` on DynamoDB: atomic per-day counters in the chat table, updated with ``ADD``.

Items (beside the sessions and messages of ``{prefix}-chat``, see ``tables``)::

    counter   USAGE#USER#{user} | USAGE#WS#{ws}   DAY#{yyyy-mm-dd}#{model}   day, model, requests,
                                                                             prompt_tokens, completion_tokens,
                                                                             cost_usd (numbers)
    guard     USAGE#MSG#{message}                 #USAGE                     user, workspace_id, model, at

``record`` is one ``TransactWriteItems``: the guard ``Put`` (only if absent) and an ``ADD`` on the user's
and the workspace's counter of the day. A redelivered answer fails the guard and the whole transaction,
so nothing is counted twice; concurrent answers never lose an increment (ADD is atomic). A view is one
``Query`` on the scope's partition, ``sk BETWEEN DAY#{since} AND DAY#{until}$``: at most a row per day
and model, never a scan. Costs are DynamoDB numbers (decimal), so sums do not drift.
"""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from quarry.adapters.dynamodb.codec import attribute_values, timestamp, to_item
from quarry.adapters.dynamodb.table import CHECK_FAILED, Table, cancellation_codes
from quarry.adapters.retry import RetryPolicy, no_jitter
from quarry.errors import Throttled, UpstreamError
from quarry.models import UsageEntry, UsageScope, UsageTotal

__all__ = ["DynamoUsageLedger"]

_GUARD_SK = "#USAGE"
# Other answers are adding to the same counters: try again after 0.05, 0.1, 0.2 s, four transactions in all.
_CONTENDED = RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0, jitter=no_jitter)
_RETRYABLE = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_ADD = (
    "SET #day = :day, #model = :model"
    " ADD requests :one, prompt_tokens :prompt, completion_tokens :completion, cost_usd :usd"
)
_PREFIX = {UsageScope.USER: "USAGE#USER#", UsageScope.WORKSPACE: "USAGE#WS#"}


def _counter_pk(scope: UsageScope, key: str) -> str:
    return f"{_PREFIX[UsageScope(scope)]}{key}"


def _counter_sk(day: date, model: str) -> str:
    return f"DAY#{day.isoformat()}#{model}"


class DynamoUsageLedger(Table):
    _spec = "chat"

    def record(self, entry: UsageEntry) -> bool:
        day = entry.at.astimezone(UTC).date()
        guard = {
            "pk": f"USAGE#MSG#{entry.message_id}",
            "sk": _GUARD_SK,
            "user": entry.user,
            "workspace_id": entry.workspace_id,
            "model": entry.model,
            "at": timestamp(entry.at),
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(guard),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        scopes = [(UsageScope.USER, entry.user)]
        if entry.workspace_id:
            scopes.append((UsageScope.WORKSPACE, entry.workspace_id))
        for scope, key in scopes:
            items.append({"Update": self._add(_counter_pk(scope, key), day, entry)})
        for _ in _CONTENDED.tries():
            try:
                self._transact(items)
                return True
            except ClientError as exc:
                codes = cancellation_codes(exc)  # anything but a cancelled transaction is raised, typed
                if codes and codes[0] == CHECK_FAILED:
                    return False  # counted already: a redelivered answer
                if not set(codes) & _RETRYABLE:
                    raise UpstreamError(f"DynamoDB usage record cancelled: {', '.join(codes)}") from exc
        raise Throttled("DynamoDB usage counters stayed contended")

    def _add(self, pk: str, day: date, entry: UsageEntry) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": to_item({"pk": pk, "sk": _counter_sk(day, entry.model)}),
            "UpdateExpression": _ADD,
            "ExpressionAttributeNames": {"#day": "day", "#model": "model"},
            "ExpressionAttributeValues": attribute_values(
                day=day.isoformat(),
                model=entry.model,
                one=1,
                prompt=entry.prompt_tokens,
                completion=entry.completion_tokens,
                usd=Decimal(str(entry.cost_usd)),
            ),
        }

    def totals(self, scope: UsageScope, key: str, *, since: date, until: date) -> list[UsageTotal]:
        rows = self._query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=attribute_values(
                pk=_counter_pk(scope, key), lo=f"DAY#{since.isoformat()}#", hi=f"DAY#{until.isoformat()}$"
            ),
            ConsistentRead=True,
        )
        return [
            UsageTotal(
                day=date.fromisoformat(str(row["day"])),
                model=str(row["model"]),
                requests=int(row.get("requests", 0)),
                prompt_tokens=int(row.get("prompt_tokens", 0)),
                completion_tokens=int(row.get("completion_tokens", 0)),
                cost_usd=float(row.get("cost_usd", 0)),
            )
            for row in rows
        ]
