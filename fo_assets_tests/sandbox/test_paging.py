"""Every entity pages completely by offset (``$skip`` in the nextLink), with and without cross-company."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fo_assets.sandbox import Sandbox

from .conftest import client_for, keys_of, read_all, real_tenant, small_config, token_for

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


LINES = "GeneralJournalAccountEntryBiEntities"


def _unordered_read(client: httpx.Client, params: dict[str, str] | None = None) -> list[int]:
    rows, links = read_all(client, f"/data/{LINES}", {"cross-company": "true", **(params or {})})
    assert links
    return [r["SourceKey"] for r in rows]


def test_without_orderby_offset_pages_skip_and_repeat_rows(
    shared_sandbox: Sandbox, shared_client: httpx.Client
) -> None:
    """F&O pages by $skip and SQL Server promises no order without ORDER BY: each page may come from a
    different order, so a read that follows the nextLinks loses some rows and gets others twice."""
    truth = [r["SourceKey"] for r in shared_sandbox.tenant.rows(LINES)]
    read = _unordered_read(shared_client)
    assert len(read) == len(truth)  # as many rows as $count says...
    assert len(set(read)) < len(truth) and set(read) < set(truth)  # ...but not the same rows
    assert read != _unordered_read(shared_client)  # and another read differs again
    counted = shared_client.get(f"/data/{LINES}/$count", params={"cross-company": "true"}).text
    assert int(counted) == len(truth)  # $count stays exact


def test_orderby_over_the_full_key_is_stable(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    truth = [r["SourceKey"] for r in shared_sandbox.tenant.rows(LINES)]
    assert _unordered_read(shared_client, {"$orderby": "SourceKey"}) == truth
    assert _unordered_read(shared_client, {"$orderby": "SourceKey desc"}) == truth[::-1]


def test_ties_under_a_non_unique_orderby_are_unstable(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    params = {"cross-company": "true", "$orderby": "IsCredit", "$top": "30"}
    first = [r["SourceKey"] for r in shared_client.get(f"/data/{LINES}", params=params).json()["value"]]
    second = [r["SourceKey"] for r in shared_client.get(f"/data/{LINES}", params=params).json()["value"]]
    assert first != second  # the same request, another order among the ties
    credit = {r["SourceKey"]: r["IsCredit"] for r in shared_sandbox.tenant.rows(LINES)}
    assert {credit[k] for k in first} == {credit[k] for k in second} == {"No"}  # the order itself holds
    # a non-key order that happens to be unique over the result is stable
    params = {"$filter": "dataAreaId eq 'usmf'", "$orderby": "VendorAccountNumber"}
    vendors = [read_all(shared_client, "/data/VendorsV2", params)[0] for _ in range(2)]
    assert [r["VendorAccountNumber"] for r in vendors[0]] == [r["VendorAccountNumber"] for r in vendors[1]]


def test_the_unstable_order_is_reproducible_and_can_be_turned_off() -> None:
    reads = []
    for unstable in (True, True, False):
        with Sandbox(small_config(unstable_order=unstable)) as sb, client_for(sb, token_for(sb)) as client:
            reads.append(_unordered_read(client))
            truth = [r["SourceKey"] for r in sb.tenant.rows(LINES)]
    assert reads[0] == reads[1] != truth  # same seed, same requests: the same orders
    assert reads[2] == truth  # stable_order: key order, as the sandbox used to answer
