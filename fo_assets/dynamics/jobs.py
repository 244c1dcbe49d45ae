"""One extract request in flight: its plan, its batch, the reads of each company, and header reuse."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from fo_assets.dynamics.batches import BatchSink
from fo_assets.dynamics.schema import EntityPlan

if TYPE_CHECKING:
    from fo_assets.dynamics.extract import ExtractRequest


@dataclass
class Job:
    request: ExtractRequest
    plan: EntityPlan
    sink: BatchSink
    companies: tuple[str | None, ...]
    parent: EntityPlan | None = None  # lines: the header entity
    header: Job | None = None  # lines: the header job of the same call whose keys are reused
    key_fields: tuple[str, ...] = ()  # headers: the columns lines need, collected while writing
    # Per company: a header job's key columns as its pages land; a line job's parent keys once read.
    keys: dict[str | None, list[pa.Table]] = field(default_factory=dict)
    futures: dict[str | None, list[Future]] = field(default_factory=dict)  # the reads of each company


def link_headers(jobs: list[Job]) -> None:
    """Let line jobs reuse the header keys a header job of the same call reads anyway."""
    for job in jobs:
        if job.request.mode != "lines" or job.parent is None:
            continue
        for header in jobs:
            if (header.request.mode == "window" and header.plan.spec.entity_set == job.parent.spec.entity_set
                    and header.request.window == job.request.window
                    and set(job.companies) <= set(header.companies)):
                company_field = header.plan.spec.company_field
                needed = ([company_field] if company_field else []) + list(job.plan.spec.parent_keys)
                if all(name in header.plan.select_names for name in needed):
                    header.key_fields = tuple(dict.fromkeys([*header.key_fields, *needed]))
                    job.header = header
                    break
