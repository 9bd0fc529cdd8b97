"""What every ``Bus`` must do, with the queues behind it. Supply a fixture ``bus_wiring`` (a ``BusWiring``).

The port only publishes; what it promises shows on the consuming side, so the wiring also subscribes
queues (an SNS-style filter policy on the message attributes, a dead-letter queue after
``max_receives`` receives) and drives their consumers as the runtime does: a handler that raises has
failed that delivery, and the message comes back with its receive count one higher.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest

from quarry.adapters.sns_sqs import BusRecord
from quarry.errors import InvalidInput, PayloadTooLarge
from quarry.ports import Bus
from quarry.services.chat_stream import CHAT_FILTER


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of a message to a queue's consumer."""

    record: BusRecord
    receive_count: int


Handler = Callable[[Delivery], None]


class BusWiring(Protocol):
    bus: Bus
    max_receives: int

    def subscribe(self, queue: str, filter_policy: Mapping[str, Sequence[str]], handler: Handler) -> None:
        """A queue fed with the published messages the policy selects, consumed by ``handler``."""
        ...

    def settle(self) -> None:
        """Deliver until no queue holds a message (what keeps failing moves to the dead letters)."""
        ...

    def dead_letters(self, queue: str) -> list[BusRecord]: ...


class Consumer:
    """Records what a queue delivered; fails the first ``failures`` deliveries of each message."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.deliveries: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        if delivery.receive_count <= self.failures:
            raise RuntimeError(f"consumer failed receive {delivery.receive_count}")

    def bodies(self) -> list[dict[str, Any]]:
        return [d.record.body for d in self.deliveries]

    def numbers(self) -> set[int]:
        return {int(d.record.body["n"]) for d in self.deliveries}


class BusContract:
    def test_is_a_bus(self, bus_wiring: BusWiring) -> None:
        assert isinstance(bus_wiring.bus, Bus)

    def test_a_published_message_arrives_with_its_attributes(self, bus_wiring: BusWiring) -> None:
        chat = Consumer()
        bus_wiring.subscribe("chat", CHAT_FILTER, chat)
        message = {"session_id": "s1", "text": "Grüße ✓", "top_k": 5, "nested": {"ids": [1, 2]}, "flag": None}

        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # sent as ISO 8601

        bus_wiring.bus.publish("chat.in", {**message, "at": at}, attributes={"direction": "in"})
        bus_wiring.settle()

        assert chat.deliveries, "at least once"
        first = chat.deliveries[0]
        assert first.receive_count == 1
        assert first.record.body == {**message, "at": "2026-01-02T03:04:05+00:00"}
        assert first.record.topic == "chat.in"
        assert first.record.attributes == {"topic": "chat.in", "direction": "in"}
        assert first.record.message_id
        assert all(d.record.body == first.record.body for d in chat.deliveries)  # redeliveries are the same message

    def test_filter_attributes_route_messages(self, bus_wiring: BusWiring) -> None:
        chat, audit, status = Consumer(), Consumer(), Consumer()
        bus_wiring.subscribe("chat", CHAT_FILTER, chat)
        bus_wiring.subscribe("audit", {"topic": ["chat.in", "document.status"]}, audit)
        bus_wiring.subscribe("status", {"topic": ["document.status"]}, status)

        bus_wiring.bus.publish("chat.in", {"n": 1}, attributes={"direction": "in"})
        bus_wiring.bus.publish("chat.in", {"n": 2}, attributes={"direction": "out"})
        bus_wiring.bus.publish("chat.in", {"n": 3})  # no direction: the chat filter needs one
        bus_wiring.bus.publish("document.status", {"n": 4}, attributes={"direction": "in"})
        bus_wiring.bus.publish("nobody.listens", {"n": 5}, attributes={"direction": "in"})
        bus_wiring.settle()

        assert chat.numbers() == {1}
        assert audit.numbers() == {1, 2, 3, 4}
        assert status.numbers() == {4}

    def test_the_topic_attribute_is_always_the_topic_published_to(self, bus_wiring: BusWiring) -> None:
        chat, status = Consumer(), Consumer()
        bus_wiring.subscribe("chat", CHAT_FILTER, chat)
        bus_wiring.subscribe("status", {"topic": ["document.status"]}, status)

        bus_wiring.bus.publish("chat.in", {"n": 1}, attributes={"direction": "in", "topic": "document.status"})
        bus_wiring.settle()

        assert chat.numbers() == {1}
        assert chat.deliveries[0].record.topic == "chat.in"
        assert status.deliveries == []

    def test_a_failed_delivery_is_delivered_again(self, bus_wiring: BusWiring) -> None:
        flaky = Consumer(failures=1)
        bus_wiring.subscribe("chat", CHAT_FILTER, flaky)

        bus_wiring.bus.publish("chat.in", {"n": 7}, attributes={"direction": "in"})
        bus_wiring.settle()

        assert [d.receive_count for d in flaky.deliveries] == [1, 2]
        assert flaky.bodies() == [{"n": 7}, {"n": 7}]
        assert bus_wiring.dead_letters("chat") == []

    def test_a_message_that_keeps_failing_ends_in_the_dead_letters(self, bus_wiring: BusWiring) -> None:
        broken, healthy = Consumer(failures=10**6), Consumer()
        bus_wiring.subscribe("chat", CHAT_FILTER, broken)
        bus_wiring.subscribe("audit", {"topic": ["chat.in"]}, healthy)

        bus_wiring.bus.publish("chat.in", {"n": 9, "job": "poison"}, attributes={"direction": "in"})
        bus_wiring.settle()

        assert [d.receive_count for d in broken.deliveries] == list(range(1, bus_wiring.max_receives + 1))
        [letter] = bus_wiring.dead_letters("chat")
        assert letter.body == {"n": 9, "job": "poison"}
        assert letter.topic == "chat.in"
        assert [d.receive_count for d in healthy.deliveries] == [1]  # the other subscription is not affected
        assert bus_wiring.dead_letters("audit") == []

    def test_every_message_of_a_burst_arrives(self, bus_wiring: BusWiring) -> None:
        chat = Consumer()
        bus_wiring.subscribe("chat", CHAT_FILTER, chat)

        for n in range(25):
            bus_wiring.bus.publish("chat.in", {"n": n}, attributes={"direction": "in"})
        bus_wiring.settle()

        assert chat.numbers() == set(range(25))

    @pytest.mark.parametrize(
        ("topic", "message", "attributes", "error"),
        [
            ("", {"n": 1}, None, InvalidInput),
            ("chat.in", {"value": object()}, None, InvalidInput),
            ("chat.in", {"n": 1}, {"direction": ""}, InvalidInput),
            ("chat.in", {"n": 1}, {f"a{i}": "x" for i in range(10)}, InvalidInput),  # 11 with topic
            ("chat.in", {"text": "x" * (256 * 1024)}, None, PayloadTooLarge),
        ],
    )
    def test_a_message_the_bus_cannot_carry_is_refused(
        self,
        bus_wiring: BusWiring,
        topic: str,
        message: dict[str, Any],
        attributes: dict[str, str] | None,
        error: type[Exception],
    ) -> None:
        chat = Consumer()
        bus_wiring.subscribe("chat", {"topic": ["chat.in"]}, chat)

        with pytest.raises(error):
            bus_wiring.bus.publish(topic, message, attributes=attributes)
        bus_wiring.settle()

        assert chat.deliveries == []
