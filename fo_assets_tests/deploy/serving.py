"""A Dagster webserver started the way a user starts one (`dagster dev`, `fo-assets dev`), waited for until
it answers /server_info and has loaded the fo_assets code location, then stopped with all its children."""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import httpx

# The browser tests' `dagster dev` waits and stops the same way.
from fo_assets_tests.ui.dagster_dev import _free_port, _stop, wait_for_location


@contextmanager
def serving(command: list[str], *, cwd: Path, env: Mapping[str, str], log: Path,
            timeout_s: float = 180) -> Iterator[dict]:
    """Runs ``command --port <a free port>`` and yields the webserver's /server_info once the code location
    has loaded."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen([*command, "--port", str(port)], cwd=cwd, env=dict(env), stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_location(process, url, log, timeout_s)
            info = httpx.get(f"{url}/server_info", timeout=5, trust_env=False)
            assert info.status_code == 200, info.text
            yield info.json()
        finally:
            _stop(process, grace_s=15)
