"""``python -m fo_assets.sandbox serve`` prints working export lines and keeps its state across restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import msal
import requests

from fo_assets.sandbox.cli import read_exports


def _serve(state_dir: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fo_assets.sandbox",
            "serve",
            "--scale",
            "0.05",
            "--days",
            "2",
            "--state-dir",
            str(state_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, read_exports(proc.stdout)


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(10)


def test_serve_exports_drive_a_real_client(tmp_path: Path) -> None:
    proc, env = _serve(tmp_path)
    try:
        assert set(env) >= {
            "FO_BASE_URL",
            "FO_TENANT_ID",
            "FO_CLIENT_ID",
            "FO_CLIENT_SECRET",
            "FO_AUTHORITY_HOST",
            "FO_CA_BUNDLE",
            "FO_LEGAL_ENTITIES",
            "FO_SANDBOX_ADMIN_TOKEN",
        }
        session = requests.Session()
        session.trust_env = False
        session.verify = env["FO_CA_BUNDLE"]
        app = msal.ConfidentialClientApplication(
            env["FO_CLIENT_ID"],
            client_credential=env["FO_CLIENT_SECRET"],
            authority=f"{env['FO_AUTHORITY_HOST']}/{env['FO_TENANT_ID']}",
            instance_discovery=False,
            http_client=session,
        )
        token = app.acquire_token_for_client([f"{env['FO_BASE_URL']}/.default"])["access_token"]
        response = httpx.get(
            f"{env['FO_BASE_URL']}/data/VendorsV2",
            params={"cross-company": "true"},
            headers={"Authorization": f"Bearer {token}"},
            verify=env["FO_CA_BUNDLE"],
            trust_env=False,
        )
        assert response.status_code == 200
        assert {r["dataAreaId"] for r in response.json()["value"]} == set(env["FO_LEGAL_ENTITIES"].split(","))
    finally:
        assert _stop(proc) == 0
    ca_before = Path(env["FO_CA_BUNDLE"]).read_bytes()
    proc, again = _serve(tmp_path)
    assert _stop(proc) == 0
    assert again == env and Path(again["FO_CA_BUNDLE"]).read_bytes() == ca_before
