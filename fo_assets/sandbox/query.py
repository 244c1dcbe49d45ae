"""OData system query options of a collection request, validated like F&O validates them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

import numpy as np

from .config import SandboxConfig
from .filters import Expr, ODataQueryError, check_node_count, evaluate, parse_filter
from .ordering import Ordered, ordered
from .schema import EntitySchema
from .table import Table

_SUPPORTED = {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$format"}


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
    params: tuple[tuple[str, str], ...]  # the original parameters, for the nextLink

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


def parse_query(schema: EntitySchema, raw_query: str, max_filter_nodes: int | None = None) -> Query:
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
    expr = parse_filter(text) if text.strip() else None
    if expr is not None:
        check_node_count(expr, schema.by_name, schema.type_name, max_filter_nodes)
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
        filter=expr,
        filter_text=text.strip(),
        select=select,
        orderby=tuple(orderby),
        top=_non_negative("$top", options["$top"]) if "$top" in options else None,
        skip=_non_negative("$skip", options["$skip"]) if "$skip" in options else 0,
        count=count == "true",
        cross_company=cross,
        params=tuple(params),
    )


def matching_rows(table: Table, query: Query, cfg: SandboxConfig) -> Ordered:
    """The rows the query selects, ordered by its ``$orderby`` (before $skip/$top/paging), with its ties."""
    schema = table.schema
    mask = np.ones(len(table), dtype=bool)
    if schema.company_field and not query.cross_company:
        column = table.columns[schema.company_field]
        mask &= (column == cfg.default_company) | (column == cfg.default_company.upper())
    if query.filter is not None:
        offset = int(cfg.date_filter_offset.total_seconds())
        mask &= evaluate(query.filter, table.fields, table.columns, schema.type_name, date_offset_s=offset)
    return ordered(table.fields, table.columns, query.orderby, np.flatnonzero(mask))
