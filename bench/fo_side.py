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
        request = ExtractRequest(spec, lookups=((job.change.company, ((job.change.key_field, job.change.key),)),))
    else:
        request = ExtractRequest(spec, window=job.dates, companies=job.companies)
    with Extractor(settings, run_id=f"bench-{job.label}") as extractor:
        (batch,) = extractor.extract([request])
    if not job.extract_only:
        # The sink alone, as the IO manager calls it (without importing Dagster into the measured process).
        LocalDeltaSink(settings.delta_root).upsert(batch, spec)
    return batch.manifest.row_count
