"""How fast the sandbox serves GeneralJournalAccountEntries (not a test; run by hand).

    .venv/bin/python -m fo_assets_tests.sandbox.gl_serving_rate --scale 100

Reads every page once cold (rendered on first request) and once warm (cached bytes) with one
keep-alive HTTPS connection that does not parse the JSON, so the number is the server's, not a client's.
"""

from __future__ import annotations

import argparse
import re
import ssl
import time

import httpx

from fo_assets.sandbox import Sandbox, SandboxConfig

from .conftest import token_for

_NEXT = re.compile(rb'"@odata.nextLink":"([^"]+)"}$')


def measure(scale: float, days: int = 30) -> list[tuple[str, int, float]]:
    started = time.monotonic()
    with Sandbox(SandboxConfig(scale=scale, days=days)) as sb:
        sb.tenant.table("GeneralJournalAccountEntries")
        print(
            f"generated {len(sb.tenant.table('GeneralJournalAccountEntries')):,} GL rows in "
            f"{time.monotonic() - started:.1f}s"
        )
        results = []
        verify = ssl.create_default_context(cafile=str(sb.ca_path))
        with httpx.Client(
            verify=verify, trust_env=False, timeout=300, headers={"Authorization": f"Bearer {token_for(sb)}"}
        ) as client:
            for label in ("cold", "warm"):
                rows_before, started = sb.stats.rows_served, time.monotonic()
                url: str | None = f"{sb.base_url}/data/GeneralJournalAccountEntries?cross-company=true"
                while url:
                    body = client.get(url).raise_for_status().content
                    match = _NEXT.search(body)
                    url = match.group(1).decode() if match else None
                results.append((label, sb.stats.rows_served - rows_before, time.monotonic() - started))
        return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=100)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    for label, rows, seconds in measure(args.scale, args.days):
        print(f"{label}: {rows:,} rows in {seconds:.1f}s = {rows / seconds:,.0f} rows/s")
