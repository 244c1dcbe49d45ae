"""The ``$filter`` dialect F&O accepts: parser and a pure, vectorized evaluator.

Supported, as in F&O: ``eq ne gt ge lt le``, ``and or not``, parentheses, single-quoted strings with
``''`` escaping and ``*`` wildcards in ``eq``/``ne``, unquoted date-time literals, qualified enum
literals (``Microsoft.Dynamics.DataEntities.PurchStatus'Received'``, ``eq``/``ne`` only), numbers, null.
Rejected with the messages a client must surface: functions (``contains``, ``startswith``...), ``in``,
``has``, unknown properties, type mismatches, syntax errors. String comparisons ignore case, as F&O's
SQL collation does.

Two F&O behaviours a client must survive: a filter with more nodes than ASP.NET OData's ``MaxNodeCount``
(100 by default) is refused (``count_nodes``), and an X++ Date field compared with a date-time literal is
compared by date, the literal first converted to a date in a time zone that is not UTC
(``date_offset_s``), so a bound at ``T00:00:00Z`` lands on the previous day while ``T12:00:00Z`` does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from .schema import NAMESPACE, FieldDef, enums
from .values import DECIMAL_SCALE, parse_time


class ODataQueryError(ValueError):
    """A query option F&O would reject with HTTP 400; ``message`` is the innermost cause."""

    def __init__(self, message: str, kind: str = "Microsoft.OData.ODataException") -> None:
        super().__init__(message)
        self.message, self.kind = message, kind


@dataclass(frozen=True)
class Literal:
    kind: str  # string, number, datetime, enum, null, bool, date, guid
    value: object = None
    enum_type: str | None = None


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    literal: Literal


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not:
    operand: Expr


Expr = Compare | BoolOp | Not

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
_OP_KIND = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w-]))
  | (?P<enum>[A-Za-z_][\w.]*'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<ident>[A-Za-z_][\w.]*)
  | (?P<punct>[(),])
""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ODataQueryError(
                f"Syntax error: character '{text[pos]}' at position {pos} is not valid in $filter '{text}'."
            )
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i = text, _tokens(text), 0

    def peek(self, offset: int = 0) -> tuple[str, str, int]:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else ("end", "", len(self.text))

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        self.i += 1
        return tok

    def fail(self, what: str) -> ODataQueryError:
        kind, value, pos = self.peek()
        found = "the end of the expression" if kind == "end" else f"'{value}'"
        return ODataQueryError(f"Syntax error at position {pos} in '{self.text}': expected {what}, found {found}.")

    def parse(self) -> Expr:
        if not self.toks:
            raise ODataQueryError("The $filter expression is empty.")
        expr = self.expr()
        if self.peek()[0] != "end":
            raise self.fail("'and', 'or' or the end of the expression")
        return expr

    def expr(self) -> Expr:
        left = self.conjunction()
        while self.peek()[1] == "or":
            self.take()
            left = BoolOp("or", left, self.conjunction())
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.peek()[1] == "and":
            self.take()
            left = BoolOp("and", left, self.negation())
        return left

    def negation(self) -> Expr:
        if self.peek()[1] == "not":
            self.take()
            return Not(self.negation())
        if self.peek()[1] == "(":
            self.take()
            inner = self.expr()
            if self.take()[1] != ")":
                self.i -= 1
                raise self.fail("')'")
            return inner
        return self.comparison()

    def operand(self) -> str | Literal:
        kind, value, _ = self.peek()
        if kind == "ident" and self.peek(1)[1] == "(":
            raise ODataQueryError(
                f"Unsupported function '{value}' in $filter '{self.text}': F&O OData supports only comparisons "
                "(eq, ne, gt, ge, lt, le) joined by and/or/not; use eq 'text*' for prefix matches.",
                "System.NotSupportedException",
            )
        self.take()
        if kind == "ident" and value in ("null", "true", "false"):
            return Literal("null") if value == "null" else Literal("bool", value == "true")
        if kind == "ident" and value not in COMPARISONS + ("and", "or", "not"):
            return value
        if kind == "string":
            return Literal("string", value[1:-1].replace("''", "'"))
        if kind == "enum":
            type_name, quoted = value.split("'", 1)
            return Literal("enum", quoted[:-1].replace("''", "'"), type_name)
        if kind == "number":
            return Literal("number", Decimal(value.rstrip("mMdDfFlL")))
        if kind == "datetime":
            return Literal("datetime", parse_time(value))
        if kind == "date":
            return Literal("date", value)
        if kind == "guid":
            return Literal("guid", value.lower())
        self.i -= 1
        raise self.fail("a property or a literal")

    def comparison(self) -> Expr:
        left = self.operand()
        kind, op, _ = self.peek()
        if op in ("in", "has"):
            raise ODataQueryError(
                f"The '{op}' operator is not supported by F&O OData: use 'or' chains of eq.",
                "System.NotSupportedException",
            )
        if op not in COMPARISONS:
            raise self.fail("a comparison operator (eq, ne, gt, ge, lt, le)")
        self.take()
        right = self.operand()
        if isinstance(left, str) and isinstance(right, Literal):
            return Compare(left, op, right)
        if isinstance(left, Literal) and isinstance(right, str):
            return Compare(right, _FLIP[op], left)
        raise ODataQueryError(
            f"Unsupported comparison in $filter '{self.text}': compare one property with one literal.",
            "System.NotSupportedException",
        )


def parse_filter(text: str) -> Expr:
    return _Parser(text).parse()


# -- evaluation --------------------------------------------------------------------------------------

_LITERAL_TYPE = {
    "string": "Edm.String",
    "number": "Edm.Decimal",
    "datetime": "Edm.DateTimeOffset",
    "bool": "Edm.Boolean",
    "date": "Edm.Date",
    "guid": "Edm.Guid",
}
_ACCEPTS = {"str": ("string",), "dec": ("number",), "int": ("number",), "time": ("datetime",), "bool": ("bool",)}
_COMPARE = {
    "eq": np.equal,
    "ne": np.not_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "lt": np.less,
    "le": np.less_equal,
}


def _accepts(field: FieldDef) -> tuple[str, ...]:
    if field.xpp == "Guid":
        return ("guid",)
    if field.xpp == "Container":
        return ()
    return _ACCEPTS[field.storage]


def _incompatible(field: FieldDef, lit: Literal, op: str) -> ODataQueryError:
    other = f"{lit.enum_type}" if lit.kind == "enum" else _LITERAL_TYPE[lit.kind]
    return ODataQueryError(
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{field.edm_type}' and '{other}' for operator kind '{_OP_KIND[op]}'."
    )


def _numeric(column: np.ndarray, op: str, value: Decimal, scale: int) -> np.ndarray:
    """Exact comparison of int64 units (10**-scale) with a decimal literal, without floats."""
    units = value.scaleb(scale)
    floor, ceil = int(units.to_integral_value("ROUND_FLOOR")), int(units.to_integral_value("ROUND_CEILING"))
    exact = floor == ceil
    if op in ("eq", "ne"):
        hit = column == floor if exact else np.zeros(len(column), dtype=bool)
        return hit if op == "eq" else ~hit
    return {
        "gt": lambda: column > floor,
        "ge": lambda: column >= ceil,
        "lt": lambda: column < ceil,
        "le": lambda: column <= floor,
    }[op]()


def _strings(column: np.ndarray, op: str, text: str) -> np.ndarray:
    values = column.tolist()
    needle = text.lower()
    if op in ("eq", "ne"):
        if "*" in needle:  # F&O's wildcard; it has no escape
            rx = re.compile(".*".join(re.escape(part) for part in needle.split("*")), re.DOTALL)
            hit = [v is not None and rx.fullmatch(v.lower()) is not None for v in values]
        else:
            hit = [v is not None and v.lower() == needle for v in values]
        arr = np.array(hit, dtype=bool)
        return arr if op == "eq" else ~arr
    cmp = {"gt": str.__gt__, "ge": str.__ge__, "lt": str.__lt__, "le": str.__le__}[op]
    return np.array([v is not None and cmp(v.lower(), needle) for v in values], dtype=bool)


def _enum(node: Compare, field: FieldDef, column: np.ndarray) -> np.ndarray:
    lit, op = node.literal, node.op
    if lit.kind != "enum" or lit.enum_type != f"{NAMESPACE}.{field.enum}":
        raise _incompatible(field, lit, op)
    if lit.value not in enums()[field.enum or ""]:
        raise ODataQueryError(
            f"The string '{lit.value}' is not a valid enumeration type constant of '{field.edm_type}'."
        )
    if op not in ("eq", "ne"):
        raise ODataQueryError(
            f"Enum property '{field.name}' supports only eq and ne, not {op}.", "System.NotSupportedException"
        )
    hit = column == lit.value
    return hit if op == "eq" else ~hit


def _compare(node: Compare, field: FieldDef, column: np.ndarray, date_offset_s: int) -> np.ndarray:
    lit, op = node.literal, node.op
    if lit.kind == "null":
        if op not in ("eq", "ne"):
            return np.zeros(len(column), dtype=bool)
        is_null = (
            np.array([v is None for v in column.tolist()], dtype=bool)
            if field.storage == "str"
            else np.zeros(len(column), dtype=bool)
        )
        return is_null if op == "eq" else ~is_null
    if field.enum:
        return _enum(node, field, column)
    if lit.kind not in _accepts(field):
        raise _incompatible(field, lit, op)
    if field.storage == "str":
        return _strings(column, op, str(lit.value))
    if field.storage == "time" and field.xpp == "Date":
        # A date field against an instant: the instant becomes a date in the server's zone first.
        day = (int(lit.value) + date_offset_s) // 86_400  # type: ignore[call-overload]
        return _COMPARE[op](column // 86_400, day)
    if field.storage in ("time", "bool"):
        return _COMPARE[op](column, lit.value)  # type: ignore[call-overload]  # numpy's stubs: any scalar works
    return _numeric(column, op, lit.value, DECIMAL_SCALE if field.storage == "dec" else 0)  # type: ignore[arg-type]


def evaluate(
    expr: Expr,
    fields: Mapping[str, FieldDef],
    columns: Mapping[str, np.ndarray],
    type_name: str,
    *,
    date_offset_s: int = 0,
) -> np.ndarray:
    """Boolean mask of the rows (``columns`` in storage form) that satisfy ``expr``.

    ``date_offset_s``: the UTC offset (seconds) in which date-time literals become dates for Date fields.
    """
    if isinstance(expr, Compare):
        return _compare(expr, _field(fields, expr.field, type_name), columns[expr.field], date_offset_s)
    if isinstance(expr, Not):
        return ~evaluate(expr.operand, fields, columns, type_name, date_offset_s=date_offset_s)
    masks = (evaluate(e, fields, columns, type_name, date_offset_s=date_offset_s) for e in _chain(expr))
    return np.logical_and.reduce(list(masks)) if expr.op == "and" else np.logical_or.reduce(list(masks))


def _chain(expr: BoolOp) -> list[Expr]:
    """The operands of a run of the same and/or (``a or b or c`` parses as ``(a or b) or c``), without
    recursion, so long key chains do not exhaust Python's stack."""
    operands: list[Expr] = []
    node: Expr = expr
    while isinstance(node, BoolOp) and node.op == expr.op:
        operands.append(node.right)
        node = node.left
    operands.append(node)
    return operands[::-1]


def _field(fields: Mapping[str, FieldDef], name: str, type_name: str) -> FieldDef:
    field = fields.get(name)
    if field is None:
        raise ODataQueryError(f"Could not find a property named '{name}' on type '{type_name}'.")
    return field


def count_nodes(expr: Expr, fields: Mapping[str, FieldDef], type_name: str) -> int:
    """The nodes ASP.NET OData's FilterQueryValidator counts against MaxNodeCount: one per and/or/not, and
    four per comparison (the operator, the property, the range variable ``$it`` the property is read from,
    the literal). Conversion nodes the binder may add (null literals, numeric widening) are not counted,
    so this may come out a little below the real count. Unknown properties fail first, as in binding."""
    if isinstance(expr, Compare):
        _field(fields, expr.field, type_name)
        return 4
    if isinstance(expr, Not):
        return 1 + count_nodes(expr.operand, fields, type_name)
    operands = _chain(expr)
    return len(operands) - 1 + sum(count_nodes(e, fields, type_name) for e in operands)


def check_node_count(expr: Expr, fields: Mapping[str, FieldDef], type_name: str, limit: int | None) -> None:
    if limit is not None and count_nodes(expr, fields, type_name) > limit:
        raise ODataQueryError(
            f"The node count limit of '{limit}' has been exceeded. To increase the limit, set the "
            "'MaxNodeCount' property on EnableQueryAttribute or ODataValidationSettings."
        )
