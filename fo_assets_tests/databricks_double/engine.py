"""The double's warehouse: Unity Catalog names over DuckDB, one database file per catalog.

``execute`` takes one Databricks statement with bound parameter values, translates it (``sqltext``,
``merge``) and runs it. Statement kinds it does not know are refused with a FAILED-style ``SqlError``.

As in Unity Catalog, catalog, schema, table and volume names are stored lower-case and matched without
regard to case in SQL; volume paths are resolved by the stored names. Each table has a ``DeltaLog``
(properties and commits): writes commit on top of the version their statement read when it started, so
statements running at once conflict as Delta's do. Column names follow Delta's rules without column
mapping.
"""

from __future__ import annotations

import re
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pyarrow as pa

from .delta_log import METADATA, OPTIMIZE, Commit, DeltaLog, check_property
from .sqltext import Cursor, Renderer, SqlError, Token, literal, quote, split_top_level, tokenize

_RESERVED = {"main", "temp", "system", "memory"}  # DuckDB database names a catalog cannot take
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_DDL_TYPES = {
    "STRING": "VARCHAR", "BIGINT": "BIGINT", "LONG": "BIGINT", "INT": "INTEGER", "INTEGER": "INTEGER",
    "SMALLINT": "SMALLINT", "TINYINT": "TINYINT", "BOOLEAN": "BOOLEAN", "DOUBLE": "DOUBLE",
    "FLOAT": "REAL", "DATE": "DATE", "TIMESTAMP": "TIMESTAMPTZ", "TIMESTAMP_NTZ": "TIMESTAMP",
    "BINARY": "BLOB",
}
# Delta refuses these characters in column names unless column mapping is on.
_BAD_COLUMN_CHARACTERS = " ,;{}()\n\t="
TableName = tuple[str, str, str]


@dataclass
class Result:
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)
    table: pa.Table = field(default_factory=lambda: pa.table({}))

    @classmethod
    def of_rows(cls, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> Result:
        names = [name for name, _ in columns]
        return cls(columns, pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)}))

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self.table.to_pylist()]


def uc_name(name: str) -> str:
    """Unity Catalog stores catalog, schema, table and volume names lower-case."""
    return name.lower()


def new_uc_name(name: str) -> str:
    """A name for a new schema, table or volume, refused as Unity Catalog refuses it: no period, space,
    forward slash or control character, at most 255 characters."""
    if not name or len(name) > 255 or any(ch in "./ \x7f" or ord(ch) < 32 for ch in name):
        raise SqlError("INVALID_SCHEMA_OR_RELATION_NAME", f"`{name}` is not a valid name for a Unity Catalog object.")
    return uc_name(name)


class Engine:
    def __init__(self, root: Path):
        self.root = root
        self.volumes_root = root / "volumes"
        (root / "catalogs").mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.lock = threading.RLock()
        self.catalogs: dict[str, str] = {}
        self.logs: dict[TableName, DeltaLog] = {}
        # Guards the logs alone, so a statement starting reads the versions at once while another one runs
        # (under ``lock``), as a warehouse accepts a statement while others execute.
        self._logs_lock = threading.Lock()
        self.maintenance: list[tuple[str, str]] = []
        self.vacuums: list[tuple[str, float]] = []  # (table, hours of history kept) of every VACUUM
        self.renderer = Renderer(self.alias, self.volume_files)
        self._interloper: str | None = None  # another writer's commit to land before the next one of ours

    # -- catalogs, schemas, volumes -------------------------------------------------------------

    def create_catalog(self, name: str) -> None:
        if not _SAFE_NAME.match(name):
            raise ValueError(f"the double keeps catalogs in files: use a simple name, not {name!r}")
        name = uc_name(name)
        with self.lock:
            if name in self.catalogs:
                return
            alias = f"{name}__uc" if name.lower() in _RESERVED else name
            self.con.execute(f"ATTACH {literal(str(self.root / 'catalogs' / (name + '.duckdb')))} AS {quote(alias)}")
            self.catalogs[name] = alias

    def alias(self, catalog: str) -> str:
        if uc_name(catalog) not in self.catalogs:
            raise SqlError("NO_SUCH_CATALOG_EXCEPTION", f"Catalog '{catalog}' was not found.")
        return self.catalogs[uc_name(catalog)]

    def table_ref(self, catalog: str, schema: str, table: str) -> str:
        """The DuckDB name of a Unity Catalog table, for tests that inspect rows."""
        return ".".join(quote(p) for p in (self.alias(catalog), uc_name(schema), uc_name(table)))

    def schema_exists(self, catalog: str, schema: str) -> bool:
        found = self.con.execute(
            "SELECT count(*) FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
            [self.alias(catalog), uc_name(schema)],
        ).fetchone()
        return bool(found and found[0])

    def table_columns(self, catalog: str, schema: str, table: str) -> list[tuple[str, str]]:
        """[(name, DuckDB type)]; empty when the table does not exist."""
        return self.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
            "AND table_name = ? ORDER BY column_index",
            [self.alias(catalog), uc_name(schema), uc_name(table)],
        ).fetchall()

    def log(self, catalog: str, schema: str, table: str) -> DeltaLog:
        """The table's properties and commits; the table must exist."""
        self.require_table(catalog, schema, table)
        with self._logs_lock:
            return self.logs.setdefault(_key(catalog, schema, table), DeltaLog())

    def snapshot(self) -> dict[TableName, int]:
        """The version of every table now: what a statement starting now reads."""
        with self._logs_lock:
            return {name: log.version for name, log in self.logs.items()}

    def commit(self, name: TableName, operation: str, read: dict[TableName, int] | None,
               changes_metadata: bool = False) -> None:
        """Commit a write to ``name`` on top of the version the statement read (see ``delta_log``)."""
        log = self.log(*name)
        with self._logs_lock:
            if self._interloper:
                log.commits.append(Commit(log.version + 1, self._interloper))
                self._interloper = None
            version = log.version if read is None else read.get(_key(*name), 0)
            log.commit(version, operation, changes_metadata)

    def require_table(self, catalog: str, schema: str, table: str) -> str:
        if not self.table_columns(catalog, schema, table):
            raise SqlError(
                "TABLE_OR_VIEW_NOT_FOUND", f"The table or view `{catalog}`.`{schema}`.`{table}` cannot be found."
            )
        return self.table_ref(catalog, schema, table)

    def volume_dir(self, catalog: str, schema: str, volume: str) -> Path:
        return self.volumes_root / uc_name(catalog) / uc_name(schema) / uc_name(volume)

    def local_path(self, volume_path: str) -> Path:
        """``/Volumes/<catalog>/<schema>/<volume>/...`` on local disk; the volume must exist, named as
        Unity Catalog stores it (lower-case)."""
        parts = volume_path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "Volumes" or any(p in ("", ".", "..") for p in parts[1:]):
            raise FileNotFoundError(f"not a Unity Catalog volume path: {volume_path!r}")
        if parts[1:4] != [uc_name(p) for p in parts[1:4]] or not self.volume_dir(*parts[1:4]).is_dir():
            raise FileNotFoundError(f"volume {'.'.join(parts[1:4])} does not exist")
        return self.volumes_root.joinpath(*parts[1:])

    def volume_files(self, folder: str) -> list[str]:
        """What Databricks' read_files reads in a folder: every non-hidden file under it, in subfolders
        too, all of it Parquet."""
        try:
            path = self.local_path(folder)
        except FileNotFoundError as exc:
            raise SqlError("PATH_NOT_FOUND", str(exc)) from None
        if not path.is_dir():
            raise SqlError("PATH_NOT_FOUND", f"Path does not exist: {folder}")
        entries = sorted(
            p for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts)
        )
        if not entries:
            raise SqlError("UNABLE_TO_INFER_SCHEMA", f"Unable to infer schema for Parquet at {folder}.")
        for entry in entries:
            if entry.read_bytes()[:4] != b"PAR1":
                name = f"{folder.rstrip('/')}/{entry.relative_to(path).as_posix()}"
                raise SqlError("FAILED_READ_FILE", f"Error while reading file {name}: not Parquet")
        return [str(e) for e in entries]

    # -- statements -----------------------------------------------------------------------------

    def execute(self, text: str, params: dict[str, Any], read: dict[TableName, int] | None = None,
                interloper: str | None = None) -> Result:
        """Run one statement that read the table versions ``read`` when it started (None: now); with
        ``interloper``, another writer commits that operation to the table first."""
        from .merge import run_merge  # merge builds on this module

        cursor = Cursor(tokenize(text))
        first = cursor.peek()
        with self.lock:
            self._interloper = interloper
            try:
                if first is None:
                    raise SqlError("PARSE_EMPTY_STATEMENT", "Syntax error, unexpected empty statement")
                if first.is_word("SELECT", "WITH"):
                    return self.query(cursor.tokens, params)
                if first.is_word("MERGE"):
                    return run_merge(self, cursor, params, read)
                if cursor.accept("CREATE", "SCHEMA"):
                    return self._create_schema(cursor)
                if cursor.accept("CREATE", "VOLUME"):
                    return self._create_volume(cursor)
                if cursor.accept("CREATE", "TABLE"):
                    return self._create_table(cursor)
                if cursor.accept("ALTER", "TABLE"):
                    return self._alter_table(cursor, read)
                if cursor.accept("SHOW", "TBLPROPERTIES"):
                    return self._show_properties(cursor)
                if first.is_word("OPTIMIZE", "VACUUM"):
                    return self._maintain(cursor, read)
                raise SqlError("DOUBLE_UNSUPPORTED",
                               f"the double does not translate statements beginning {first.value!r}")
            finally:
                self._interloper = None

    def predictive_optimization(self, catalog: str, schema: str, table: str) -> float:
        """What predictive optimization runs on a managed table when it sees fit: OPTIMIZE, then VACUUM
        with the table's own retention. Returns the hours of history that VACUUM kept."""
        name = ".".join(sql_quote(p) for p in (catalog, schema, table))
        self.execute(f"OPTIMIZE {name}", {})
        self.execute(f"VACUUM {name}", {})
        return self.vacuums[-1][1]

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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Arrow output on a DB-API result makes an extra copy"
            table = result.to_arrow_table()
        plain = pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema])
        return Result(columns, table.cast(plain))

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
        new_uc_name(schema)
        if self.schema_exists(catalog, schema) and not lenient:
            raise SqlError("SCHEMA_ALREADY_EXISTS", f"Cannot create schema `{schema}` because it already exists.")
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.alias(catalog))}.{quote(uc_name(schema))}")
        return Result()

    def _create_volume(self, cursor: Cursor) -> Result:
        lenient = self._if_not_exists(cursor)
        catalog, schema, volume = cursor.qualified(3)
        self._end(cursor)
        new_uc_name(volume)
        self._require_schema(catalog, schema)
        path = self.volume_dir(catalog, schema, volume)
        if path.is_dir() and not lenient:
            raise SqlError("VOLUME_ALREADY_EXISTS", f"Volume `{volume}` already exists.")
        path.mkdir(parents=True, exist_ok=True)
        return Result()

    def _create_table(self, cursor: Cursor) -> Result:
        lenient = self._if_not_exists(cursor)
        name = _key(*cursor.qualified(3))
        columns = [self._column_def(part) for part in split_top_level(cursor.parenthesized())]
        if cursor.accept("USING") and not cursor.accept("DELTA"):
            raise SqlError("DOUBLE_UNSUPPORTED", "tables are Delta tables")
        properties = self._properties(cursor) if cursor.accept("TBLPROPERTIES") else {}
        self._end(cursor)
        self._require_schema(*name[:2])
        new_uc_name(name[2])
        if self.table_columns(*name):
            if not lenient:
                raise SqlError("TABLE_OR_VIEW_ALREADY_EXISTS", f"Cannot create table `{'`.`'.join(name)}`: it exists.")
            return Result()
        log = DeltaLog(properties)
        check_column_names([column for column, _ in columns], log)
        self.con.execute(f"CREATE TABLE {self.table_ref(*name)} ({', '.join(d for _, d in columns)})")
        with self._logs_lock:
            self.logs[name] = log
        return Result()

    def _alter_table(self, cursor: Cursor, read: dict[TableName, int] | None) -> Result:
        name = _key(*cursor.qualified(3))
        if not cursor.accept("SET", "TBLPROPERTIES"):
            raise SqlError("DOUBLE_UNSUPPORTED", "the double alters tables with SET TBLPROPERTIES only")
        properties = self._properties(cursor)
        self._end(cursor)
        log = self.log(*name)
        self.commit(name, METADATA, read)
        log.properties.update(properties)
        return Result()

    def _show_properties(self, cursor: Cursor) -> Result:
        name = cursor.qualified(3)
        self._end(cursor)
        properties = sorted(self.log(*name).properties.items())
        return Result.of_rows([("key", "VARCHAR"), ("value", "VARCHAR")], properties)

    def _column_def(self, tokens: list[Token]) -> tuple[str, str]:
        """(column name, DuckDB column definition)."""
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
        return column, f"{quote(column)} {duck}{' NOT NULL' if not_null else ''}"

    def _properties(self, cursor: Cursor) -> dict[str, str]:
        properties = {}
        for part in split_top_level(cursor.parenthesized()):
            if len(part) != 3 or part[1] != Token("op", "=") or part[0].kind != "string" or part[2].kind != "string":
                raise SqlError("DOUBLE_UNSUPPORTED", "TBLPROPERTIES are written 'key' = 'value' in the double")
            properties[part[0].value] = check_property(part[0].value, part[2].value)
        return properties

    def _maintain(self, cursor: Cursor, read: dict[TableName, int] | None) -> Result:
        verb = cursor.next().value.upper()
        name = _key(*cursor.qualified(3))
        log = self.log(*name)
        kept = log.deleted_file_retention_hours  # VACUUM without RETAIN keeps what the table property says
        if verb == "VACUUM" and cursor.accept("RETAIN"):
            hours = cursor.next()
            cursor.expect("HOURS")
            if hours.kind != "number" or float(hours.value) < kept:
                raise SqlError(
                    "DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT",
                    f"requirement failed: {hours.value} hours is shorter than the table's "
                    f"delta.deletedFileRetentionDuration ({kept:g} hours)",
                )
            kept = float(hours.value)
        self._end(cursor)
        if verb == "OPTIMIZE":
            self.commit(name, OPTIMIZE, read)
        else:
            self.vacuums.append((".".join(name), kept))
        self.maintenance.append((verb, ".".join(name)))
        path = f"dbfs:/double/{'/'.join(name)}"
        return Result.of_rows([("path", "VARCHAR")], [(path,)])

    def _require_schema(self, catalog: str, schema: str) -> None:
        if not self.schema_exists(catalog, schema):
            raise SqlError("SCHEMA_NOT_FOUND", f"The schema `{catalog}`.`{schema}` cannot be found.")

    @staticmethod
    def _end(cursor: Cursor) -> None:
        if not cursor.at_end():
            raise SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at or near {cursor.peek()}")


def check_column_names(columns: list[str], log: DeltaLog) -> None:
    """Delta without column mapping refuses names with a space or any of ``,;{}()=``, a newline or a tab."""
    bad = [c for c in columns if any(ch in _BAD_COLUMN_CHARACTERS for ch in c)]
    if bad and not log.column_mapping:
        raise SqlError(
            "DELTA_INVALID_CHARACTERS_IN_COLUMN_NAMES",
            "Found invalid character(s) among ' ,;{}()\\n\\t=' in the column names of your schema. "
            f"Invalid column names: {', '.join(bad)}. Please use other characters and try again. "
            "Alternatively, enable Column Mapping to keep using these characters.",
        )


def _key(catalog: str, schema: str, table: str) -> TableName:
    return uc_name(catalog), uc_name(schema), uc_name(table)


def sql_quote(name: str) -> str:
    """A backtick-quoted Databricks identifier."""
    return "`" + name.replace("`", "``") + "`"
