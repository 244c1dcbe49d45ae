"""MERGE INTO, executed the way Delta does it, on DuckDB.

DuckDB's own MERGE differs from Delta's in three ways that matter here: ``UPDATE SET *``/``INSERT *``
match columns by position (Delta: by name), there is no ``WITH SCHEMA EVOLUTION`` (Delta adds the
source's new columns first), and two source rows matching one target row are silently applied twice
(Delta fails with DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE). So the source is
materialised first, checked and counted, and the merge is issued with explicit column lists. The
result row carries Delta's metrics.

Schema evolution follows Delta: new columns obey the column-name rules, and a column whose source type
is wider keeps its type (values are cast into it) unless the table has type widening enabled and the
change is one Delta applies automatically. Evolving the schema is a metadata change: the commit then
conflicts with any write that overtook the statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .delta_log import WRITE
from .sqltext import Cursor, SqlError, Token, quote, split_top_level

if TYPE_CHECKING:
    from .engine import Engine, Result, TableName

_SOURCE = "__merge_source"
_MULTIPLE_MATCHES = (
    "Cannot perform Merge as multiple source rows matched and attempted to modify the same target row "
    "in the Delta table in possibly conflicting ways. SQLSTATE: 21506"
)
METRICS = ("num_affected_rows", "num_updated_rows", "num_deleted_rows", "num_inserted_rows")


@dataclass
class Clause:
    matched: bool
    condition: list[Token]
    action: str  # UPDATE, DELETE, INSERT
    star: bool = False
    assignments: list[tuple[str, list[Token]]] = field(default_factory=list)  # UPDATE SET c = expr


def run_merge(engine: Engine, cursor: Cursor, params: dict[str, Any], read: dict[TableName, int] | None) -> Result:
    from .engine import Result

    cursor.expect("MERGE")
    evolve = cursor.accept("WITH", "SCHEMA", "EVOLUTION")
    cursor.expect("INTO")
    target = cursor.qualified(3)
    t_alias = _alias(cursor, target[-1])
    cursor.expect("USING")
    if cursor.peek() != Token("op", "("):
        raise SqlError("DOUBLE_UNSUPPORTED", "the double merges from a parenthesised query only")
    source = cursor.parenthesized()
    s_alias = _alias(cursor, None)
    cursor.expect("ON")
    on = cursor.until(lambda t: t.is_word("WHEN"))
    clauses = _clauses(cursor)
    tgt = engine.require_table(*target)
    source_sql, source_used = engine.renderer.render(source)

    with engine.transaction():
        engine.run(f"CREATE TEMP TABLE {_SOURCE} AS {source_sql}", params, source_used)
        try:
            columns, evolved = _evolve(engine, target, evolve, clauses)
            counts = _count(engine, tgt, t_alias, s_alias, on, clauses, params)
            merge_sql, used = _duck_merge(engine, tgt, t_alias, s_alias, on, clauses, columns)
            engine.run(merge_sql, params, used)
            engine.commit(target, WRITE, read, changes_metadata=evolved)  # type: ignore[arg-type]
        finally:
            engine.con.execute(f"DROP TABLE IF EXISTS {_SOURCE}")
    updated, deleted, inserted = counts
    metrics = (updated + deleted + inserted, updated, deleted, inserted)
    return Result.of_rows([(m, "BIGINT") for m in METRICS], [metrics])


def _alias(cursor: Cursor, default: str | None) -> str:
    cursor.accept("AS")
    token = cursor.peek()
    if token is not None and token.is_name and not token.is_word("USING", "ON"):
        return cursor.name()
    if default is None:
        raise SqlError("PARSE_SYNTAX_ERROR", "a MERGE source query needs an alias")
    return default


def _clauses(cursor: Cursor) -> list[Clause]:
    clauses: list[Clause] = []
    while cursor.accept("WHEN"):
        matched = cursor.accept("MATCHED")
        if not matched:
            cursor.expect("NOT", "MATCHED")
            if cursor.accept("BY", "SOURCE"):
                raise SqlError("DOUBLE_UNSUPPORTED", "WHEN NOT MATCHED BY SOURCE is not translated by the double")
            cursor.accept("BY", "TARGET")
        condition = cursor.until(lambda t: t.is_word("THEN")) if cursor.accept("AND") else []
        cursor.expect("THEN")
        clauses.append(_action(cursor, matched, condition))
    if not cursor.at_end():
        raise SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at or near {cursor.peek()}")
    if not clauses or sum(c.matched for c in clauses) > 1 or sum(not c.matched for c in clauses) > 1:
        raise SqlError("DOUBLE_UNSUPPORTED", "the double merges with at most one MATCHED and one NOT MATCHED clause")
    return clauses


def _action(cursor: Cursor, matched: bool, condition: list[Token]) -> Clause:
    if matched and cursor.accept("DELETE"):
        return Clause(True, condition, "DELETE")
    if matched and cursor.accept("UPDATE", "SET"):
        if cursor.accept("*"):
            return Clause(True, condition, "UPDATE", star=True)
        assignments = []
        for part in split_top_level(cursor.until(lambda t: t.is_word("WHEN"))):
            eq = part.index(Token("op", "=")) if Token("op", "=") in part else -1
            if eq < 1 or not part[eq - 1].is_name:
                raise SqlError("PARSE_SYNTAX_ERROR", "UPDATE SET needs column = expression")
            assignments.append((part[eq - 1].value, part[eq + 1:]))
        return Clause(True, condition, "UPDATE", assignments=assignments)
    if not matched and cursor.accept("INSERT", "*"):
        return Clause(False, condition, "INSERT", star=True)
    raise SqlError("DOUBLE_UNSUPPORTED", f"the double does not translate this MERGE action near {cursor.peek()}")


def _evolve(engine: Engine, target: tuple[str, ...], evolve: bool, clauses: list[Clause]) -> tuple[list[str], bool]:
    """Schema evolution: add the source's new columns, widen types where the table allows it. Returns the
    columns ``*`` stands for and whether the table's schema changed."""
    from .engine import check_column_names

    source = engine.con.execute(f"DESCRIBE {_SOURCE}").fetchall()
    existing = {name.lower(): kind for name, kind in engine.table_columns(*target)}
    if evolve:
        log = engine.log(*target)
        added = [(name, kind) for name, kind, *_ in source if name.lower() not in existing]
        check_column_names([name for name, _ in added], log)
        widened = [
            (name, kind) for name, kind, *_ in source
            if name.lower() in existing and log.flag("delta.enableTypeWidening")
            and widens(existing[name.lower()], kind)
        ]
        ref = engine.table_ref(*target)
        for name, kind in added:
            engine.con.execute(f"ALTER TABLE {ref} ADD COLUMN {quote(name)} {kind}")
        for name, kind in widened:
            engine.con.execute(f"ALTER TABLE {ref} ALTER COLUMN {quote(name)} SET DATA TYPE {kind}")
        return [name for name, *_ in source], bool(added or widened)
    names = [name for name, _ in engine.table_columns(*target)]
    have = {name.lower() for name, *_ in source}
    if any(c.star for c in clauses):
        for name in names:
            if name.lower() not in have:
                raise SqlError("DELTA_MERGE_UNRESOLVED_EXPRESSION", f"Cannot resolve {name} in the source columns")
    return names, False


_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def widens(old: str, new: str) -> bool:
    """Whether Delta's type widening turns a column of type ``old`` into ``new`` by itself during schema
    evolution: a wider integer, float to double, a decimal with k1 >= k2 >= 0 more digits of precision and
    scale, a date to a timestamp without time zone. Integers to decimals or doubles need a manual ALTER."""
    old, new = old.upper(), new.upper()
    if old in _INTEGERS and new in _INTEGERS:
        return _INTEGERS.index(new) > _INTEGERS.index(old)
    if (old, new) in (("FLOAT", "DOUBLE"), ("DATE", "TIMESTAMP")):
        return True
    before, after = _DECIMAL.match(old), _DECIMAL.match(new)
    if before and after:
        k1 = int(after.group(1)) - int(before.group(1))
        k2 = int(after.group(2)) - int(before.group(2))
        return k1 >= k2 >= 0 and k1 > 0
    return False


def _count(
    engine: Engine, tgt: str, t: str, s: str, on: list[Token], clauses: list[Clause], params: dict[str, Any]
) -> tuple[int, int, int]:
    on_sql, used = engine.renderer.render(on)
    join = f"FROM {tgt} AS {quote(t)} JOIN {_SOURCE} AS {quote(s)} ON ({on_sql})"
    updated = deleted = inserted = 0
    for clause in clauses:
        cond_sql, cond_used = engine.renderer.render(clause.condition) if clause.condition else ("true", set())
        if clause.matched:
            dupes = engine.run(
                f"SELECT count(*) FROM (SELECT {quote(t)}.rowid {join} GROUP BY {quote(t)}.rowid HAVING count(*) > 1)",
                params, used,
            ).fetchone()
            if dupes and dupes[0]:
                raise SqlError("DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE", _MULTIPLE_MATCHES)
            hits = engine.run(f"SELECT count(*) {join} WHERE ({cond_sql})", params, used | cond_used).fetchone()
            if clause.action == "DELETE":
                deleted = hits[0] if hits else 0
            else:
                updated = hits[0] if hits else 0
        else:
            hits = engine.run(
                f"SELECT count(*) FROM {_SOURCE} AS {quote(s)} WHERE NOT EXISTS "
                f"(SELECT 1 FROM {tgt} AS {quote(t)} WHERE ({on_sql})) AND ({cond_sql})",
                params, used | cond_used,
            ).fetchone()
            inserted = hits[0] if hits else 0
    return updated, deleted, inserted


def _duck_merge(
    engine: Engine, tgt: str, t: str, s: str, on: list[Token], clauses: list[Clause], columns: list[str]
) -> tuple[str, set[str]]:
    on_sql, used = engine.renderer.render(on)
    parts = [f"MERGE INTO {tgt} AS {quote(t)} USING {_SOURCE} AS {quote(s)} ON ({on_sql})"]
    for clause in clauses:
        head = "WHEN MATCHED" if clause.matched else "WHEN NOT MATCHED"
        if clause.condition:
            cond_sql, cond_used = engine.renderer.render(clause.condition)
            head += f" AND ({cond_sql})"
            used |= cond_used
        if clause.action == "DELETE":
            parts.append(f"{head} THEN DELETE")
        elif clause.action == "INSERT":
            names = ", ".join(quote(c) for c in columns)
            values = ", ".join(f"{quote(s)}.{quote(c)}" for c in columns)
            parts.append(f"{head} THEN INSERT ({names}) VALUES ({values})")
        elif clause.star:
            sets = ", ".join(f"{quote(c)} = {quote(s)}.{quote(c)}" for c in columns)
            parts.append(f"{head} THEN UPDATE SET {sets}")
        else:
            sets = []
            for column, expr in clause.assignments:
                expr_sql, expr_used = engine.renderer.render(expr)
                used |= expr_used
                sets.append(f"{quote(column)} = {expr_sql}")
            parts.append(f"{head} THEN UPDATE SET {', '.join(sets)}")
    return " ".join(parts), used
