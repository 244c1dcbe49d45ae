"""What every sink does with a landed batch, and the load semantics both sinks share.

A sink upserts a batch into the entity's table by its key and flags deleted keys inside the scopes the
batch read completely. The rules, identical for Databricks and local Delta:

- The batch is deduplicated by key inside the load: the newest ``_fo_extracted_at`` wins, ties go to the
  greatest ``_fo_source_url`` and then to the greatest value of each remaining column in schema order
  (so the choice never depends on file or row order).
- A matched row is replaced only by a row extracted at or after it, and only if some column differs:
  replaying an old batch never overwrites newer data, and re-loading the same batch reports 0 updated.
- New columns in the batch become new nullable columns; columns the batch lacks keep their values on
  updated rows and are null on inserted rows.
- Inside each complete scope, live rows whose key is absent from the batch get ``_fo_deleted = true``
  with this batch's id and run id, stamped with the moment the batch began reading (see ``deleted_at``),
  and only if the row was not extracted after that moment. A keyed pull has no scopes and flags nothing.
- A batch is refused before anything is staged or written when a column name is one Delta refuses
  without column mapping, or when a column's type changed in a way the sink cannot follow
  (``columns.check_columns``; docs/databricks.md, "Names" and "Type changes").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from fo_assets.catalog import EntitySpec
from fo_assets.landing import EXTRACTED_AT, SOURCE_URL, LandedBatch


@dataclass(frozen=True)
class LoadResult:
    """What loading a batch did to its table."""
    table_name: str
    uri: str
    inserted: int
    updated: int
    deleted: int
    # (name, Databricks SQL type such as "decimal(32,6)") of every column of the table after the load.
    columns: list[tuple[str, str]]
    rows: int  # rows in the table after the load, soft-deleted ones included


@dataclass(frozen=True)
class KeyProfile:
    """What the keys_unique check reads: live (not soft-deleted) rows and how their keys behave."""

    live_rows: int
    duplicate_keys: int  # rows beyond the first of each key
    null_keys: int  # rows with a null key part


class Sink(Protocol):
    """Where batches are loaded: local Delta tables or Databricks.

    Raises:
        SinkError: (from ``upsert``) the batch could not be loaded; the message names the batch and the table.
    """
    def upsert(self, batch: LandedBatch, spec: EntitySpec) -> LoadResult:
        """Create or evolve the table, upsert the batch by key, flag deletes in its complete scopes."""
        ...

    def table_name(self, spec: EntitySpec) -> str:
        """The table's name as users see it."""

    def uri(self, spec: EntitySpec) -> str:
        """Where the table lives (a URL or a path)."""

    def read(self, spec: EntitySpec) -> pa.Table:
        """Every current row of the table, soft-deleted ones included (filter on ``_fo_deleted``)."""
        ...

    def profile(self, spec: EntitySpec) -> KeyProfile:
        """Key uniqueness and nulls over the live rows, computed where the table lives."""
        ...

    def maintain(self, spec: EntitySpec) -> dict[str, object]:
        """Compact small files and remove files older than the retention the audit trail needs."""
        ...


class SinkError(RuntimeError):
    """A load that could not be done; the message names the table and the batch."""


# Delta time travel is part of the audit trail: keep 30 days of history (Databricks' floor is 7).
DEFAULT_RETAIN_HOURS = 30 * 24

TIE_BREAKERS = (EXTRACTED_AT, SOURCE_URL)


def recency_order(columns: Sequence[str], keys: Sequence[str]) -> list[str]:
    """Columns to sort duplicates by, all descending with nulls last; the first row per key wins."""
    rest = [c for c in columns if c not in keys and c not in TIE_BREAKERS]
    return [*TIE_BREAKERS, *rest]


def deleted_at(batch: LandedBatch) -> dt.datetime:
    """When the batch began reading: a key missing from a complete read was gone at some point after it.

    Rows extracted later (by a keyed pull that ran while the snapshot was reading) are newer evidence
    and are left alone.
    """
    created = batch.manifest.created_at
    if not created:
        raise SinkError(f"batch {batch.batch_id} of {batch.manifest.table} has no created_at in its manifest")
    stamp = dt.datetime.fromisoformat(created)
    if stamp.tzinfo is None:
        raise SinkError(f"batch {batch.batch_id}: created_at {created!r} has no time zone")
    return stamp.astimezone(dt.UTC)


def check_loadable(batch: LandedBatch, spec: EntitySpec) -> None:
    """Refuse a batch for another table, still being extracted or incomplete (SinkError)."""
    manifest = batch.manifest
    if manifest.table != spec.table:
        raise SinkError(f"batch {batch.batch_id} is for table {manifest.table}, not {spec.table}")
    if manifest.status == "extracting":
        raise SinkError(f"batch {batch.batch_id} of {spec.table} is still being extracted (not sealed)")
    if manifest.status == "incomplete":
        raise SinkError(
            f"batch {batch.batch_id} of {spec.table} is an incomplete read ({manifest.error}): it is never "
            "loaded; re-run the partition instead"
        )
    if tuple(manifest.key_columns) != spec.key_columns:
        raise SinkError(
            f"batch {batch.batch_id} of {spec.table} was keyed by {manifest.key_columns}, the catalog now "
            f"says {list(spec.key_columns)}: re-extract instead of replaying it"
        )
    for scope in manifest.delete_scopes:
        if scope.kind == "parents" and not batch.parents_path.exists():
            raise SinkError(f"batch {batch.batch_id} of {spec.table} has a parents scope but no {batch.parents_path}")
        if scope.kind == "window" and not (scope.field and scope.start and scope.end):
            raise SinkError(f"batch {batch.batch_id} of {spec.table} has a window scope without field/start/end")
