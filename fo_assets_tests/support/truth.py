"""Landed rows and the ground truth they are compared with.

The ground truth is converted to landed types from the sandbox's own field definitions (its X++ types),
independently of the connector's metadata and decoding code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fo_assets.catalog import STANDARD
from fo_assets.landing import AUDIT_COLUMNS, LandedBatch
from fo_assets.sandbox import Sandbox

SENTINEL_DAY = dt.date(1900, 1, 1)


def read_batch(batch: LandedBatch) -> pa.Table:
    tables = [pq.read_table(path) for path in batch.part_paths]
    return pa.concat_tables(tables) if tables else pa.table({})


def entity_rows(batch: LandedBatch) -> list[dict[str, Any]]:
    """Landed rows without audit and dimension columns, as the tenant holds them (plus derived columns)."""
    fields = {f["name"] for f in batch.manifest.schema}
    split = tuple(f"{d.field}_" for d in STANDARD.spec_for(batch.manifest.entity_set).dimensions) \
        if batch.manifest.entity_set in STANDARD else ()
    table = read_batch(batch)
    keep = [c for c in table.column_names if c in fields and c not in AUDIT_COLUMNS and not c.startswith(split or ("\0",))]
    return table.select(keep).to_pylist()


# The sandbox's own company fields (its tenant names them apart from the connector's catalog).
COMPANY_FIELDS = ("dataAreaId", "LegalEntityId")


def truth(
    sandbox: Sandbox, entity_set: str, company: str | None = None, excluded: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The tenant's rows as they should land: landed types, companies lower case, and the GL's derived
    columns (a voucher's legal entity through its ledger; a line's company and date through its voucher),
    computed from the sandbox's own tables."""
    kinds = {f.name: f.xpp for f in sandbox.tenant.fields(entity_set)}
    rows = []
    for row in sandbox.tenant.rows(entity_set, company):
        typed = {name: _typed(value, kinds[name]) for name, value in row.items() if name not in excluded}
        for name in COMPANY_FIELDS:
            if isinstance(typed.get(name), str):
                typed[name] = typed[name].lower()
        rows.append(typed)
    if entity_set == "GeneralJournalEntryBiEntities":
        ledgers = {r["LedgerRecId"]: r["LegalEntityId"].lower() for r in sandbox.tenant.rows("Ledgers")}
        for row in rows:
            row["dataAreaId"] = ledgers[row["Ledger"]]
    if entity_set == "GeneralJournalAccountEntryBiEntities":
        headers = {r["SourceKey"]: r for r in truth(sandbox, "GeneralJournalEntryBiEntities")}
        for row in rows:
            header = headers[row["GeneralJournalEntry"]]
            row["dataAreaId"], row["AccountingDate"] = header["dataAreaId"], header["AccountingDate"]
    return rows


def _typed(value: Any, xpp: str) -> Any:
    if value is None:
        return None
    if xpp == "Date":
        day = dt.date.fromisoformat(value[:10])
        return None if day == SENTINEL_DAY else day
    if xpp == "UtcDateTime":
        instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return None if instant.date() == SENTINEL_DAY else instant
    return value


def by_key(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[tuple, dict[str, Any]]:
    indexed = {tuple(row[k] for k in keys): row for row in rows}
    assert len(indexed) == len(rows), "duplicate keys"
    return indexed
