"""What a landed batch is: its manifest (what was asked of F&O, what came back, what became of the load),
its folder, and the audit columns every landed row carries."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets as _random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

# The audit columns, documented in the README ("How a load works"); code names them by these constants.
BATCH_ID = "_fo_batch_id"  # the batch that landed (or flagged deleted) this row version
EXTRACTED_AT = "_fo_extracted_at"  # when F&O returned it (UTC; a deletion stamps its own instant)
RUN_ID = "_fo_run_id"  # the Dagster run of that batch
SOURCE_URL = "_fo_source_url"  # the OData request that returned it (no secrets: tokens travel in headers)
DELETED = "_fo_deleted"  # true once a complete read of the row's scope no longer returned its key
AUDIT_FIELDS: tuple[pa.Field, ...] = (
    pa.field(BATCH_ID, pa.string(), nullable=False),
    pa.field(EXTRACTED_AT, pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field(RUN_ID, pa.string(), nullable=False),
    pa.field(SOURCE_URL, pa.string(), nullable=False),
    pa.field(DELETED, pa.bool_(), nullable=False),
)
AUDIT_COLUMNS = tuple(f.name for f in AUDIT_FIELDS)

# extracting: being read (a crash leaves it so); incomplete: the read failed, never loaded; landed: read
# completely, not yet loaded; loaded; failed: the load failed, replayable from the parts.
Status = Literal["extracting", "incomplete", "landed", "loaded", "failed"]
Mode = Literal["window", "snapshot", "lines", "keys"]

def new_batch_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique: every staged batch needs its own path (COPY/read_files skip seen names)."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{_random.token_hex(4)}"


@dataclass
class PartInfo:
    """One Parquet part of a batch: its path, rows, size and checksum."""
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
    """What a landed batch holds and where it stands: entity, window, parts, status and stats."""
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
        """A manifest from its JSON form."""
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
        """The batch's id."""
        return self.manifest.batch_id

    @property
    def part_paths(self) -> list[Path]:
        """The paths of the batch's Parquet parts."""
        return [self.folder / p.path for p in self.manifest.parts]

    @property
    def parents_path(self) -> Path:
        """Where the headers read completely are kept (line entities)."""
        return self.folder / "scope" / "parents.parquet"

    def arrow_schema(self) -> pa.Schema | None:
        """The batch's Arrow schema, read from its first part (None without parts)."""
        paths = self.part_paths
        return pq.read_schema(paths[0]) if paths else None

    @property
    def local_files(self) -> list[Path]:
        """The files a load reads: the parts, and the parents scope of a line entity."""
        scoped = any(scope.kind == "parents" for scope in self.manifest.delete_scopes)
        return self.part_paths + ([self.parents_path] if scoped else [])

    def save(self) -> None:
        """Write the manifest atomically."""
        self.manifest.updated_at = _now_iso()
        _write_json_atomic(self.folder / "manifest.json", asdict(self.manifest))

    def manifest_json(self) -> bytes:
        """The manifest as JSON bytes."""
        return _json_bytes(asdict(self.manifest))


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


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
