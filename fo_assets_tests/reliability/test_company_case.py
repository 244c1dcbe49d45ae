"""Companies served upper case (BI entities, Ledgers) through a Dagster run into either sink: landed lower
case, and a delete in F&O flags exactly that row, in a snapshot's company scope and a window's scope."""

from __future__ import annotations

import datetime as dt

import pytest

from fo_assets.catalog import STANDARD
from fo_assets_tests.reliability.stack import FIRST, LAST, Stack

LEDGERS, INVOICES = STANDARD.spec_for("Ledgers"), STANDARD.spec_for("VendInvoiceJourBiEntities")
TABLES = (LEDGERS.table, INVOICES.table)


@pytest.mark.parametrize("target", ["local_stack", "stack"], ids=["local-delta", "databricks"])
def test_upper_case_companies_land_lower_case_and_deletes_flag_exactly_the_deleted_rows(
    request: pytest.FixtureRequest, target: str
) -> None:
    stack: Stack = request.getfixturevalue(target)
    sb = stack.sandbox
    ledger = sb.tenant.rows("Ledgers", "gbsi")[0]
    invoice = next(r for r in sb.tenant.rows(INVOICES.entity_set, "demf")
                   if FIRST <= dt.date.fromisoformat(r["InvoiceDate"][:10]) <= LAST)
    assert ledger["LegalEntityId"] == "GBSI" and invoice["dataAreaId"] == "DEMF"  # as F&O serves them
    assert stack.run(TABLES).success
    stack.assert_exact(TABLES)

    sb.changes.delete("Ledgers", {"LegalEntityId": ledger["LegalEntityId"]})
    sb.changes.delete(INVOICES.entity_set, {"dataAreaId": invoice["dataAreaId"], "SourceKey": invoice["SourceKey"]})
    assert stack.run(TABLES).success

    stack.assert_exact(TABLES)  # every other row live and equal to the source
    for spec, deleted in ((LEDGERS, ("gbsi",)), (INVOICES, ("demf", invoice["SourceKey"]))):
        rows = stack.rows(spec.table)
        assert {tuple(r[k] for k in spec.key_columns) for r in rows if r["_fo_deleted"]} == {deleted}
        assert {r[spec.company_field] for r in rows} == {"usmf", "demf", "gbsi"}
