"""How fast the sandbox serves GL lines, GeneralJournalAccountEntryBiEntities (not a test; run by hand).

    .venv/bin/python -m fo_assets_tests.sandbox.gl_serving_rate --scale 100

Starts ``fo-assets sandbox serve`` in its own process and reads every page of the lines, ordered by
their key (``$orderby=SourceKey``, the stable order a correct client asks for), twice: cold (each page
rendered on its first request) and warm (cached bytes, as far as the 512 MB page cache holds them), over
one keep-alive HTTPS connection that does not parse the JSON, so the number is the server's, not a
client's. With ``--unordered`` it reads without ``$orderby``: every page is then drawn and rendered
afresh, as F&O gives no stable order (and the rows read are then not the whole ledger, which is the point).
"""

from __future__ import annotations

import argparse
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fo_assets.sandbox.cli import read_exports

from .conftest import token_from_exports

LINES = "GeneralJournalAccountEntryBiEntities"
_NEXT = re.compile(rb'"@odata.nextLink":"([^"]+)"}$')


def measure(scale: float, days: int = 30, *, ordered: bool = True) -> list[tuple[str, int, float]]:
    """(label, bytes, seconds) of a cold and a warm read of every page."""
    with tempfile.TemporaryDirectory() as state:
        server = subprocess.Popen(
            [sys.executable, "-m", "fo_assets.sandbox", "serve", "--scale", str(scale), "--days", str(days)]
            + ["--state-dir", str(Path(state))],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            env = read_exports(server.stdout)
            verify = ssl.create_default_context(cafile=env["FO_CA_BUNDLE"])
            order = "&$orderby=SourceKey" if ordered else ""
            headers = {"Authorization": f"Bearer {token_from_exports(env)}"}
            results = []
            with httpx.Client(verify=verify, trust_env=False, timeout=600, headers=headers) as client:
                for label in ("cold", "warm"):
                    size, started = 0, time.monotonic()
                    url: str | None = f"{env['FO_BASE_URL']}/data/{LINES}?cross-company=true{order}"
                    while url:
                        body = client.get(url).raise_for_status().content
                        size += len(body)
                        match = _NEXT.search(body)
                        url = match.group(1).decode() if match else None
                    results.append((label, size, time.monotonic() - started))
            return results
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--unordered", action="store_true", help="read without $orderby")
    args = parser.parse_args()
    rows = round(112 * args.scale) * args.days * 3  # three companies
    for label, size, seconds in measure(args.scale, args.days, ordered=not args.unordered):
        print(f"{label}: {rows:,} rows, {size / 1e6:,.0f} MB in {seconds:.1f}s = {rows / seconds:,.0f} rows/s")
