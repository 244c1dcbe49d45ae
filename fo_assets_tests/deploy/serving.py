"""A Dagster webserver started the way a user starts one (`dagster dev`, `fo-assets dev`), waited for until
it answers /server_info and has loaded the fo_assets code location, then stopped with all its children."""

from __future__ import annotations

import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import httpx

# The waiting and stopping of the browser tests' `dagster dev` (one implementation of both).
from fo_assets_tests.ui.dagster_dev import DagsterDevError, _free_port, _location_loaded, _stop, _tail


@contextmanager
def serving(command: list[str], *, cwd: Path, env: Mapping[str, str], log: Path,
            timeout_s: float = 180) -> Iterator[dict]:
    """Runs ``command --port <a free port>`` and yields the webserver's /server_info once the code location
    has loaded."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*command, "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            with httpx.Client(base_url=url, timeout=5, trust_env=False) as client:
                while not _location_loaded(client, log):
                    if process.poll() is not None:
                        raise DagsterDevError(f"{command} exited with {process.returncode}:\n{_tail(log)}")
                    if time.monotonic() > deadline:
                        raise DagsterDevError(f"{command} did not load fo_assets in {timeout_s:.0f} s:\n{_tail(log)}")
                    time.sleep(0.5)
                info = client.get("/server_info")
                assert info.status_code == 200, info.text
                yield info.json()
        finally:
            _stop(process, grace_s=15)
