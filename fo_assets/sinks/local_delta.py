"""The local sink: one Delta table per entity under ``<root>/<table>``, loaded in bounded memory.

DuckDB does the set work over the batch's Parquet parts and the table's data files with the SQL of
``sinks.sql`` (newest row per key, the rows a load would change, the rows a delete scope flags), under a
memory cap and spilling to a scratch folder. delta-rs commits, but its writer and its MERGE hold a whole
batch in memory (0.5 to 2.8 GB for a million ledger rows), so they only get what must go through them:

- no table yet: the batch's Parquet parts are the table's first version, copied as they are; only when
  a key repeats in the batch are its newest rows per key streamed into new files (``delta_files``);
- a table: only the rows the MERGE would write (new keys, and matched rows that are newer and differ) go
  to delta-rs's MERGE, which re-checks them under the same condition, on the same snapshot, and records
  the change feed; a re-load that changes nothing commits nothing.

Tables are read through their current data files with pyarrow: deltalake's own ``to_pyarrow_table()``/
``to_pyarrow_dataset()`` make the process abort at interpreter exit about half the time (deltalake 1.6.x),
which would fail CLI runs at random.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

from fo_assets.catalog import EntitySpec
from fo_assets.landing import BATCH_ID, DELETED, EXTRACTED_AT, RUN_ID, DeleteScope, LandedBatch
from fo_assets.sinks import delta_files, sql
from fo_assets.sinks.base import DEFAULT_RETAIN_HOURS, KeyProfile, LoadResult, SinkError, check_loadable
from fo_assets.sinks.batch_keys import may_have_null_key, repeats_a_key
from fo_assets.sinks.columns import check_column_names, check_column_types
from fo_assets.sinks.delta_files import Scratch

_D = sql.DUCKDB
_STAMP_COLUMNS = (DELETED, BATCH_ID, RUN_ID, EXTRACTED_AT)
# Changed rows up to this much Arrow go to the MERGE as one in-memory table, from which delta-rs derives
# a filter that narrows its scan of the target to their keys; more are streamed to it.
_IN_MEMORY_BYTES = 64 * 1024 * 1024


class LocalDeltaSink:
    """Loads batches into local Delta tables with deltalake."""
    def __init__(self, root: Path, retain_hours: int = DEFAULT_RETAIN_HOURS):
        self.root = Path(root).resolve()
        self.retain_hours = retain_hours

    def table_name(self, spec: EntitySpec) -> str:
        """The table's folder name."""
        return spec.table

    def uri(self, spec: EntitySpec) -> str:
        """The table's folder, as a file URI."""
        return self._path(spec).as_uri()

    def _path(self, spec: EntitySpec) -> Path:
        return self.root / spec.table

    def upsert(self, batch: LandedBatch, spec: EntitySpec) -> LoadResult:
        """Create or merge into the local Delta table; flag deletes in the batch's complete scopes.

        Raises:
            SinkError: the batch cannot be loaded; it names the batch and the table's path.
        """
        check_loadable(batch, spec)
        path = self._path(spec)
        schema = batch.arrow_schema()
        if schema is not None:  # the same refusals as Databricks; delta-rs would take such names and not widen
            check_column_names(batch, spec.table, schema)
            if DeltaTable.is_deltatable(str(path)):
                check_column_types(batch, spec.table, schema, _columns(DeltaTable(str(path))), adapts=False)
        # Whatever read the batch (in this process, often just before) may have left Arrow's allocator
        # holding tens of MB of freed blocks: give them back before the load needs memory of its own.
        pa.default_memory_pool().release_unused()
        try:
            with Scratch(self.root) as scratch:
                inserted = updated = deleted = 0
                created = None
                if batch.part_paths:
                    rows = _batch_rows(scratch, batch, spec)
                    if not DeltaTable.is_deltatable(str(path)):
                        created = _create(path, rows, spec, scratch)
                    if created is not None:
                        inserted = created
                    else:
                        inserted, updated = _upsert(DeltaTable(str(path)), rows, spec, scratch)
                if DeltaTable.is_deltatable(str(path)):
                    # A table this load created holds exactly the batch's rows, unless someone wrote since.
                    if created is None or DeltaTable(str(path)).version() != 0:
                        for scope in batch.manifest.delete_scopes:
                            deleted += _flag_deletes(DeltaTable(str(path)), batch, spec, scope, scratch)
                    columns = _columns(DeltaTable(str(path)))
                    live = _row_count(DeltaTable(str(path)))
                else:  # an empty batch and no table yet: nothing to insert, nothing to flag
                    columns, live = [], 0
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"loading batch {batch.batch_id} into local Delta table {path} failed: {exc}") from exc
        return LoadResult(spec.table, self.uri(spec), inserted, updated, deleted, columns, live)

    def read(self, spec: EntitySpec) -> pa.Table:
        """Every current row, soft-deleted ones included."""
        path = self._path(spec)
        if not DeltaTable.is_deltatable(str(path)):
            raise SinkError(f"no local Delta table for {spec.entity_set} at {path}: nothing has been loaded yet")
        table = DeltaTable(str(path))
        schema = _arrow_schema(table)
        files = _current_files(table)
        return pa.concat_tables([_read_file(uri, schema) for uri in files]) if files else schema.empty_table()

    def profile(self, spec: EntitySpec) -> KeyProfile:
        """Live rows, duplicate keys and null keys of the table."""
        files = _current_files(DeltaTable(str(self._path(spec))))
        if not files:
            return KeyProfile(0, 0, 0)
        source = "read_parquet($files, union_by_name = true)"
        query = sql.key_profile(sql.DUCKDB, source, spec.key_columns)
        with Scratch(self.root) as scratch:
            ((live, duplicates, nulls),) = scratch.rows(query, {"files": files})
        return KeyProfile(int(live), int(duplicates), int(nulls))

    def maintain(self, spec: EntitySpec) -> dict[str, object]:
        """Compact the table and vacuum files older than the retention."""
        table = DeltaTable(str(self._path(spec)))
        compacted = table.optimize.compact()
        vacuumed = table.vacuum(retention_hours=self.retain_hours, dry_run=False, enforce_retention_duration=True)
        return {
            "table": spec.table,
            "files_added": compacted.get("numFilesAdded", 0),
            "files_removed": compacted.get("numFilesRemoved", 0),
            "files_vacuumed": len(vacuumed),
            "retain_hours": self.retain_hours,
            "stale_scratch_removed": self._remove_stale_scratch(),
        }

    def _remove_stale_scratch(self) -> int:
        """Scratch folders a killed load left behind (a live load's folder is never a day old)."""
        cutoff = time.time() - _STALE_SCRATCH_S
        stale = [p for p in self.root.glob(".load-*") if p.is_dir() and p.stat().st_mtime < cutoff]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
        return len(stale)


_CONFIGURATION = {"delta.enableChangeDataFeed": "true"}
_STALE_SCRATCH_S = 24 * 3600
_SOURCE = "read_parquet($parts)"


@dataclass(frozen=True)
class _BatchRows:
    """The batch's newest row per key: its parts themselves when no key repeats, else a DuckDB query."""

    parts: list[str]
    schema: pa.Schema  # every column nullable: tables evolve, a column may be absent from later batches
    duplicates: Path | None  # Parquet file of the keys that occur more than once
    null_keys: bool  # some key has a null part: keys must be matched null-safe

    @property
    def params(self) -> dict[str, Any]:
        return {"parts": self.parts} | ({"duplicates": str(self.duplicates)} if self.duplicates else {})

    def query(self, keys: Sequence[str]) -> str:
        duplicates = "read_parquet($duplicates)" if self.duplicates else None
        return sql.deduplicated(_D, _SOURCE, duplicates=duplicates, columns=self.schema.names, keys=keys)


def _create(path: Path, rows: _BatchRows, spec: EntitySpec, scratch: Scratch) -> int | None:
    """The table, created holding the batch's rows (their count); None if another writer created it first."""
    path.mkdir(parents=True, exist_ok=True)
    if rows.duplicates is None:
        files = delta_files.copy_files(rows.parts, path)
    else:
        newest = scratch.reader(rows.query(spec.key_columns), rows.params, rows.schema)
        files = delta_files.write_files(newest, path)
    if not delta_files.create_table(path, rows.schema, files, _CONFIGURATION):
        return None
    return sum(count for _, count in files)


def _batch_rows(scratch: Scratch, batch: LandedBatch, spec: EntitySpec) -> _BatchRows:
    schema = batch.arrow_schema()
    assert schema is not None
    parts = [str(p) for p in batch.part_paths]
    keys = spec.key_columns
    duplicates = None
    if repeats_a_key(parts, keys):
        key_schema = pa.schema([schema.field(k).with_nullable(True) for k in keys])
        (duplicates,) = scratch.write(scratch.reader(sql.duplicate_keys(_D, _SOURCE, keys), {"parts": parts}, key_schema))
    return _BatchRows(parts, _nullable(schema), duplicates, may_have_null_key(parts, keys))


def _upsert(table: DeltaTable, rows: _BatchRows, spec: EntitySpec, scratch: Scratch) -> tuple[int, int]:
    """(inserted, updated) after merging the rows that change something; ``table`` is the snapshot both
    the comparison and the MERGE see, so a commit in between fails the MERGE instead of being missed."""
    keys = spec.key_columns
    query, params = rows.query(keys), rows.params
    files = _current_files(table)
    if files:
        target = "read_parquet($target, union_by_name = true)"
        existing = _arrow_schema(table).names
        query = sql.changed_rows(_D, f"({query})", target, keys=keys, columns=rows.schema.names, existing=existing,
                                 null_safe=rows.null_keys)
        params = params | {"target": files}
    changed = scratch.write(scratch.reader(query, params, rows.schema))
    metadata = [pq.read_metadata(f) for f in changed]
    if not metadata:
        return 0, 0
    size = sum(m.row_group(i).total_byte_size for m in metadata for i in range(m.num_row_groups))
    if size <= _IN_MEMORY_BYTES:
        return _merge(table, pa.concat_tables(pq.read_table(f).cast(rows.schema) for f in changed), spec)
    return _merge(table, delta_files.read_files([str(f) for f in changed], rows.schema), spec)


def _merge(table: DeltaTable, rows: pa.Table | pa.RecordBatchReader, spec: EntitySpec) -> tuple[int, int]:
    existing = _arrow_schema(table).names
    in_memory = isinstance(rows, pa.Table)
    on = sql.key_match(_D, "t", "s", spec.key_columns, null_safe=not in_memory or _has_null_key(rows, spec))
    metrics = (
        table.merge(rows, on, source_alias="s", target_alias="t", merge_schema=True, streamed_exec=not in_memory)
        .when_matched_update_all(predicate=sql.upsert_condition(_D, rows.schema.names, existing))
        .when_not_matched_insert_all()
        .execute()
    )
    return metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]


def _flag_deletes(table: DeltaTable, batch: LandedBatch, spec: EntitySpec, scope: DeleteScope, scratch: Scratch) -> int:
    files = _current_files(table)
    if not files:
        return 0
    flags = sql.DeleteFlags.of(batch, spec)
    values: dict[str, Any] = {"target": files}
    batch_rows = parents = None
    if batch.part_paths:
        batch_rows, values["parts"] = "read_parquet($parts)", [str(p) for p in batch.part_paths]
    if scope.kind == "parents":
        parents, values["parents"] = "read_parquet($parents)", str(batch.parents_path)
    target = "read_parquet($target, union_by_name = true)"
    query, params = sql.doomed_rows(_D, target, scope, flags=flags, batch_rows=batch_rows, parents=parents)
    values.update({p.name: _duck_value(p) for p in params})
    doomed = scratch.table(query, values)
    if doomed.num_rows == 0:
        return 0
    n = doomed.num_rows
    stamped = (
        doomed.append_column(DELETED, pa.repeat(pa.scalar(True), n))
        .append_column(BATCH_ID, pa.repeat(pa.scalar(batch.batch_id), n))
        .append_column(RUN_ID, pa.repeat(pa.scalar(batch.manifest.run_id), n))
        .append_column(EXTRACTED_AT, pa.repeat(pa.scalar(flags.deleted_at, pa.timestamp("us", tz="UTC")), n))
    )
    # Re-checked inside the merge: another writer may have touched a row since the query above.
    at, deleted = _D.quote(EXTRACTED_AT), _D.quote(DELETED)
    still_doomed = f"t.{at} <= s.{at} AND coalesce(t.{deleted}, false) = false"
    on = sql.key_match(_D, "t", "s", spec.key_columns, null_safe=_has_null_key(stamped, spec))
    metrics = (
        table.merge(stamped, on, source_alias="s", target_alias="t", streamed_exec=False)
        .when_matched_update({_D.quote(c): f"s.{_D.quote(c)}" for c in _STAMP_COLUMNS}, predicate=still_doomed)
        .execute()
    )
    return metrics["num_target_rows_updated"]


def _has_null_key(rows: pa.Table, spec: EntitySpec) -> bool:
    return any(rows.column(k).null_count for k in spec.key_columns)


def _current_files(table: DeltaTable) -> list[str]:
    """The table's live data files, refusing table features under which the files alone are not the rows."""
    protocol = table.protocol()
    metadata = table.metadata()
    if "deletionVectors" in (protocol.reader_features or []):
        raise SinkError(f"{table.table_uri} uses deletion vectors; its Parquet files alone are not its rows")
    if metadata.configuration.get("delta.columnMapping.mode", "none") != "none":
        raise SinkError(f"{table.table_uri} uses column mapping; its Parquet column names are not its columns")
    if metadata.partition_columns:
        raise SinkError(f"{table.table_uri} is partitioned; fo-assets tables are not")
    return table.file_uris()


def _read_file(path: str, schema: pa.Schema) -> pa.Table:
    """One data file in the table's current schema: columns added after it was written come back null."""
    parquet = pq.ParquetFile(path)
    present = set(parquet.schema_arrow.names)
    data = parquet.read(columns=[name for name in schema.names if name in present])
    return pa.Table.from_arrays(
        [data.column(f.name).cast(f.type) if f.name in present else pa.nulls(data.num_rows, f.type) for f in schema],
        schema=schema,
    )


def _row_count(table: DeltaTable) -> int:
    """The table's rows, from the statistics its log keeps of every current file (no data file is read)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0) if actions.num_rows else 0


def _arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def _columns(table: DeltaTable) -> list[tuple[str, str]]:
    return [(f.name, sql.column_type(f.type, f.name)) for f in _arrow_schema(table)]


def _nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


def _duck_value(param: sql.Param) -> Any:
    if param.value is None:
        return None
    if param.type == "DATE":
        return dt.date.fromisoformat(param.value)
    if param.type == "TIMESTAMP":
        return dt.datetime.fromisoformat(param.value)
    return param.value
