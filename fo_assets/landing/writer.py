"""Writing a batch: decoded pages streamed into rotated Parquet parts with the audit columns, then sealed."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fo_assets.folders import private_folders
from fo_assets.landing.manifest import (
    AUDIT_COLUMNS,
    AUDIT_FIELDS,
    BATCH_ID,
    DELETED,
    EXTRACTED_AT,
    RUN_ID,
    SOURCE_URL,
    LandedBatch,
    Manifest,
    PartInfo,
)

# Parts rotate at this many bytes of Parquet so one file never holds a whole year of ledger.
DEFAULT_PART_BYTES = 128 * 1024 * 1024


class BatchWriter:
    """Streams decoded pages into rotated Parquet parts with the audit columns, then seals a manifest.

    Memory stays at one open row group plus the page being written, whatever the batch size.
    """

    def __init__(self, folder: Path, manifest: Manifest, part_bytes: int = DEFAULT_PART_BYTES):
        self.batch = LandedBatch(folder, manifest)
        self._part_bytes = part_bytes
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._part_rows = 0
        private_folders(folder / "parts")
        self.batch.save()

    @property
    def manifest(self) -> Manifest:
        """The manifest of the batch being written."""
        return self.batch.manifest

    def write(self, data: pa.RecordBatch | pa.Table, source_url: str, extracted_at: dt.datetime, company: str | None) -> None:
        """Append one decoded page. ``data`` has the entity's columns; the audit columns are added here."""
        if data.num_rows == 0:
            return
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        table = _with_audit(table, self.manifest, source_url, extracted_at)
        if self._schema is None:
            self._schema = table.schema
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        if self._writer is None:
            self._open_part()
        assert self._writer is not None
        self._writer.write_table(table)
        self._part_rows += table.num_rows
        for key, rows in _rows_by_company(table, self.manifest.company_field, company).items():
            self.manifest.rows_by_company[key] = self.manifest.rows_by_company.get(key, 0) + rows
        self.manifest.row_count += table.num_rows
        if self._writer_bytes() >= self._part_bytes:
            self._close_part()

    def write_parents(self, parents: pa.Table) -> None:
        """Record the headers whose lines were read completely (the delete scope of a line entity)."""
        path = self.batch.parents_path
        private_folders(path.parent)
        pq.write_table(parents, path, compression="zstd")

    def seal(self) -> LandedBatch:
        """Close the last part and seal the batch as landed."""
        self._close_part()
        self.manifest.status = "landed"
        self.batch.save()
        return self.batch

    def fail(self, error: str) -> None:
        """A read that did not finish: keep what was written for diagnosis, but never load it."""
        self._close_part()
        self.manifest.status = "incomplete"
        self.manifest.error = error
        self.manifest.delete_scopes = []
        self.batch.save()

    def _open_part(self) -> None:
        index = len(self.manifest.parts)
        rel = f"parts/part-{index:05d}.parquet"
        self._current = rel
        self._writer = pq.ParquetWriter(
            self.batch.folder / rel,
            self._schema,
            compression="zstd",
            # Spark rejects nanosecond timestamps; our schema is microseconds already, this keeps it so.
            coerce_timestamps="us",
            allow_truncated_timestamps=False,
        )
        self._part_rows = 0

    def _writer_bytes(self) -> int:
        path = self.batch.folder / self._current
        return path.stat().st_size if path.exists() else 0

    def _close_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        path = self.batch.folder / self._current
        self.manifest.parts.append(PartInfo(self._current, self._part_rows, path.stat().st_size, _sha256(path)))
        self.batch.save()


def _rows_by_company(table: pa.Table, company_field: str | None, company: str | None) -> dict[str, int]:
    """Rows per company: from the company column where the rows carry one (a read of lines that are not
    company-scoped in F&O spans companies), else all of them for the company the read was for."""
    if company_field is None or company_field not in table.column_names:
        return {company or "": table.num_rows}
    counts = pc.value_counts(table.column(company_field)).to_pylist()
    return {row["values"] or "": row["counts"] for row in counts}


def _with_audit(table: pa.Table, manifest: Manifest, source_url: str, extracted_at: dt.datetime) -> pa.Table:
    n = table.num_rows
    for f in table.schema:
        if f.name in AUDIT_COLUMNS:
            raise ValueError(f"{manifest.entity_set}: field {f.name!r} collides with an audit column")
    values = {
        BATCH_ID: manifest.batch_id,
        EXTRACTED_AT: extracted_at.astimezone(dt.UTC),
        RUN_ID: manifest.run_id,
        SOURCE_URL: source_url,
        DELETED: False,
    }
    for audit_field in AUDIT_FIELDS:
        table = table.append_column(audit_field, pa.repeat(pa.scalar(values[audit_field.name], audit_field.type), n))
    return table


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


