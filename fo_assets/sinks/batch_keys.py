"""Whether a landed batch repeats a key, decided exactly in a few bytes per row.

Most batches repeat no key, and then their parts are already the newest row per key. Grouping the
keys in DuckDB answers too, but DuckDB's code and buffers cost a process some 50 MB; here each key
column becomes dense integer codes (its values themselves for integers, dictionary indices otherwise),
the columns combine into one int64 per row, and a sort of those finds any repeat.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_LIMIT = 2**62  # combined codes stay below this, so products and sums never overflow an int64


def repeats_a_key(parts: Sequence[str], keys: Sequence[str]) -> bool:
    """True when two rows of the parts have equal keys (null equal to null, as in a null-safe match)."""
    rows = sum(pq.read_metadata(path).num_rows for path in parts)
    if rows < 2:
        return False
    codes: np.ndarray | None = None
    span = 1  # codes so far lie in [0, span)
    for key in keys:
        values, size = _codes(_column(parts, key), rows)
        if codes is None:
            codes = values
        else:
            if span * size >= _LIMIT:
                codes, span = _dense(codes)
            codes *= size
            codes += values
        span *= size
        del values
    assert codes is not None
    codes.sort()
    return bool(np.any(codes[1:] == codes[:-1]))


def may_have_null_key(parts: Sequence[str], keys: Sequence[str]) -> bool:
    """False only when the Parquet statistics show no null in any key column (then ``=`` matches keys
    exactly as a null-safe comparison would); True when they show one, or do not say."""
    for path in parts:
        metadata = pq.read_metadata(path)
        names = metadata.schema.names
        for group in range(metadata.num_row_groups):
            for key in keys:
                stats = metadata.row_group(group).column(names.index(key)).statistics
                if stats is None or not stats.has_null_count or stats.null_count:
                    return True
    return False


def _column(parts: Sequence[str], name: str) -> pa.ChunkedArray:
    chunks = []
    for path in parts:
        parquet = pq.ParquetFile(path, pre_buffer=False)
        chunks.extend(parquet.read(columns=[name], use_threads=False).column(name).chunks)
    return pa.chunked_array(chunks)


def _codes(column: pa.ChunkedArray, rows: int) -> tuple[np.ndarray, int]:
    """(code per row, number of possible codes): equal values, and nulls, share a code. Written chunk by
    chunk into one array, so no whole-column copy is made on the way."""
    codes = np.empty(rows, np.int64)
    offset = 0
    if pa.types.is_integer(column.type):
        bounds = pc.min_max(column).as_py()
        low, high = bounds["min"], bounds["max"]
        if low is None:  # every value null
            codes.fill(0)
            return codes, 1
        if high - low + 2 < _LIMIT:
            for chunk in column.chunks:
                filled = pc.fill_null(chunk.cast(pa.int64()), pa.scalar(high + 1, pa.int64()))
                np.subtract(filled.to_numpy(zero_copy_only=False), low, out=codes[offset:offset + len(chunk)])
                offset += len(chunk)
            return codes, high - low + 2
    encoded = pc.dictionary_encode(column, null_encoding="encode")  # one dictionary for every chunk
    for chunk in encoded.chunks:
        codes[offset:offset + len(chunk)] = chunk.indices.to_numpy(zero_copy_only=False)
        offset += len(chunk)
    return codes, max(1, len(encoded.chunk(0).dictionary)) if encoded.num_chunks else 1


def _dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """The same equalities with codes in [0, distinct values)."""
    encoded = pc.dictionary_encode(pa.array(codes))
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), max(1, len(encoded.dictionary))
