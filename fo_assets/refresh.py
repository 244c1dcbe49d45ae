"""The targeted-refresh job: re-read the records Business Events named, by key, and upsert them.

Events are stubs, so the records are read back over OData. The lines of a re-read header are re-read
with it. Each re-read record is recorded as a materialization of the daily partition its window field
falls in, so the partition status in the UI stays true.
"""


import datetime as dt
from collections import defaultdict
from typing import Sequence

import dagster as dg
import pyarrow.parquet as pq

from fo_assets.catalog import Catalog, EntitySpec
from fo_assets.dynamics.extract import ExtractRequest
from fo_assets.io_manager import load_metadata, upsert_batch
from fo_assets.keys import entity_key
from fo_assets.landing import LandedBatch
from fo_assets.resources import FoRuntime

Lookup = tuple[tuple[str, str], ...]


class RecordTarget(dg.Config):
    entity_set: str
    company: str | None
    lookup: dict[str, str]


class RefreshConfig(dg.Config):
    event_ids: list[str]
    targets: list[RecordTarget]


def _requests(catalog: Catalog, targets: list[RecordTarget]) -> list[ExtractRequest]:
    grouped: dict[str, list[tuple[str | None, Lookup]]] = defaultdict(list)
    for target in targets:
        grouped[target.entity_set].append((target.company, tuple(sorted(target.lookup.items()))))
    return [
        ExtractRequest(catalog.spec_for(entity_set), lookups=tuple(dict.fromkeys(lookups)))
        for entity_set, lookups in grouped.items()
    ]


def _child_request(child: EntitySpec, parent: EntitySpec, batch: LandedBatch) -> ExtractRequest | None:
    """Lines of the headers just re-read, looked up by the join fields' values found in the header batch."""
    assert child.parent is not None
    pairs = [(line, header) for line, header in child.parent.join if line != child.company_field]
    columns = list(dict.fromkeys([*([parent.company_field] if parent.company_field else []),
                                  *(header for _, header in pairs)]))
    lookups: dict[tuple[str | None, Lookup], None] = {}
    for path in batch.part_paths:
        for row in pq.read_table(path, columns=columns).to_pylist():
            company = row[parent.company_field] if parent.company_field else None
            lookups[(company, tuple((line, str(row[header])) for line, header in pairs))] = None
    return ExtractRequest(child, lookups=tuple(lookups)) if lookups else None


def _partitions(batch: LandedBatch, field: str | None, partitions_def: dg.PartitionsDefinition) -> list[str]:
    """Daily partition keys of the window-field values in the batch (only those that exist)."""
    if field is None:
        return []
    days: set[str] = set()
    for path in batch.part_paths:
        for value in pq.read_table(path, columns=[field]).column(0).to_pylist():
            if isinstance(value, dt.datetime):
                value = value.date()
            if value is not None:
                days.add(value.isoformat())
    existing = set(partitions_def.get_partition_keys())
    return sorted(days & existing)


def _header_of(spec: EntitySpec) -> str:
    assert spec.parent is not None
    return spec.parent.entity_set


def build_refresh_job(
    partitions_def: dg.PartitionsDefinition, pool: str, prefix: Sequence[str] = ()
) -> dg.JobDefinition:
    @dg.op(pool=pool, tags={"kind": "dynamics365"})
    def refresh_records(context: dg.OpExecutionContext, config: RefreshConfig, fo: FoRuntime) -> None:
        """Re-read the named records (and their lines) from F&O and upsert them into their tables."""
        catalog = fo.settings.catalog
        requests = _requests(catalog, config.targets)
        with fo.extractor(context.run_id, context.log) as extractor:
            batches = extractor.extract(requests)
            loaded = list(zip(requests, batches))
            child_requests = []
            for request, batch in loaded:
                for child in catalog.children_of(request.spec.entity_set):
                    child_request = _child_request(child, request.spec, batch)
                    if child_request:
                        child_requests.append((child_request, batch))
            child_batches = extractor.extract([r for r, _ in child_requests])
        window_days = {request.spec.entity_set: _partitions(batch, request.spec.window_field, partitions_def)
                       for request, batch in loaded}
        for (child_request, _header), batch in zip(child_requests, child_batches):
            loaded.append((child_request, batch))
            spec = child_request.spec
            # Lines with a date of their own land on its days, others on their header's.
            window_days[spec.entity_set] = (_partitions(batch, spec.window_field, partitions_def) if spec.window_field
                                            else window_days[_header_of(spec)])
        for request, batch in loaded:
            spec = request.spec
            result = upsert_batch(fo.sink, fo.ledger, batch, spec)
            metadata = load_metadata(spec, batch, result, partitioned=True)
            metadata["fo/event_ids"] = ", ".join(config.event_ids)
            for partition in window_days.get(spec.entity_set, []):
                context.log_event(
                    dg.AssetMaterialization(asset_key=entity_key(spec, prefix), partition=partition, metadata=metadata)
                )
            context.log.info(f"{spec.entity_set}: {batch.manifest.row_count} record(s) re-read and upserted")

    @dg.job(name="fo_targeted_refresh", description="Re-reads the F&O records named by Business Events.")
    def targeted_refresh() -> None:
        refresh_records()

    return targeted_refresh
