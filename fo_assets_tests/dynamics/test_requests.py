"""What a run costs in requests: no discovery round trip, one metadata-service call, sub-windows only as many as the budget uses."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from fo_assets.catalog import STANDARD
from fo_assets.dynamics import auth
from fo_assets.dynamics.auth import TokenProvider
from fo_assets.dynamics.errors import AuthError, HttpError
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.dynamics.metadata import MetadataStore, folder_for
from fo_assets.dynamics.odata import ODataClient, ReadTarget
from fo_assets.dynamics.throttle import Counters, Throttle
from fo_assets_tests.support.tenant import ANCHOR, COMPANIES, settings_for

GL = STANDARD.spec_for("GeneralJournalEntryBiEntities")
ENTITIES = ("GeneralJournalEntryBiEntities", "VendorsV2", "MainAccounts", "VendorInvoiceHeaders")


def test_a_new_process_asks_the_authority_for_a_token_and_nothing_else(small_sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "_APPS", {})  # as in a fresh process: msal builds its app again
    stats = small_sandbox.stats
    discovery, tokens = stats.count(f"/{small_sandbox.cfg.tenant_id}/v2.0/"), stats.count(f"/{small_sandbox.cfg.tenant_id}/oauth2/")
    settings = settings_for(small_sandbox, tmp_path)

    assert TokenProvider(settings.require_fo(), settings.secret("FO_CLIENT_SECRET")).token()

    assert stats.count(f"/{small_sandbox.cfg.tenant_id}/v2.0/") == discovery
    assert stats.count(f"/{small_sandbox.cfg.tenant_id}/oauth2/v2.0/token") == tokens + 1


def test_a_wrong_tenant_is_named_by_the_token_request(small_sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "_APPS", {})
    settings = settings_for(small_sandbox, tmp_path, FO_TENANT_ID="00000000-0000-0000-0000-000000000000")
    with pytest.raises(AuthError) as raised:
        TokenProvider(settings.require_fo(), settings.secret("FO_CLIENT_SECRET")).token()
    assert "AADSTS90002" in str(raised.value) and "00000000-0000-0000-0000-000000000000" in str(raised.value)


def test_the_edmx_alone_types_every_entity_of_a_run(small_sandbox, tmp_path):
    before = small_sandbox.stats.count("/Metadata/"), small_sandbox.stats.count("/data/$metadata")
    requests = [ExtractRequest(STANDARD.spec_for(name), window=(ANCHOR - dt.timedelta(days=1), ANCHOR))
                if STANDARD.spec_for(name).window_field else ExtractRequest(STANDARD.spec_for(name)) for name in ENTITIES]

    with Extractor(settings_for(small_sandbox, tmp_path), "run-metadata") as extractor:
        batches = extractor.extract(requests)

    assert small_sandbox.stats.count("/Metadata/") == before[0]
    assert small_sandbox.stats.count("/data/$metadata") - before[1] == 1
    assert [b.manifest.status for b in batches] == ["landed"] * len(ENTITIES)
    pending = {f["name"]: f["type"] for f in batches[3].manifest.schema}
    assert pending["InvoiceDate"] == "date32[day]" and pending["VarianceApprovedDateTime"] == "timestamp[us, tz=UTC]"


def _store(small_sandbox, tmp_path, refuse_filter: bool = False) -> tuple[MetadataStore, ODataClient]:
    """A store over a tenant whose EDMX lacks the AXType annotations (an older F&O, or a proxy that strips
    them): only the metadata service then tells dates from instants."""
    settings = settings_for(small_sandbox, tmp_path)
    fo = settings.require_fo()
    client = ODataClient(fo, TokenProvider(fo, settings.secret("FO_CLIENT_SECRET")), Throttle(2))

    def fetch(url, entity_set, accept):
        if refuse_filter and "$filter" in url:  # a service that refuses $filter, as an older one might
            raise HttpError("F&O answered 400: the query option $filter is not allowed", url=url, status=400)
        body = client.get(url, ReadTarget(entity_set), Counters(), time.monotonic() + 30, accept)
        return re.sub(rb"<Annotation Term=\"Microsoft\.Dynamics\.OData\.Core\.V1\.AXType\".*?</Annotation>", b"", body)

    return MetadataStore(folder_for(tmp_path, fo.base_url), fo.base_url, fetch), client


def test_without_axtype_one_metadata_service_request_describes_every_entity(small_sandbox, tmp_path):
    store, client = _store(small_sandbox, tmp_path)
    before = small_sandbox.stats.count("/Metadata/")
    with client:
        store.prefetch(ENTITIES)
        described = [store.entity(name) for name in ENTITIES]
    assert small_sandbox.stats.count("/Metadata/") - before == 1
    assert described[0].get("AccountingDate").kind == "date"
    assert described[0].get("CreatedOn").kind == "instant"


def test_a_metadata_service_without_filters_is_asked_entity_by_entity(small_sandbox, tmp_path):
    store, client = _store(small_sandbox, tmp_path, refuse_filter=True)
    before = small_sandbox.stats.count("/Metadata/")
    with client:
        store.prefetch(ENTITIES)
        described = [store.entity(name) for name in ENTITIES]
    assert small_sandbox.stats.count("/Metadata/") - before == len(ENTITIES)
    assert described[0].get("AccountingDate").kind == "date"
    assert described[3].get("VarianceApprovedDateTime").kind == "instant"


# Split by day, up to the default concurrency (8) per company: the companies' reads fill the budget in
# whole rounds, so no last read runs alone.
@pytest.mark.parametrize(("days", "per_company"), [(1, 1), (2, 2), (27, 8), (400, 8)])
def test_a_window_is_split_by_day_up_to_the_budget_per_company(small_sandbox, tmp_path, days,
                                                                          per_company):
    window = (ANCHOR - dt.timedelta(days=days), ANCHOR)
    with Extractor(settings_for(small_sandbox, tmp_path), "run-split") as extractor:
        (batch,) = extractor.extract([ExtractRequest(GL, window=window)])
    assert batch.manifest.stats["queries"] == per_company * len(COMPANIES)
