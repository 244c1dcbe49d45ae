"""The Databricks sink: stage a batch's Parquet parts in a Unity Catalog volume, MERGE them by key.

Per load: ``CREATE SCHEMA/VOLUME IF NOT EXISTS`` (once per sink), ``CREATE TABLE IF NOT EXISTS`` typed
from the batch with the table properties (``sql.table_properties``), a check of those properties on a
table an earlier release created (once per table and sink), a column probe, the uploads to
``/Volumes/<catalog>/<schema>/<volume>/<table>/<batch id>/`` (``parts/`` and, for line entities,
``scope/``), the MERGE, one delete-flag MERGE per complete scope. Counts come from the MERGE metrics the
warehouse returns. A batch whose columns the table cannot take is refused before anything is staged.

With ``keep_staged`` (``FO_LANDING_STORE=volume``, the default with Databricks) the staged folder is the
landing zone's durable copy: the manifest is staged beside the parts, the folder stays after the load
(the ledger keeps its manifest current and prunes it after the retention), and a replay of a batch
already there stages nothing again. Otherwise the folder is removed after a successful load (kept
when the load fails, for diagnosis; a replay overwrites it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import BinaryIO

import pyarrow as pa
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound

from fo_assets.catalog import EntitySpec
from fo_assets.landing import LandedBatch
from fo_assets.sinks import sql
from fo_assets.sinks.base import DEFAULT_RETAIN_HOURS, KeyProfile, LoadResult, check_loadable
from fo_assets.sinks.columns import check_column_names, check_column_types
from fo_assets.sinks.warehouse import StatementFailed, Warehouse
from fo_assets.sinks.workspace import (
    VolumeError,
    WorkspaceConnectionError,
    connect_workspace,
    download_file,
    list_folder,
    remove_folder,
    upload_file,
)

__all__ = ["DatabricksSink", "StatementFailed", "VolumeError", "WorkspaceConnectionError", "connect_workspace"]
log = logging.getLogger(__name__)


class DatabricksSink:
    """Loads batches into Unity Catalog tables: Files API uploads and MERGE through a SQL warehouse."""
    def __init__(
        self,
        workspace: WorkspaceClient,
        warehouse_id: str,
        catalog: str,
        schema: str,
        volume: str,
        keep_staged: bool = False,
        statement_timeout_s: float = 1800,
        retain_hours: int = DEFAULT_RETAIN_HOURS,
    ):
        for name in (catalog, schema, volume):
            sql.quote(name)
            sql.volume_path_part(name)
        self.workspace = workspace
        self.catalog, self.schema, self.volume = catalog, schema, volume
        self.keep_staged = keep_staged
        self.retain_hours = retain_hours
        self.properties = sql.table_properties(retain_hours)
        self.warehouse = Warehouse(workspace, warehouse_id, statement_timeout_s)
        self._location_ready = False
        self._properties_checked: set[str] = set()

    def table_name(self, spec: EntitySpec) -> str:
        """``catalog.schema.table``."""
        return self._table(spec).display

    def uri(self, spec: EntitySpec) -> str:
        """The table's page in the workspace's catalog explorer."""
        return f"{self.workspace.config.host}/explore/data/{self.catalog}/{self.schema}/{spec.table}"

    def _table(self, spec: EntitySpec) -> sql.TableRef:
        return sql.TableRef(self.catalog, self.schema, spec.table)

    def upsert(self, batch: LandedBatch, spec: EntitySpec) -> LoadResult:
        """Upload the batch to the volume and MERGE it into the table; flag deletes in its scopes.

        Raises:
            SinkError: an upload (VolumeError) or a statement (StatementFailed) failed; it names the batch, the
                table and the server's message.
            WorkspaceConnectionError: the workspace cannot be reached at all.
        """
        check_loadable(batch, spec)
        table = self._table(spec)
        context = f"{table.display} (batch {batch.batch_id})"
        self.ensure_location(context)
        schema = batch.arrow_schema()
        if schema is not None:
            check_column_names(batch, table.display, schema)
            self.warehouse.run(sql.create_table(table, schema, self.properties), context)
        existing = self._columns(table, context, must_exist=schema is not None)
        if existing is None:  # an empty batch and no table yet: nothing to insert, nothing to flag
            return LoadResult(table.display, self.uri(spec), 0, 0, 0, [], 0)
        if schema is not None:
            check_column_types(batch, table.display, schema, existing, adapts=True)
        self._ensure_properties(table, context)

        folder = self.batch_folder(spec.table, batch.batch_id)
        if not (self.keep_staged and batch.manifest.archive == folder):  # else: staged by an earlier attempt
            self._stage(batch, folder, context)
        parts = f"{folder}/parts" if batch.part_paths else None
        parents = f"{folder}/scope" if batch.parents_path.exists() else None

        inserted = updated = deleted = 0
        columns = list(existing)
        if schema is not None and parts:
            known = {name.lower() for name, _ in existing}
            table_columns = [c for c in schema.names if c.lower() in known]
            merge = sql.merge_batch(table, parts, keys=spec.key_columns, columns=schema.names, existing=table_columns)
            merged = self.warehouse.run(merge, context).first()
            inserted, updated = _count(merged, "num_inserted_rows"), _count(merged, "num_updated_rows")
            columns = _after_evolution(existing, schema)
        flags = sql.DeleteFlags.of(batch, spec)
        for scope in batch.manifest.delete_scopes:
            flagged = self.warehouse.run(sql.flag_deletes(table, scope, flags=flags, parts_folder=parts, parents_folder=parents), context).first()
            deleted += _count(flagged, "num_updated_rows")
        if not self.keep_staged:
            self._unstage(folder)
        rows = _count(self.warehouse.run(sql.count_rows(table), context).first(), "row_count")
        return LoadResult(table.display, self.uri(spec), inserted, updated, deleted, columns, rows)

    def read(self, spec: EntitySpec) -> pa.Table:
        """All current rows, fetched as Arrow streams from the warehouse's external links (an INLINE
        result is capped at 25 MiB, less than a ledger table)."""
        table = self._table(spec)
        return self.warehouse.read_arrow(sql.select_all(table), table.display)

    def profile(self, spec: EntitySpec) -> KeyProfile:
        """Live rows, duplicate keys and null keys, counted by the warehouse."""
        table = self._table(spec)
        row = self.warehouse.run(sql.profile_keys(table, spec.key_columns), table.display).first()
        return KeyProfile(_count(row, "live_rows"), _count(row, "duplicate_keys"), _count(row, "null_keys"))

    def maintain(self, spec: EntitySpec) -> dict[str, object]:
        """OPTIMIZE and VACUUM the table, setting its properties first if they lack."""
        table = self._table(spec)
        self._ensure_properties(table, table.display)  # a table no load touched since an upgrade
        self.warehouse.run(sql.optimize(table), table.display)
        self.warehouse.run(sql.vacuum(table, self.retain_hours), table.display)
        return {"table": table.display, "optimized": True, "vacuum_retain_hours": self.retain_hours}

    def ensure_location(self, context: str) -> None:
        """The schema and the volume exist (created once per sink)."""
        if self._location_ready:
            return
        self.warehouse.run(sql.create_schema(self.catalog, self.schema), context)
        self.warehouse.run(sql.create_volume(self.catalog, self.schema, self.volume), context)
        self._location_ready = True

    def _ensure_properties(self, table: sql.TableRef, context: str) -> None:
        """Set the table properties a table lacks (one created by an earlier release), once per sink: the
        change is a metadata commit, which fails every write running at the same time."""
        if table.display in self._properties_checked:
            return
        current: dict[str | None, str | None] = {k: v for k, v in self.warehouse.run(sql.show_properties(table), context).rows}
        missing = {k: v for k, v in self.properties.items() if (current.get(k) or "").lower() != v.lower()}
        if missing:
            log.info("setting %s on %s", ", ".join(missing), table.display)
            self.warehouse.run(sql.set_properties(table, missing), context)
        self._properties_checked.add(table.display)

    def _columns(self, table: sql.TableRef, context: str, must_exist: bool) -> list[tuple[str, str]] | None:
        try:
            probe = self.warehouse.run(sql.describe_columns(table), context)
        except StatementFailed as exc:
            if not must_exist and "TABLE_OR_VIEW_NOT_FOUND" in (exc.server_message or ""):
                return None
            raise
        return [(name, type_text.lower()) for name, type_text in probe.columns]

    def batch_folder(self, table: str, batch_id: str) -> str:
        """Where a batch is staged: ``/Volumes/<catalog>/<schema>/<volume>/<table>/<batch id>``."""
        return "/".join(["/Volumes", self.catalog, self.schema, self.volume, sql.volume_path_part(table),
                         sql.volume_path_part(batch_id)])

    def _stage(self, batch: LandedBatch, folder: str, context: str) -> None:
        """Upload the parts and the parents scope file; when the folder is kept, the manifest last, saying
        where its parts are (a new pod finds the batch by its manifest, so parts come first)."""
        for path in batch.part_paths:
            upload_file(self.workspace, path, f"{folder}/parts/{path.name}", context)
        if batch.parents_path.exists():
            upload_file(self.workspace, batch.parents_path, f"{folder}/scope/{batch.parents_path.name}", context)
        if self.keep_staged:
            batch.manifest.archive = folder
            batch.save()
            upload_file(self.workspace, batch.manifest_json(), f"{folder}/manifest.json", context)

    def _unstage(self, folder: str) -> None:
        try:
            remove_folder(self.workspace, folder)
        except VolumeError as exc:  # the load is done; a leftover staged folder costs storage only
            log.warning("could not remove the staged folder %s: %s", folder, exc)


class VolumeArchive:
    """The landing zone's durable copy: the batch folders a keeping sink stages in its volume."""

    def __init__(self, sink: DatabricksSink, tables: frozenset[str]):
        self.workspace, self._sink, self._tables = sink.workspace, sink, tables
        self.root = f"/Volumes/{sink.catalog}/{sink.schema}/{sink.volume}"
        # Before the first batch of a new schema is loaded, a run already shares its metadata cache here.
        sink.ensure_location("the landing archive")

    def folder(self, table: str, batch_id: str) -> str:
        return self._sink.batch_folder(table, batch_id)

    def put(self, source: bytes, path: str) -> None:
        upload_file(self.workspace, source, path, "the landing archive")

    def get(self, path: str, write: Callable[[BinaryIO], None]) -> None:
        try:
            download_file(self.workspace, path, write, "the landing archive")
        except VolumeError as exc:
            if isinstance(exc.__cause__, NotFound):
                raise FileNotFoundError(path) from None
            raise

    def batch_ids(self) -> list[tuple[str, str]]:
        # Only the catalog's tables: the volume may hold other teams' folders.
        tables = [name for name, is_directory in list_folder(self.workspace, self.root)
                  if is_directory and name in self._tables]
        return [(table, name) for table in tables
                for name, is_directory in list_folder(self.workspace, f"{self.root}/{table}") if is_directory]

    def remove(self, table: str, batch_id: str) -> None:
        remove_folder(self.workspace, self.folder(table, batch_id))


def _after_evolution(existing: list[tuple[str, str]], schema: pa.Schema) -> list[tuple[str, str]]:
    """The table's columns after MERGE WITH SCHEMA EVOLUTION: the batch's new columns added, and the
    columns type widening widened to the batch's type."""
    incoming = {f.name.lower(): (f.name, sql.column_type(f.type, f.name)) for f in schema}
    columns = []
    for name, kind in existing:
        new = incoming.pop(name.lower(), (name, kind))[1]
        columns.append((name, new if sql.widens(kind, new) else kind))
    return columns + list(incoming.values())


def _count(metrics: dict[str, str | None], name: str) -> int:
    value = metrics.get(name)
    return int(value) if value is not None else 0
