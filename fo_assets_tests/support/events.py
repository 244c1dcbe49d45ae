"""Business Events test material: payloads as F&O and Event Grid send them, and a real receiver server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from starlette.applications import Starlette

from fo_assets.events.inbox import Inbox, open_inbox
from fo_assets.events.receiver import build_server
from fo_assets.settings import load_settings

# Verbatim from docs/fo-odata.md section 7: a real PurchaseOrderConfirmedBusinessEvent.
REAL_PO_CONFIRMED = (
    '{"BusinessEventId":"PurchaseOrderConfirmedBusinessEvent","ControlNumber":5637144576,'
    '"EventId":"55A81094-A14E-46A6-A12C-07ED5C5990C6","EventTime":"/Date(1637246655000)/",'
    '"LegalEntity":"brmf","MajorVersion":0,"MinorVersion":0,"PurchaseJournal":"BRMF-000018-2",'
    '"PurchaseOrderDate":"/Date(1637193600000)/","PurchaseOrderNumber":"BRMF-000018","PurchaseType":"Purch",'
    '"TransactionCurrencyAmount":90055.6,"TransactionCurrencyCode":"BRL","VendorAccount":"BRMF-000004"}'
)

# The message F&O sends when an endpoint is activated, as integrations in the field filter it.
TEST_MESSAGE = {
    "BusinessEventId": "BusinessEventsTestEndpointContract",
    "BusinessEventLegalEntity": "001",
    "ControlNumber": -9223372036854775808,
    "EventId": "8D1220EB-E514-4E35-844E-E062DEF0C05D",
}

# Event Grid proving a webhook before the first delivery (Microsoft's documented example).
VALIDATION_EVENT = {
    "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
    "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.EventGrid/topics/fo-events",
    "subject": "",
    "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x/validate"},
    "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
    "eventTime": "2018-01-25T22:12:19.4556811Z",
    "metadataVersion": "1",
    "dataVersion": "1",
}

SECRET = "s3cr3t-Events-Key-7d2f-0c1e5a9b4f3d"


def po_confirmed(po: str = "USMF-000042", legal_entity: str = "usmf", event_id: str | None = None) -> dict[str, Any]:
    return {
        "BusinessEventId": "PurchaseOrderConfirmedBusinessEvent",
        "ControlNumber": 5637144600,
        "EventId": event_id or str(uuid.uuid4()).upper(),
        "EventTime": "/Date(1750000000000)/",
        "LegalEntity": legal_entity,
        "MajorVersion": 0,
        "MinorVersion": 0,
        "PurchaseOrderNumber": po,
    }


def invoice_posted(vendor: str = "US-101", invoice: str = "INV-7", event_id: str | None = None) -> dict[str, Any]:
    return {
        "BusinessEventId": "VendorInvoicePostedBusinessEvent",
        "BusinessEventLegalEntity": "USMF",
        "ControlNumber": 5637145000,
        "EventId": event_id or str(uuid.uuid4()),
        "EventTime": "/Date(1750000000000)/",
        "EventTimeIso8601": "2025-06-15T15:06:40.1234567Z",
        "InvoiceNumber": invoice,
        "VendorAccount": vendor,
    }


def event_grid(payload: dict[str, Any], *, data_as_string: bool = False) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "eventType": payload["BusinessEventId"],
        "subject": f"/businessevents/{payload['BusinessEventId']}",
        "eventTime": "2025-06-15T15:06:40Z",
        "data": json.dumps(payload) if data_as_string else payload,
        "dataVersion": "1.0",
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.EventGrid/topics/fo-events",
    }


@contextmanager
def running(app: Starlette, certfile: Path | None = None, keyfile: Path | None = None) -> Iterator[str]:
    """The receiver on a free 127.0.0.1 port, served by the same uvicorn set-up as ``serve``."""
    server = build_server(app, "127.0.0.1", 0, certfile=certfile, keyfile=keyfile, configure_logging=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the receiver did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass(frozen=True)
class Served:
    """A receiver running in a process of its own: its base URL, its pid, and its output lines (stdout and
    stderr; complete once the process stopped)."""

    url: str
    pid: int
    output: list[str]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> str:
        return "".join(self.output)


@contextmanager
def serving_process(command: list[str], env: dict[str, str], umask: int = -1) -> Iterator[Served]:
    """A receiver started by ``command`` in a process of its own, on a port uvicorn picks."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="backslashreplace", umask=umask)
    output: list[str] = []
    started = threading.Event()
    port: list[int] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                port.append(int(found.group(1)))
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(30), "".join(output)
        yield Served(f"http://127.0.0.1:{port[0]}", proc.pid, output)
    finally:
        proc.terminate()
        proc.wait(30)
        reader.join(10)


@dataclass(frozen=True)
class Backend:
    """An inbox named the way an operator names it: by the variables of its environment."""

    env: dict[str, str]

    def open(self) -> Inbox:
        return open_inbox(load_settings(self.env))

    def process_env(self) -> dict[str, str]:
        """For a child process that opens the same inbox with ``open_inbox(load_settings())``."""
        return {**os.environ, **self.env}
