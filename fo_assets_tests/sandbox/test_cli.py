"""``python -m fo_assets.sandbox serve`` prints working export lines and keeps its state across restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fo_assets.sandbox.cli import read_exports

from .conftest import token_from_exports


def _serve(state_dir: Path, *flags: str) -> tuple[subprocess.Popen, dict[str, str]]:
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
            *flags,
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
        token = token_from_exports(env)  # real msal, against the authority the exports name
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


def test_serve_flags_switch_the_fo_behaviours(tmp_path: Path) -> None:
    flags = ["--anchor-date", "2026-06-15", "--latency-model", "--latency-base-s", "0.4", "--stable-order",
             "--lower-case-bi-companies", "--max-filter-nodes", "0", "--date-filter-offset", "+00:00",
             "--extension-entities"]  # fmt: skip
    proc, env = _serve(tmp_path, *flags)
    try:
        token = token_from_exports(env)
        with httpx.Client(
            base_url=env["FO_BASE_URL"], verify=env["FO_CA_BUNDLE"], trust_env=False, timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:  # fmt: skip
            started = time.monotonic()
            ledgers = client.get("/data/Ledgers").json()["value"]
            assert time.monotonic() - started >= 0.4  # --latency-model
            assert {r["LegalEntityId"] for r in ledgers} == {"usmf", "demf", "gbsi"}  # --lower-case-bi-companies
            keys = [r["SourceKey"] for r in client.get("/data/GeneralJournalAccountEntryBiEntities").json()["value"]]
            assert keys == sorted(keys) and len(keys) > 1  # --stable-order
            chain = " or ".join(f"VendorAccountNumber eq 'V{i}'" for i in range(30))
            assert client.get("/data/VendorsV2", params={"$filter": chain}).status_code == 200  # no node limit
            day = "AccountingDate ge 2026-06-15T00:00:00Z and AccountingDate lt 2026-06-16T00:00:00Z"
            rows = client.get("/data/GeneralJournalEntryBiEntities", params={"$filter": day}).json()["value"]
            assert {r["AccountingDate"] for r in rows} == {"2026-06-15T12:00:00Z"}  # --date-filter-offset +00:00
            assert client.get("/data/ContosoProjectBudgets").status_code == 200  # --extension-entities
    finally:
        assert _stop(proc) == 0
