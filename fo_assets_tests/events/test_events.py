"""Parsing deliveries into Business Events, and mapping events onto catalog targets."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal

import pytest

from fo_assets.events.payload import (
    EventFormatError,
    MalformedBodyError,
    Target,
    TooManyEventsError,
    collapse,
    dumps,
    intake,
    is_test_message,
    loads,
    loggable,
    parse_payload,
    shown,
    subscription_validation_code,
    targets,
)
from fo_assets_tests.support.events import (
    REAL_PO_CONFIRMED,
    TEST_MESSAGE,
    VALIDATION_EVENT,
    event_grid,
    invoice_posted,
    po_confirmed,
)

UTC = dt.timezone.utc


def test_real_payload_from_the_reference() -> None:
    (event,) = intake(REAL_PO_CONFIRMED.encode()).events
    assert event.event_id == "55A81094-A14E-46A6-A12C-07ED5C5990C6"
    assert event.business_event_id == "PurchaseOrderConfirmedBusinessEvent"
    assert event.legal_entity == "brmf"
    assert event.control_number == 5637144576
    # 1637246655000 ms after the epoch
    assert event.event_time == dt.datetime(2021, 11, 18, 14, 44, 15, tzinfo=UTC)
    # The amount stays the decimal F&O wrote, not a float approximation.
    assert event.payload["TransactionCurrencyAmount"] == Decimal("90055.6")
    assert targets(event) == [Target("PurchaseOrderHeadersV2", "brmf", (("PurchaseOrderNumber", "BRMF-000018"),))]


def test_newer_payload_normalises_ids_company_and_prefers_the_iso_time() -> None:
    payload = invoice_posted(event_id="0f8fad5b-d9cb-469f-a165-70867728950e")
    event = parse_payload(payload)
    assert event.event_id == "0F8FAD5B-D9CB-469F-A165-70867728950E"
    assert event.legal_entity == "usmf"  # BusinessEventLegalEntity "USMF"
    # EventTimeIso8601 carries sub-millisecond precision; /Date()/ would be 15:06:40.000.
    assert event.event_time == dt.datetime(2025, 6, 15, 15, 6, 40, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("/Date(946684800000)/", dt.datetime(2000, 1, 1, tzinfo=UTC)),
        ("/Date(1637193600000)/", dt.datetime(2021, 11, 18, tzinfo=UTC)),
        # An offset suffix only says how to display the instant; the milliseconds are UTC.
        ("/Date(1637193600000+0100)/", dt.datetime(2021, 11, 18, tzinfo=UTC)),
        ("2021-11-18T01:00:00+01:00", dt.datetime(2021, 11, 18, tzinfo=UTC)),
    ],
)
def test_event_time_formats(raw: str, expected: dt.datetime) -> None:
    event = parse_payload({**po_confirmed(), "EventTime": raw})
    assert event.event_time == expected
    assert event.event_time.tzinfo is not None


def test_json_array_of_payloads() -> None:
    first, second = po_confirmed("USMF-1"), invoice_posted()
    delivery = intake(json.dumps([first, second]))
    assert [e.event_id for e in delivery.events] == [first["EventId"], second["EventId"].upper()]
    assert delivery.ignored == 0 and delivery.validation_code is None


@pytest.mark.parametrize("data_as_string", [False, True])
def test_event_grid_delivery(data_as_string: bool) -> None:
    payloads = [po_confirmed("USMF-1"), po_confirmed("USMF-2")]
    body = json.dumps([event_grid(p, data_as_string=data_as_string) for p in payloads])
    events = intake(body).events
    assert [e.payload["PurchaseOrderNumber"] for e in events] == ["USMF-1", "USMF-2"]
    assert [e.event_id for e in events] == [p["EventId"] for p in payloads]


def test_event_grid_data_string_keeps_decimals_exact() -> None:
    payload = json.loads(REAL_PO_CONFIRMED)
    envelope = event_grid(payload)
    envelope["data"] = REAL_PO_CONFIRMED  # the original text, not a float round trip
    (event,) = intake(json.dumps([envelope])).events
    assert event.payload["TransactionCurrencyAmount"] == Decimal("90055.6")


def test_cloudevents_envelope() -> None:
    payload = po_confirmed("USMF-9")
    body = {"specversion": "1.0", "type": payload["BusinessEventId"], "source": "fo", "id": "x", "data": payload}
    (event,) = intake(json.dumps(body)).events
    assert event.payload["PurchaseOrderNumber"] == "USMF-9"


def test_endpoint_test_message_is_recognised_and_ignored() -> None:
    assert is_test_message(TEST_MESSAGE)
    assert is_test_message(event_grid(TEST_MESSAGE, data_as_string=True))
    assert not is_test_message(po_confirmed())
    real = po_confirmed()
    delivery = intake(json.dumps([TEST_MESSAGE, real, event_grid(TEST_MESSAGE)]))
    assert [e.event_id for e in delivery.events] == [real["EventId"]]
    assert delivery.ignored == 2


def test_event_grid_subscription_validation() -> None:
    body = [copy.deepcopy(VALIDATION_EVENT)]
    assert intake(json.dumps(body)).validation_code == "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    body[0]["data"] = {}
    with pytest.raises(EventFormatError, match="validationCode"):
        subscription_validation_code(body)


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"EventId": "not-a-guid"}, ["EventId", "not-a-guid"]),
        ({"BusinessEventId": ""}, ["BusinessEventId", "{id}"]),
        ({"EventTime": None}, ["EventTime", "{id}"]),
        ({"EventTime": "yesterday"}, ["EventTime", "yesterday", "{id}"]),
        ({"ControlNumber": "five"}, ["ControlNumber", "{id}"]),
        ({"LegalEntity": 12}, ["LegalEntity", "{id}"]),
    ],
)
def test_invalid_payload_names_field_and_event(change: dict, fragments: list[str]) -> None:
    payload = {**po_confirmed(), **change}
    with pytest.raises(EventFormatError) as caught:
        intake(json.dumps(payload))
    for fragment in fragments:
        assert fragment.format(id=payload["EventId"]) in str(caught.value)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('[1, {"a": 2}]', "element 0 is int"),
        ('"just a string"', "element 0 is str"),
        (json.dumps([{**event_grid(po_confirmed()), "id": "eg-1", "data": "{x"}]), "event eg-1: data is a string"),
        (json.dumps([{**event_grid(po_confirmed()), "id": "eg-2", "data": [1]}]), "event eg-2: data is list"),
    ],
)
def test_malformed_structure(body: str, fragment: str) -> None:
    with pytest.raises(EventFormatError, match=fragment):
        intake(body)


def test_malformed_json_is_its_own_error() -> None:
    with pytest.raises(MalformedBodyError, match="not valid JSON"):
        intake(b'{"BusinessEventId": ')


def test_vendor_invoice_event_targets_the_posted_invoice_by_vendor_and_invoice() -> None:
    # The event's VendorAccount/InvoiceNumber naming: the posted journal's order account and invoice id.
    event = parse_payload(invoice_posted("US-101", "INV-7"))
    assert targets(event) == [
        Target("VendInvoiceJourBiEntities", "usmf", (("OrderAccount", "US-101"), ("InvoiceId", "INV-7")))
    ]
    # The InvoiceAccount/InvoiceId naming is taken first when the payload carries it.
    payload = {**invoice_posted("US-101", "INV-7"), "InvoiceAccount": "US-102", "InvoiceId": "INV-7"}
    assert targets(parse_payload(payload)) == [
        Target("VendInvoiceJourBiEntities", "usmf", (("InvoiceAccount", "US-102"), ("InvoiceId", "INV-7")))
    ]


def test_unknown_event_type_maps_to_nothing_but_is_still_accepted() -> None:
    payload = {**po_confirmed(), "BusinessEventId": "CustomerCreditLimitChangedBusinessEvent"}
    (event,) = intake(json.dumps(payload)).events
    assert targets(event) == []


def test_missing_lookup_field_names_event_type_and_field() -> None:
    payload = invoice_posted()
    del payload["InvoiceNumber"]
    event = parse_payload(payload)
    with pytest.raises(EventFormatError) as caught:
        targets(event)
    message = str(caught.value)
    assert event.event_id in message and "VendorInvoicePostedBusinessEvent" in message
    assert "InvoiceNumber" in message and "VendInvoiceJourBiEntities" in message
    # The receiver refuses such a post instead of storing an event the sensor cannot use.
    with pytest.raises(EventFormatError, match="InvoiceNumber"):
        intake(json.dumps(payload))


def test_company_entity_needs_a_legal_entity() -> None:
    payload = po_confirmed()
    del payload["LegalEntity"]
    event = parse_payload(payload)
    assert event.legal_entity is None
    with pytest.raises(EventFormatError, match="LegalEntity.*PurchaseOrderHeadersV2"):
        targets(event)


def test_collapse_keeps_each_target_once_in_first_seen_order() -> None:
    a = parse_payload(po_confirmed("USMF-1"))
    b = parse_payload(po_confirmed("USMF-2"))
    c = parse_payload(po_confirmed("USMF-1", legal_entity="DEMF"))
    again = parse_payload(po_confirmed("USMF-1"))
    collapsed = collapse([t for e in (a, b, again, c) for t in targets(e)])
    assert [(t.company, t.lookup[0][1]) for t in collapsed] == [
        ("usmf", "USMF-1"),
        ("usmf", "USMF-2"),
        ("demf", "USMF-1"),
    ]


def test_dumps_round_trips_decimals_exactly() -> None:
    value = {"a": Decimal("12345678901234567.123456789"), "b": [Decimal("1E+3"), 2, "x", None, True], "c": {"d": 1.5}}
    assert loads(dumps(value)) == {**value, "c": {"d": Decimal("1.5")}}


def _with_raw(field: str, json_value: str) -> str:
    """A payload whose ``field`` holds JSON text json.dumps would never write (a lone surrogate, a NUL)."""
    return json.dumps({**po_confirmed(), field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', json_value)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("[" * 40 + "]" * 40, "nests deeper than 32 levels"),
        ("[" * 100_000 + "]" * 100_000, "nests deeper than 32 levels"),  # past Python's own recursion limit
        (_with_raw("PurchaseOrderNumber", '"A\\u0000B"'), "'PurchaseOrderNumber' contains a NUL character"),
        (_with_raw("PurchaseOrderNumber", '"A\\ud800"'), "'PurchaseOrderNumber' contains an unpaired surrogate"),
        (_with_raw("Extra", '{"x\\udfff": 1}'), "'Extra.x\\udfff (its name)' contains an unpaired surrogate"),
        (_with_raw("ParentContextRecordSubjects", '[["\\u0000"]]'), "'ParentContextRecordSubjects[0][0]' contains a NUL"),
    ],
)
def test_text_no_store_can_hold_is_refused_naming_the_field(body: str, fragment: str) -> None:
    with pytest.raises(EventFormatError) as caught:
        intake(body)
    assert fragment in str(caught.value)
    assert not isinstance(caught.value, MalformedBodyError)  # it is JSON: 422, not 400


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"ControlNumber": 2**63}, "ControlNumber is outside the Int64 range"),
        ({"ControlNumber": -(2**63) - 1}, "ControlNumber is outside the Int64 range"),
        ({"EventTime": "/Date(99999999999999999)/"}, "EventTime is outside 2000-01-01 to 2100-01-01"),
        ({"EventTime": "/Date(-86400000)/"}, "EventTime is outside"),  # 1969
        ({"EventTimeIso8601": "0001-01-01T00:00:00+01:00"}, "EventTimeIso8601 is outside"),
        ({"EventTimeIso8601": "9999-12-31T23:59:59-01:00"}, "EventTimeIso8601 is outside"),
        ({"EventTimeIso8601": "9999-12-31T23:59:59Z"}, "EventTimeIso8601 is outside"),
        ({"BusinessEventId": "PurchaseOrderConfirmed\nBusinessEvent"}, "BusinessEventId must be a catalog id"),
        ({"LegalEntity": "usmf1"}, "LegalEntity must be a dataAreaId"),
        ({"LegalEntity": "*"}, "LegalEntity must be a dataAreaId"),
        ({"PurchaseOrderNumber": "USMF-*"}, "PurchaseOrderNumber is 'USMF-*'; F&O reads '*'"),
    ],
)
def test_values_outside_what_fo_and_the_inbox_hold_are_refused(change: dict, fragment: str) -> None:
    payload = {**po_confirmed(), **change}
    with pytest.raises(EventFormatError) as caught:
        intake(json.dumps(payload))
    assert fragment in str(caught.value) and payload["EventId"] in str(caught.value)


def test_the_bounds_themselves_are_accepted() -> None:
    payload = {**po_confirmed(), "ControlNumber": 2**63 - 1, "EventTimeIso8601": "2099-12-31T23:59:59.999999Z",
               "LegalEntity": "DAT"}
    (event,) = intake(json.dumps(payload)).events
    assert event.control_number == 2**63 - 1 and event.legal_entity == "dat"
    assert event.event_time == dt.datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_a_handshake_mixed_with_events_is_refused_not_answered() -> None:
    with pytest.raises(EventFormatError, match="validation event arrived with 1 other element"):
        intake(json.dumps([po_confirmed(), VALIDATION_EVENT]))
    assert intake(json.dumps(VALIDATION_EVENT)).validation_code == VALIDATION_EVENT["data"]["validationCode"]


def test_a_delivery_has_at_most_max_events() -> None:
    assert len(intake(json.dumps([po_confirmed() for _ in range(3)]), max_events=3).events) == 3
    with pytest.raises(TooManyEventsError, match="4 events in one delivery; at most 3"):
        intake(json.dumps([po_confirmed() for _ in range(4)]), max_events=3)


def test_messages_and_log_arguments_show_values_escaped_and_cut() -> None:
    assert shown("a\nb\x1b[2J") == "'a\\nb\\x1b[2J'"
    assert shown("x" * 500).endswith("...(422 more characters)") and len(shown("x" * 500)) < 110
    assert loggable("ok: é ü") == "ok: é ü"
    assert loggable("a\nb\x00c\u2028d\u202ee") == "a\\x0ab\\x00c\\u2028d\\u202ee"
    assert loggable("y" * 5000, limit=100) == "y" * 100 + "...(4900 more characters)"
