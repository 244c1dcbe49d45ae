"""Azure Service Bus as a Business Events source: the endpoint type most F&O tenants use.

``drain`` moves messages from a peek-lock receiver into the inbox. A message is completed only after
its events are stored, so a crash in between redelivers it and the inbox's EventId deduplication absorbs
the repeat. A message that can never parse is dead-lettered with the reason (retrying cannot fix it);
one we failed to store is abandoned so the broker redelivers it.

azure-servicebus is an optional extra (``fo-assets[servicebus]``): it is imported only when a real
receiver is built, so the rest of the project never needs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from fo_assets.events.inbox import Inbox
from fo_assets.events.payload import EventFormatError, LoggableArgs, intake

log = logging.getLogger(__name__)
# A message's id and the reason it was refused come from whoever sent it: escaped and cut in the log.
log.addFilter(LoggableArgs())

# Service Bus caps the dead-letter reason and description properties at 4096 characters.
_MAX_PROPERTY = 4096
_BATCH = 100


class Receiver(Protocol):
    """The part of ``azure.servicebus.ServiceBusReceiver`` that ``drain`` uses."""

    def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[Any]:
        """Up to ``max_message_count`` messages, waiting at most ``max_wait_time`` seconds."""

    def complete_message(self, message: Any) -> None:
        """Remove the message from the queue."""

    def abandon_message(self, message: Any) -> None:
        """Give the message back to the queue for another delivery."""

    def dead_letter_message(
        self, message: Any, reason: str | None = None, error_description: str | None = None
    ) -> None:
        """Move the message to the dead-letter queue, saying why."""


@contextmanager
def open_receiver(
    connection_string: str, queue_or_topic: str, subscription: str | None = None
) -> Iterator[Receiver]:
    """A peek-lock receiver on a queue, or on a topic subscription when ``subscription`` is given."""
    try:
        from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode
    except ImportError:
        raise RuntimeError(
            "reading Business Events from Service Bus needs the optional extra: "
            "pip install 'fo-assets[servicebus]'"
        ) from None
    # Peek-lock: the broker keeps a message until we settle it, which is what makes drain lossless.
    mode = ServiceBusReceiveMode.PEEK_LOCK
    with ServiceBusClient.from_connection_string(connection_string) as client:
        if subscription:
            receiver = client.get_subscription_receiver(
                topic_name=queue_or_topic, subscription_name=subscription, receive_mode=mode
            )
        else:
            receiver = client.get_queue_receiver(queue_name=queue_or_topic, receive_mode=mode)
        try:
            yield receiver  # the link opens on the first receive, not here
        finally:
            receiver.close()


def message_bytes(message: Any) -> bytes:
    """The body as F&O sent it: the SDK yields a data body as bytes or as an iterable of byte chunks."""
    body = message.body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return b"".join(body)


def drain(receiver: Receiver, inbox: Inbox, max_messages: int = 1_000, max_wait_time: float = 5.0) -> int:
    """Move up to ``max_messages`` messages into the inbox; return how many events were new.

    Stops when a receive waits ``max_wait_time`` seconds without a message. A storage failure abandons
    the message and the rest of its batch, then raises: the inbox is down, the caller must know.
    """
    new = 0
    remaining = max_messages
    while remaining > 0:
        batch = receiver.receive_messages(
            max_message_count=min(remaining, _BATCH), max_wait_time=max_wait_time
        )
        if not batch:
            break
        remaining -= len(batch)
        for index, message in enumerate(batch):
            try:
                delivery = intake(message_bytes(message))
            except EventFormatError as exc:
                log.warning("dead-lettering Service Bus message %s: %s", _message_id(message), str(exc))
                receiver.dead_letter_message(
                    message,
                    reason="not a valid F&O Business Event",
                    error_description=str(exc)[:_MAX_PROPERTY],
                )
                continue
            try:
                new += inbox.append(delivery.events)
            except Exception:
                log.exception("event inbox %s could not store message %s; abandoning it and the rest of its "
                              "batch for redelivery", inbox.location, _message_id(message))
                _abandon_all(receiver, batch[index:])
                raise
            receiver.complete_message(message)
    return new


def _abandon_all(receiver: Receiver, messages: Sequence[Any]) -> None:
    for message in messages:
        try:
            receiver.abandon_message(message)
        except Exception:  # a lost lock also ends in redelivery; the storage error is the one to raise
            log.warning("could not abandon message %s; it returns when its lock expires", _message_id(message))


def _message_id(message: Any) -> str:
    return str(getattr(message, "message_id", None) or "<no message id>")
