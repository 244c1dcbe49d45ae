"""The fo-assets side of a job: the real extraction engine and the local Delta sink."""

from __future__ import annotations

from collections.abc import Mapping

from bench.work import Job
from fo_assets.dynamics.extract import ExtractRequest, Extractor
from fo_assets.settings import load_settings
from fo_assets.sinks.local_delta import LocalDeltaSink


def column(name: str) -> str:
    """fo-assets lands F&O's field names unchanged."""
    return name


def run(job: Job, env: Mapping[str, str]) -> int:
    """Extract one job with the engine the Dagster assets use and upsert it; returns the rows read."""
    settings = load_settings({**env, "FO_ASSETS_HOME": job.root})
    spec = job.spec
    if job.change is not None:
        requests = [ExtractRequest(spec, lookups=((job.change.company, ((job.change.key_field, job.change.key),)),))]
    else:
        # Lines are read and landed with their headers (GL lines with their vouchers), as the Dagster
        # assets read them: one extraction of both, the lines reading as soon as the vouchers are in.
        specs = [settings.catalog.spec_for(spec.parent.entity_set), spec] if spec.parent else [spec]
        requests = [ExtractRequest(s, window=job.dates, companies=job.companies) for s in specs]
    with Extractor(settings, run_id=f"bench-{job.label}") as extractor:
        batches = extractor.extract(requests)
    if not job.extract_only:
        # The sink alone, as the IO manager calls it (without importing Dagster into the measured process).
        sink = LocalDeltaSink(settings.delta_root)
        for request, batch in zip(requests, batches):
            sink.upsert(batch, request.spec)
    return batches[-1].manifest.row_count
