"""Landed batches for sink tests, written through the real landing path (Ledger -> BatchWriter)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Sequence

import pyarrow as pa

from fo_assets.catalog import STANDARD, EntitySpec
from fo_assets.landing import DeleteScope, LandedBatch, Ledger, Manifest, Mode, new_batch_id

UTC = dt.timezone.utc


def at(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """An extraction instant in June 2026 (tests compare instants, so a fixed month keeps them readable)."""
    return dt.datetime(2026, 6, day, hour, minute, tzinfo=UTC)


def land(
    home: Path,
    spec: EntitySpec,
    pages: Sequence[tuple[pa.Table, dt.datetime]],
    *,
    mode: Mode | None = None,
    scopes: Sequence[DeleteScope] = (),
    parents: pa.Table | None = None,
    run_id: str = "run-1",
    company: str | None = "usmf",
) -> LandedBatch:
    """Land ``pages`` (each a table of entity columns and its extraction instant) as one sealed batch.

    The batch began reading at its first page's instant (what the delete stamp uses).
    """
    started = min((when for _, when in pages), default=at(1))
    manifest = Manifest(
        batch_id=new_batch_id(started),
        entity_set=spec.entity_set,
        table=spec.table,
        run_id=run_id,
        mode=mode or STANDARD.mode_of(spec),
        key_columns=list(spec.key_columns),
        company_field=spec.company_field,
        companies=[company] if company else [],
        delete_scopes=list(scopes),
        created_at=started.isoformat(),
    )
    writer = Ledger(home).new_writer(manifest)
    for index, (table, when) in enumerate(pages):
        writer.write(table, f"https://fo.test/data/{spec.entity_set}?page={index}", when, company)
    if parents is not None:
        writer.write_parents(parents)
    return writer.seal()


def vendors(rows: Sequence[tuple[str, str, str | None]]) -> pa.Table:
    """VendorsV2 pages: (dataAreaId, VendorAccountNumber, CreditLimit as a decimal string)."""
    return pa.table({
        "dataAreaId": pa.array([r[0] for r in rows], pa.string()),
        "VendorAccountNumber": pa.array([r[1] for r in rows], pa.string()),
        "CreditLimit": pa.array([None if r[2] is None else decimal.Decimal(r[2]) for r in rows], pa.decimal128(32, 6)),
    })


def current(table: pa.Table, *columns: str) -> dict[tuple, dict]:
    """Rows by key columns, for comparisons that must not depend on row order."""
    return {tuple(row[c] for c in columns): row for row in table.to_pylist()}
