"""``serve`` as the CLI runs it: its own process, uvicorn's own logging, the secret nowhere in the output."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx

from fo_assets.events.inbox import SqliteInbox
from fo_assets.events.receiver import SECRET_HEADER
from fo_assets_tests.support.events import REAL_PO_CONFIRMED, SECRET, po_confirmed, serving_process

_SERVE = (
    "import os, sys\n"
    "from fo_assets.events.inbox import SqliteInbox\n"
    "from fo_assets.events.receiver import serve\n"
    "serve(SqliteInbox(sys.argv[1]), os.environ['TEST_EVENTS_SECRET'], '127.0.0.1', 0)\n"
)


def test_serve_logs_every_request_without_the_secret(tmp_path: Path) -> None:
    inbox_path = tmp_path / "events" / "inbox.sqlite3"
    command = [sys.executable, "-c", _SERVE, str(inbox_path)]
    with serving_process(command, {**os.environ, "TEST_EVENTS_SECRET": SECRET}) as served:
        with httpx.Client(base_url=served.url) as client:
            assert client.post("/events", params={"code": SECRET}, content=REAL_PO_CONFIRMED).status_code == 202
            assert client.post("/events", params={"code": f"{SECRET}-wrong"}, content=b"{}").status_code == 401
            not_json = client.post("/events", headers={SECRET_HEADER: SECRET}, content=str(po_confirmed()))
            assert not_json.status_code == 400  # a Python repr is not JSON
    log = served.log
    assert SECRET not in log
    assert log.count('"POST /events?code=*** HTTP/1.1" 202') == 1, log
    assert log.count('"POST /events?code=*** HTTP/1.1" 401') == 1, log
    assert '"POST /events HTTP/1.1" 400' in log, log
    assert "stored 1 new of 1 events" in log, log  # the receiver's own lines reach the same output
    assert SqliteInbox(inbox_path).count() == 1


def _children(pid: int) -> set[int]:
    return {int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_parser_processes_end_with_a_killed_receiver(tmp_path: Path) -> None:
    """Posts are parsed in processes of the receiver's own; a receiver killed with SIGKILL cannot stop them,
    so they watch it and end with it instead of living on as orphans."""
    command = [sys.executable, "-c", _SERVE, str(tmp_path / "inbox.sqlite3")]
    with serving_process(command, {**os.environ, "TEST_EVENTS_SECRET": SECRET}) as served:
        with httpx.Client(base_url=served.url) as client:
            assert client.post("/events", params={"code": SECRET}, content=REAL_PO_CONFIRMED).status_code == 202
        parsers = _children(served.pid)
        assert parsers and all(_alive(pid) for pid in parsers)
        os.kill(served.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in parsers) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not [pid for pid in parsers if _alive(pid)], "parser processes outlived the receiver"
