"""Secrets stay secret, TLS is verified, and a tenant that does not match the catalog fails clearly."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

import pytest

from fo_assets.catalog import STANDARD
from fo_assets.dynamics.auth import TokenProvider
from fo_assets.dynamics.errors import AuthError, HttpError, SchemaError, TransportError
from fo_assets.dynamics.extract import ExtractError, ExtractRequest, Extractor
from fo_assets.dynamics.odata import ODataClient, ReadTarget
from fo_assets.dynamics.throttle import Counters, Throttle
from fo_assets.sandbox.tls import ensure_tls
from fo_assets_tests.support.tenant import ANCHOR, settings_for
from fo_assets_tests.support.truth import entity_rows

GL = STANDARD.spec_for("GeneralJournalEntryBiEntities")
WINDOW = (ANCHOR - dt.timedelta(days=3), ANCHOR)


def test_the_secret_and_the_token_appear_in_no_log_manifest_part_or_error(small_sandbox, tmp_path, caplog):
    settings = settings_for(small_sandbox, tmp_path)
    secret = settings.secret("FO_CLIENT_SECRET").reveal()
    bad = dataclasses.replace(STANDARD.spec_for("VendorsV2"), keys=("VendorGroupId",))
    with caplog.at_level(logging.DEBUG):
        with Extractor(settings, "run-secrets") as extractor:
            extractor.extract([ExtractRequest(GL, window=WINDOW),
                               ExtractRequest(STANDARD.spec_for("VendorInvoiceLines"), window=WINDOW)])
            with pytest.raises(ExtractError) as raised:
                extractor.extract([ExtractRequest(bad)])
    token = TokenProvider(settings.require_fo(), settings.secret("FO_CLIENT_SECRET")).token().value  # msal's cached token
    texts = [r.getMessage() for r in caplog.records] + [str(raised.value), repr(settings)]
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    assert len(texts) > 10 and any("GeneralJournalEntryBiEntities" in t for t in texts)
    for text in texts:
        assert secret not in text and token not in text


def test_a_wrong_ca_fails_the_token_request_with_a_tls_message(small_sandbox, tmp_path):
    other_ca = ensure_tls(None).ca_path
    settings = settings_for(small_sandbox, tmp_path, FO_CA_BUNDLE=str(other_ca))
    with Extractor(settings, "run-ca") as extractor, pytest.raises(ExtractError) as raised:
        extractor.extract([ExtractRequest(STANDARD.spec_for("MainAccounts"))])
    assert isinstance(raised.value.failures[0], AuthError)
    message = str(raised.value)
    assert "TLS verification of the authority failed" in message and "FO_CA_BUNDLE" in message
    assert small_sandbox.base_url in message


def test_a_wrong_ca_fails_the_odata_request_with_a_tls_message(small_sandbox, tmp_path):
    fo = settings_for(small_sandbox, tmp_path).require_fo()
    tokens = TokenProvider(fo, settings_for(small_sandbox, tmp_path).secret("FO_CLIENT_SECRET"))
    wrong = dataclasses.replace(fo, ca_bundle=ensure_tls(None).ca_path)
    with ODataClient(wrong, tokens, Throttle(2)) as client, pytest.raises(TransportError) as raised:
        client.get(f"{fo.odata_root}/MainAccounts", ReadTarget("MainAccounts"), Counters(), time.monotonic() + 30)
    assert "TLS verification of 127.0.0.1" in str(raised.value) and "FO_CA_BUNDLE" in str(raised.value)


def test_a_wrong_secret_names_the_entra_error_and_the_app_but_not_the_secret(small_sandbox, tmp_path):
    settings = settings_for(small_sandbox, tmp_path, FO_CLIENT_SECRET="not-the-right-secret-value")
    with Extractor(settings, "run-auth") as extractor, pytest.raises(ExtractError) as raised:
        extractor.extract([ExtractRequest(STANDARD.spec_for("MainAccounts"))])
    assert isinstance(raised.value.failures[0], AuthError)
    message = str(raised.value)
    assert "AADSTS7000215" in message
    assert small_sandbox.cfg.client_id in message and small_sandbox.cfg.tenant_id in message
    assert "not-the-right-secret-value" not in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"entity_set": "VendorV2"}, "'VendorV2' is not in the tenant's metadata; did you mean VendorsV2"),
        ({"entity_set": "vendorsv2"}, "did you mean VendorsV2"),
        ({"keys": ("dataAreaId", "VendorGroupId")},
         "the key is (dataAreaId, VendorAccountNumber) in the tenant, not (dataAreaId, VendorGroupId)"),
        ({"window_field": "PostedDate"}, "window field 'PostedDate' does not exist in VendorsV2"),
        ({"window_field": "VendorGroupId"}, "window field 'VendorGroupId' of VendorsV2 is Edm.String, not date"),
        ({"company_field": "Company", "keys": ("Company", "VendorAccountNumber")},
         "company field 'Company' does not exist in VendorsV2"),
    ],
)
def test_a_catalog_entry_that_does_not_match_the_tenant_fails_naming_what_differs(
    small_sandbox, tmp_path, change, expected
):
    spec = dataclasses.replace(STANDARD.spec_for("VendorsV2"), **change)
    window = WINDOW if spec.window_field else None
    with Extractor(settings_for(small_sandbox, tmp_path), "run-schema") as extractor:
        with pytest.raises(ExtractError) as raised:
            extractor.extract([ExtractRequest(spec, window=window)])
    (failure,) = raised.value.failures
    assert isinstance(failure, SchemaError) and expected in str(failure)
    assert "plural and case-sensitive" in str(failure) or "entity_set" not in change
    assert not list((tmp_path / "landing").rglob("*.parquet"))


def test_a_404_names_the_entity_set_rules(small_sandbox, tmp_path):
    settings = settings_for(small_sandbox, tmp_path)
    fo = settings.require_fo()
    with ODataClient(fo, TokenProvider(fo, settings.secret("FO_CLIENT_SECRET")), Throttle(2)) as client:
        with pytest.raises(HttpError) as raised:
            client.get(f"{fo.odata_root}/CustomerV3?cross-company=true", ReadTarget("CustomerV3", "usmf"), Counters(),
                       time.monotonic() + 30)
    message = str(raised.value)
    assert raised.value.status == 404 and "plural and case-sensitive" in message
    assert "entity CustomerV3" in message and "company usmf" in message and "/data/CustomerV3?" in message


def test_catalog_fields_the_tenant_lost_are_reported_and_not_selected(small_sandbox, tmp_path):
    spec = dataclasses.replace(STANDARD.spec_for("VendorsV2"), fields=("VendorOrganizationName", "LegacyRating"))
    with Extractor(settings_for(small_sandbox, tmp_path), "run-removed") as extractor:
        (batch,) = extractor.extract([ExtractRequest(spec, companies=("usmf",))])
    assert batch.manifest.removed_fields == ["LegacyRating"]
    assert all("LegacyRating" not in q for q in batch.manifest.queries)
    row = entity_rows(batch)[0]
    dimension = "DefaultLedgerDimensionDisplayValue"  # kept: the catalog splits it
    assert set(row) == {"dataAreaId", "VendorAccountNumber", "VendorOrganizationName", dimension}

