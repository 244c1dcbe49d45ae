"""Every SQL text the sinks run: Databricks statements, and the DuckDB queries of local Delta.

The load semantics (newest row per key, which rows a delete scope flags, when a matched row is
replaced) are written once here and rendered in two dialects, so both sinks behave the same.

Identifiers are validated and quoted. Values never enter the text: they travel as named parameters
(``:name`` on Databricks, ``$name`` in DuckDB) beside it. The only literals are numbers we validate
(the VACUUM retention), table properties (our own, checked against a safe character set) and staged
volume paths, whose parts are restricted to a safe character set.

Every Databricks statement is idempotent, because the SDK re-sends a POST after a read timeout and the
warehouse client retries Delta's concurrent-write conflicts: ``IF NOT EXISTS`` DDL, properties set to
fixed values, MERGEs keyed on the row identity, OPTIMIZE and VACUUM.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from fo_assets.catalog import EntitySpec
from fo_assets.landing import BATCH_ID, DELETED, EXTRACTED_AT, RUN_ID, SOURCE_URL, DeleteScope, LandedBatch
from fo_assets.sinks.base import deleted_at, recency_order

MAX_IDENTIFIER = 255  # Unity Catalog's limit for names
MIN_RETAIN_HOURS = 7 * 24  # delta.deletedFileRetentionDuration's default: less breaks readers' snapshots
_PATH_PART = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def quote(name: str) -> str:
    """A backtick-quoted identifier; embedded backticks are doubled."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"empty SQL identifier {name!r}")
    if len(name) > MAX_IDENTIFIER:
        raise ValueError(f"SQL identifier longer than {MAX_IDENTIFIER} characters: {name[:40]!r}...")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError(f"SQL identifier with a control character: {name!r}")
    return "`" + name.replace("`", "``") + "`"


def volume_path_part(part: str) -> str:
    """A catalog, schema, volume, table or batch id as it appears inside a staged ``/Volumes`` path."""
    if not _PATH_PART.fullmatch(part):  # match() would let "$" accept a trailing newline
        raise ValueError(
            f"{part!r} cannot be part of a staged volume path: use letters, digits, '_' and '-' only"
        )
    return part


@dataclass(frozen=True)
class TableRef:
    """A three-part Unity Catalog table name, quoted for SQL."""
    catalog: str
    schema: str
    table: str

    @property
    def sql(self) -> str:
        """The quoted three-part name."""
        return ".".join(quote(p) for p in (self.catalog, self.schema, self.table))

    @property
    def display(self) -> str:
        """The name as users read it."""
        return f"{self.catalog}.{self.schema}.{self.table}"


@dataclass(frozen=True)
class Param:
    """A named statement parameter."""
    name: str
    value: str | None  # None binds SQL NULL
    type: str  # Databricks SQL type the value string is cast to


@dataclass(frozen=True)
class Statement:
    """A SQL statement, its parameters and what it does (for error messages)."""
    what: str  # for error messages: "MERGE", "flag deletes (window ...)"
    text: str
    params: tuple[Param, ...] = ()


def column_type(arrow_type: pa.DataType, column: str = "?") -> str:
    """The Databricks SQL type for an Arrow type, as written in DDL and reported in metadata."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_decimal(arrow_type):
        if arrow_type.precision > 38:
            raise ValueError(f"column {column!r}: decimal precision {arrow_type.precision} exceeds Delta's 38")
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp" if arrow_type.tz else "timestamp_ntz"
    simple = {
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.int16(): "smallint",
        pa.int8(): "tinyint",
        pa.bool_(): "boolean",
        pa.float64(): "double",
        pa.float32(): "float",
        pa.date32(): "date",
        pa.binary(): "binary",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    raise ValueError(f"column {column!r}: no Delta type for Arrow type {arrow_type}")


_INTEGERS = ("tinyint", "smallint", "int", "bigint")
_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def widens(old: str, new: str) -> bool:
    """Whether Delta's type widening turns a column of type ``old`` into ``new`` during schema evolution
    (docs/databricks.md, "Type changes"): a wider integer, float to double, a decimal with k1 >= k2 >= 0
    more digits of precision and scale, date to timestamp_ntz. Integers to decimals need a manual ALTER."""
    old, new = old.strip().lower(), new.strip().lower()
    if old in _INTEGERS and new in _INTEGERS:
        return _INTEGERS.index(new) > _INTEGERS.index(old)
    if (old, new) in (("float", "double"), ("date", "timestamp_ntz")):
        return True
    before, after = _DECIMAL.fullmatch(old), _DECIMAL.fullmatch(new)
    if before and after:
        more_precision = int(after.group(1)) - int(before.group(1))
        more_scale = int(after.group(2)) - int(before.group(2))
        return more_precision >= more_scale >= 0 and more_precision > 0
    return False


def arrow_type(sql_type: str) -> pa.DataType:
    """The inverse of ``column_type`` for the type text a warehouse reports."""
    text = sql_type.strip().lower()
    decimal = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", text)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    types = {
        "string": pa.string(),
        "bigint": pa.int64(),
        "long": pa.int64(),
        "int": pa.int32(),
        "integer": pa.int32(),
        "smallint": pa.int16(),
        "tinyint": pa.int8(),
        "boolean": pa.bool_(),
        "double": pa.float64(),
        "float": pa.float32(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "timestamp_ntz": pa.timestamp("us"),
        "binary": pa.binary(),
    }
    if text not in types:
        raise ValueError(f"no Arrow type for warehouse type {sql_type!r}")
    return types[text]


def read_files(folder: str) -> str:
    """``read_files`` over a staged folder; every non-hidden file in it must be one of our Parquet parts."""
    parts = folder.strip("/").split("/")
    if len(parts) < 5 or parts[0] != "Volumes":
        raise ValueError(f"not a volume folder: {folder!r}")
    for part in parts[1:]:
        volume_path_part(part)
    return f"read_files('/{'/'.join(parts)}/', format => 'parquet')"


def create_schema(catalog: str, schema: str) -> Statement:
    """CREATE SCHEMA IF NOT EXISTS."""
    return Statement("create schema", f"CREATE SCHEMA IF NOT EXISTS {quote(catalog)}.{quote(schema)}")


def create_volume(catalog: str, schema: str, volume: str) -> Statement:
    """CREATE VOLUME IF NOT EXISTS."""
    name = ".".join(quote(p) for p in (catalog, schema, volume))
    return Statement("create volume", f"CREATE VOLUME IF NOT EXISTS {name}")


def table_properties(retain_hours: int) -> dict[str, str]:
    """The Delta properties of every entity table (docs/databricks.md):

    - the change data feed, for downstream incremental reads;
    - ``retain_hours`` of history: predictive optimization vacuums Unity Catalog managed tables with
      ``delta.deletedFileRetentionDuration`` (7 days by default) whatever our own VACUUM keeps, and time
      travel also needs the log kept as long;
    - deletion vectors, so OPTIMIZE and a MERGE at once do not conflict (row-level concurrency);
    - type widening, so a field F&O widens widens its column instead of being cast to the old type.
    """
    if retain_hours < MIN_RETAIN_HOURS:
        raise ValueError(f"keep at least {MIN_RETAIN_HOURS} hours of history (Delta's default), not {retain_hours}")
    retention = f"interval {retain_hours // 24} days" if retain_hours % 24 == 0 else f"interval {retain_hours} hours"
    return {
        "delta.enableChangeDataFeed": "true",
        "delta.deletedFileRetentionDuration": retention,
        "delta.logRetentionDuration": retention,
        "delta.enableDeletionVectors": "true",
        "delta.enableTypeWidening": "true",
    }


def _properties_text(properties: Mapping[str, str]) -> str:
    for key, value in properties.items():
        if not re.fullmatch(r"[A-Za-z0-9_.]+", key) or not re.fullmatch(r"[A-Za-z0-9 _.-]*", value):
            raise ValueError(f"table property {key!r} = {value!r} has characters fo-assets does not write")
    return ", ".join(f"'{key}' = '{value}'" for key, value in properties.items())


def create_table(table: TableRef, schema: pa.Schema, properties: Mapping[str, str] | None = None) -> Statement:
    """CREATE TABLE IF NOT EXISTS with the Arrow schema's columns and the table properties."""
    columns = ", ".join(f"{quote(f.name)} {column_type(f.type, f.name).upper()}" for f in schema)
    text = f"CREATE TABLE IF NOT EXISTS {table.sql} ({columns}) USING DELTA"
    if properties:
        text += f" TBLPROPERTIES ({_properties_text(properties)})"
    return Statement("create table", text)


def show_properties(table: TableRef) -> Statement:
    """(key, value) rows of the properties set on the table."""
    return Statement("read table properties", f"SHOW TBLPROPERTIES {table.sql}")


def set_properties(table: TableRef, properties: Mapping[str, str]) -> Statement:
    """A metadata change: it fails every write to the table running at the same time, so run it only
    when a property differs."""
    text = f"ALTER TABLE {table.sql} SET TBLPROPERTIES ({_properties_text(properties)})"
    return Statement("set table properties", text)


def describe_columns(table: TableRef) -> Statement:
    """No rows, but the result manifest lists the table's columns and types."""
    return Statement("read columns", f"SELECT * FROM {table.sql} LIMIT 0")


def count_rows(table: TableRef) -> Statement:
    """The table's rows (Delta answers it from its log's statistics)."""
    return Statement("count rows", f"SELECT COUNT(*) AS row_count FROM {table.sql}")


def select_all(table: TableRef) -> Statement:
    """Every row of a table."""
    return Statement("read table", f"SELECT * FROM {table.sql}")


def key_profile(d: Dialect, source: str, keys: Sequence[str]) -> str:
    """Live rows, rows beyond the first of each key, and rows with a null key part: the key check."""
    quoted = [d.quote(k) for k in keys]
    null_key = " OR ".join(f"{k} IS NULL" for k in quoted)
    return (
        "SELECT COALESCE(SUM(n), 0) AS live_rows, "
        "COALESCE(SUM(CASE WHEN n > 1 THEN n - 1 ELSE 0 END), 0) AS duplicate_keys, "
        f"COALESCE(SUM(CASE WHEN {null_key} THEN n ELSE 0 END), 0) AS null_keys "
        f"FROM (SELECT {', '.join(quoted)}, COUNT(*) AS n FROM {source} "
        f"WHERE NOT {d.quote(DELETED)} GROUP BY {', '.join(quoted)}) AS g"
    )


def profile_keys(table: TableRef, keys: Sequence[str]) -> Statement:
    """Live rows, duplicate keys and null keys of a table."""
    return Statement("profile keys", key_profile(DATABRICKS, table.sql, keys))


@dataclass(frozen=True)
class Dialect:
    """The few spellings that differ between Databricks SQL and the DuckDB/DataFusion SQL of local Delta."""

    quote: Callable[[str], str]
    null_safe_eq: str
    param_prefix: str

    def param(self, name: str) -> str:
        """The placeholder of parameter ``name`` in this dialect."""
        return self.param_prefix + name


def _double_quote(name: str) -> str:
    quote(name)  # same validation
    return '"' + name.replace('"', '""') + '"'


DATABRICKS = Dialect(quote, "<=>", ":")
# DuckDB queries and delta-rs merge predicates (DataFusion). delta-rs parses `a IS NOT DISTINCT FROM b
# AND c` with the wrong precedence, hence the parentheses around every comparison below.
DUCKDB = Dialect(_double_quote, "IS NOT DISTINCT FROM", "$")


def key_match(d: Dialect, left: str, right: str, columns: Sequence[str], *, null_safe: bool = True) -> str:
    """Rows with the same key. ``null_safe=False`` (plain ``=``) is the same match when one side has no
    null key part, and lets delta-rs narrow a MERGE's scan of the target to the source's keys."""
    eq = d.null_safe_eq if null_safe else "="
    return " AND ".join(f"({left}.{d.quote(c)} {eq} {right}.{d.quote(c)})" for c in columns)


# Audit columns that say when and how a row version was seen, not what it is: a re-read that finds the
# same data is not an update, and the row keeps the batch that first saw this version.
_PROVENANCE = frozenset({BATCH_ID, EXTRACTED_AT, RUN_ID, SOURCE_URL})


def upsert_condition(d: Dialect, columns: Sequence[str], existing: Sequence[str]) -> str:
    """A matched row is replaced only by a row extracted at or after it whose data differs (a deleted
    flag counts: a row that comes back is un-deleted). ``columns`` are the batch's, ``existing`` the
    table's before this load: a value in a column the table did not have yet is a difference too."""
    at = d.quote(EXTRACTED_AT)
    known = set(existing)
    data = [c for c in columns if c not in _PROVENANCE]
    differs = " OR ".join(
        f"NOT (s.{d.quote(c)} {d.null_safe_eq} t.{d.quote(c)})" if c in known else f"s.{d.quote(c)} IS NOT NULL"
        for c in data
    ) or "true"
    return f"s.{at} >= t.{at} AND ({differs})"


def newest_per_key(d: Dialect, source: str, columns: Sequence[str], keys: Sequence[str]) -> str:
    """The batch rows from ``source`` deduplicated by key (see ``base.recency_order``)."""
    order = ", ".join(f"{d.quote(c)} DESC NULLS LAST" for c in recency_order(columns, keys))
    return (
        f"SELECT {', '.join(d.quote(c) for c in columns)} FROM {source} "
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {', '.join(d.quote(k) for k in keys)} ORDER BY {order}) = 1"
    )


def duplicate_keys(d: Dialect, source: str, keys: Sequence[str]) -> str:
    """The keys that occur more than once in ``source``."""
    quoted = ", ".join(d.quote(k) for k in keys)
    return f"SELECT {quoted} FROM {source} GROUP BY {quoted} HAVING COUNT(*) > 1"


def deduplicated(d: Dialect, source: str, *, duplicates: str | None, columns: Sequence[str], keys: Sequence[str]) -> str:
    """``newest_per_key`` computed only where it matters: rows of a unique key pass as they are, and only
    the rows of the keys in ``duplicates`` (a relation of ``duplicate_keys``) are windowed, so a batch
    without duplicates streams instead of being sorted whole. None: the batch has no duplicate keys."""
    listed = ", ".join(d.quote(c) for c in columns)
    if duplicates is None:
        return f"SELECT {listed} FROM {source}"
    among = f"SELECT 1 FROM {duplicates} AS k WHERE {key_match(d, 'k', 'r', keys)}"
    repeated = f"(SELECT * FROM {source} AS r WHERE EXISTS ({among}))"
    return (
        f"SELECT {listed} FROM {source} AS r WHERE NOT EXISTS ({among}) "
        f"UNION ALL {newest_per_key(d, repeated, columns, keys)}"
    )


_ROW_HASH = "__fo_row_hash"  # changed_rows' hash of a row's compared columns


def changed_rows(
    d: Dialect, batch_rows: str, target: str, *, keys: Sequence[str], columns: Sequence[str], existing: Sequence[str],
    null_safe: bool = True,
) -> str:
    """The rows of ``batch_rows`` the upsert MERGE would write: a key the target lacks, or a match that
    ``upsert_condition`` replaces. A row is dropped only when a target row matches and the condition is
    false; when the condition is unknown (null) the row stays and the MERGE decides. DuckDB only: an
    anti join, which spills to disk where a correlated NOT EXISTS would not.

    The target side is narrowed to its keys, extraction time and a hash of the compared columns: joined
    whole, a re-load of 1,000,000 GL lines held every column of the table in the join's hash table and ran
    out of DuckDB's memory. Equal hashes of different values would drop a changed row, with a chance of
    2^-64 per changed row; unequal hashes of equal values (a column widened since, a decimal of another
    scale) only keep a row, and the MERGE's own condition then leaves it unchanged."""
    q = d.quote
    known = set(existing)
    data = [c for c in columns if c not in _PROVENANCE]
    compared = [c for c in data if c in known]
    digest = f"hash({', '.join(q(c) for c in compared)})" if compared else "0"
    differs = " OR ".join([f"s.{_ROW_HASH} <> t.{_ROW_HASH}", *(f"s.{q(c)} IS NOT NULL" for c in data if c not in known)])
    narrow = ", ".join(q(c) for c in dict.fromkeys([*keys, EXTRACTED_AT]))
    match = key_match(d, "t", "s", keys, null_safe=null_safe)
    return (
        f"SELECT {', '.join(f's.{q(c)}' for c in columns)} "
        f"FROM (SELECT *, {digest} AS {_ROW_HASH} FROM {batch_rows}) AS s "
        f"ANTI JOIN (SELECT {narrow}, {digest} AS {_ROW_HASH} FROM {target}) AS t "
        f"ON {match} AND NOT (s.{q(EXTRACTED_AT)} >= t.{q(EXTRACTED_AT)} AND ({differs}))"
    )


@dataclass(frozen=True)
class DeleteFlags:
    """What a delete-flag query needs besides the scope: who flags, when, and against what."""

    batch_id: str
    run_id: str
    deleted_at: dt.datetime
    keys: tuple[str, ...]
    company_field: str | None
    parent_columns: tuple[str, ...] = ()

    @classmethod
    def of(cls, batch: LandedBatch, spec: EntitySpec) -> DeleteFlags:
        """The delete flags of ``batch``: its id, run and deletion instant."""
        return cls(
            batch_id=batch.batch_id,
            run_id=batch.manifest.run_id,
            deleted_at=deleted_at(batch),
            keys=spec.key_columns,
            company_field=spec.company_field,
            parent_columns=spec.parent_scope_columns,
        )


def doomed_rows(
    d: Dialect, target: str, scope: DeleteScope, *, flags: DeleteFlags, batch_rows: str | None, parents: str | None
) -> tuple[str, list[Param]]:
    """Keys of live rows of ``target`` inside ``scope`` that the batch lacks and that are not newer than it.

    ``batch_rows`` is None when the batch has no rows: every live row in the scope is gone.
    """
    params = [Param("deleted_at", flags.deleted_at.isoformat(), "TIMESTAMP")]
    q = d.quote
    where = [f"coalesce(r.{q(DELETED)}, false) = false", f"r.{q(EXTRACTED_AT)} <= {d.param('deleted_at')}"]
    if scope.kind in ("company", "window") and flags.company_field:
        # Companies land lower case, but a table loaded before may hold USMF beside usmf: the same company.
        where.append(f"(lower(r.{q(flags.company_field)}) = {d.param('company')})")
        params.append(Param("company", (scope.company or "").lower(), "STRING"))
    if scope.kind == "window":
        assert scope.field and scope.start and scope.end
        where += [f"r.{q(scope.field)} >= {d.param('window_start')}", f"r.{q(scope.field)} < {d.param('window_end')}"]
        params += [Param("window_start", scope.start, "DATE"), Param("window_end", scope.end, "DATE")]
    if scope.kind == "parents":
        if parents is None:
            raise ValueError("a parents scope needs the batch's parents file")
        where.append(f"EXISTS (SELECT 1 FROM {parents} AS p WHERE {key_match(d, 'p', 'r', flags.parent_columns)})")
    if batch_rows is not None:
        where.append(f"NOT EXISTS (SELECT 1 FROM {batch_rows} AS b WHERE {key_match(d, 'b', 'r', flags.keys)})")
    keys = ", ".join(f"r.{q(k)}" for k in flags.keys)
    return f"SELECT {keys} FROM {target} AS r WHERE {' AND '.join(where)}", params


def merge_batch(
    table: TableRef, parts_folder: str, *, keys: Sequence[str], columns: Sequence[str], existing: Sequence[str]
) -> Statement:
    """Upsert the staged parts by key.

    ``columns`` are the batch's columns, selected by name because ``read_files`` may add a
    ``_rescued_data`` column that must not become part of the table; ``existing`` are the table's
    columns before the load (see ``upsert_condition``).
    """
    source = newest_per_key(DATABRICKS, read_files(parts_folder), columns, keys)
    return Statement(
        "MERGE",
        f"MERGE WITH SCHEMA EVOLUTION INTO {table.sql} AS t USING ({source}) AS s "
        f"ON {key_match(DATABRICKS, 't', 's', keys)} "
        f"WHEN MATCHED AND {upsert_condition(DATABRICKS, columns, existing)} THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT *",
    )


def flag_deletes(
    table: TableRef, scope: DeleteScope, *, flags: DeleteFlags, parts_folder: str | None, parents_folder: str | None
) -> Statement:
    """Flag the doomed rows of ``scope`` deleted, stamped with this batch.

    A MERGE of the table with its own doomed rows (rather than an UPDATE with subqueries, which Delta
    does not accept everywhere): that set has one row per target row, so the merge never sees two
    source rows for one target row, and ``num_updated_rows`` is the exact count.
    """
    doomed, params = doomed_rows(
        DATABRICKS,
        table.sql,
        scope,
        flags=flags,
        batch_rows=read_files(parts_folder) if parts_folder else None,
        parents=read_files(parents_folder) if parents_folder else None,
    )
    params += [Param("batch_id", flags.batch_id, "STRING"), Param("run_id", flags.run_id, "STRING")]
    text = (
        f"MERGE INTO {table.sql} AS t USING ({doomed}) AS s ON {key_match(DATABRICKS, 't', 's', flags.keys)} "
        f"WHEN MATCHED THEN UPDATE SET `{DELETED}` = true, `{BATCH_ID}` = :batch_id, "
        f"`{RUN_ID}` = :run_id, `{EXTRACTED_AT}` = :deleted_at"
    )
    label = " ".join(str(v) for v in (scope.kind, scope.company, scope.start, scope.end) if v)
    return Statement(f"flag deletes ({label})", text, tuple(params))


def optimize(table: TableRef) -> Statement:
    """OPTIMIZE (compaction)."""
    return Statement("OPTIMIZE", f"OPTIMIZE {table.sql}")


def vacuum(table: TableRef, retain_hours: int) -> Statement:
    """VACUUM, keeping ``retain_hours`` of history."""
    if not isinstance(retain_hours, int) or retain_hours < 0:
        raise ValueError(f"VACUUM retention must be a whole number of hours, got {retain_hours!r}")
    return Statement("VACUUM", f"VACUUM {table.sql} RETAIN {retain_hours} HOURS")
