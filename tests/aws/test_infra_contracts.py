"""The AWS infrastructure adapters under the shared contracts (tests/contracts).

- ``S3BlobStore`` on moto over real HTTP, behind S3's POST-policy checks (``post_policy.PolicyGate``):
  the presigned POST is a real multipart upload.
- ``SnsBus`` publishing to moto's SNS, fanned out by subscription filter policies to SQS queues with a
  redrive policy, as ``stacks/messaging.py`` builds them. In AWS the consumer is the Lambda event source
  mapping; here ``SqsBusWiring.settle`` plays it with ``ReceiveMessage``: a handler that raises leaves
  the message undeleted, and the receive asks for a zero visibility timeout so it is visible again at
  once (in AWS, after the queue's timeout). The receive counts and the move to the dead-letter queue
  are SQS's own (moto moves a message on the receive after ``maxReceiveCount``, as SQS does).
- ``ApiGatewayNotifier`` on a real botocore client whose HTTP answers come from ``ManagementApi``,
  a stateful stand-in for API Gateway's ``@connections`` endpoint (200 for a live connection, 410
  ``GoneException`` for any other, in the wire shape botocore parses). botocore's ``Stubber`` answers
  from a fixed queue of responses, which cannot say "this connection is live, that one is gone" to a
  contract that does not know the order of its calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import httpx
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from quarry.adapters.apigw_ws import ApiGatewayNotifier
from quarry.adapters.dynamodb import DynamoConnections
from quarry.adapters.s3 import S3BlobStore
from quarry.adapters.sns_sqs import BusRecord, SnsBus, parse_bus_record
from quarry.models import new_id
from tests.contracts.blob_store_contract import BlobStoreContract
from tests.contracts.bus_contract import BusContract, Delivery, Handler
from tests.contracts.notifier_contract import NotifierContract

from .botocore_replay import RawBody, json_error
from .conftest import REGION, TABLE_PREFIX

pytestmark = pytest.mark.aws

BUCKET = "quarry-uploads"
SIGV4 = Config(signature_version="s3v4")  # what S3BlobStore gives the clients it makes

# --------------------------------------------------------------------------- BlobStore


class TestS3BlobStore(BlobStoreContract):
    @pytest.fixture
    def blob_store(self, server_session: boto3.Session, moto_server: str) -> S3BlobStore:
        client = server_session.client("s3", endpoint_url=moto_server, config=SIGV4)
        client.create_bucket(Bucket=BUCKET)
        return S3BlobStore(BUCKET, client=client)

    @pytest.fixture
    def post_upload(self) -> Callable[[str, Mapping[str, str], bytes], int]:
        def post(url: str, fields: Mapping[str, str], data: bytes) -> int:
            files = {"file": ("upload.bin", data, "application/octet-stream")}
            return httpx.post(url, data=dict(fields), files=files, timeout=30).status_code

        return post

    @pytest.fixture
    def fetch(self) -> Callable[[str], tuple[int, Mapping[str, str], bytes]]:
        def get(url: str) -> tuple[int, Mapping[str, str], bytes]:
            response = httpx.get(url, timeout=30)
            return response.status_code, dict(response.headers), response.content

        return get

    def test_a_presigned_get_is_sigv4_signed_over_its_file_name(self, blob_store: S3BlobStore) -> None:
        """moto serves presigned URLs without checking them: check that S3 would have the name signed."""
        blob_store.put("contract-sig/a.pdf", b"x", content_type="application/pdf")
        link = blob_store.presigned_get("contract-sig/a.pdf", expires_in=300, filename="Q3 report.pdf")
        query = parse_qs(urlsplit(link.url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["300"]
        assert query["X-Amz-Signature"] and "Q3 report.pdf" in query["response-content-disposition"][0]


# --------------------------------------------------------------------------- Bus


class SqsBusWiring:
    """One SNS topic; per subscriber a raw-delivery SQS subscription with a filter policy and a DLQ."""

    max_receives = 3  # stacks.messaging.MAX_RECEIVES

    def __init__(self, session: boto3.Session) -> None:
        self.sns = session.client("sns")
        self.sqs = session.client("sqs")
        self.topic_arn: str = self.sns.create_topic(Name="quarry-bus")["TopicArn"]
        self.bus = SnsBus(self.topic_arn, client=self.sns)
        self._queues: dict[str, tuple[str, str, Handler]] = {}  # name -> (url, dead-letter url, handler)

    def _arn(self, url: str) -> str:
        arn: str = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return arn

    def subscribe(self, queue: str, filter_policy: Mapping[str, Sequence[str]], handler: Handler) -> None:
        dead_letter_url: str = self.sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
        redrive = {"deadLetterTargetArn": self._arn(dead_letter_url), "maxReceiveCount": str(self.max_receives)}
        url: str = self.sqs.create_queue(QueueName=queue, Attributes={"RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
        self.sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=self._arn(url),
            Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(dict(filter_policy))},
        )
        self._queues[queue] = (url, dead_letter_url, handler)

    def _receive(self, url: str, *, visibility_timeout: int | None = None) -> list[dict[str, Any]]:
        extra = {} if visibility_timeout is None else {"VisibilityTimeout": visibility_timeout}
        response = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            AttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
            **extra,
        )
        return cast(list[dict[str, Any]], response.get("Messages", []))

    def settle(self) -> None:
        for _ in range(1000):
            delivered = False
            for url, _dead_letters, handler in self._queues.values():
                for message in self._receive(url, visibility_timeout=0):
                    delivered = True
                    count = int(message["Attributes"]["ApproximateReceiveCount"])
                    try:
                        handler(Delivery(parse_bus_record(message), count))
                    except Exception:  # a failed delivery: the message stays for the next receive
                        continue
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if not delivered:
                return
        raise AssertionError("the queues never drained")

    def dead_letters(self, queue: str) -> list[BusRecord]:
        _url, dead_letter_url, _handler = self._queues[queue]
        return [parse_bus_record(message) for message in self._receive(dead_letter_url)]


class TestSnsBus(BusContract):
    @pytest.fixture
    def bus_wiring(self, session: boto3.Session) -> SqsBusWiring:
        return SqsBusWiring(session)


# --------------------------------------------------------------------------- Notifier

ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"


class ManagementApi:
    """API Gateway's ``@connections`` API for one stage, answering botocore's requests at ``before-send``."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.frames: dict[str, list[bytes]] = {}
        self.deleted: set[str] = set()

    def attach(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        # first: ahead of moto's own handler (moto's backend would create any connection it is asked about)
        client.meta.events.register_first(f"before-send.{service}", self._answer)

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        path = urlsplit(request.url).path
        assert path.startswith("/prod/@connections/"), path
        connection_id = unquote(path.removeprefix("/prod/@connections/"))
        if connection_id not in self.live:
            status, headers, body = json_error(410, "GoneException", f"connection {connection_id} is gone")
            return AWSResponse(request.url, status, cast(Any, headers), RawBody(body))
        if request.method == "POST":  # PostToConnection
            self.frames.setdefault(connection_id, []).append(bytes(request.body))
            return AWSResponse(request.url, 200, cast(Any, {}), RawBody(b""))
        assert request.method == "DELETE", request.method  # DeleteConnection
        self.live.discard(connection_id)
        self.deleted.add(connection_id)
        return AWSResponse(request.url, 204, cast(Any, {}), RawBody(b""))


class ApiGatewayWiring:
    """Clients of a WebSocket API: ``$connect`` lists them in DynamoDB; they may vanish without ``$disconnect``."""

    def __init__(self, api: ManagementApi, connections: DynamoConnections, client: Any) -> None:
        self._api = api
        self._connections = connections
        self.notifier = ApiGatewayNotifier(ENDPOINT, client=client, connections=connections)

    def connect(self) -> str:
        connection_id = f"{new_id()[:12]}="  # API Gateway's ids end in '='
        self._api.live.add(connection_id)
        self._connections.add(connection_id, "alice")
        return connection_id

    def received(self, connection_id: str, count: int) -> list[dict[str, Any]]:
        frames = self._api.frames.get(connection_id, [])
        assert len(frames) >= count, f"{connection_id} got {len(frames)} frames, not {count}"
        return [json.loads(frame) for frame in frames[:count]]

    def drop(self, connection_id: str) -> None:
        self._api.live.discard(connection_id)  # no $disconnect: API Gateway runs it on a best-effort basis

    def close_seen(self, connection_id: str) -> tuple[int | None, str | None]:
        assert connection_id in self._api.deleted, f"{connection_id} was not closed"
        return None, None  # DeleteConnection: API Gateway sends its own close frame

    def listed(self, connection_id: str) -> bool:
        return self._connections.get(connection_id) is not None


class TestApiGatewayNotifier(NotifierContract):
    @pytest.fixture
    def notifier_wiring(self, dynamodb: Any) -> Iterator[ApiGatewayWiring]:
        client = boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name=REGION)
        api = ManagementApi()
        api.attach(client)
        yield ApiGatewayWiring(api, DynamoConnections(TABLE_PREFIX, client=dynamodb), client)
