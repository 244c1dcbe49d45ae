"""The double's warehouse: Unity Catalog names over DuckDB, one database file per catalog.

``execute`` takes one Databricks statement with bound parameter values, translates it (``sqltext``,
``merge``) and runs it. Statement kinds it does not know are refused with a FAILED-style ``SqlError``.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import duckdb

from .sqltext import Cursor, Renderer, SqlError, Token, literal, quote, split_top_level, tokenize

_RESERVED = {"main", "temp", "system", "memory"}  # DuckDB database names a catalog cannot take
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_DDL_TYPES = {
    "STRING": "VARCHAR", "BIGINT": "BIGINT", "LONG": "BIGINT", "INT": "INTEGER", "INTEGER": "INTEGER",
    "SMALLINT": "SMALLINT", "TINYINT": "TINYINT", "BOOLEAN": "BOOLEAN", "DOUBLE": "DOUBLE",
    "FLOAT": "REAL", "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ", "TIMESTAMP_NTZ": "TIMESTAMP",
    "BINARY": "BLOB",
}
_KNOWN_PROPERTIES = {"delta.enableChangeDataFeed": {"true", "false"}}
MIN_VACUUM_HOURS = 168  # Delta refuses a shorter retention unless its safety check is disabled


@dataclass
class Result:
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)
    rows: list[tuple[Any, ...]] = field(default_factory=list)


class Engine:
    def __init__(self, root: Path):
        self.root = root
        self.volumes_root = root / "volumes"
        (root / "catalogs").mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.lock = threading.RLock()
        self.catalogs: dict[str, str] = {}
        self.table_properties: dict[tuple[str, str, str], dict[str, str]] = {}
        self.maintenance: list[tuple[str, str]] = []
        self.renderer = Renderer(self.alias, self.volume_files)

    # -- catalogs, schemas, volumes -------------------------------------------------------------

    def create_catalog(self, name: str) -> None:
        if not _SAFE_NAME.match(name):
            raise ValueError(f"the double keeps catalogs in files: use a simple name, not {name!r}")
        with self.lock:
            if name in self.catalogs:
                return
            alias = f"{name}__uc" if name.lower() in _RESERVED else name
            self.con.execute(f"ATTACH {literal(str(self.root / 'catalogs' / (name + '.duckdb')))} AS {quote(alias)}")
            self.catalogs[name] = alias

    def alias(self, catalog: str) -> str:
        if catalog not in self.catalogs:
            raise SqlError("NO_SUCH_CATALOG_EXCEPTION", f"Catalog '{catalog}' was not found.")
        return self.catalogs[catalog]

    def table_ref(self, catalog: str, schema: str, table: str) -> str:
        """The DuckDB name of a Unity Catalog table, for tests that inspect rows."""
        return ".".join(quote(p) for p in (self.alias(catalog), schema, table))

    def schema_exists(self, catalog: str, schema: str) -> bool:
        found = self.con.execute(
            "SELECT count(*) FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
            [self.alias(catalog), schema],
        ).fetchone()
        return bool(found and found[0])

    def table_columns(self, catalog: str, schema: str, table: str) -> list[tuple[str, str]]:
        """[(name, DuckDB type)]; empty when the table does not exist."""
        return self.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
            "AND table_name = ? ORDER BY column_index",
            [self.alias(catalog), schema, table],
        ).fetchall()

    def require_table(self, catalog: str, schema: str, table: str) -> str:
        if not self.table_columns(catalog, schema, table):
            raise SqlError(
                "TABLE_OR_VIEW_NOT_FOUND", f"The table or view `{catalog}`.`{schema}`.`{table}` cannot be found."
            )
        return self.table_ref(catalog, schema, table)

    def volume_dir(self, catalog: str, schema: str, volume: str) -> Path:
        return self.volumes_root / catalog / schema / volume

    def local_path(self, volume_path: str) -> Path:
        """``/Volumes/<catalog>/<schema>/<volume>/...`` on local disk; the volume must exist."""
        parts = volume_path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "Volumes" or any(p in ("", ".", "..") for p in parts[1:]):
            raise FileNotFoundError(f"not a Unity Catalog volume path: {volume_path!r}")
        if not self.volume_dir(*parts[1:4]).is_dir():
            raise FileNotFoundError(f"volume {'.'.join(parts[1:4])} does not exist")
        return self.volumes_root.joinpath(*parts[1:])

    def volume_files(self, folder: str) -> list[str]:
        """What Databricks' read_files reads in a folder: every non-hidden file, all of it Parquet."""
        try:
            path = self.local_path(folder)
        except FileNotFoundError as exc:
            raise SqlError("PATH_NOT_FOUND", str(exc)) from None
        if not path.is_dir():
            raise SqlError("PATH_NOT_FOUND", f"Path does not exist: {folder}")
        entries = sorted(p for p in path.iterdir() if not p.name.startswith(("_", ".")))
        if not entries:
            raise SqlError("UNABLE_TO_INFER_SCHEMA", f"Unable to infer schema for Parquet at {folder}.")
        for entry in entries:
            if entry.is_dir() or entry.read_bytes()[:4] != b"PAR1":
                name = f"{folder.rstrip('/')}/{entry.name}"
                raise SqlError("FAILED_READ_FILE", f"Error while reading file {name}: not Parquet")
        return [str(e) for e in entries]

    # -- statements -----------------------------------------------------------------------------

    def execute(self, text: str, params: dict[str, Any]) -> Result:
        from .merge import run_merge  # merge builds on this module

        cursor = Cursor(tokenize(text))
        first = cursor.peek()
        with self.lock:
            if first is None:
                raise SqlError("PARSE_EMPTY_STATEMENT", "Syntax error, unexpected empty statement")
            if first.is_word("SELECT", "WITH"):
                return self.query(cursor.tokens, params)
            if first.is_word("MERGE"):
                return run_merge(self, cursor, params)
            if cursor.accept("CREATE", "SCHEMA"):
                return self._create_schema(cursor)
            if cursor.accept("CREATE", "VOLUME"):
                return self._create_volume(cursor)
            if cursor.accept("CREATE", "TABLE"):
                return self._create_table(cursor)
            if first.is_word("OPTIMIZE", "VACUUM"):
                return self._maintain(cursor)
            raise SqlError("DOUBLE_UNSUPPORTED", f"the double does not translate statements beginning {first.value!r}")

    def run(
        self, tokens_or_sql: list[Token] | str, params: dict[str, Any], used: set[str] | None = None
    ) -> duckdb.DuckDBPyConnection:
        """Run Databricks tokens (translated) or DuckDB text, binding the parameters it uses."""
        if isinstance(tokens_or_sql, list):
            sql, used = self.renderer.render(tokens_or_sql)
        else:
            sql = tokens_or_sql
        used = used or set()
        missing = sorted(used - params.keys())
        if missing:
            raise SqlError("UNBOUND_SQL_PARAMETER", f"Found the unbound parameter: {missing[0]}.")
        try:
            return self.con.execute(sql, {name: params[name] for name in used})
        except duckdb.CatalogException as exc:
            raise SqlError("TABLE_OR_VIEW_NOT_FOUND", str(exc)) from None
        except duckdb.BinderException as exc:
            raise SqlError("UNRESOLVED_COLUMN", str(exc)) from None
        except duckdb.Error as exc:
            raise SqlError("DOUBLE_EXECUTION_ERROR", f"{type(exc).__name__}: {exc}") from None

    def query(self, tokens: list[Token], params: dict[str, Any]) -> Result:
        result = self.run(tokens, params)
        columns = [(d[0], str(d[1])) for d in result.description or []]
        return Result(columns, result.fetchall())

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def _if_not_exists(self, cursor: Cursor) -> bool:
        return cursor.accept("IF", "NOT", "EXISTS")

    def _create_schema(self, cursor: Cursor) -> Result:
        lenient = self._if_not_exists(cursor)
        catalog, schema = cursor.qualified(2)
        self._end(cursor)
        if self.schema_exists(catalog, schema) and not lenient:
            raise SqlError("SCHEMA_ALREADY_EXISTS", f"Cannot create schema `{schema}` because it already exists.")
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.alias(catalog))}.{quote(schema)}")
        return Result()

    def _create_volume(self, cursor: Cursor) -> Result:
        lenient = self._if_not_exists(cursor)
        catalog, schema, volume = cursor.qualified(3)
        self._end(cursor)
        self._require_schema(catalog, schema)
        path = self.volume_dir(catalog, schema, volume)
        if path.is_dir() and not lenient:
            raise SqlError("VOLUME_ALREADY_EXISTS", f"Volume `{volume}` already exists.")
        path.mkdir(parents=True, exist_ok=True)
        return Result()

    def _create_table(self, cursor: Cursor) -> Result:
        lenient = self._if_not_exists(cursor)
        name = cursor.qualified(3)
        columns = [self._column_def(part) for part in split_top_level(cursor.parenthesized())]
        if cursor.accept("USING") and not cursor.accept("DELTA"):
            raise SqlError("DOUBLE_UNSUPPORTED", "tables are Delta tables")
        properties = self._properties(cursor) if cursor.accept("TBLPROPERTIES") else {}
        self._end(cursor)
        self._require_schema(*name[:2])
        if self.table_columns(*name):
            if not lenient:
                raise SqlError("TABLE_OR_VIEW_ALREADY_EXISTS", f"Cannot create table `{'`.`'.join(name)}`: it exists.")
            return Result()
        self.con.execute(f"CREATE TABLE {self.table_ref(*name)} ({', '.join(columns)})")
        self.table_properties[name] = properties
        return Result()

    def _column_def(self, tokens: list[Token]) -> str:
        cursor = Cursor(tokens)
        column = cursor.name()
        kind = cursor.next().value.upper()
        if kind == "DECIMAL":
            precision, _, scale = cursor.parenthesized()
            if int(precision.value) > 38:
                raise SqlError("DECIMAL_PRECISION_EXCEEDS_MAX_PRECISION", f"precision {precision.value} exceeds 38.")
            duck = f"DECIMAL({int(precision.value)},{int(scale.value)})"
        elif kind in _DDL_TYPES:
            duck = _DDL_TYPES[kind]
        else:
            raise SqlError("UNSUPPORTED_DATATYPE", f"Unsupported data type {kind!r}")
        not_null = cursor.accept("NOT", "NULL")
        self._end(cursor)
        return f"{quote(column)} {duck}{' NOT NULL' if not_null else ''}"

    def _properties(self, cursor: Cursor) -> dict[str, str]:
        properties = {}
        for part in split_top_level(cursor.parenthesized()):
            if len(part) != 3 or part[1] != Token("op", "=") or part[0].kind != "string" or part[2].kind != "string":
                raise SqlError("DOUBLE_UNSUPPORTED", "TBLPROPERTIES are written 'key' = 'value' in the double")
            key, value = part[0].value, part[2].value
            if value not in _KNOWN_PROPERTIES.get(key, set()):
                raise SqlError("DELTA_UNKNOWN_CONFIGURATION", f"Unknown configuration or value: {key} = {value}")
            properties[key] = value
        return properties

    def _maintain(self, cursor: Cursor) -> Result:
        verb = cursor.next().value.upper()
        name = cursor.qualified(3)
        if verb == "VACUUM" and cursor.accept("RETAIN"):
            hours = cursor.next()
            cursor.expect("HOURS")
            if hours.kind != "number" or float(hours.value) < MIN_VACUUM_HOURS:
                raise SqlError(
                    "DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT",
                    f"requirement failed: {hours.value} hours is below the {MIN_VACUUM_HOURS} hours safety limit",
                )
        self._end(cursor)
        self.require_table(*name)
        self.maintenance.append((verb, ".".join(name)))
        path = f"dbfs:/double/{'/'.join(name)}"
        return Result([("path", "VARCHAR")], [(path,)])

    def _require_schema(self, catalog: str, schema: str) -> None:
        if not self.schema_exists(catalog, schema):
            raise SqlError("SCHEMA_NOT_FOUND", f"The schema `{catalog}`.`{schema}` cannot be found.")

    @staticmethod
    def _end(cursor: Cursor) -> None:
        if not cursor.at_end():
            raise SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at or near {cursor.peek()}")
