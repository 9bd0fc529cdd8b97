"""DynamoDB adapters: one module per port, on one shared table base.

- ``tables``: the table definitions as data (``TABLES``), which ``create_tables`` and the CDK stack both
  read; one table per concern (``{prefix}-catalog``, ``{prefix}-chat``, ``{prefix}-connections``),
  single-table layout with overloaded ``pk``/``sk``/``gsiNpk``/``gsiNsk`` inside each (documented there).
- ``codec``: Python values to DynamoDB JSON and back, expressions, timestamps in keys.
- ``table``: the base every adapter stands on (typed errors, exact pages, batches with retries).
- ``catalog.DynamoCatalog`` (``Catalog``), ``chat_history.DynamoChatHistory`` (``ChatHistory``),
  ``connections.DynamoConnections`` (``Connections``), ``cancellations.DynamoCancellations``
  (``Cancellations``), ``usage.DynamoUsageLedger`` (``UsageLedger``), ``summaries.DynamoSummaryStore``
  (``SummaryStore``, in the catalog table).
"""

from quarry.adapters.dynamodb.cancellations import DynamoCancellations
from quarry.adapters.dynamodb.catalog import DynamoCatalog
from quarry.adapters.dynamodb.chat_history import DynamoChatHistory
from quarry.adapters.dynamodb.connections import DynamoConnections
from quarry.adapters.dynamodb.summaries import DynamoSummaryStore
from quarry.adapters.dynamodb.tables import TABLES, create_tables
from quarry.adapters.dynamodb.usage import DynamoUsageLedger

__all__ = [
    "TABLES",
    "DynamoCancellations",
    "DynamoCatalog",
    "DynamoChatHistory",
    "DynamoConnections",
    "DynamoSummaryStore",
    "DynamoUsageLedger",
    "create_tables",
]
