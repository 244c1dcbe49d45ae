"""Service Bus drain: settle a message only after its events are stored; poison to dead-letter.

No broker is reachable here, so the receiver is a stand-in with the SDK receiver's interface; message
bodies come as the SDK gives a data body (an iterable of byte chunks).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Iterable

import pytest

from fo_assets.events.inbox import SqliteInbox
from fo_assets.events.servicebus import drain, message_bytes, open_receiver
from fo_assets_tests.support.events import REAL_PO_CONFIRMED, TEST_MESSAGE, invoice_posted, po_confirmed


class Message:
    def __init__(self, message_id: str, body: bytes) -> None:
        self.message_id = message_id
        self._body = body

    @property
    def body(self) -> Iterable[bytes]:
        return iter([self._body[:7], self._body[7:]])

    def __str__(self) -> str:
        return self._body.decode()


class StandInReceiver:
    """Peek-lock semantics: a message is settled once; unsettled or abandoned ones stay on the queue."""

    def __init__(self, messages: list[Message], inbox: SqliteInbox) -> None:
        self.queue = list(messages)
        self.inbox = inbox
        self.completed: list[tuple[str, int]] = []  # (message id, inbox size when completed)
        self.abandoned: list[str] = []
        self.dead: list[tuple[str, str | None, str | None]] = []
        self.settled: set[str] = set()

    def receive_messages(self, max_message_count: int | None = 1, max_wait_time: float | None = None) -> list[Any]:
        batch, self.queue = self.queue[: max_message_count or 1], self.queue[max_message_count or 1 :]
        return batch

    def _settle(self, message: Message) -> None:
        assert message.message_id not in self.settled, f"{message.message_id} settled twice"
        self.settled.add(message.message_id)

    def complete_message(self, message: Message) -> None:
        self._settle(message)
        self.completed.append((message.message_id, self.inbox.count()))

    def abandon_message(self, message: Message) -> None:
        self._settle(message)
        self.abandoned.append(message.message_id)

    def dead_letter_message(
        self, message: Message, reason: str | None = None, error_description: str | None = None
    ) -> None:
        self._settle(message)
        self.dead.append((message.message_id, reason, error_description))


def msg(message_id: str, body: object) -> Message:
    return Message(message_id, body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.fixture
def inbox(tmp_path: Path) -> SqliteInbox:
    return SqliteInbox(tmp_path / "inbox.sqlite3")


def test_messages_are_completed_only_after_their_events_are_stored(inbox: SqliteInbox) -> None:
    first, second = po_confirmed("PO-1"), invoice_posted()
    messages = [
        msg("m1", REAL_PO_CONFIRMED.encode()),
        msg("m2", [first, second]),
        msg("m3", first),  # a redelivery / F&O retry of an event already stored
        msg("m4", TEST_MESSAGE),
    ]
    receiver = StandInReceiver(messages, inbox)
    assert drain(receiver, inbox, max_wait_time=0) == 3
    assert inbox.count() == 3
    # Each completion saw its events already in the inbox.
    assert receiver.completed == [("m1", 1), ("m2", 3), ("m3", 3), ("m4", 3)]
    assert receiver.dead == [] and receiver.abandoned == [] and receiver.queue == []


def test_unparseable_messages_are_dead_lettered_with_the_reason(inbox: SqliteInbox) -> None:
    missing_field = po_confirmed()
    del missing_field["PurchaseOrderNumber"]
    good = po_confirmed("PO-OK")
    messages = [msg("bad-json", b"{oops"), msg("bad-event", missing_field), msg("good", good)]
    receiver = StandInReceiver(messages, inbox)
    assert drain(receiver, inbox, max_wait_time=0) == 1
    assert [m for m, _ in receiver.completed] == ["good"]
    (json_id, json_reason, json_detail), (event_id, _, event_detail) = receiver.dead
    assert (json_id, event_id) == ("bad-json", "bad-event")
    assert json_reason and "not valid JSON" in json_detail
    assert "PurchaseOrderNumber" in event_detail and missing_field["EventId"] in event_detail


def test_a_storage_failure_abandons_the_rest_of_the_batch_and_raises(inbox: SqliteInbox) -> None:
    class BrokenInbox:
        location = inbox.location

        def append(self, events: object) -> int:
            raise sqlite3.OperationalError("disk I/O error")

    messages = [msg("m1", b"{oops"), msg("m2", po_confirmed()), msg("m3", po_confirmed())]
    receiver = StandInReceiver(messages, inbox)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        drain(receiver, BrokenInbox(), max_wait_time=0)  # type: ignore[arg-type]
    assert [m for m, *_ in receiver.dead] == ["m1"]
    assert receiver.abandoned == ["m2", "m3"]
    assert receiver.completed == []


def test_drain_stops_at_max_messages(inbox: SqliteInbox) -> None:
    messages = [msg(f"m{n}", po_confirmed(f"PO-{n}")) for n in range(5)]
    receiver = StandInReceiver(messages, inbox)
    assert drain(receiver, inbox, max_messages=3, max_wait_time=0) == 3
    assert [m for m, _ in receiver.completed] == ["m0", "m1", "m2"]
    assert [m.message_id for m in receiver.queue] == ["m3", "m4"]


def test_body_of_a_real_sdk_message() -> None:
    servicebus = pytest.importorskip("azure.servicebus")
    message = servicebus.ServiceBusMessage(REAL_PO_CONFIRMED)
    assert message_bytes(message) == REAL_PO_CONFIRMED.encode()
    assert str(message) == REAL_PO_CONFIRMED


def test_open_receiver_builds_a_peek_lock_receiver_without_connecting() -> None:
    servicebus = pytest.importorskip("azure.servicebus")
    connection = "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=listen;SharedAccessKey=bm90LWEta2V5"
    with open_receiver(connection, "fo-business-events") as receiver:
        assert receiver.entity_path == "fo-business-events"
        assert receiver._receive_mode == servicebus.ServiceBusReceiveMode.PEEK_LOCK
    with open_receiver(connection, "fo-topic", subscription="fo-assets") as receiver:
        assert receiver.entity_path == "fo-topic/Subscriptions/fo-assets"
        assert receiver._receive_mode == servicebus.ServiceBusReceiveMode.PEEK_LOCK
