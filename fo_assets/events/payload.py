"""F&O Business Events: what arrives, and which records it asks us to re-read.

F&O delivers the same event payload through many endpoints: an HTTPS post (one object), a batch (a
JSON array), Event Grid (an envelope whose ``data`` is the payload, as an object or as a JSON string),
CloudEvents (``specversion``/``type``/``data``), or a Service Bus message body. ``intake`` turns any of
them into ``BusinessEvent``s; ``targets`` maps an event through the catalog to the records to pull.

Payloads are stubs, so an event is only a pointer: the targeted pull reads the record back over OData.
Events can repeat and arrive out of order, so everything downstream deduplicates on ``event_id``.

Whatever the sender is, a delivery is checked whole before anything of it is kept: a post is stored
entirely or refused entirely (all or nothing), and every refusal names the event and the field. The
bounds below are what lets every later step (both inbox databases, Python's datetime at any time zone,
the OData filter, a log line) take an accepted event without failing.

Pure: no I/O, nothing read from the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
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

_DOTNET_DATE = re.compile(r"^/Date\((-?\d{1,20})([+-]\d{4})?\)/$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# An F&O payload is flat (an Event Grid envelope and ParentContextRecordSubjects add two levels); deeper
# nesting is only ever an attack on the parser.
MAX_DEPTH = 32
# Event Grid batches at most this many (its "max events per batch" must not be set higher); F&O's own
# HTTPS endpoint posts one event at a time.
MAX_EVENTS_PER_DELIVERY = 500
# ControlNumber is an Int64 in F&O, a bigint in the PostgreSQL inbox and an INTEGER in SQLite.
_INT64 = range(-(2**63), 2**63)
# Wide enough for any real event (Business Events exist since 2019; a resend keeps the original time),
# far enough from year 1 and 9999 that the instant exists at every UTC offset and in both inboxes.
EVENT_TIME_RANGE = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
# A catalog id is an X++ class name; a dataAreaId is at most four letters or digits.
_BUSINESS_EVENT_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_LEGAL_ENTITY = re.compile(r"[A-Za-z0-9]{1,4}")
# F&O reads '*' inside an OData eq literal as a wildcard and has no escape for it: a lookup value with
# one would name every record it matches, not one.
WILDCARDS = "*"
# A value quoted in an error message or a log line is cut here: the message is for a person.
_SHOWN = 80


class EventFormatError(ValueError):
    """The body is JSON but not a Business Event delivery we understand (HTTP 422, dead-letter)."""


class MalformedBodyError(EventFormatError):
    """The body is not JSON at all (HTTP 400)."""


class TooManyEventsError(EventFormatError):
    """More events in one delivery than ``intake`` takes at once (HTTP 413)."""


@dataclass(frozen=True)
class BusinessEvent:
    """A Business Event as fo-assets keeps it: its id, catalog id, company and the record it names."""
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
    """Parse a JSON body with exact decimals; a body nested too deep is an EventFormatError."""
    try:
        return json.loads(body, parse_float=Decimal)
    except RecursionError:
        raise EventFormatError(f"body nests deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBodyError(f"body is not valid JSON: {_cut(str(exc), _SHOWN)}") from None


def dumps(value: Any) -> str:
    """JSON text that keeps Decimals exact (the standard encoder only writes floats)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def stored_form(event: BusinessEvent) -> tuple:
    """The event as the inbox stores it: EventId, BusinessEventId, legal entity, ControlNumber, EventTime
    (ISO text), payload (``dumps``). Plain strings and numbers: cheap to hand from one process to another."""
    return (event.event_id, event.business_event_id, event.legal_entity, event.control_number,
            event.event_time.isoformat(), dumps(event.payload))


def intake(body: bytes | str, *, max_events: int = MAX_EVENTS_PER_DELIVERY) -> Delivery:
    """Decode and validate one delivery, all or nothing; every event must also map cleanly onto the catalog."""
    doc = loads(body)
    check_text(doc)
    code = subscription_validation_code(doc)
    if code is not None:
        return Delivery(validation_code=code)
    items = doc if isinstance(doc, list) else [doc]
    if len(items) > max_events:
        raise TooManyEventsError(f"{len(items)} events in one delivery; at most {max_events} are taken at once")
    events: list[BusinessEvent] = []
    ignored = 0
    for index, item in enumerate(items):
        payload = _unwrap(item, index)
        if is_test_message(payload):
            ignored += 1
            continue
        event = parse_payload(payload)
        targets(event)  # a payload missing a lookup field is refused at the door, not in the sensor
        refuse_wildcards(event)
        events.append(event)
    return Delivery(events=tuple(events), ignored=ignored)


def check_text(doc: Any, where: str = "") -> None:
    """Refuse nesting past ``MAX_DEPTH``, NUL characters and unpaired surrogates, naming the field.

    Python's parser accepts all three, but no inbox can store them (PostgreSQL text has no NUL, SQLite and
    every log handler need valid UTF-8) and no F&O payload carries them. One pass over the document, paths
    built only for containers and for the value refused (a 1 MiB array is a million leaves).
    """
    if isinstance(doc, str):
        _check_string(doc, where or "body")
    pending: list[tuple[Any, str, int]] = [(doc, where, 1)] if isinstance(doc, (dict, list)) else []
    while pending:
        value, path, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise EventFormatError(f"body nests deeper than {MAX_DEPTH} levels (at {shown(path)})")
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in pairs:
            if isinstance(key, str) and not _plain(key):
                _check_string(key, f"{_join(path, key)} (its name)")
            if isinstance(child, str):
                if not _plain(child):
                    _check_string(child, _join(path, key))
            elif isinstance(child, (dict, list)):
                pending.append((child, _join(path, key), depth + 1))


def _plain(text: str) -> bool:
    """The common case, decided in C: ASCII without NUL."""
    return text.isascii() and "\x00" not in text


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _check_string(value: str, path: str) -> None:
    if "\x00" in value:
        raise EventFormatError(f"field {shown(path)} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise EventFormatError(f"field {shown(path)} contains an unpaired surrogate (not valid Unicode)") from None


def subscription_validation_code(doc: Any) -> str | None:
    """Event Grid's handshake code, only when the delivery is nothing but the handshake."""
    items = doc if isinstance(doc, list) else [doc]
    handshakes = [i for i in items if isinstance(i, dict) and str(i.get("eventType", "")).lower() == VALIDATION_EVENT_TYPE]
    if not handshakes:
        return None
    if len(items) != 1:
        # Event Grid proves an endpoint with a post of its own; an answer here would drop the other events.
        raise EventFormatError(f"an Event Grid subscription validation event arrived with {len(items) - 1} other "
                               "element(s); the handshake is answered only when it comes alone")
    data = handshakes[0].get("data")
    code = data.get("validationCode") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        raise EventFormatError("Event Grid validation event without data.validationCode")
    return code


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
    envelope_id = _label(item.get("id", f"element {index}"))
    if isinstance(data, str):  # Event Grid endpoints may carry the payload as a JSON string
        try:
            data = loads(data)
        except MalformedBodyError as exc:
            raise EventFormatError(f"event {envelope_id}: data is a string but not JSON ({exc})") from None
        check_text(data, f"[{index}].data")
    if not isinstance(data, dict):
        raise EventFormatError(f"event {envelope_id}: data is {type(data).__name__}, expected an F&O payload")
    return data


def parse_payload(payload: dict[str, Any]) -> BusinessEvent:
    """The BusinessEvent of one F&O payload; an EventFormatError names the event and the field."""
    raw_id = payload.get("EventId")
    label = _label(raw_id) if isinstance(raw_id, str) and raw_id else "<no EventId>"

    def fail(name: str, problem: str) -> EventFormatError:
        return EventFormatError(f"event {label}: field {name} {problem}")

    try:
        event_id = str(uuid.UUID(str(raw_id))).upper()
    except ValueError:
        raise fail("EventId", f"must be a GUID, got {shown(raw_id)}") from None
    business_event_id = payload.get("BusinessEventId")
    if not isinstance(business_event_id, str) or not business_event_id.strip():
        raise fail("BusinessEventId", "is missing or empty")
    if not _BUSINESS_EVENT_ID.fullmatch(business_event_id.strip()):
        raise fail("BusinessEventId", f"must be a catalog id (letters, digits, _ . -), got {shown(business_event_id)}")
    legal_entity = payload.get("BusinessEventLegalEntity") or payload.get("LegalEntity") or None
    if legal_entity is not None and not isinstance(legal_entity, str):
        raise fail("LegalEntity", f"must be a string, got {shown(legal_entity)}")
    if legal_entity is not None and legal_entity.strip() and not _LEGAL_ENTITY.fullmatch(legal_entity.strip()):
        raise fail("LegalEntity", f"must be a dataAreaId (1 to 4 letters or digits), got {shown(legal_entity)}")
    control_number = payload.get("ControlNumber")
    if isinstance(control_number, str) and re.fullmatch(r"-?\d{1,20}", control_number):
        control_number = int(control_number)
    if control_number is not None and (type(control_number) is not int):
        raise fail("ControlNumber", f"must be an integer, got {shown(control_number)}")
    if control_number is not None and control_number not in _INT64:
        raise fail("ControlNumber", f"is outside the Int64 range F&O uses, got {shown(control_number)}")
    time_field = "EventTimeIso8601" if payload.get("EventTimeIso8601") else "EventTime"
    raw_time = payload.get(time_field)
    low, high = EVENT_TIME_RANGE
    try:
        event_time = _parse_time(raw_time)
    except OverflowError:  # an instant Python cannot even hold
        raise fail(time_field, f"is outside {low:%Y-%m-%d} to {high:%Y-%m-%d}: {shown(raw_time)}") from None
    if event_time is None:
        raise fail(time_field, f"is missing or not a date-time: {shown(raw_time)}")
    if not low <= event_time < high:
        raise fail(time_field, f"is outside {low:%Y-%m-%d} to {high:%Y-%m-%d}: {shown(raw_time)}")
    return BusinessEvent(
        event_id=event_id,
        business_event_id=business_event_id.strip(),
        legal_entity=(legal_entity or "").strip().lower() or None,
        control_number=control_number,
        event_time=event_time,
        payload=payload,
    )


def _parse_time(value: Any) -> dt.datetime | None:
    """``/Date(ms)/`` (UTC milliseconds, any offset suffix is display-only) or ISO 8601; None if neither.

    Raises OverflowError for an instant Python's datetime cannot hold (year 1 at a positive offset).
    """
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
                raise EventFormatError(f"{context}: payload field {payload_field} is not a scalar: {shown(value)}")
            lookup.append((entity_field, value))
        if spec.company_field and event.legal_entity is None:
            raise EventFormatError(
                f"{context}: no LegalEntity/BusinessEventLegalEntity, but {spec.entity_set} is per company"
            )
        company = event.legal_entity if spec.company_field else None
        found.append(Target(spec.entity_set, company, tuple(lookup)))
    return found


def refuse_wildcards(event: BusinessEvent) -> None:
    """Refuse an event whose lookup values F&O would read as a pattern (``WILDCARDS``) rather than a value."""
    for spec, binding in STANDARD.bindings_for_event(event.business_event_id):
        for payload_field in dict.fromkeys(p for naming in binding.namings for p, _ in naming):
            value = event.payload.get(payload_field)
            if isinstance(value, str) and any(c in value for c in WILDCARDS):
                raise EventFormatError(
                    f"event {event.event_id} ({event.business_event_id}): payload field {payload_field} is "
                    f"{shown(value)}; F&O reads {WILDCARDS!r} in a lookup of {spec.entity_set} as a wildcard "
                    "(it would name every record it matches), so the event is refused"
                )


def collapse(items: list[Target]) -> list[Target]:
    """Each target once, first-seen order (a burst of events often names the same record)."""
    return list(dict.fromkeys(items))


def shown(value: Any, limit: int = _SHOWN) -> str:
    """``value`` quoted for a message: its repr (every non-printable character escaped), cut at ``limit``."""
    return _cut(repr(value), limit)


def _label(value: Any) -> str:
    """An event's own id as it names the event in a message: as sent if it is plain text, else ``shown``."""
    return value if isinstance(value, str) and value.isprintable() and len(value) <= _SHOWN else shown(value)


def loggable(text: str, limit: int = 2_000) -> str:
    """A log argument made safe: every character that could end a line, move the cursor, reorder or hide
    text (what Python calls non-printable: controls, format characters, line and paragraph separators)
    escaped, and the whole cut at ``limit``."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...({len(text) - limit} more characters)"


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class LoggableArgs(logging.Filter):
    """Makes every string argument of a record ``loggable``: event fields come from the network."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Make the record's string arguments loggable; always lets it through."""
        if isinstance(record.args, tuple):
            record.args = tuple(loggable(a) if isinstance(a, str) else a for a in record.args)
        return True
