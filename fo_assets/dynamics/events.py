"""F&O Business Events: what arrives, and which records it asks us to re-read.

F&O delivers the same event payload through many endpoints: an HTTPS post (one object), a batch (a
JSON array), Event Grid (an envelope whose ``data`` is the payload, as an object or as a JSON string),
CloudEvents (``specversion``/``type``/``data``), or a Service Bus message body. ``intake`` turns any of
them into ``BusinessEvent``s; ``targets`` maps an event through the catalog to the records to pull.

Payloads are stubs, so an event is only a pointer: the targeted pull reads the record back over OData.
Events can repeat and arrive out of order, so everything downstream deduplicates on ``event_id``.

Pure: no I/O, nothing read from the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fo_assets.catalog import STANDARD

VALIDATION_EVENT_TYPE = "microsoft.eventgrid.subscriptionvalidationevent"

# Activating an endpoint makes F&O send one test message. Seen in the field (integrations that
# filter it out) as BusinessEventId "BusinessEventsTestEndpointContract" with an EventId, a
# BusinessEventLegalEntity, ControlNumber = Int64.MinValue and no EventTime. We match any
# BusinessEventId (or Event Grid eventType) containing "TestEndpoint", case-insensitively, so a renamed
# contract class still matches, and never require the fields the test message lacks.
_TEST_MARKER = "testendpoint"

_DOTNET_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class EventFormatError(ValueError):
    """The body is JSON but not a Business Event delivery we understand (HTTP 422, dead-letter)."""


class MalformedBodyError(EventFormatError):
    """The body is not JSON at all (HTTP 400)."""


@dataclass(frozen=True)
class BusinessEvent:
    event_id: str  # GUID, upper-case: the deduplication key
    business_event_id: str  # the catalog id, e.g. PurchaseOrderConfirmedBusinessEvent
    legal_entity: str | None  # lower-case dataAreaId
    control_number: int | None
    event_time: dt.datetime  # aware, UTC
    # The whole F&O payload, numbers with a fraction as Decimal (never through float).
    payload: dict[str, Any] = field(hash=False, repr=False)


@dataclass(frozen=True)
class Target:
    """Records of one entity in one company (None: shared entity) whose fields equal ``lookup``."""

    entity_set: str
    company: str | None
    lookup: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Delivery:
    """What one post or message carried."""

    events: tuple[BusinessEvent, ...] = ()
    ignored: int = 0  # endpoint test messages
    validation_code: str | None = None  # Event Grid subscription validation handshake


def loads(body: bytes | str) -> Any:
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBodyError(f"body is not valid JSON: {exc}") from None


def dumps(value: Any) -> str:
    """JSON text that keeps Decimals exact (the standard encoder only writes floats)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def intake(body: bytes | str) -> Delivery:
    """Decode and validate one delivery; every event must also map cleanly onto the catalog."""
    doc = loads(body)
    code = subscription_validation_code(doc)
    if code is not None:
        return Delivery(validation_code=code)
    items = doc if isinstance(doc, list) else [doc]
    events: list[BusinessEvent] = []
    ignored = 0
    for index, item in enumerate(items):
        payload = _unwrap(item, index)
        if is_test_message(payload):
            ignored += 1
            continue
        event = parse_payload(payload)
        targets(event)  # a payload missing a lookup field is refused at the door, not in the sensor
        events.append(event)
    return Delivery(events=tuple(events), ignored=ignored)


def subscription_validation_code(doc: Any) -> str | None:
    for item in doc if isinstance(doc, list) else [doc]:
        if isinstance(item, dict) and str(item.get("eventType", "")).lower() == VALIDATION_EVENT_TYPE:
            data = item.get("data")
            code = data.get("validationCode") if isinstance(data, dict) else None
            if not isinstance(code, str) or not code:
                raise EventFormatError("Event Grid validation event without data.validationCode")
            return code
    return None


def is_test_message(item: Any) -> bool:
    """The message F&O sends when an endpoint is activated (bare payload or Event Grid envelope)."""
    if not isinstance(item, dict):
        return False
    names = (item.get("BusinessEventId"), item.get("eventType"), item.get("type"))
    return any(isinstance(n, str) and _TEST_MARKER in n.lower() for n in names)


def _unwrap(item: Any, index: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise EventFormatError(f"element {index} is {type(item).__name__}, expected a JSON object")
    is_envelope = "data" in item and ("eventType" in item or "specversion" in item)
    if not is_envelope or is_test_message(item):
        return item
    data = item["data"]
    envelope_id = item.get("id", f"element {index}")
    if isinstance(data, str):  # Event Grid endpoints may carry the payload as a JSON string
        try:
            data = loads(data)
        except MalformedBodyError as exc:
            raise EventFormatError(f"event {envelope_id}: data is a string but not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EventFormatError(f"event {envelope_id}: data is {type(data).__name__}, expected an F&O payload")
    return data


def parse_payload(payload: dict[str, Any]) -> BusinessEvent:
    raw_id = payload.get("EventId")
    label = raw_id if isinstance(raw_id, str) and raw_id else "<no EventId>"

    def fail(name: str, problem: str) -> EventFormatError:
        return EventFormatError(f"event {label}: field {name} {problem}")

    try:
        event_id = str(uuid.UUID(str(raw_id))).upper()
    except ValueError:
        raise fail("EventId", f"must be a GUID, got {raw_id!r}") from None
    business_event_id = payload.get("BusinessEventId")
    if not isinstance(business_event_id, str) or not business_event_id.strip():
        raise fail("BusinessEventId", "is missing or empty")
    legal_entity = payload.get("BusinessEventLegalEntity") or payload.get("LegalEntity") or None
    if legal_entity is not None and not isinstance(legal_entity, str):
        raise fail("LegalEntity", f"must be a string, got {legal_entity!r}")
    control_number = payload.get("ControlNumber")
    if isinstance(control_number, str) and re.fullmatch(r"-?\d+", control_number):
        control_number = int(control_number)
    if control_number is not None and (type(control_number) is not int):
        raise fail("ControlNumber", f"must be an integer, got {control_number!r}")
    time_field = "EventTimeIso8601" if payload.get("EventTimeIso8601") else "EventTime"
    event_time = _parse_time(payload.get(time_field))
    if event_time is None:
        raise fail(time_field, f"is missing or not a date-time: {payload.get(time_field)!r}")
    return BusinessEvent(
        event_id=event_id,
        business_event_id=business_event_id.strip(),
        legal_entity=(legal_entity or "").strip().lower() or None,
        control_number=control_number,
        event_time=event_time,
        payload=payload,
    )


def _parse_time(value: Any) -> dt.datetime | None:
    """``/Date(ms)/`` (UTC milliseconds, any offset suffix is display-only) or ISO 8601."""
    if not isinstance(value, str):
        return None
    match = _DOTNET_DATE.match(value.strip())
    if match:
        return _EPOCH + dt.timedelta(milliseconds=int(match.group(1)))
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # An ISO time without an offset comes from a UTC-only system: read it as UTC.
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def targets(event: BusinessEvent) -> list[Target]:
    """The records an event names, one target per catalog binding; [] for an event no entity binds.

    Only standard entities have bindings (a catalog file adds none). A binding may know several namings of
    the same record: the first whose payload fields are all present is used. Line entities are not listed:
    they follow their headers (``Catalog.children_of``) in the pull.
    """
    found: list[Target] = []
    for spec, binding in STANDARD.bindings_for_event(event.business_event_id):
        context = f"event {event.event_id} ({event.business_event_id})"
        naming = next((n for n in binding.namings if all(event.payload.get(p) not in (None, "") for p, _ in n)), None)
        if naming is None:
            expected = " or ".join("/".join(p for p, _ in n) for n in binding.namings)
            raise EventFormatError(
                f"{context}: the payload names no record of {spec.entity_set}: expected the fields {expected} "
                "(catalog binding)"
            )
        lookup = []
        for payload_field, entity_field in naming:
            value = event.payload[payload_field]
            if not isinstance(value, (str, int, Decimal)):
                raise EventFormatError(f"{context}: payload field {payload_field} is not a scalar: {value!r}")
            lookup.append((entity_field, value))
        if spec.company_field and event.legal_entity is None:
            raise EventFormatError(
                f"{context}: no LegalEntity/BusinessEventLegalEntity, but {spec.entity_set} is per company"
            )
        company = event.legal_entity if spec.company_field else None
        found.append(Target(spec.entity_set, company, tuple(lookup)))
    return found


def collapse(items: list[Target]) -> list[Target]:
    """Each target once, first-seen order (a burst of events often names the same record)."""
    return list(dict.fromkeys(items))
