"""The sandbox as a separate process: started, asked for its request counts, told about changes, stopped."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fo_assets.sandbox.app import ADMIN_HEADER
from fo_assets.sandbox.cli import read_exports
from fo_assets.sandbox.config import SandboxConfig


@dataclass(frozen=True)
class Scale:
    """What a sandbox process serves; the same values rebuild its tenant for the ground truth."""

    scale: float
    days: int
    anchor: dt.date
    latency: bool = False  # the sandbox's latency model with its defaults (docs/sandbox.md)

    def config(self) -> SandboxConfig:
        return SandboxConfig(scale=self.scale, days=self.days, anchor_date=self.anchor)


class Admin:
    """The sandbox's admin endpoints (request counts, record changes), as the orchestrator and jobs use them."""

    def __init__(self, env: Mapping[str, str]):
        self._client = httpx.Client(
            base_url=f"{env['FO_BASE_URL']}/_sandbox", headers={ADMIN_HEADER: env["FO_SANDBOX_ADMIN_TOKEN"]},
            verify=ssl.create_default_context(cafile=env["FO_CA_BUNDLE"]), trust_env=False, timeout=60,
        )

    def requests_served(self) -> int:
        """F&O requests served so far (token, metadata and data; not the admin endpoints)."""
        stats = self._client.get("/stats").raise_for_status().json()
        return sum(n for name, n in stats["requests"].items() if not name.startswith("/_sandbox/"))

    def stats(self) -> dict[str, Any]:
        return self._client.get("/stats").raise_for_status().json()

    def in_flight(self) -> int:
        """OData requests the sandbox is serving right now."""
        return self.stats()["in_flight"]

    def change(self, entity_set: str, key: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        payload = {"op": "update", "entity_set": entity_set, "key": key, "values": values}
        response = self._client.post("/changes", content=json.dumps(payload))
        if response.status_code != 200:
            raise RuntimeError(f"sandbox change failed ({response.status_code}): {response.text}")
        return response.json()["result"]

    def close(self) -> None:
        self._client.close()


class SandboxProcess:
    def __init__(self, scale: Scale, state_dir: Path):
        self.scale = scale
        args = [sys.executable, "-m", "bench.serve", "--scale", str(scale.scale), "--days", str(scale.days),
                "--anchor-date", scale.anchor.isoformat(), "--state-dir", str(state_dir)]
        args += ["--latency-model"] if scale.latency else []
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        try:
            self.env = read_exports(self._process.stdout)
        except RuntimeError:
            raise RuntimeError(f"the sandbox did not start (exit code {self._process.wait()})") from None
        self.admin = Admin(self.env)

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self) -> None:
        self.admin.close()
        self._process.terminate()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
