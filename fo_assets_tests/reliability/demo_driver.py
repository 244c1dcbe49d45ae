"""``fo-assets demo`` with the secrets it makes up replaced by values the caller chose, to hunt for later.

The demo generates the sandbox's client secret and the events secret itself; this driver hands it the
caller's instead (taken out of the environment first, so they are not sitting there) and then runs
the real command::

    SENTINEL_FO_CLIENT_ID=... SENTINEL_FO_CLIENT_SECRET=... SENTINEL_EVENTS_SECRET=... \\
        python -m fo_assets_tests.reliability.demo_driver
"""

from __future__ import annotations

import functools
import os
import sys
import types

from fo_assets import cli, demo


def main() -> int:
    client_id, client_secret = os.environ.pop("SENTINEL_FO_CLIENT_ID"), os.environ.pop("SENTINEL_FO_CLIENT_SECRET")
    events_secret = os.environ.pop("SENTINEL_EVENTS_SECRET")
    demo.SandboxConfig = functools.partial(demo.SandboxConfig, client_id=client_id, client_secret=client_secret)
    demo.secrets = types.SimpleNamespace(token_urlsafe=lambda nbytes=None: events_secret)
    return cli.main(["demo"])


if __name__ == "__main__":
    sys.exit(main())
