"""The ``workspace_setup`` custom resource as deployed by default: the pgvector index over the RDS Data API.

On ``Create``/``Update`` it creates the ``vector`` extension through the Data API (emulated on real
Postgres, see tests/aws/rds_data_emulator.py), so a fresh Aurora cluster is ready; on ``Delete`` it does
nothing (the data outlives the stack unless ``removal`` says otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from quarry.adapters.pgvector import PgVectorIndex
from quarry.adapters.rds_data import DataApiDatabase
from quarry.local.handlers import LocalContext, load_handler
from quarry.settings import Settings
from quarry.wiring import build_services, install_services, reset_services
from tests.aws.rds_data_emulator import DataApiEmulator

pytestmark = pytest.mark.integration

CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:quarry-aurora"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:quarry-aurora-AbCdEf"


def _custom_resource_event(request_type: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:quarry-provider",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/Quarry/1",
        "RequestId": "req-1",
        "LogicalResourceId": "VectorSchema",
        "ResourceType": "Custom::QuarryVectorSchema",
        "ResourceProperties": {},
    }


def _has_vector_extension(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None


@pytest.fixture
def emulator(pg_database: str) -> Iterator[DataApiEmulator]:
    with psycopg.connect(pg_database, autocommit=True) as conn:  # a fresh cluster: no extension yet
        conn.execute("DROP EXTENSION IF EXISTS vector CASCADE")
    with DataApiEmulator(pg_database) as emulator:
        yield emulator


@pytest.fixture
def handler(emulator: DataApiEmulator, pg_database: str, tmp_path: Any) -> Iterator[Any]:
    database = DataApiDatabase(
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        database=str(conninfo_to_dict(pg_database)["dbname"]),
        client=emulator.client(),
    )
    settings = Settings(data_dir=tmp_path, vector_index="pgvector")
    install_services(build_services(settings, overrides={"vector_index": PgVectorIndex(database)}))
    try:
        yield load_handler("workspace_setup")
    finally:
        reset_services()


def test_create_makes_the_vector_extension_through_the_data_api(
    handler: Any, emulator: DataApiEmulator, pg_database: str
) -> None:
    assert not _has_vector_extension(pg_database)
    emulator.calls.clear()

    result = handler(_custom_resource_event("Create"), LocalContext("workspace_setup"))

    assert result == {"PhysicalResourceId": "quarry-pg-schema"}
    assert _has_vector_extension(pg_database)
    statements = [call.request["sql"] for call in emulator.calls if call.operation == "ExecuteStatement"]
    assert any("CREATE EXTENSION IF NOT EXISTS vector" in sql for sql in statements)
    assert emulator.operations()[0] == "BeginTransaction" and emulator.operations()[-1] == "CommitTransaction"
    # an update re-runs it harmlessly
    handler(_custom_resource_event("Update"), LocalContext("workspace_setup"))
    assert _has_vector_extension(pg_database)


def test_delete_touches_nothing(handler: Any, emulator: DataApiEmulator, pg_database: str) -> None:
    emulator.calls.clear()
    assert handler(_custom_resource_event("Delete"), LocalContext("workspace_setup")) == {
        "PhysicalResourceId": "quarry-pg-schema"
    }
    assert emulator.calls == []
    assert not _has_vector_extension(pg_database)
