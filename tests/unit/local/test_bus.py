"""The local bus keeps SQS semantics: at-least-once, retries, partial failures, dead letters."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from quarry.local.bus import LocalBus


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_published_messages_arrive_in_an_sns_envelope_as_sqs_records(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    bus = LocalBus(dead_letter_dir=tmp_path)
    bus.subscribe("chat", lambda event: seen.append(event), topics=("chat.in",))
    bus.publish("chat.in", {"hello": 1}, attributes={"direction": "in"})
    bus.publish("other.topic", {"ignored": True})
    wait_until(lambda: len(seen) == 1)
    record = seen[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["attributes"]["ApproximateReceiveCount"] == "1"
    envelope = json.loads(record["body"])
    assert envelope["Type"] == "Notification" and json.loads(envelope["Message"]) == {"hello": 1}
    assert envelope["MessageAttributes"]["topic"] == {"Type": "String", "Value": "chat.in"}
    assert envelope["MessageAttributes"]["direction"]["Value"] == "in"
    bus.close()


def test_failures_are_retried_then_dead_lettered_after_three_receives(tmp_path: Path) -> None:
    attempts: list[int] = []

    def failing(event: dict[str, Any]) -> None:
        attempts.append(int(event["Records"][0]["attributes"]["ApproximateReceiveCount"]))
        raise RuntimeError("boom")

    bus = LocalBus(dead_letter_dir=tmp_path, retry_delay=0.01)
    bus.subscribe("q", failing)
    bus.send("q", "payload")
    wait_until(lambda: len(bus.dead_letters()) == 1)
    assert attempts == [1, 2, 3]
    letter = bus.dead_letters()[0]
    assert letter["body"] == "payload" and letter["receives"] == 3 and bus.pending("q") == 0
    bus.close()


def test_a_partial_batch_failure_counts_as_a_failure(tmp_path: Path) -> None:
    calls: list[str] = []

    def reports_failure(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(event["Records"][0]["messageId"])
        if len(calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
        return {"batchItemFailures": []}

    bus = LocalBus(dead_letter_dir=tmp_path, retry_delay=0.01)
    bus.subscribe("q", reports_failure)
    bus.send("q", "x")
    wait_until(lambda: len(calls) == 2 and bus.pending("q") == 0)
    assert calls[0] == calls[1] and bus.dead_letters() == []
    bus.close()


def test_a_message_in_flight_is_invisible_to_other_consumers(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(event: dict[str, Any]) -> None:
        calls.append(event["Records"][0]["messageId"])
        started.set()
        release.wait(5)

    bus = LocalBus(dead_letter_dir=tmp_path, visibility_timeout=30)
    bus.subscribe("q", slow, workers=3)
    bus.send("q", "only once")
    started.wait(5)
    time.sleep(0.2)
    assert len(calls) == 1
    release.set()
    wait_until(lambda: bus.pending("q") == 0)
    assert len(calls) == 1
    bus.close()


def test_quarry_dead_letters_lists_what_the_bus_gave_up_on(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from quarry.cli import app

    bus = LocalBus(dead_letter_dir=tmp_path / "dead-letters", retry_delay=0.01)
    bus.subscribe("chat", lambda event: (_ for _ in ()).throw(RuntimeError("model crashed")))
    bus.send("chat", '{"job": 1}')
    wait_until(lambda: len(bus.dead_letters()) == 1)
    bus.close()
    result = CliRunner().invoke(app, ["dead-letters", "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    [letter] = json.loads(result.output)
    assert letter["queue"] == "chat" and letter["body"] == '{"job": 1}' and letter["receives"] == 3
