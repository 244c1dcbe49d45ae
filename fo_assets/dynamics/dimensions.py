"""Financial-dimension display values split into one column per dimension.

F&O joins the segments of a dimension set with a delimiter in the order of the active format
(docs/fo-odata.md section 6): ``605140-001-02`` is MainAccount 605140, then the next dimensions. Blank
segments are empty (``605140--02``), trailing delimiters occur, ``""`` is the empty set, and a delimiter
inside a value is escaped with a backslash (``DAT\\-0000000002`` is one value). A value with more
non-blank segments than the format has names cannot be attributed: its columns are null and it is
counted. Rows whose account type is not Ledger hold a counterparty account, not dimensions: their
columns are null and the original column keeps the value whole.

The split is vectorised with Arrow compute; only values that contain a backslash take the Python path.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from fo_assets.catalog import DimensionField
from fo_assets.settings import DimensionFormats

LEDGER_ACCOUNT_TYPE = "Ledger"


def column_names(field: str, names: tuple[str, ...]) -> list[str]:
    """The column names the segments of dimension ``field`` are landed in."""
    return [f"{field}_{name}" for name in names]


def names_for(dimension: DimensionField, formats: DimensionFormats) -> tuple[str, ...]:
    """The segment names of a dimension field, from the ledger or the default format."""
    return formats.ledger if dimension.format == "ledger" else formats.default


def split_segments(value: str, delimiter: str) -> list[str]:
    """Segments of a display value, with ``\\<delimiter>`` and ``\\\\`` unescaped."""
    segments: list[str] = []
    current: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, None)
            if following is None:
                current.append(char)
            elif following in (delimiter, "\\"):
                current.append(following)
            else:
                current.extend((char, following))
        elif char == delimiter:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return segments


def parse_display_value(value: str | None, names: tuple[str, ...], delimiter: str) -> dict[str, str | None] | None:
    """``{dimension: segment or None}``; None when the value has more segments than ``names``."""
    if value is None or value == "":
        return dict.fromkeys(names)
    segments = split_segments(value, delimiter)
    if len(segments) > len(names):
        if any(segments[len(names):]):
            return None
        segments = segments[: len(names)]  # trailing delimiters after the last dimension
    parsed: dict[str, str | None] = dict.fromkeys(names)
    for name, segment in zip(names, segments):
        parsed[name] = segment or None
    return parsed


@dataclass(frozen=True)
class DimensionSplit:
    """Dimension strings split into one column per segment, and how many did not fit the format."""
    columns: dict[str, pa.Array]  # output name -> string column
    unparseable: int


def split_column(
    values: pa.Array | pa.ChunkedArray,
    field: str,
    names: tuple[str, ...],
    delimiter: str,
    account_types: pa.Array | pa.ChunkedArray | None = None,
) -> DimensionSplit:
    """Split a column of display values; the same result as ``parse_display_value`` row by row."""
    values = _contiguous(values)
    not_ledger = _false(len(values))
    if account_types is not None:
        not_ledger = pc.fill_null(pc.not_equal(_contiguous(account_types), LEDGER_ACCOUNT_TYPE), True)
    escaped = pc.and_not(pc.fill_null(pc.match_substring(values, "\\"), False), not_ledger)
    # Trailing delimiters are blank trailing segments: trimming them first makes "more segments than
    # names" mean real extra content. Escaped values (whose last delimiter may be escaped) are redone
    # in Python below.
    lists = pc.split_pattern(pc.utf8_rtrim(values, characters=delimiter), delimiter)
    lengths = pc.fill_null(pc.list_value_length(lists), 0)
    bad = pc.and_not(pc.and_not(pc.greater(lengths, len(names)), not_ledger), escaped)
    blank = pc.or_(pc.or_(not_ledger, escaped), bad)
    flat, starts = lists.flatten(), _starts(lists)
    columns = []
    for index in range(len(names)):
        position = pc.if_else(pc.and_not(pc.greater(lengths, index), blank), pc.add(starts, index), None)
        segment = pc.take(flat, position)
        columns.append(pc.if_else(pc.equal(segment, ""), None, segment))
    unparseable = pc.sum(bad).as_py() or 0
    if pc.any(escaped).as_py():
        parsed = [parse_display_value(v, names, delimiter) for v in pc.filter(values, escaped).to_pylist()]
        unparseable += sum(p is None for p in parsed)
        columns = [
            pc.replace_with_mask(column, escaped, pa.array([(p or {}).get(name) for p in parsed], pa.string()))
            for column, name in zip(columns, names)
        ]
    return DimensionSplit(dict(zip(column_names(field, names), columns)), unparseable)


def _false(length: int) -> pa.Array:
    return pa.repeat(pa.scalar(False), length)


def _contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def _starts(lists: pa.ListArray) -> pa.Array:
    """Where each row's segments begin in ``lists.flatten()``."""
    offsets = lists.offsets
    return pc.subtract(offsets.slice(0, len(lists)), offsets[0]).cast(pa.int64())


def add_dimension_columns(
    table: pa.Table, dimensions: tuple[DimensionField, ...], formats: DimensionFormats
) -> tuple[pa.Table, int]:
    """``table`` with ``<Field>_<Dimension>`` columns appended; also the count of unparseable values."""
    unparseable = 0
    for dimension in dimensions:
        if dimension.field not in table.column_names:
            continue  # the tenant no longer has it: reported as a removed field
        types = table.column(dimension.account_type_field) if dimension.account_type_field else None
        split = split_column(
            table.column(dimension.field), dimension.field, names_for(dimension, formats), formats.delimiter, types
        )
        for name, column in split.columns.items():
            table = table.append_column(name, column)
        unparseable += split.unparseable
    return table, unparseable


def dimension_fields(
    dimensions: tuple[DimensionField, ...], formats: DimensionFormats, present: set[str]
) -> list[pa.Field]:
    """The Arrow fields ``add_dimension_columns`` appends, for manifests written before any row."""
    return [
        pa.field(name, pa.string())
        for d in dimensions
        if d.field in present
        for name in column_names(d.field, names_for(d, formats))
    ]
