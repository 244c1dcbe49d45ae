"""Every entity pages completely by offset (``$skip`` in the nextLink), with and without cross-company."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fo_assets.sandbox import Sandbox

from .conftest import keys_of, read_all, real_tenant

ENTITIES = real_tenant()["entities"]
PAGED = ["VendorsV2", "GeneralJournalAccountEntryBiEntities", "GeneralJournalEntryBiEntities",
         "VendInvoiceTransBiEntities", "PurchaseOrderLinesV2", "MainAccounts", "Ledgers", "ExchangeRates"]  # fmt: skip


@pytest.mark.parametrize("entity_set", PAGED)
def test_ordered_by_the_key_every_row_comes_once(
    shared_sandbox: Sandbox, shared_client: httpx.Client, entity_set: str
) -> None:
    key = ENTITIES[entity_set]["keys"]
    rows, links = read_all(shared_client, f"/data/{entity_set}", {"cross-company": "true", "$orderby": ",".join(key)})
    truth = shared_sandbox.tenant.rows(entity_set)
    assert len(rows) == len(truth) > 0
    assert keys_of(rows, key) == keys_of(truth, key)
    page = shared_sandbox.cfg.page_size
    assert len(links) == (len(rows) - 1) // page
    for number, link in enumerate(links, 1):  # absolute, same host, offset paging
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == shared_sandbox.base_url
        assert parse_qs(parts.query)["$skip"] == [str(number * page)]


@pytest.mark.parametrize("entity_set", list(ENTITIES))
def test_without_cross_company_only_the_default_company_is_visible(
    shared_sandbox: Sandbox, shared_client: httpx.Client, entity_set: str
) -> None:
    rows, _ = read_all(shared_client, f"/data/{entity_set}")
    everything = shared_sandbox.tenant.rows(entity_set)
    if "dataAreaId" not in everything[0]:  # shared entities have no company and ignore the switch
        assert len(rows) == len(everything)
        return
    default = shared_sandbox.cfg.default_company
    assert {r["dataAreaId"].lower() for r in rows} == {default}
    assert len(rows) == sum(1 for r in everything if r["dataAreaId"].lower() == default)
    assert {r["dataAreaId"].lower() for r in everything} == set(shared_sandbox.cfg.companies)


def test_top_above_page_size_is_paged_by_the_server(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    page = shared_sandbox.cfg.page_size
    rows, links = read_all(
        shared_client,
        "/data/GeneralJournalAccountEntryBiEntities",
        {"cross-company": "true", "$orderby": "SourceKey", "$top": str(2 * page + 5), "$skip": "3"},
    )
    assert len(links) == 2
    assert [parse_qs(urlsplit(link).query)["$top"] for link in links] == [[str(page + 5)], ["5"]]
    truth = shared_sandbox.tenant.rows("GeneralJournalAccountEntryBiEntities")[3 : 3 + 2 * page + 5]
    assert [r["SourceKey"] for r in rows] == [r["SourceKey"] for r in truth]
