"""F&O faults end to end: a Dagster run reads a faulty sandbox and loads the Databricks double.

Every case ends with the target equal to the source, each key once, and no secret anywhere. The
unit-level behaviour of each fault (pauses, AIMD, backoff) is proven in dynamics/test_faults.py; here
it is the whole run that must come out exact.
"""

from __future__ import annotations

from typing import Callable

import pytest

from fo_assets.sandbox import Sandbox
from fo_assets_tests.reliability.stack import Stack, retried_requests, when

ODATA = "/data/"
FAULTS = 4


def _data_pages_served(sb: Sandbox) -> int:
    served = sb.stats.snapshot()["requests"]  # {"<path> <status>": count}, taken under the stats lock
    return sum(n for key, n in served.items() if key.startswith(ODATA) and key.endswith(" 200") and "$" not in key)


def _throttled_with_retry_after(sb: Sandbox) -> None:
    sb.faults.throttle(n=FAULTS, retry_after=1)


def _throttled_without_retry_after(sb: Sandbox) -> None:
    sb.faults.throttle(n=FAULTS, retry_after=None)


def _concurrency_limited(sb: Sandbox) -> None:
    sb.faults.latency(0.03)
    sb.faults.concurrency_limit(1)


def _unavailable(sb: Sandbox) -> None:
    sb.faults.unavailable(n=FAULTS)


def _dropped(sb: Sandbox) -> None:
    sb.faults.drop_connection(n=FAULTS)


@pytest.mark.parametrize(
    "arm, min_retries",
    [
        pytest.param(_throttled_with_retry_after, FAULTS, id="429-storm-with-retry-after"),
        pytest.param(_throttled_without_retry_after, FAULTS, id="429-storm-without-retry-after"),
        # How many requests overlap depends on timing, and the budget halves its concurrency at the first
        # 429: at least one is refused and retried, how many more is not fixed.
        pytest.param(_concurrency_limited, 1, id="concurrency-limit-429s"),
        pytest.param(_unavailable, FAULTS, id="503s"),
        pytest.param(_dropped, FAULTS, id="dropped-connections"),
    ],
)
def test_a_run_through_transient_fo_faults_lands_exactly_the_source(
    stack: Stack, arm: Callable[[Sandbox], None], min_retries: int
) -> None:
    sb = stack.sandbox
    # Armed once the first page of data was served (the metadata is read by then): the faults land
    # among the run's concurrent entity reads, not on its single metadata request.
    armed = when(lambda: _data_pages_served(sb) >= 1, lambda: arm(sb))

    result = stack.run()

    armed.join(1)
    assert result.success
    assert retried_requests(stack, result) >= min_retries  # the faults were served and every one was retried
    stack.assert_exact()
    stack.assert_no_secret_leaked()


def test_a_warm_up_longer_than_the_request_timeout_is_waited_out_once(stack: Stack) -> None:
    stack.configure(FO_REQUEST_TIMEOUT="1", FO_WARMUP_TIMEOUT="10")
    stack.sandbox.faults.warmup(2.5)

    result = stack.run()

    assert result.success
    stack.assert_exact()
    # The cold first request (the metadata) was answered once: waited for, not timed out and re-sent.
    served = stack.sandbox.stats.snapshot()["requests"]
    metadata = {key: n for key, n in served.items() if "$metadata" in key or key.startswith("/Metadata/")}
    assert metadata and set(metadata.values()) == {1}, metadata


def test_an_fo_token_revoked_mid_run_is_replaced_and_the_run_lands_exactly(stack: Stack) -> None:
    sb = stack.sandbox
    issued = sb.authority.issued
    sb.faults.latency(0.02)  # keeps the run reading while the token is revoked
    revoke = when(lambda: sb.stats.count("/data/GeneralJournalAccountEntryBiEntities", 200) >= 3,
                  sb.faults.revoke_tokens)

    result = stack.run()

    revoke.join(1)
    assert result.success
    assert sb.stats.count(ODATA, 401) >= 1 and sb.authority.issued > issued
    stack.assert_exact()


def test_a_token_revoked_between_runs_is_replaced_from_msals_cache(stack: Stack) -> None:
    assert stack.run().success
    issued = stack.sandbox.authority.issued
    stack.sandbox.faults.revoke_tokens()
    stack.sandbox.changes.update("VendorsV2", {"dataAreaId": "usmf", "VendorAccountNumber": "USMF-V00001"},
                                 {"VendorGroupId": "REVOKED"})

    result = stack.run()

    assert result.success
    assert stack.sandbox.stats.count(ODATA, 401) >= 1 and stack.sandbox.authority.issued == issued + 1
    stack.assert_exact()
