"""Rows into Parquet files, and files committed as a new Delta table, in bounded memory.

delta-rs's writer buffers whole files (and more) in memory: a million ledger rows cost it over 300 MB.
pyarrow's ``ParquetWriter`` holds one row group; DuckDB, capped in memory, spills its joins and sorts to
a scratch folder. Files are committed with delta-rs's transaction API (``numRecords`` as their stats:
min/max statistics are left out, which only means no file is ever skipped by them).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.transaction import AddAction, create_table_with_add_actions

if TYPE_CHECKING:
    import duckdb

# Rows move in batches of about this many values (a wide vendor batch holds 1,024 rows, a ledger batch
# ~9,700): enough for fast column operations, small enough to keep a few in flight.
_CELLS_PER_BATCH = 1 << 18
# DuckDB's own limit (it spills beyond it); its process footprint runs somewhat above.
_DUCKDB_MEMORY = "128MB"
_FILE_BYTES = 128 * 1024 * 1024


def batch_rows(schema: pa.Schema) -> int:
    """Rows per Arrow batch for ``schema``, so a batch holds about the same number of cells."""
    return max(1024, _CELLS_PER_BATCH // max(1, len(schema)))


def read_files(paths: Iterable[str], schema: pa.Schema) -> pa.RecordBatchReader:
    """The rows of Parquet files in ``schema``, a batch at a time.

    Without ``pre_buffer=False`` and ``use_threads=False`` pyarrow reads ahead whole row groups on its I/O
    threads: a 35 MB file of a million ledger rows then costs over 200 MB to read.
    """
    size = batch_rows(schema)

    def batches() -> Iterable[pa.RecordBatch]:
        for path in paths:
            parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            for batch in parquet.iter_batches(batch_size=size, use_threads=False):
                yield batch.cast(schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def write_files(rows: pa.RecordBatchReader, folder: Path, max_bytes: int | None = _FILE_BYTES) -> list[tuple[str, int]]:
    """(file name, rows) of the Parquet files ``rows`` were written to in ``folder``, a new file every
    ``max_bytes`` (None: one file); no file when there are no rows."""
    written: list[tuple[str, int]] = []
    writer: pq.ParquetWriter | None = None
    name, count = "", 0
    for batch in rows:
        if batch.num_rows == 0:
            continue
        if writer is None:
            name, count = f"part-{uuid.uuid4()}.zstd.parquet", 0
            writer = pq.ParquetWriter(folder / name, rows.schema, compression="zstd")
        writer.write_batch(batch)
        count += batch.num_rows
        # Arrow's allocator keeps freed blocks for reuse; batch after batch they add up to several times
        # what is live (60 MB against 12 copying a ledger file), so they go back to the system each time.
        pa.default_memory_pool().release_unused()
        if max_bytes is not None and (folder / name).stat().st_size >= max_bytes:
            writer.close()
            written.append((name, count))
            writer = None
    if writer is not None:
        writer.close()
        written.append((name, count))
    return written


def copy_files(paths: Iterable[str], folder: Path) -> list[tuple[str, int]]:
    """(file name, rows) of copies of Parquet files in ``folder``: a batch whose parts already are the
    rows to load goes in as it is, with no decoding and re-encoding (and next to no memory)."""
    copied = []
    for path in paths:
        name = f"part-{uuid.uuid4()}.zstd.parquet"
        shutil.copyfile(path, folder / name)
        copied.append((name, pq.read_metadata(folder / name).num_rows))
    return copied


def create_table(path: Path, schema: pa.Schema, files: list[tuple[str, int]], configuration: Mapping[str, str]) -> bool:
    """Commit ``files`` (names in ``path``, with their row counts) as the first version of a new table.

    False, with the files removed, when another writer creates the table first: the caller merges instead.
    delta-rs alone does not make that safe: a create that loses the race for version 0 is retried as
    version 1, a second CREATE TABLE whose files are a second copy of the rows. So a creator first claims
    the log folder with ``mkdir``, which exactly one process wins.
    """
    if not _claim_log(path):
        _remove(path, files)
        return False
    actions = []
    for name, count in files:
        stat = (path / name).stat()
        actions.append(AddAction(name, stat.st_size, {}, int(stat.st_mtime * 1000), True,
                                 json.dumps({"numRecords": count})))
    try:
        create_table_with_add_actions(str(path), Schema.from_arrow(schema), actions, mode="error",
                                      configuration=dict(configuration))
    except BaseException:
        _remove(path, files)
        _release_claim(path)
        raise
    return True


# How long a claimed log folder may stay without a first version before its creator counts as dead.
_CLAIM_STALE_S = 60.0


def _claim_log(path: Path) -> bool:
    """True when this process may create the table; False once another process has created it."""
    log = path / "_delta_log"
    while True:
        try:
            log.mkdir()
            return True
        except FileExistsError:
            pass
        if DeltaTable.is_deltatable(str(path)):
            return False
        try:
            claimed_for = time.time() - log.stat().st_mtime
        except FileNotFoundError:
            continue  # released by a creator that failed: claim it again
        if claimed_for > _CLAIM_STALE_S:
            _release_claim(path)  # its creator died before committing; empty, so nothing is lost
        else:
            time.sleep(0.05)  # another process is creating it: merge into what it commits


def _release_claim(path: Path) -> None:
    try:
        (path / "_delta_log").rmdir()  # only ever succeeds while no version was written
    except OSError:
        pass


def _remove(path: Path, files: list[tuple[str, int]]) -> None:
    for name, _ in files:
        (path / name).unlink(missing_ok=True)


class Scratch:
    """A private folder for spilled and intermediate rows, and DuckDB connections capped in memory.

    Each query gets a connection of its own, closed when its rows have been read: DuckDB keeps what its
    buffer pool grew to until then, and the next step (often delta-rs) needs that memory.
    """

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        # Beside the tables, not in /tmp: spilled rows are business data, kept under the same access.
        self.folder = Path(tempfile.mkdtemp(prefix=".load-", dir=root))

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a DuckDB query."""
        with self._connect() as con:
            return con.execute(query, params).fetchall()

    def table(self, query: str, params: dict[str, Any]) -> pa.Table:
        """The result of a DuckDB query as an Arrow table."""
        with self._connect() as con:
            return con.sql(query, params=params).to_arrow_table()

    def reader(self, query: str, params: dict[str, Any], schema: pa.Schema) -> pa.RecordBatchReader:
        """A query's rows in ``schema``, streamed; the connection closes when the last batch is read."""
        def batches() -> Iterator[pa.RecordBatch]:
            with self._connect() as con:
                for batch in con.sql(query, params=params).to_arrow_reader(batch_rows(schema)):
                    yield batch.cast(schema)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def write(self, rows: pa.RecordBatchReader) -> list[Path]:
        """``rows`` as Parquet files in the scratch folder (none when there are no rows)."""
        folder = Path(tempfile.mkdtemp(dir=self.folder))
        return [folder / name for name, _ in write_files(rows, folder, None)]

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # Imported here: DuckDB's library costs a process some 13 MB once loaded, and a first load or a
        # batch without repeated keys never needs it.
        import duckdb

        con = duckdb.connect(config={
            "memory_limit": _DUCKDB_MEMORY,
            "temp_directory": str(self.folder / "spill"),
            "preserve_insertion_order": False,  # row order means nothing here; keeping it costs memory
        })
        con.execute("SET TimeZone = 'UTC'")  # not in the config: the time zone extension loads later
        return con
