"""OData system query options of a collection request, validated like F&O validates them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

import numpy as np

from .filters import Expr, ODataQueryError, evaluate, parse_filter
from .ordering import order
from .schema import EntitySchema
from .table import Table

_SUPPORTED = {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$skiptoken", "$format"}


@dataclass(frozen=True)
class Query:
    filter: Expr | None
    filter_text: str
    select: tuple[str, ...]
    orderby: tuple[tuple[str, bool], ...]
    top: int | None
    skip: int
    count: bool
    cross_company: bool
    skiptoken: int
    params: tuple[tuple[str, str], ...]  # the original parameters minus $skiptoken, for the nextLink

    @property
    def cache_key(self) -> tuple:
        return (self.filter_text, self.select, self.orderby, self.cross_company)


def _non_negative(name: str, text: str) -> int:
    if not text.isdigit():
        raise ODataQueryError(
            f"Invalid value '{text}' for {name} query option found. The {name} query option "
            "requires a non-negative integer value."
        )
    return int(text)


def _property(schema: EntitySchema, name: str) -> str:
    if name not in schema.by_name:
        raise ODataQueryError(f"Could not find a property named '{name}' on type '{schema.type_name}'.")
    return name


def parse_query(schema: EntitySchema, raw_query: str) -> Query:
    params = parse_qsl(raw_query, keep_blank_values=True)
    options: dict[str, str] = {}
    for name, value in params:
        if name.startswith("$"):
            if name not in _SUPPORTED:
                raise ODataQueryError(f"The query parameter '{name}' is not supported.")
            if name in options:
                raise ODataQueryError(
                    f"Query option '{name}' was specified more than once, but it must be specified at most once."
                )
            options[name] = value
    cross = any(n.lower() == "cross-company" and v.lower() == "true" for n, v in params)
    text = options.get("$filter", "")
    select = (
        tuple(_property(schema, s.strip()) for s in options["$select"].split(","))
        if options.get("$select", "").strip() not in ("", "*")
        else ()
    )
    orderby: list[tuple[str, bool]] = []
    for part in filter(None, (p.strip() for p in options.get("$orderby", "").split(","))):
        words = part.split()
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ODataQueryError(f"Syntax error in $orderby '{options['$orderby']}' at '{part}'.")
        orderby.append((_property(schema, words[0]), len(words) == 2 and words[1].lower() == "desc"))
    count = options.get("$count", "false").lower()
    if count not in ("true", "false"):
        raise ODataQueryError(f"'{options['$count']}' is not a valid count option.")
    return Query(
        filter=parse_filter(text) if text.strip() else None,
        filter_text=text.strip(),
        select=select,
        orderby=tuple(orderby),
        top=_non_negative("$top", options["$top"]) if "$top" in options else None,
        skip=_non_negative("$skip", options["$skip"]) if "$skip" in options else 0,
        count=count == "true",
        cross_company=cross,
        skiptoken=_non_negative("$skiptoken", options["$skiptoken"]) if "$skiptoken" in options else 0,
        params=tuple((n, v) for n, v in params if n != "$skiptoken"),
    )


def matching_rows(table: Table, query: Query, default_company: str) -> np.ndarray:
    """Positions of the rows the query selects, in response order (before $skip/$top/paging)."""
    schema = table.schema
    mask = np.ones(len(table), dtype=bool)
    if schema.company_field and not query.cross_company:
        mask &= table.columns[schema.company_field] == default_company
    if query.filter is not None:
        mask &= evaluate(query.filter, table.fields, table.columns, schema.type_name)
    return order(table.fields, table.columns, query.orderby, np.flatnonzero(mask))
