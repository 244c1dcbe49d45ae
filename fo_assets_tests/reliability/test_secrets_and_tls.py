"""Secret hygiene end to end, and TLS that is verified everywhere.

The whole demo runs in a process of its own with secrets chosen here; then every byte it left behind
(its output, FO_ASSETS_HOME: manifests, Parquet parts, Delta tables, the event inbox, metadata cache;
DAGSTER_HOME: the event log, run storage, compute logs) is searched for them in every spelling.
Runs that fail on a wrong secret are searched the same way: an exception is where secrets leak.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import certifi
import pytest

import fo_assets
from fo_assets.sandbox.tls import ensure_tls
from fo_assets_tests.reliability.child_run import failure_message
from fo_assets_tests.reliability.children import REPO
from fo_assets_tests.reliability.stack import TABLES, Credential, Stack, files_under, leaks


@pytest.mark.slow
def test_the_demo_leaves_no_secret_in_any_log_event_manifest_part_or_table(tmp_path: Path) -> None:
    fo = Credential(str(uuid.uuid4()), f"fo-sentinel-{uuid.uuid4().hex}")
    events = Credential("", f"events-sentinel-{uuid.uuid4().hex}")
    home, dagster_home = tmp_path / "fo_home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("FO_", "DATABRICKS_"))}
    env.update(FO_ASSETS_HOME=str(home), DAGSTER_HOME=str(dagster_home), PYTHONPATH=str(REPO),
               SENTINEL_FO_CLIENT_ID=fo.user, SENTINEL_FO_CLIENT_SECRET=fo.secret,
               SENTINEL_EVENTS_SECRET=events.secret)

    demo = subprocess.run([sys.executable, "-m", "fo_assets_tests.reliability.demo_driver"], env=env, cwd=REPO,
                          capture_output=True, timeout=300)

    assert demo.returncode == 0, demo.stderr.decode(errors="replace")[-3000:]
    # Both secrets were in use: the runs got tokens with one, the receiver accepted events with the other.
    assert b"landed: purchase_order_headers_v2" in demo.stdout
    with sqlite3.connect(home / "events" / "inbox.sqlite3") as inbox:
        # The purchase order's and the posted invoice's events; the one sent twice is kept once.
        assert inbox.execute("SELECT count(*) FROM events").fetchone()[0] == 2
    scanned = [("stdout", demo.stdout), ("stderr", demo.stderr)] + files_under(home, dagster_home)
    assert any(name.endswith(".db") for name, _ in scanned) and any("manifest.json" in name for name, _ in scanned)
    assert leaks([fo, events], scanned) == []


@pytest.mark.parametrize("wrong", ["FO_CLIENT_SECRET", "DATABRICKS_CLIENT_SECRET"])
def test_a_run_failing_on_a_wrong_secret_names_the_app_not_the_secret(
    stack: Stack, capfd: pytest.CaptureFixture, wrong: str
) -> None:
    bad = f"wrong-sentinel-{uuid.uuid4().hex}"
    stack.configure(**{wrong: bad})

    result = stack.run(TABLES[:1])

    assert not result.success
    message = failure_message(result)
    if wrong == "FO_CLIENT_SECRET":
        assert "AADSTS7000215" in message and stack.sandbox.cfg.client_id in message
    else:
        assert f"refused the service principal {stack.dbx.client_id!r}" in message
    output = capfd.readouterr()
    texts = [("stdout", output.out.encode()), ("stderr", output.err.encode()), ("message", message.encode())]
    texts += stack.event_log() + files_under(stack.home, stack.dbx.root)
    assert leaks(stack.credentials() + [Credential(stack.sandbox.cfg.client_id, bad)], texts) == []


@pytest.mark.parametrize(
    ("trust", "expected"),
    [
        ("FO_CA_BUNDLE", "TLS verification of the authority failed"),
        ("REQUESTS_CA_BUNDLE", "TLS verification failed for the Databricks workspace"),
    ],
)
def test_a_wrong_ca_fails_the_run_with_a_message_naming_the_setting(
    stack: Stack, tmp_path: Path, trust: str, expected: str
) -> None:
    # A CA bundle that is valid but does not hold the server's CA: another private CA, or the public ones.
    bundle = ensure_tls(tmp_path / "other_ca").ca_path if trust == "FO_CA_BUNDLE" else Path(certifi.where())
    stack.configure(**{trust: str(bundle)})

    result = stack.run(TABLES[:1])

    assert not result.success
    message = failure_message(result)
    assert expected in message and trust in message
    assert stack.rows(TABLES[0]) == []


INSECURE = re.compile(
    r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context|disable_warnings"
    r"|InsecureRequestWarning|PYTHONHTTPSVERIFY|ssl_verify\s*=\s*False|insecure\s*=\s*True"
)


def test_no_code_path_turns_tls_verification_off() -> None:
    package = Path(fo_assets.__file__).parent
    sources = [p for p in package.rglob("*.py") if "sandbox" not in p.relative_to(package).parts]
    sources += list((REPO / "soak").rglob("*.py"))
    assert len(sources) > 30
    assert INSECURE.search("httpx.Client(verify=False)") and INSECURE.search("ctx.verify_mode = ssl.CERT_NONE")
    offending = [f"{p}:{n}" for p in sources for n, line in enumerate(p.read_text().splitlines(), 1)
                 if INSECURE.search(line)]
    assert offending == []
