"""The tenant's metadata, fetched rarely and cached on disk per environment.

``$metadata`` is very large on a real tenant (tens of MB of EDMX): it is parsed once as a stream into a
compact JSON index of every entity set (keys, properties, Edm types, precision and scale, X++ type) and
refetched only when older than the freshness bound, or when an entity set is asked for that the cached
copy does not have. The X++ type tells a date-only field from an instant (both are Edm.DateTimeOffset):
F&O's EDMX carries it on every property as the ``Microsoft.Dynamics.OData.Core.V1.AXType`` annotation,
so one ``$metadata`` request a day per tenant is all a run needs. Only where the annotation is missing
does the metadata service ``/Metadata/PublicEntities`` tell it, cached the same way: a run asks for all
the entities it reads at once (``prefetch``: one ``$filter`` request), a lone lookup for one
(``PublicEntities('<public name>')``). Files are written atomically so concurrent runs never read half
a file.

Layout: ``<home>/metadata/<host>/edmx.v2.json`` and ``.../public.json``. With a ``SharedCache`` (production:
a folder in the landing archive's volume) the same files are shared by every machine: a run pod that
starts with an empty home takes them from there instead of fetching tens of MB of EDMX from F&O again.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from fo_assets.dynamics.errors import HttpError, SchemaError
from fo_assets.dynamics.schema import EntitySchema, FieldInfo, field_kind, unknown_entity_set

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = dt.timedelta(hours=24)
PREFETCH_CHUNK = 20  # public names per metadata-service request: keeps the URL well under any limit
AX_TYPE_TERM = "Microsoft.Dynamics.OData.Core.V1.AXType"
EDMX_CACHE = "edmx.v2.json"  # v2: properties carry the X++ type
Fetch = Callable[[str, str | None, str], bytes | bytearray]  # (url, entity set or None, accept) -> body


class SharedCache(Protocol):
    """Cache files by name in a place every machine reaches; a failure is the caller's to tolerate."""

    def read(self, name: str) -> bytes | None:
        """The bytes cached under ``name``, or None."""

    def write(self, name: str, data: bytes) -> None:
        """Cache ``data`` under ``name``."""


class MetadataStore:
    """The tenant's entity metadata, cached on disk for a day (and in a cache other machines reach)."""
    def __init__(self, folder: Path, base_url: str, fetch: Fetch, max_age: dt.timedelta = DEFAULT_MAX_AGE,
                 shared: SharedCache | None = None):
        self.folder = folder
        self._base_url = base_url
        self._fetch = fetch
        self._max_age = max_age
        self._shared = shared
        self._edmx: dict[str, Any] | None = None
        self._refreshed = False  # fetched $metadata in this process: no second fetch for a missing name
        self._public: dict[str, Any] = self._load("public.json") or {}

    def entity(self, entity_set: str) -> EntitySchema:
        """The schema of ``entity_set``, from the cache while fresh, else from the tenant's metadata."""
        edmx = self._entity_sets()
        if entity_set not in edmx["entity_sets"] and not self._refreshed:
            edmx = self._entity_sets(force=True)  # the cache may predate a new entity
        described = edmx["entity_sets"].get(entity_set)
        if described is None:
            raise unknown_entity_set(entity_set, edmx["entity_sets"])
        properties = described["properties"]
        data_types = {name: ax for name, _, _, _, ax, _ in properties if ax}
        if _lacks_ax_types(properties):
            data_types = self._data_types(entity_set, described["type"])
        fields = tuple(
            FieldInfo(name, edm_type, field_kind(edm_type, is_enum, data_types.get(name)), precision, scale)
            for name, edm_type, precision, scale, _, is_enum in properties
        )
        return EntitySchema(entity_set, described["type"], tuple(described["keys"]), fields)

    def prefetch(self, entity_sets: Iterable[str]) -> None:
        """Cache the X++ data types of every named entity set not cached yet, in one request per
        ``PREFETCH_CHUNK`` of them. Names the tenant lacks, or the answer leaves out, are left to
        ``entity``, which looks them up one by one and reports what is wrong."""
        known = self._entity_sets()["entity_sets"]
        wanted: dict[str, str] = {}  # public name -> entity set
        for name in dict.fromkeys(entity_sets):
            cached = self._public.get(name)
            if name in known and _lacks_ax_types(known[name]["properties"]) and not (
                cached and self._fresh(cached["fetched_at"])
            ):
                wanted[known[name]["type"]] = name
        if len(wanted) < 2:
            return
        names = list(wanted)
        for start in range(0, len(names), PREFETCH_CHUNK):
            chunk = " or ".join(f"Name eq {_quoted(n)}" for n in names[start:start + PREFETCH_CHUNK])
            url = f"{self._base_url}/Metadata/PublicEntities?$filter=" + quote(chunk, safe="'")
            try:
                found = orjson.loads(self._fetch(url, None, "application/json"))["value"]
            except (HttpError, orjson.JSONDecodeError, KeyError, TypeError):
                break  # a service without $filter: the lookups one by one still work
            fetched_at = _now().isoformat()
            for described in found if isinstance(found, list) else ():
                entity_set = wanted.get(str(described.get("Name"))) if isinstance(described, dict) else None
                if entity_set is not None:
                    types = _types_of(described)
                    if types is not None:
                        self._public[entity_set] = {"fetched_at": fetched_at, "data_types": types}
        self._save("public.json", self._public)

    def invalidate(self) -> None:
        """Force a refetch on next use: the tenant sent fields the cached metadata does not know."""
        for name in (EDMX_CACHE, "public.json"):
            (self.folder / name).unlink(missing_ok=True)
        self._edmx, self._public = None, {}
        self._shared = None  # as stale as ours: the refetched copy is shared by the next store

    def _entity_sets(self, force: bool = False) -> dict[str, Any]:
        if self._edmx is None and not force:
            cached = self._load(EDMX_CACHE)
            if cached and self._fresh(cached["fetched_at"]):
                self._edmx = cached
        if self._edmx is None or force:
            body = self._fetch(f"{self._base_url}/data/$metadata", None, "application/xml")
            self._edmx = {"fetched_at": _now().isoformat(), "entity_sets": parse_edmx(body)}
            self._refreshed = True
            self._save(EDMX_CACHE, self._edmx)
        return self._edmx

    def _data_types(self, entity_set: str, public_name: str) -> dict[str, str]:
        cached = self._public.get(entity_set)
        if cached and self._fresh(cached["fetched_at"]):
            return cached["data_types"]
        key = quote(_quoted(public_name), safe="'")
        url = f"{self._base_url}/Metadata/PublicEntities({key})"
        body = self._fetch(url, entity_set, "application/json")
        try:
            data_types = _types_of(orjson.loads(body))
        except orjson.JSONDecodeError:
            data_types = None
        if data_types is None:
            raise SchemaError("the metadata service answered something other than a public entity (no JSON "
                              "object with Properties, each with Name and DataType)", entity_set=entity_set, url=url)
        self._public[entity_set] = {"fetched_at": _now().isoformat(), "data_types": data_types}
        self._save("public.json", self._public)
        return data_types

    def _fresh(self, fetched_at: str) -> bool:
        return _now() - dt.datetime.fromisoformat(fetched_at) < self._max_age

    def _load(self, name: str) -> Any:
        cached = _read(self.folder / name)
        if cached is not None or self._shared is None:
            return cached
        try:
            raw = self._shared.read(name)
            cached = orjson.loads(raw) if raw else None
        except Exception as exc:  # a cache: without it, the metadata is fetched from F&O
            log.warning("the shared metadata cache could not be read (%s): %s", name, exc)
            return None
        if cached is not None:
            _write(self.folder / name, cached)
        return cached

    def _save(self, name: str, data: Any) -> None:
        _write(self.folder / name, data)
        if self._shared is None:
            return
        try:
            self._shared.write(name, orjson.dumps(data))
        except Exception as exc:  # the next machine fetches it from F&O itself
            log.warning("the shared metadata cache could not be written (%s): %s", name, exc)


def _lacks_ax_types(properties: list[list[Any]]) -> bool:
    """Whether some date-time property has no X++ type in the EDMX (date or instant cannot be told)."""
    return any(edm_type == "Edm.DateTimeOffset" and not ax for _, edm_type, _, _, ax, _ in properties)


def _types_of(described: Any) -> dict[str, str] | None:
    """{field: X++ DataType} of one public entity as the metadata service describes it."""
    try:
        return {p["Name"]: p["DataType"] for p in described["Properties"]}
    except (KeyError, TypeError):
        return None


def folder_for(home: Path, base_url: str) -> Path:
    """The metadata cache folder of one F&O environment under ``home``."""
    host = base_url.split("://", 1)[-1]
    return home / "metadata" / re.sub(r"[^A-Za-z0-9.-]+", "_", host)


def parse_edmx(body: bytes | bytearray) -> dict[str, dict[str, Any]]:
    """{entity set: {type, keys, properties: [[name, edm type, precision, scale, X++ type, is enum]]}}, streamed."""
    types: dict[str, dict[str, Any]] = {}
    enums: set[str] = set()
    sets: dict[str, str] = {}
    namespace = ""
    for event, element in ET.iterparse(io.BytesIO(body), events=("start", "end")):
        tag = element.tag.rsplit("}", 1)[-1]
        if event == "start":
            if tag == "Schema":
                namespace = element.get("Namespace", "")
            continue
        if tag == "EntityType":
            keys = [ref.get("Name") for ref in element.iter() if ref.tag.endswith("}PropertyRef")]
            properties = [
                [p.get("Name"), p.get("Type"), _number(p.get("Precision")), _number(p.get("Scale")), _ax_type(p)]
                for p in element
                if p.tag.endswith("}Property")
            ]
            name = element.get("Name")
            types[f"{namespace}.{name}"] = {"type": name, "keys": keys, "properties": properties}
            element.clear()
        elif tag == "EnumType":
            enums.add(f"{namespace}.{element.get('Name')}")
            element.clear()
        elif tag == "EntitySet":
            sets[element.get("Name", "")] = element.get("EntityType", "")
    entity_sets = {}
    for name, type_name in sets.items():
        described = types.get(type_name)
        if described is None:
            continue
        properties = [[*p, p[1] in enums] for p in described["properties"]]
        entity_sets[name] = {"type": described["type"], "keys": described["keys"], "properties": properties}
    return entity_sets


def _ax_type(prop: ET.Element) -> str | None:
    """``Date`` from the AXType annotation under a property: ``<Annotation Term="...AXType">`` with the
    member as an ``EnumMember`` element (as F&O writes it) or attribute (the CSDL shorthand)."""
    for child in prop:
        if child.tag.endswith("}Annotation") and child.get("Term") == AX_TYPE_TERM:
            member = child.get("EnumMember") or next(
                (e.text for e in child if e.tag.endswith("}EnumMember") and e.text), "")
            return member.strip().rsplit("/", 1)[-1] or None
    return None


def _number(value: str | None) -> int | None:
    # Scale="Variable" (and a missing facet) leave the choice to schema.py's defaults.
    return int(value) if value and value.isdigit() else None


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _read(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(data))
    os.replace(tmp, path)
