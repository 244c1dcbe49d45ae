"""``python -m bench.serve --page-cache-mb N <sandbox serve options>``: the sandbox with a larger page cache.

The sandbox keeps rendered pages in a 512 MB LRU cache. A 1,000,000-row ledger is about 620 MB of JSON
per reader, and the benchmark has two readers whose queries differ, so with the default budget every
page would be evicted before it is read again and the server, not the pipelines, would set the pace.
Everything else is ``python -m fo_assets.sandbox serve`` unchanged.
"""

from __future__ import annotations

import argparse
import sys

from fo_assets.sandbox import cli, odata_service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page-cache-mb", type=int, default=4096)
    args, rest = parser.parse_known_args(argv)
    budget = args.page_cache_mb << 20
    base_init = odata_service.ODataService.__init__

    def init(self: odata_service.ODataService, tenant, base_url, page_size, page_cache_bytes=budget) -> None:  # type: ignore[no-untyped-def]
        base_init(self, tenant, base_url, page_size, page_cache_bytes)

    odata_service.ODataService.__init__ = init  # type: ignore[method-assign]
    return cli.main(["serve", *rest])


if __name__ == "__main__":
    sys.exit(main())
