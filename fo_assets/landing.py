"""The landing zone: every extracted batch as Parquet parts plus a manifest, and the ledger over them.

A batch is what one run read of one entity: the Parquet parts are the audit trail and the replay
source, the manifest says what was asked of F&O, what came back and what became of the load. Layout::

    <home>/landing/<table>/<batch id>/manifest.json
    <home>/landing/<table>/<batch id>/parts/part-00000.parquet ...
    <home>/landing/<table>/<batch id>/scope/parents.parquet      (line entities: headers read whole)

Parts live in their own folder because Databricks' ``read_files`` reads every file of a folder and
a manifest beside them would break the MERGE.

This folder is the working copy. With an ``Archive`` (production: the batch folders a Databricks load
stages in its Unity Catalog volume, ``FO_LANDING_STORE=volume``) every batch that reached the archive
outlives the machine: the ledger mirrors each status change there, ``restore`` brings the manifests
back on a new machine, and a replay fetches the parts back, checked against the manifest's sha256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets as _random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

AUDIT_FIELDS: tuple[pa.Field, ...] = (
    pa.field("_fo_batch_id", pa.string(), nullable=False),
    pa.field("_fo_extracted_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("_fo_run_id", pa.string(), nullable=False),
    pa.field("_fo_source_url", pa.string(), nullable=False),
    pa.field("_fo_deleted", pa.bool_(), nullable=False),
)
AUDIT_COLUMNS = tuple(f.name for f in AUDIT_FIELDS)

# extracting: being read (a crash leaves it so); incomplete: the read failed, never loaded; landed: read
# completely, not yet loaded; loaded; failed: the load failed, replayable from the parts.
Status = Literal["extracting", "incomplete", "landed", "loaded", "failed"]
Mode = Literal["window", "snapshot", "lines", "keys"]

# Parts rotate at this many bytes of Parquet so one file never holds a whole year of ledger.
DEFAULT_PART_BYTES = 128 * 1024 * 1024


def new_batch_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique: every staged batch needs its own path (COPY/read_files skip seen names)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{_random.token_hex(4)}"


@dataclass
class PartInfo:
    path: str  # relative to the batch folder
    rows: int
    bytes: int
    sha256: str


@dataclass
class DeleteScope:
    """A scope read completely in this batch: target rows inside it whose key is absent are deleted.

    kind ``company``: every row of ``company`` (None for shared entities), a snapshot read.
    kind ``window``:  rows of ``company`` with ``start <= field < end`` (ISO dates), a windowed read.
    kind ``parents``: lines whose (company, parent keys) appear in the batch's ``scope/parents.parquet``.
    """

    kind: Literal["company", "window", "parents"]
    company: str | None = None
    field: str | None = None
    start: str | None = None
    end: str | None = None


@dataclass
class Manifest:
    batch_id: str
    entity_set: str
    table: str
    run_id: str
    mode: Mode
    key_columns: list[str]
    company_field: str | None
    companies: list[str]
    window: list[str] | None = None  # [start, end) ISO dates
    queries: list[str] = field(default_factory=list)  # first URL of each query, no secrets
    parts: list[PartInfo] = field(default_factory=list)
    row_count: int = 0
    rows_by_company: dict[str, int] = field(default_factory=dict)
    # Rows per day (ISO date) of the entity's window field, or of the header's for lines: a day's count.
    rows_by_day: dict[str, int] = field(default_factory=dict)
    delete_scopes: list[DeleteScope] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # pages, requests, throttled, bytes, seconds
    # Per company: how its reads ended (queries, rows, distinct keys, F&O's count of the multi-page ones)
    # and which were incomplete: a company with an incomplete read flags no deletes.
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: list[dict[str, str]] = field(default_factory=list)  # [{name, type}] for people to read
    removed_fields: list[str] = field(default_factory=list)
    status: Status = "extracting"
    error: str | None = None
    load_counts: dict[str, int] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    archive: str | None = None  # the archive folder holding this batch's parts, once they reached it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["parts"] = [PartInfo(**p) for p in data.get("parts", [])]
        data["delete_scopes"] = [DeleteScope(**s) for s in data.get("delete_scopes", [])]
        return cls(**data)


@dataclass
class LandedBatch:
    """What an entity asset returns and the IO manager loads: a batch folder and its manifest."""

    folder: Path
    manifest: Manifest

    @property
    def batch_id(self) -> str:
        return self.manifest.batch_id

    @property
    def part_paths(self) -> list[Path]:
        return [self.folder / p.path for p in self.manifest.parts]

    @property
    def parents_path(self) -> Path:
        return self.folder / "scope" / "parents.parquet"

    def arrow_schema(self) -> pa.Schema | None:
        paths = self.part_paths
        return pq.read_schema(paths[0]) if paths else None

    @property
    def local_files(self) -> list[Path]:
        """The files a load reads: the parts, and the parents scope of a line entity."""
        scoped = any(scope.kind == "parents" for scope in self.manifest.delete_scopes)
        return self.part_paths + ([self.parents_path] if scoped else [])

    def save(self) -> None:
        self.manifest.updated_at = _now_iso()
        _write_json_atomic(self.folder / "manifest.json", asdict(self.manifest))

    def manifest_json(self) -> bytes:
        return _json_bytes(asdict(self.manifest))


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
        (folder / "parts").mkdir(parents=True, exist_ok=True)
        self.batch.save()

    @property
    def manifest(self) -> Manifest:
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
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(parents, path, compression="zstd")

    def seal(self) -> LandedBatch:
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
        "_fo_batch_id": manifest.batch_id,
        "_fo_extracted_at": extracted_at.astimezone(dt.timezone.utc),
        "_fo_run_id": manifest.run_id,
        "_fo_source_url": source_url,
        "_fo_deleted": False,
    }
    for audit_field in AUDIT_FIELDS:
        table = table.append_column(audit_field, pa.repeat(pa.scalar(values[audit_field.name], audit_field.type), n))
    return table


class Archive(Protocol):
    """Where batch folders outlive this machine, laid out like the landing zone: ``<table>/<batch id>/``.
    Paths are full archive paths, as ``folder`` makes them; other folders under ``root`` (not named for a
    table) hold files every machine shares."""

    root: str

    def folder(self, table: str, batch_id: str) -> str: ...

    def put(self, source: bytes, path: str) -> None:
        """Write ``source`` to ``path``, replacing it."""
        ...

    def get(self, path: str, write: Callable[[BinaryIO], None]) -> None:
        """Stream the file at ``path`` into ``write``; ``FileNotFoundError`` when there is none."""
        ...

    def batch_ids(self) -> list[tuple[str, str]]:
        """(table, batch id) of every batch folder in the archive."""
        ...

    def remove(self, table: str, batch_id: str) -> None: ...


class ArchiveError(RuntimeError):
    """An archived batch could not be brought back; names the batch and what was wrong."""


def read_archived(archive: Archive, path: str) -> bytes | None:
    """A whole (small) archived file, or None when there is none."""
    buffer = bytearray()
    try:
        archive.get(path, lambda body: buffer.extend(body.read()))
    except FileNotFoundError:
        return None
    return bytes(buffer)


class SharedFolder:
    """Files by name in one folder of the archive: caches every machine shares."""

    def __init__(self, archive: Archive, name: str):
        self._archive, self._folder = archive, f"{archive.root}/{name}"

    def read(self, name: str) -> bytes | None:
        return read_archived(self._archive, f"{self._folder}/{name}")

    def write(self, name: str, data: bytes) -> None:
        self._archive.put(data, f"{self._folder}/{name}")


class Ledger:
    """The batch ledger: manifests under ``<home>/landing``, queried and updated in place, and mirrored
    to the archive for every batch that reached it."""

    def __init__(self, home: Path, archive: Archive | None = None):
        self.root = Path(home) / "landing"
        self.archive = archive

    def new_writer(self, manifest: Manifest, part_bytes: int = DEFAULT_PART_BYTES) -> BatchWriter:
        manifest.created_at = manifest.created_at or _now_iso()
        return BatchWriter(self.root / manifest.table / manifest.batch_id, manifest, part_bytes)

    def batches(self, table: str | None = None, status: Status | None = None) -> list[LandedBatch]:
        """Batches oldest first (batch ids sort by creation time)."""
        pattern = f"{table}/*/manifest.json" if table else "*/*/manifest.json"
        found = []
        for path in sorted(self.root.glob(pattern), key=lambda p: p.parent.name):
            batch = LandedBatch(path.parent, Manifest.from_json(json.loads(path.read_text())))
            if status is None or batch.manifest.status == status:
                found.append(batch)
        return found

    def get(self, batch_id: str) -> LandedBatch:
        for path in self.root.glob(f"*/{batch_id}/manifest.json"):
            return LandedBatch(path.parent, Manifest.from_json(json.loads(path.read_text())))
        raise KeyError(f"no landed batch {batch_id!r} under {self.root}")

    def mark_loaded(self, batch: LandedBatch, counts: dict[str, int]) -> None:
        batch.manifest.status = "loaded"
        batch.manifest.error = None
        batch.manifest.load_counts = dict(counts)
        self._save(batch)

    def mark_failed(self, batch: LandedBatch, error: str) -> None:
        batch.manifest.status = "failed"
        batch.manifest.error = error
        self._save(batch)

    def _save(self, batch: LandedBatch) -> None:
        batch.save()
        if self.archive is None or batch.manifest.archive is None:
            return  # its parts never reached the archive: a manifest there alone could not be replayed
        try:
            self.archive.put(batch.manifest_json(), f"{batch.manifest.archive}/manifest.json")
        except Exception as exc:  # the outcome stands; the archive's copy says an earlier status, which at
            # worst makes a new machine replay a loaded batch once more (loads are idempotent)
            log.warning("batch %s of %s: the archived manifest was not updated: %s",
                        batch.batch_id, batch.manifest.table, exc)

    def restore(self) -> list[str]:
        """Bring back the manifests of archived batches this machine lacks, or holds unloaded (another
        machine may have loaded them since): the ledger as a new pod sees it. Returns their batch ids."""
        if self.archive is None:
            return []
        restored = []
        for table, batch_id in self.archive.batch_ids():
            path = self.root / table / batch_id / "manifest.json"
            if path.exists() and json.loads(path.read_text()).get("status") in ("loaded", "extracting"):
                continue
            archived = self._archived_manifest(table, batch_id)
            if archived is None:
                continue  # parts whose upload was cut short: never a batch anyone could replay
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_bytes_atomic(path, archived)
            restored.append(batch_id)
        return restored

    def _archived_manifest(self, table: str, batch_id: str) -> bytes | None:
        assert self.archive is not None
        return read_archived(self.archive, f"{self.archive.folder(table, batch_id)}/manifest.json")

    def fetch(self, batch: LandedBatch) -> None:
        """Make sure the files a load reads are on this disk, fetching missing ones from the archive and
        checking each part against the size and sha256 its manifest recorded."""
        missing = [path for path in batch.local_files if not path.exists()]
        where = batch.manifest.archive
        if not missing or where is None:
            return  # never archived: the files are here, or loading says which is missing
        if self.archive is None:
            raise ArchiveError(
                f"batch {batch.batch_id} of {batch.manifest.table}: {missing[0]} is missing here and the batch is "
                f"archived in {where}, but no archive is configured (FO_LANDING_STORE=local?)"
            )
        recorded = {batch.folder / part.path: part for part in batch.manifest.parts}
        for path in missing:
            path.parent.mkdir(parents=True, exist_ok=True)
            relative = path.relative_to(batch.folder).as_posix()
            tmp = path.with_name(path.name + ".fetching")
            with open(tmp, "wb") as out:
                self.archive.get(f"{where}/{relative}", lambda body: shutil.copyfileobj(body, out, 1 << 20))
            part = recorded.get(path)
            if part is not None and (tmp.stat().st_size, _sha256(tmp)) != (part.bytes, part.sha256):
                tmp.unlink()
                raise ArchiveError(
                    f"batch {batch.batch_id} of {batch.manifest.table}: the archived {where}/{relative} does not "
                    f"match its manifest (expected {part.bytes} bytes, sha256 {part.sha256[:12]}...): refusing to "
                    "load it; re-run its partition instead"
                )
            os.replace(tmp, path)

    def purge(self, older_than: dt.timedelta, now: dt.datetime | None = None) -> list[str]:
        """Delete batches older than the retention that are loaded (or were incomplete reads, never
        loadable), here and in the archive; failed and unloaded ones are always kept."""
        now = now or dt.datetime.now(dt.timezone.utc)

        def expired(manifest: Manifest) -> bool:
            created = dt.datetime.fromisoformat(manifest.created_at)
            return manifest.status in ("loaded", "incomplete") and now - created > older_than

        removed = []
        for batch in self.batches():
            if expired(batch.manifest):
                shutil.rmtree(batch.folder)
                removed.append(batch.batch_id)
        if self.archive is None:
            return removed
        removed_here = set(removed)
        for table, batch_id in self.archive.batch_ids():
            if batch_id not in removed_here:
                if _created(batch_id) > now - older_than:
                    continue  # too young to expire, whatever its status
                archived = self._archived_manifest(table, batch_id)
                # No manifest: the parts of an upload cut short, which nothing will ever read.
                if archived is not None and not expired(Manifest.from_json(json.loads(archived))):
                    continue
                removed.append(batch_id)
            self.archive.remove(table, batch_id)
        return removed


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _created(batch_id: str) -> dt.datetime:
    """When a batch began, from its id (see ``new_batch_id``); the epoch for an id of another shape, so
    its manifest decides."""
    try:
        stamp = dt.datetime.strptime(batch_id.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ")
    except ValueError:
        stamp = dt.datetime(1970, 1, 1)
    return stamp.replace(tzinfo=dt.timezone.utc)


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, indent=1, default=str).encode()


def _write_json_atomic(path: Path, data: Any) -> None:
    _write_bytes_atomic(path, _json_bytes(data))


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
