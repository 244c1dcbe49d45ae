"""$select, $orderby, $top, $skip, $count and the 400 envelope, as F&O answers them."""

from __future__ import annotations

import httpx
import pytest

from fo_assets.sandbox import Sandbox

from .conftest import read_all

VENDOR_KEY = ("dataAreaId", "VendorAccountNumber")


def _keys(rows: list[dict], key: tuple[str, ...] = VENDOR_KEY) -> list[tuple]:
    return [tuple(r[k] for k in key) for r in rows]


def test_select_returns_only_those_fields_etag_first(shared_client: httpx.Client) -> None:
    body = shared_client.get("/data/VendorsV2", params={"$select": "CreditLimit,VendorAccountNumber"}).json()
    assert body["@odata.context"].endswith("#VendorsV2(CreditLimit,VendorAccountNumber)")
    for row in body["value"]:
        assert list(row) == ["@odata.etag", "VendorAccountNumber", "CreditLimit"]  # declaration order


def test_orderby_several_fields_ignoring_case(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    rows, _ = read_all(
        shared_client,
        "/data/VendorsV2",
        # the key last: without it, ties would come in a different order each time (test_paging)
        {"cross-company": "true", "$orderby": "VendorGroupId desc, CreditLimit asc, dataAreaId, VendorAccountNumber"},
    )
    expected = sorted(shared_sandbox.tenant.rows("VendorsV2"), key=lambda r: r["CreditLimit"])
    expected = sorted(expected, key=lambda r: (r["VendorGroupId"] or "").lower(), reverse=True)
    assert _keys(rows) == _keys(expected)


def test_client_driven_paging_with_top_skip_and_orderby(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    collected: list[dict] = []
    for skip in range(0, 10_000, 25):
        body = shared_client.get(
            "/data/VendorsV2",
            params={
                "cross-company": "true",
                "$orderby": "dataAreaId,VendorAccountNumber",
                "$top": "25",
                "$skip": str(skip),
            },
        ).json()
        assert "@odata.nextLink" not in body  # $top below the page size: no server paging
        collected += body["value"]
        if len(body["value"]) < 25:
            break
    assert _keys(collected) == _keys(shared_sandbox.tenant.rows("VendorsV2"))


def test_top_zero_and_skip_past_the_end_are_empty(shared_client: httpx.Client) -> None:
    assert shared_client.get("/data/MainAccounts", params={"$top": "0"}).json()["value"] == []
    assert shared_client.get("/data/MainAccounts", params={"$skip": "100000"}).json()["value"] == []


def test_count_option_and_count_segment(shared_sandbox: Sandbox, shared_client: httpx.Client) -> None:
    flt = "SysModifiedDateTime ge 2026-06-14T00:00:00Z"
    expected = sum(
        1
        for r in shared_sandbox.tenant.rows("VendInvoiceJourBiEntities", "usmf")
        if r["SysModifiedDateTime"] >= "2026-06-14"
    )
    response = shared_client.get(
        "/data/VendInvoiceJourBiEntities", params={"$filter": flt, "$count": "true", "$top": "2"}
    )
    body = response.json()
    assert list(body)[:3] == ["@odata.context", "@odata.count", "value"]
    assert body["@odata.count"] == expected and len(body["value"]) == 2
    counted = shared_client.get("/data/VendInvoiceJourBiEntities/$count", params={"$filter": flt})
    assert counted.headers["content-type"].startswith("text/plain") and counted.text == str(expected)
    everything = shared_client.get("/data/VendInvoiceJourBiEntities/$count", params={"cross-company": "true"}).text
    assert int(everything) == len(shared_sandbox.tenant.rows("VendInvoiceJourBiEntities"))


def test_wrong_case_entity_set_is_404(shared_client: httpx.Client) -> None:
    response = shared_client.get("/data/vendorsV2")
    assert response.status_code == 404
    assert "No HTTP resource was found" in response.json()["error"]["message"]
    assert shared_client.get("/data/VendorV2").status_code == 404


@pytest.mark.parametrize(
    ("params", "innermost"),
    [
        ({"$filter": "contains(VendorOrganizationName,'Contoso')"}, "Unsupported function 'contains'"),
        ({"$filter": "startswith(VendorAccountNumber,'USMF')"}, "Unsupported function 'startswith'"),
        ({"$filter": "VendorGroupId in ('10','20')"}, "The 'in' operator is not supported"),
        (
            {"$filter": "Nope eq 1"},
            "Could not find a property named 'Nope' on type 'Microsoft.Dynamics.DataEntities.VendorV2'",
        ),
        ({"$filter": "VendorGroupId eq"}, "Syntax error"),
        ({"$filter": "(VendorGroupId eq '10'"}, "Syntax error"),
        ({"$filter": "VendorGroupId eq 'unterminated"}, "Syntax error"),
        ({"$filter": "OnHoldStatus eq 'No'"}, "incompatible types"),
        (
            {"$filter": "OnHoldStatus gt Microsoft.Dynamics.DataEntities.CustVendorBlocked'No'"},
            "supports only eq and ne",
        ),
        (
            {"$filter": "OnHoldStatus eq Microsoft.Dynamics.DataEntities.CustVendorBlocked'Maybe'"},
            "not a valid enumeration",
        ),
        ({"$filter": "CreditLimit gt 'x'"}, "incompatible types"),
        ({"$select": "VendorAccountNumber,Nope"}, "Could not find a property named 'Nope'"),
        ({"$orderby": "Nope desc"}, "Could not find a property named 'Nope'"),
        ({"$orderby": "CreditLimit sideways"}, "Syntax error in $orderby"),
        ({"$top": "-1"}, "$top query option requires a non-negative integer"),
        ({"$skip": "x"}, "$skip query option requires a non-negative integer"),
        ({"$expand": "Lines"}, "'$expand' is not supported"),
        ({"$skiptoken": "40"}, "'$skiptoken' is not supported"),
    ],
)
def test_rejected_queries_get_the_fo_error_envelope(shared_client: httpx.Client, params: dict, innermost: str) -> None:
    response = shared_client.get("/data/VendorsV2", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "" and error["message"] == "An error has occurred."
    assert innermost in error["innererror"]["internalexception"]["message"]
