"""`dagster dev` as a subprocess for the browser tests: started, waited for, and stopped with all its children."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import httpx

REPO = Path(__file__).resolve().parents[2]
LOCATION = "fo_assets"
# The location's load state and load error: the UI alone would show a spinner, or an error nobody reads.
LOCATION_STATUS = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


SCHEDULES = """
query { schedulesOrError(repositorySelector: {repositoryLocationName: "%s", repositoryName: "__repository__"}) {
    __typename ... on Schedules { results { name scheduleState { id } } } ... on PythonError { message } } }
""" % LOCATION
STOP_SCHEDULE = """
mutation Stop($id: String!) { stopRunningSchedule(id: $id) {
    __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }
"""


class DagsterDevError(RuntimeError):
    pass


def stop_schedules(url: str) -> list[str]:
    """Turn the location's schedules off through the webserver's GraphQL API, as the UI's toggle does.

    They run by default, and a test that crosses a schedule's time (03:00 UTC for the daily window) would
    otherwise get that run's partitions and checks among its own. Returns the schedules stopped.
    """
    with httpx.Client(base_url=url, timeout=30) as client:
        found = client.post("/graphql", json={"query": SCHEDULES}).json()["data"]["schedulesOrError"]
        if found["__typename"] != "Schedules":
            raise DagsterDevError(f"cannot list the schedules of {LOCATION}: {found}")
        for schedule in found["results"]:
            reply = client.post("/graphql", json={"query": STOP_SCHEDULE,
                                                  "variables": {"id": schedule["scheduleState"]["id"]}})
            result = reply.json()["data"]["stopRunningSchedule"]
            if result.get("scheduleState", {}).get("status") != "STOPPED":
                raise DagsterDevError(f"could not stop the schedule {schedule['name']}: {result}")
        return [schedule["name"] for schedule in found["results"]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def _location_loaded(client: httpx.Client, log: Path) -> bool:
    """True once the code location has loaded; raises if it failed to load."""
    try:
        reply = client.post("/graphql", json={"query": LOCATION_STATUS})
    except httpx.TransportError:
        return False  # the webserver is not listening yet
    if reply.status_code != 200:
        return False
    entries = (reply.json().get("data") or {}).get("workspaceOrError", {}).get("locationEntries") or []
    for entry in entries:
        if entry["name"] != LOCATION or entry["loadStatus"] != "LOADED":
            continue
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            raise DagsterDevError(f"code location {LOCATION} failed to load: {loaded['message']}\n{_tail(log)}")
        return True
    return False


def _stop(process: subprocess.Popen, grace_s: float) -> None:
    """Asks every process of the group to stop, then kills what is left (daemon, code server, run workers)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for_location(process: subprocess.Popen, base_url: str, log: Path, timeout_s: float) -> None:
    """Waits until the webserver at ``base_url`` has loaded the location; raises if ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base_url, timeout=5, trust_env=False) as client:
        while not _location_loaded(client, log):
            if process.poll() is not None:
                raise DagsterDevError(f"{process.args} exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise DagsterDevError(f"{process.args} did not load {LOCATION} in {timeout_s:.0f} s:\n{_tail(log)}")
            time.sleep(0.5)


@contextmanager
def dagster_dev(env: Mapping[str, str], dagster_home: Path, log: Path, timeout_s: float = 120) -> Iterator[str]:
    """Serves the project's workspace with the project's dagster.yaml; yields the UI's base URL."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    # Marks the instance's newsletter dialog as seen: on a fresh instance it pops up a second after the first
    # page loads and takes the keyboard focus from whatever is being typed.
    (dagster_home / ".nux").mkdir(exist_ok=True)
    (dagster_home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    port = _free_port()
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
               "-p", str(port), "-h", "127.0.0.1"]
    base_url = f"http://127.0.0.1:{port}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        # A session of its own, so the whole tree (webserver, daemon, code server, run workers) can be stopped.
        process = subprocess.Popen(command, env={**env, "DAGSTER_HOME": str(dagster_home)}, cwd=REPO,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_location(process, base_url, log, timeout_s)
            yield base_url
        finally:
            _stop(process, grace_s=15)
