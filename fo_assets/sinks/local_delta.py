"""The local sink: one Delta table per entity under ``<root>/<table>``, merged with delta-rs.

DuckDB runs the two set queries (newest row per key, rows a delete scope flags) over the Parquet files
with the SQL of ``sinks.sql``; delta-rs does the writing. Tables are read through their current data
files with pyarrow: deltalake's own ``to_pyarrow_table()``/``to_pyarrow_dataset()`` make the process
abort at interpreter exit about half the time (deltalake 1.6.x), which would fail CLI runs at random.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from fo_assets.catalog import EntitySpec
from fo_assets.landing import DeleteScope, LandedBatch
from fo_assets.sinks import sql
from fo_assets.sinks.base import DEFAULT_RETAIN_HOURS, KeyProfile, LoadResult, SinkError, check_loadable

_D = sql.DUCKDB
_STAMP_COLUMNS = ("_fo_deleted", "_fo_batch_id", "_fo_run_id", "_fo_extracted_at")


class LocalDeltaSink:
    def __init__(self, root: Path, retain_hours: int = DEFAULT_RETAIN_HOURS):
        self.root = Path(root).resolve()
        self.retain_hours = retain_hours

    def table_name(self, spec: EntitySpec) -> str:
        return spec.table

    def uri(self, spec: EntitySpec) -> str:
        return self._path(spec).as_uri()

    def _path(self, spec: EntitySpec) -> Path:
        return self.root / spec.table

    def upsert(self, batch: LandedBatch, spec: EntitySpec) -> LoadResult:
        check_loadable(batch, spec)
        path = self._path(spec)
        try:
            inserted = updated = deleted = 0
            if batch.part_paths:
                rows = _newest_per_key(batch, spec)
                inserted, updated = _merge(_open_or_create(path, rows.schema), rows, spec)
            if DeltaTable.is_deltatable(str(path)):
                for scope in batch.manifest.delete_scopes:
                    deleted += _flag_deletes(DeltaTable(str(path)), batch, spec, scope)
                columns = _columns(DeltaTable(str(path)))
            else:  # an empty batch and no table yet: nothing to insert, nothing to flag
                columns = []
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"loading batch {batch.batch_id} into local Delta table {path} failed: {exc}") from exc
        return LoadResult(spec.table, self.uri(spec), inserted, updated, deleted, columns)

    def read(self, spec: EntitySpec) -> pa.Table:
        path = self._path(spec)
        if not DeltaTable.is_deltatable(str(path)):
            raise SinkError(f"no local Delta table for {spec.entity_set} at {path}: nothing has been loaded yet")
        table = DeltaTable(str(path))
        schema = _arrow_schema(table)
        files = _current_files(table)
        return pa.concat_tables([_read_file(uri, schema) for uri in files]) if files else schema.empty_table()

    def profile(self, spec: EntitySpec) -> KeyProfile:
        files = _current_files(DeltaTable(str(self._path(spec))))
        if not files:
            return KeyProfile(0, 0, 0)
        source = "read_parquet($files, union_by_name = true)"
        query = sql.key_profile(sql.DUCKDB, source, spec.key_columns)
        live, duplicates, nulls = _duckdb().execute(query, {"files": files}).fetchone()
        return KeyProfile(int(live), int(duplicates), int(nulls))

    def maintain(self, spec: EntitySpec) -> dict[str, object]:
        table = DeltaTable(str(self._path(spec)))
        compacted = table.optimize.compact()
        vacuumed = table.vacuum(retention_hours=self.retain_hours, dry_run=False, enforce_retention_duration=True)
        return {
            "table": spec.table,
            "files_added": compacted.get("numFilesAdded", 0),
            "files_removed": compacted.get("numFilesRemoved", 0),
            "files_vacuumed": len(vacuumed),
            "retain_hours": self.retain_hours,
        }


def _newest_per_key(batch: LandedBatch, spec: EntitySpec) -> pa.Table:
    schema = batch.arrow_schema()
    assert schema is not None
    query = sql.newest_per_key(_D, "read_parquet($parts)", schema.names, spec.key_columns)
    with _duckdb() as con:
        rows = con.sql(query, params={"parts": [str(p) for p in batch.part_paths]}).to_arrow_table()
    return rows.cast(_nullable(schema))


def _open_or_create(path: Path, schema: pa.Schema) -> DeltaTable:
    if DeltaTable.is_deltatable(str(path)):
        return DeltaTable(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    return DeltaTable.create(str(path), schema=schema, configuration={"delta.enableChangeDataFeed": "true"})


def _merge(table: DeltaTable, rows: pa.Table, spec: EntitySpec) -> tuple[int, int]:
    existing = _arrow_schema(table).names
    on = sql.key_match(_D, "t", "s", spec.key_columns)
    metrics = (
        table.merge(rows, on, source_alias="s", target_alias="t", merge_schema=True)
        .when_matched_update_all(predicate=sql.upsert_condition(_D, rows.schema.names, existing))
        .when_not_matched_insert_all()
        .execute()
    )
    return metrics["num_target_rows_inserted"], metrics["num_target_rows_updated"]


def _flag_deletes(table: DeltaTable, batch: LandedBatch, spec: EntitySpec, scope: DeleteScope) -> int:
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
    query, params = sql.doomed_rows(_D, target, scope, flags, batch_rows, parents)
    values.update({p.name: _duck_value(p) for p in params})
    with _duckdb() as con:
        doomed = con.sql(query, params=values).to_arrow_table()
    if doomed.num_rows == 0:
        return 0
    n = doomed.num_rows
    stamped = (
        doomed.append_column("_fo_deleted", pa.repeat(pa.scalar(True), n))
        .append_column("_fo_batch_id", pa.repeat(pa.scalar(batch.batch_id), n))
        .append_column("_fo_run_id", pa.repeat(pa.scalar(batch.manifest.run_id), n))
        .append_column("_fo_extracted_at", pa.repeat(pa.scalar(flags.deleted_at, pa.timestamp("us", tz="UTC")), n))
    )
    # Re-checked inside the merge: another writer may have touched a row since the query above.
    at, deleted = _D.quote("_fo_extracted_at"), _D.quote("_fo_deleted")
    still_doomed = f"t.{at} <= s.{at} AND coalesce(t.{deleted}, false) = false"
    metrics = (
        table.merge(stamped, sql.key_match(_D, "t", "s", spec.key_columns), source_alias="s", target_alias="t")
        .when_matched_update({_D.quote(c): f"s.{_D.quote(c)}" for c in _STAMP_COLUMNS}, predicate=still_doomed)
        .execute()
    )
    return metrics["num_target_rows_updated"]


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


def _arrow_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def _columns(table: DeltaTable) -> list[tuple[str, str]]:
    return [(f.name, sql.column_type(f.type, f.name)) for f in _arrow_schema(table)]


def _nullable(schema: pa.Schema) -> pa.Schema:
    # Tables evolve (a column may be absent from later batches), so no column is NOT NULL.
    return pa.schema([f.with_nullable(True) for f in schema])


def _duck_value(param: sql.Param) -> Any:
    if param.value is None:
        return None
    if param.type == "DATE":
        return dt.date.fromisoformat(param.value)
    if param.type == "TIMESTAMP":
        return dt.datetime.fromisoformat(param.value)
    return param.value


def _duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con
