"""Reading a local Delta table's current rows (for checks; not part of any measured work)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable


def read_delta(path: Path, columns: list[str] | None = None) -> pa.Table:
    """The table's current rows, read from its data files with pyarrow.

    deltalake's own ``to_pyarrow_table()`` makes the process abort at exit about half the time
    (deltalake 1.6.x, see docs/databricks.md, "Local Delta tables"), which would fail a benchmark run at random.
    """
    files = DeltaTable(str(path)).file_uris()
    if not files:
        raise ValueError(f"the Delta table {path} has no data files")
    # Delta string columns may come back as string_view (in some files only), which some compute
    # kernels (take) and concatenation with plain strings lack.
    return pa.concat_tables([_plain_strings(pq.read_table(uri, columns=columns)) for uri in files],
                            promote_options="permissive")


def _plain_strings(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([pa.field(f.name, pa.string()) if f.type == pa.string_view() else f
                                 for f in table.schema]))
