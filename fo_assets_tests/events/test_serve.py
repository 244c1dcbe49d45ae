"""``serve`` as the CLI runs it: its own process, uvicorn's own logging, the secret nowhere in the output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from fo_assets.inbox import Inbox
from fo_assets.receiver import SECRET_HEADER
from fo_assets_tests.events.support import REAL_PO_CONFIRMED, SECRET, po_confirmed

_SERVE = (
    "import os, sys\n"
    "from fo_assets.receiver import serve\n"
    "serve(sys.argv[1], os.environ['TEST_EVENTS_SECRET'], '127.0.0.1', 0)\n"
)


def test_serve_logs_every_request_without_the_secret(tmp_path: Path) -> None:
    inbox_path = tmp_path / "events" / "inbox.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(inbox_path)],
        env={**os.environ, "TEST_EVENTS_SECRET": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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
        with httpx.Client(base_url=f"http://127.0.0.1:{port[0]}") as client:
            assert client.post("/events", params={"code": SECRET}, content=REAL_PO_CONFIRMED).status_code == 202
            assert client.post("/events", params={"code": f"{SECRET}-wrong"}, content=b"{}").status_code == 401
            not_json = client.post("/events", headers={SECRET_HEADER: SECRET}, content=str(po_confirmed()))
            assert not_json.status_code == 400  # a Python repr is not JSON
    finally:
        proc.terminate()
        proc.wait(30)
        reader.join(10)
    log = "".join(output)
    assert SECRET not in log
    assert log.count('"POST /events?code=*** HTTP/1.1" 202') == 1, log
    assert log.count('"POST /events?code=*** HTTP/1.1" 401') == 1, log
    assert '"POST /events HTTP/1.1" 400' in log, log
    assert "stored 1 new of 1 events" in log, log  # the receiver's own lines reach the same output
    assert Inbox(inbox_path).count() == 1
