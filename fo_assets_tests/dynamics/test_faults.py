"""Every fault a throttled, flaky F&O throws ends with exactly the tenant's rows, once each, or a clear failure."""

from __future__ import annotations

import datetime as dt
import time
from typing import Iterator

import pytest

from fo_assets.catalog import STANDARD
from fo_assets.dynamics.auth import TokenProvider
from fo_assets.dynamics.decode import PageDecoder
from fo_assets.dynamics.extract import ExtractError, ExtractRequest, Extractor
from fo_assets.dynamics.metadata import MetadataStore, folder_for
from fo_assets.dynamics.odata import ODataClient, RetryPolicy, ReadTarget
from fo_assets.dynamics.schema import plan_entity
from fo_assets.dynamics.throttle import Counters, Throttle, budget_for
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, settings_for
from fo_assets_tests.support.truth import by_key, entity_rows, truth

GL = STANDARD.spec_for("GeneralJournalEntryBiEntities")
WINDOW = (ANCHOR - dt.timedelta(days=30), ANCHOR + dt.timedelta(days=1))
FAST = RetryPolicy(backoff_base_s=0.05, default_retry_after_s=0.3)


@pytest.fixture
def paged() -> Iterator[Sandbox]:
    """Small pages, so faults land in the middle of a paginated read."""
    with Sandbox(SandboxConfig(scale=0.1, days=10, anchor_date=ANCHOR, companies=COMPANIES, page_size=10)) as sandbox:
        yield sandbox


def extract_gl(sandbox: Sandbox, home, policy: RetryPolicy = FAST, **env: str):
    with Extractor(settings_for(sandbox, home, **env), "run-faults", policy=policy) as extractor:
        (batch,) = extractor.extract([ExtractRequest(GL, window=WINDOW)])
        return batch, extractor.stats


def assert_exact(sandbox: Sandbox, batch) -> None:
    want = {}
    for company in COMPANIES:
        want.update(by_key(truth(sandbox, GL.entity_set, company), GL.key_columns))
    got = by_key(entity_rows(batch), GL.key_columns)  # by_key fails on any duplicate
    assert got == want
    assert batch.manifest.stats["pages"] > len(COMPANIES)  # really paginated


def test_429_storm_with_retry_after_pauses_and_ends_exact(paged, tmp_path):
    paged.faults.throttle(n=2, retry_after=1)
    started = time.monotonic()
    batch, stats = extract_gl(paged, tmp_path)
    assert_exact(paged, batch)
    assert stats["throttled"] == 2
    assert time.monotonic() - started >= 1.0  # the server's Retry-After was honoured


def test_429_without_retry_after_uses_the_default_wait(paged, tmp_path):
    paged.faults.throttle(n=3, retry_after=None)
    batch, stats = extract_gl(paged, tmp_path)
    assert_exact(paged, batch)
    assert stats["throttled"] == 3


def test_concurrency_limit_429s_shrink_the_budget_and_end_exact(paged, tmp_path):
    paged.faults.latency(0.05)
    paged.faults.concurrency_limit(2)
    settings = settings_for(paged, tmp_path, FO_MAX_CONCURRENCY="8")
    requests = [ExtractRequest(GL, window=WINDOW), ExtractRequest(STANDARD.spec_for("VendorsV2"))]
    with Extractor(settings, "run-limit", policy=FAST) as extractor:
        batches = extractor.extract(requests)
        stats = extractor.stats
    assert_exact(paged, batches[0])
    # AIMD backed off: with 8 workers held at 8 against a server admitting 2, most requests would be 429s.
    assert 0 < stats["throttled"] * 2 < stats["requests"]
    assert budget_for(settings.require_fo()).limit < 8
    for request, batch in zip(requests[1:], batches[1:]):
        spec = request.spec
        want = [r for c in COMPANIES for r in truth(paged, spec.entity_set, c, spec.excluded_fields + spec.personal_fields)
                if spec.window_field is None or WINDOW[0] <= r[spec.window_field] < WINDOW[1]]
        assert by_key(entity_rows(batch), spec.key_columns) == by_key(want, spec.key_columns)


def test_503s_are_retried_with_backoff(paged, tmp_path):
    paged.faults.unavailable(n=3)
    batch, stats = extract_gl(paged, tmp_path)
    assert_exact(paged, batch)
    assert stats["retries"] >= 3


def test_a_connection_dropped_mid_body_is_retried(paged, tmp_path):
    paged.faults.drop_connection(n=3)
    batch, stats = extract_gl(paged, tmp_path)
    assert_exact(paged, batch)
    assert stats["retries"] >= 3


def test_a_warm_up_longer_than_the_normal_timeout_succeeds_on_the_warm_up_timeout(paged, tmp_path):
    paged.faults.warmup(1.5)
    batch, stats = extract_gl(paged, tmp_path / "a", FO_REQUEST_TIMEOUT="0.5", FO_WARMUP_TIMEOUT="10")
    assert_exact(paged, batch)
    assert stats["retries"] == 0  # the first request waited instead of timing out
    paged.faults.warmup(1.5)
    _, control = extract_gl(paged, tmp_path / "b", FO_REQUEST_TIMEOUT="0.5", FO_WARMUP_TIMEOUT="0.5")
    assert control["retries"] >= 1  # the same warm-up on the normal timeout needs a retry


def test_a_token_revoked_mid_pagination_is_refreshed_once(paged, tmp_path):
    settings = settings_for(paged, tmp_path)
    fo = settings.require_fo()
    tokens = TokenProvider(fo, settings.secret("FO_CLIENT_SECRET"))
    client = ODataClient(fo, tokens, Throttle(4), FAST)
    counters = Counters()
    deadline = time.monotonic() + 60
    store = MetadataStore(folder_for(tmp_path, fo.base_url), fo.base_url,
                          lambda url, entity, accept: client.get(url, ReadTarget(entity), counters, deadline, accept))
    plan = plan_entity(GL, store.entity(GL.entity_set))
    decoder = PageDecoder(plan)
    url = f"{fo.odata_root}/{GL.entity_set}?cross-company=true"
    rows = 0
    issued = paged.stats.tokens_issued
    with client:
        for number, (_, page) in enumerate(client.pages(url, lambda b, u: decoder.decode(b, url=u, company=None),
                                                         ReadTarget(GL.entity_set), counters, deadline)):
            rows += page.table.num_rows
            if number == 1:
                paged.faults.revoke_tokens()
    assert rows == len(truth(paged, GL.entity_set))
    assert paged.stats.count("/data/GeneralJournalEntryBiEntities", 401) == 1
    assert paged.stats.tokens_issued == issued + 1


def cache_metadata(sandbox: Sandbox, home) -> None:
    extract_gl(sandbox, home)


def test_throttled_past_the_deadline_fails_the_batch_and_flags_nothing(paged, tmp_path):
    cache_metadata(paged, tmp_path)
    paged.faults.throttle(n=1000, retry_after=1)
    settings = settings_for(paged, tmp_path, FO_DEADLINE="1.5")
    with Extractor(settings, "run-deadline", policy=FAST) as extractor, pytest.raises(ExtractError) as raised:
        extractor.extract([ExtractRequest(GL, window=WINDOW)])
    (batch,) = raised.value.batches
    assert batch.manifest.status == "incomplete" and batch.manifest.delete_scopes == []
    message = str(raised.value)
    assert "still throttled (429) at the deadline" in message and "GeneralJournalEntryBiEntities" in message
    assert f"{paged.base_url}/data/" in message  # the URL it gave up on (here its ledger lookup)


def test_throttled_metadata_fails_every_request_and_nothing_is_loadable(paged, tmp_path):
    paged.faults.throttle(n=1000, retry_after=1)
    settings = settings_for(paged, tmp_path, FO_DEADLINE="1.5")
    with Extractor(settings, "run-deadline", policy=FAST) as extractor, pytest.raises(ExtractError) as raised:
        extractor.extract([ExtractRequest(GL, window=WINDOW), ExtractRequest(STANDARD.spec_for("VendorsV2"))])
    assert "$metadata" in str(raised.value) and "2 of 2 extractions failed" in str(raised.value)
    assert all(b.manifest.status == "incomplete" and not b.manifest.parts for b in raised.value.batches)


def test_a_failed_company_fails_the_whole_batch(paged, tmp_path):
    cache_metadata(paged, tmp_path)
    paged.faults.unavailable(n=1000)
    settings = settings_for(paged, tmp_path)
    with Extractor(settings, "run-fail", policy=RetryPolicy(max_attempts=2, backoff_base_s=0.01)) as extractor:
        with pytest.raises(ExtractError) as raised:
            extractor.extract([ExtractRequest(GL, window=WINDOW)])
    (batch,) = raised.value.batches
    assert batch.manifest.status == "incomplete" and batch.manifest.delete_scopes == []
    message = str(raised.value)
    assert "GeneralJournalEntryBiEntities" in message and "company" in message
    assert "failed after 2 attempts, last: HTTP 503" in message
