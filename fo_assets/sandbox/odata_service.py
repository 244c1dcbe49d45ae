"""Serving ``/data`` and ``/Metadata``: collections with server-driven offset paging, counts, metadata.

Query results (ordered row positions) are cached per entity version; rendered pages (bytes) are cached
too where the order is stable, so repeated and paged reads of an ordered query cost one render per page
and the server is never a benchmark's bottleneck. Where the order is not stable (no ``$orderby``, or ties),
each request draws its own order (seeded, so a run is reproducible) and renders its page afresh.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import numpy as np
import orjson

from .errors import not_found, odata_error
from .filters import ODataQueryError
from .httpserver import Request, Response
from .metadata import edmx, find_public_entities, public_entity
from .ordering import Ordered
from .query import Query, matching_rows, parse_query
from .tenant import Tenant

_PUBLIC_ENTITY = re.compile(r"^PublicEntities\('((?:[^']|'')*)'\)$")


class _Lru(OrderedDict):
    """A cache bounded by total size (len of values for bytes, 1 per item otherwise)."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget, self.used = budget, 0

    def get_or(self, key: Hashable, make: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        size = len(value) if isinstance(value, bytes) else 1
        self[key] = value
        self.used += size
        while self.used > self.budget and len(self) > 1:
            _, old = self.popitem(last=False)
            self.used -= len(old) if isinstance(old, bytes) else 1
        return value


class ODataService:
    def __init__(self, tenant: Tenant, base_url: str, page_size: int, page_cache_bytes: int = 512 << 20) -> None:
        self.tenant, self.base_url, self.page_size = tenant, base_url, page_size
        self.cfg = tenant.cfg
        self._results = _Lru(64)
        self._pages = _Lru(page_cache_bytes)
        self._edmx = edmx(tenant.schemas.values())
        self._unordered_requests = 0
        self._counter_lock = threading.Lock()

    def serve(self, req: Request) -> Response:
        """Answer a GET under /data or /Metadata (auth and faults were handled by the caller)."""
        parts = req.path.strip("/").split("/")
        try:
            with self.tenant.lock:
                if parts[0] == "Metadata":
                    return self._metadata_service(req, parts[1:])
                if parts == ["data"]:
                    return self._service_document()
                if parts == ["data", "$metadata"]:
                    return Response(200, self._edmx, "application/xml")
                if len(parts) in (2, 3) and parts[1] in self.tenant.schemas:
                    if len(parts) == 3 and parts[2] != "$count":
                        return self._not_found(req)
                    return self._collection(req, parts[1], count_only=len(parts) == 3)
        except ODataQueryError as exc:
            return Response(400, odata_error(exc.message, exc.kind))
        return self._not_found(req)

    def _not_found(self, req: Request) -> Response:
        return Response(404, not_found(self.base_url + req.path + (f"?{req.query}" if req.query else "")))

    def _service_document(self) -> Response:
        return Response(
            200,
            orjson.dumps(
                {
                    "@odata.context": f"{self.base_url}/data/$metadata",
                    "value": [{"name": n, "kind": "EntitySet", "url": n} for n in self.tenant.schemas],
                }
            ),
        )

    def _metadata_service(self, req: Request, parts: list[str]) -> Response:
        context = f"{self.base_url}/Metadata/$metadata#PublicEntities"
        schemas = self.tenant.schemas.values()
        if parts == ["PublicEntities"]:
            text = dict(parse_qsl(req.query, keep_blank_values=True)).get("$filter", "")
            found = find_public_entities(schemas, text)
            return Response(200, orjson.dumps({"@odata.context": context, "value": found}))
        match = _PUBLIC_ENTITY.match(parts[0]) if len(parts) == 1 else None
        name = match.group(1).replace("''", "'") if match else None
        for schema in schemas:
            if schema.public_name == name:
                return Response(200, orjson.dumps({"@odata.context": context + "/$entity", **public_entity(schema)}))
        return self._not_found(req)

    def _request_rng(self) -> np.random.Generator:
        """The order of one request over an unstable result: seeded, so a sequence of requests repeats."""
        with self._counter_lock:
            self._unordered_requests += 1
            number = self._unordered_requests
        return np.random.default_rng([self.cfg.seed, 0x0DE7, number])

    def _collection(self, req: Request, entity_set: str, count_only: bool) -> Response:
        schema = self.tenant.schema(entity_set)
        query = parse_query(schema, req.query, self.cfg.max_filter_nodes)
        table = self.tenant.table(entity_set)
        version = self.tenant.versions[entity_set]
        result: Ordered = self._results.get_or(
            (entity_set, version, query.cache_key), lambda: matching_rows(table, query, self.cfg)
        )
        total = len(result.rows)
        if count_only:
            return Response(200, str(total).encode(), "text/plain")
        start = query.skip
        limit = total if query.top is None else min(total, query.skip + query.top)
        end = min(limit, start + self.page_size)
        if result.stable or not self.cfg.unstable_order:
            body = self._pages.get_or(
                (entity_set, version, query.params),
                lambda: self._page(entity_set, query, result.rows, start, end, limit),
            )
        else:
            body = self._page(entity_set, query, result.for_request(self._request_rng()), start, end, limit)
        return Response(200, body, rows=max(0, end - start))

    def _page(self, entity_set: str, query: Query, rows: np.ndarray, start: int, end: int, limit: int) -> bytes:
        table = self.tenant.table(entity_set)
        # Selected fields come in declaration order, as OData Web API writes them.
        names = [f.name for f in table.schema.fields if not query.select or f.name in query.select]
        context = f"{self.base_url}/data/$metadata#{entity_set}" + (
            f"({','.join(query.select)})" if query.select else ""
        )
        head: dict[str, Any] = {"@odata.context": context}
        if query.count:
            head["@odata.count"] = len(rows)
        text = orjson.dumps(head)[:-1].decode() + ',"value":'
        text += table.render(rows[start:end], names) if end > start else "[]"
        if end < limit:
            text += ',"@odata.nextLink":' + orjson.dumps(self._next_link(entity_set, query, end, limit)).decode()
        return (text + "}").encode()

    def _next_link(self, entity_set: str, query: Query, end: int, limit: int) -> str:
        """F&O pages by offset: the same query with ``$skip`` moved on (and ``$top`` reduced, if given)."""
        params = [(n, v) for n, v in query.params if n not in ("$skip", "$top")]
        if query.top is not None:
            params.append(("$top", str(limit - end)))
        params.append(("$skip", str(end)))
        return f"{self.base_url}/data/{entity_set}?" + urlencode(params, quote_via=quote, safe="$,'()*:-")
