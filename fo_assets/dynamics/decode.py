"""One OData page (JSON bytes) -> one Arrow table with the entity's landed types, exactly.

The fast path hands the page to Arrow's C++ JSON reader with an explicit schema: a F&O page is a single
JSON object, so it reads as one row whose ``value`` column is ``list<struct<fields>>``, then the struct is
flattened into columns. Amounts are parsed from the JSON number text straight into decimals (no float in
between), instants into microsecond UTC timestamps. Anything the fast path refuses (an instant with more
than six fractional digits, a number sent as text, malformed JSON) goes through ``_reference_decode``,
which parses with the standard library (decimals via ``parse_float=Decimal``) and either produces the
same table or a precise error naming the row and field.

Both 1900-01-01 sentinels (F&O's empty date and empty instant) become nulls; ``""`` stays ``""``.
Annotations such as ``@odata.etag`` are dropped. Fields the tenant's metadata does not list are reported
as ``unexpected`` (schema drift), never silently merged; fields it lists but the plan leaves out
(personal data, excluded fields) are not decoded at all. The company column lands lower case: custom and
BI entities may send ``USMF`` where standard ones send ``usmf``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from fo_assets.dynamics.errors import PageError
from fo_assets.dynamics.schema import DEFAULT_SCALE, EntityPlan, FieldInfo

NEXT_LINK = "@odata.nextLink"
COUNT = "@odata.count"  # the query's row count, when it was asked with $count=true
_SENTINEL_END = pa.scalar(dt.datetime(1900, 1, 2, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))


@dataclass(frozen=True)
class DecodedPage:
    """One OData page as typed Arrow columns, the link to the next page, and fields the metadata lacks."""
    table: pa.Table
    next_link: str | None
    unexpected: frozenset[str]  # payload fields the metadata does not list (schema drift)
    count: int | None = None  # @odata.count: the query's rows when this page was served

    def with_table(self, table: pa.Table) -> DecodedPage:
        """The same page with its rows transformed (lowered, joined, filtered)."""
        return replace(self, table=table)


class PageDecoder:
    """Decodes the pages of one entity plan; reusable across threads (it holds no per-page state)."""

    def __init__(self, plan: EntityPlan):
        self.plan = plan
        self._fields = plan.select
        self._known = frozenset(f.name for f in plan.schema.fields)
        company = plan.spec.company_field
        self._company = company if company in plan.select_names else None
        # A narrowed plan (parent keys only) checks the key columns it selected.
        self._keys = [k for k in plan.spec.key_columns if k in plan.select_names]
        self._target = plan.arrow_schema
        row = pa.struct([pa.field(f.name, _read_type(f)) for f in self._fields])
        self._read_schema = pa.schema([pa.field("value", pa.list_(row)), pa.field(NEXT_LINK, pa.string()),
                                       pa.field(COUNT, pa.int64())])
        self._parse = pj.ParseOptions(
            explicit_schema=self._read_schema,
            # Extra fields are inferred rather than ignored so schema drift can be seen and reported.
            unexpected_field_behavior="infer",
            newlines_in_values=True,
        )

    def decode(self, body: bytes | bytearray, *, url: str, company: str | None) -> DecodedPage:
        """Decode one OData JSON page into typed Arrow columns; a decode error names the company and URL."""
        try:
            page = self._fast(body)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, _Shape):
            page = self._reference(body, url, company)
        finally:
            # Arrow's allocator keeps what the parser freed for reuse, per thread: page after page that
            # adds up to several pages' worth (30 to 50 MB for wide vendors), so it goes back now.
            pa.default_memory_pool().release_unused()
        if self._company is not None:
            index = page.table.schema.get_field_index(self._company)
            lowered = pc.utf8_lower(page.table.column(index))
            page = page.with_table(page.table.set_column(index, self._company, lowered))
        missing = [k for k in self._keys if page.table.column(k).null_count]
        if missing:
            column = page.table.column(missing[0])
            row = pc.index(pc.is_null(column), True).as_py()
            raise PageError(
                f"row {row} of the page has no value for key field {missing[0]!r}: the page cannot be landed",
                entity_set=self.plan.spec.entity_set,
                company=company,
                url=url,
            )
        return page

    def _fast(self, body: bytes | bytearray) -> DecodedPage:
        read = pj.read_json(
            pa.BufferReader(pa.py_buffer(body)),
            read_options=pj.ReadOptions(use_threads=False, block_size=max(len(body) + 1, 1 << 16)),
            parse_options=self._parse,
        )
        if read.num_rows != 1 or read.column("value").null_count:
            raise _Shape()
        values = read.column("value").chunk(0)
        rows: pa.StructArray = values.flatten()
        columns = [_finish(rows.field(f.name), f) for f in self._fields]
        extras = frozenset(rows.type.field(i).name for i in range(rows.type.num_fields)) - self._known
        next_link, count = read.column(NEXT_LINK)[0].as_py(), read.column(COUNT)[0].as_py()
        return DecodedPage(pa.Table.from_arrays(columns, schema=self._target), next_link, _drift(extras), count)

    def _reference(self, body: bytes | bytearray, url: str, company: str | None) -> DecodedPage:
        try:
            return _reference_decode(body, self.plan, self._known)
        except PageError as error:
            raise PageError(error.reason, entity_set=self.plan.spec.entity_set, company=company, url=url) from None


class _Shape(Exception):
    """The fast path read something that is not one page object with a ``value`` array."""


def _read_type(field: FieldInfo) -> pa.DataType:
    # Arrow's JSON reader parses ISO instants but has no date type: dates are read as instants (noon
    # UTC) and cast to the day afterwards.
    if field.kind == "date":
        return pa.timestamp("s", tz="UTC")
    return field.arrow_type


def _finish(column: pa.Array, field: FieldInfo) -> pa.Array:
    if field.kind in ("date", "instant"):
        column = pc.if_else(pc.less(column.cast(pa.timestamp("us", tz="UTC")), _SENTINEL_END), None, column)
        if field.kind == "date":
            column = column.cast(pa.date32())
    return column


def _drift(extras: frozenset[str]) -> frozenset[str]:
    return frozenset(name for name in extras if not name.startswith("@"))


def _reference_decode(body: bytes | bytearray, plan: EntityPlan, known: frozenset[str]) -> DecodedPage:
    """The slow, exact decoder: the standard library's JSON parser with decimals kept as text."""
    try:
        page = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as error:
        raise PageError(f"the page is not valid JSON: {error}") from None
    if not isinstance(page, dict) or not isinstance(page.get("value"), list):
        found = sorted(page)[:10] if isinstance(page, dict) else type(page).__name__
        raise PageError(f"the page has no 'value' array (found {found}): is this an OData collection URL?")
    rows = page["value"]
    extras: set[str] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PageError(f"row {index} of the page is not a JSON object")
        extras.update(row.keys() - known)
    columns = []
    for field in plan.select:
        convert = _CONVERTERS.get(field.kind, _as_string)
        values = []
        for index, row in enumerate(rows):
            raw = row.get(field.name)
            try:
                values.append(None if raw is None else convert(raw, field))
            except (ValueError, TypeError, InvalidOperation) as error:
                raise PageError(
                    f"row {index}, field {field.name} ({field.kind}): cannot read {raw!r}: {error}"
                ) from None
        columns.append(pa.array(values, type=field.arrow_type))
    next_link, count = page.get(NEXT_LINK), page.get(COUNT)
    return DecodedPage(
        pa.Table.from_arrays(columns, schema=plan.arrow_schema),
        next_link if isinstance(next_link, str) else None,
        _drift(frozenset(extras)),
        count if isinstance(count, int) and not isinstance(count, bool) else None,
    )


def _as_string(raw: Any, field: FieldInfo) -> str:
    if isinstance(raw, (dict, list)):
        return json.dumps(raw)
    return raw if isinstance(raw, str) else str(raw)


def _as_bool(raw: Any, field: FieldInfo) -> bool:
    if isinstance(raw, bool):
        return raw
    raise ValueError("expected true or false")


def _as_int(raw: Any, field: FieldInfo) -> int:
    if isinstance(raw, bool) or isinstance(raw, Decimal) and raw != raw.to_integral_value():
        raise ValueError("expected a whole number")
    return int(raw)


def _as_decimal(raw: Any, field: FieldInfo) -> Decimal:
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    number = Decimal(raw) if isinstance(raw, (int, str)) else raw
    if not isinstance(number, Decimal) or not number.is_finite():
        raise ValueError("expected a finite number")
    scale = field.scale if field.scale is not None else DEFAULT_SCALE
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > scale and number != round(number, scale):
        raise ValueError(f"it has more decimals than the metadata's scale {scale}; landing it would round it")
    return number


def _as_double(raw: Any, field: FieldInfo) -> float:
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    return float(raw)


def _as_instant(raw: Any, field: FieldInfo) -> dt.datetime | None:
    instant = _parse_instant(raw)
    return None if instant.date() == dt.date(1900, 1, 1) else instant


def _as_date(raw: Any, field: FieldInfo) -> dt.date | None:
    day = _parse_instant(raw).date() if "T" in raw else dt.date.fromisoformat(raw)
    return None if day == dt.date(1900, 1, 1) else day


def _parse_instant(raw: str) -> dt.datetime:
    text = raw.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        # .NET writes up to seven fractional digits; Arrow lands microseconds, so the 100 ns digit goes.
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    instant = dt.datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError("an instant without a UTC offset")
    return instant.astimezone(dt.UTC)


_CONVERTERS: dict[str, Callable[[Any, FieldInfo], Any]] = {
    "bool": _as_bool,
    "int32": _as_int,
    "int64": _as_int,
    "decimal": _as_decimal,
    "double": _as_double,
    "date": _as_date,
    "instant": _as_instant,
}
