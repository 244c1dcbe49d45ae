"""Every catalog entity pages completely, to the expected count, with and without cross-company."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from fo_assets.catalog import CATALOG, EntitySpec
from fo_assets.sandbox import Sandbox

from .conftest import read_all


def _key(spec: EntitySpec, row: dict) -> tuple:
    return tuple(row[k] for k in spec.key_columns)


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.entity_set)
def test_cross_company_pages_to_every_row_in_key_order(
    shared_sandbox: Sandbox, shared_client: httpx.Client, spec: EntitySpec
) -> None:
    rows, links = read_all(shared_client, f"/data/{spec.entity_set}", {"cross-company": "true"})
    truth = shared_sandbox.tenant.rows(spec.entity_set)
    assert len(rows) == len(truth) > 0
    assert [_key(spec, r) for r in rows] == [_key(spec, r) for r in truth]
    assert len(set(_key(spec, r) for r in rows)) == len(rows)
    page = shared_sandbox.cfg.page_size
    assert len(links) == (len(rows) - 1) // page
    for link in links:  # absolute, same host, $skiptoken style
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == shared_sandbox.base_url and "$skiptoken=" in link


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.entity_set)
def test_without_cross_company_only_the_default_company_is_visible(
    shared_sandbox: Sandbox, shared_client: httpx.Client, spec: EntitySpec
) -> None:
    rows, _ = read_all(shared_client, f"/data/{spec.entity_set}")
    everything = shared_sandbox.tenant.rows(spec.entity_set)
    if spec.company_field is None:  # shared entities have no company and ignore the switch
        assert len(rows) == len(everything)
        assert spec.company_field not in rows[0]
        return
    default = shared_sandbox.cfg.default_company
    assert {r[spec.company_field] for r in rows} == {default}
    assert len(rows) == sum(1 for r in everything if r[spec.company_field] == default)
    assert {r[spec.company_field] for r in everything} == set(shared_sandbox.cfg.companies)


def test_generated_sizes_follow_the_scale(shared_sandbox: Sandbox) -> None:
    cfg, tenant = shared_sandbox.cfg, shared_sandbox.tenant
    per_company_days = len(cfg.companies) * cfg.days
    gl_per_day = round(112 * cfg.scale)
    # two entries (debit, credit) per voucher, so an even count per company
    assert len(tenant.rows("GeneralJournalAccountEntries")) == len(cfg.companies) * (cfg.days * gl_per_day // 2 * 2)
    assert len(tenant.rows("PurchaseOrderHeadersV2")) == per_company_days * round(20 * cfg.scale)
    assert len(tenant.rows("VendorsV2", "usmf")) == round(50 * cfg.scale) + 2  # + the two awkward keys
    assert len(tenant.rows("ProductsV2")) == round(200 * cfg.scale)
    assert 95 <= len(tenant.rows("MainAccounts")) <= 110
