"""The dlt side of a job: dlt's ``rest_api`` source into Delta tables on dlt's filesystem destination.

Configured as dlt documents it for such an API (bench/README.md lists every choice): OAuth2 client
credentials against the tenant's token endpoint, ``@odata.nextLink`` followed by the JSON-link
paginator (or ``$top``/``$skip`` by the offset paginator for the wide entity, as F&O advises),
one resource per company extracted in parallel, merge (upsert) on the entity's key, parquet load
files, ``table_format="delta"``. TLS trusts the sandbox CA through ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import dlt
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator, OffsetPaginator
from dlt.sources.rest_api import rest_api_source
from requests import Response

from bench.work import DLT_DATASET, Job

_NAMING = NamingConvention()


def column(name: str) -> str:
    """dlt's default naming convention: ``PurchaseOrderNumber`` lands as ``purchase_order_number``."""
    return _NAMING.normalize_identifier(name)


def exact_numbers(response: Response, *args: Any, **kwargs: Any) -> Response:
    """Parse each page once with JSON numbers as decimals: as floats, large F&O amounts would be rounded."""
    payload = json.loads(response.content, parse_float=Decimal)
    response.json = lambda **_: payload  # type: ignore[method-assign]
    return response


def source(job: Job, env: Mapping[str, str]) -> Any:
    spec = job.spec
    base_url = env["FO_BASE_URL"]
    auth = OAuth2ClientCredentials(
        access_token_url=f"{env['FO_AUTHORITY_HOST']}/{env['FO_TENANT_ID']}/oauth2/v2.0/token",
        client_id=env["FO_CLIENT_ID"],
        client_secret=env["FO_CLIENT_SECRET"],
        access_token_request_data={"scope": f"{base_url}/.default"},
    )
    resources = [_resource(job, company) for company in _companies(job)]
    columns = {name: {"data_type": "decimal", "precision": precision, "scale": scale}
               for name, precision, scale in job.decimals}
    return rest_api_source({
        "client": {"base_url": f"{base_url}/data/", "auth": auth},
        "resource_defaults": {
            "table_name": spec.table,
            "primary_key": list(spec.key_columns),
            "write_disposition": {"disposition": "merge", "strategy": "upsert"},
            "parallelized": True,
            "columns": columns,
            "endpoint": {"data_selector": "value", "response_actions": [exact_numbers]},
        },
        "resources": resources,
    })


def _companies(job: Job) -> tuple[str | None, ...]:
    if job.change:
        return (job.change.company,)
    # Lines that take their company and date from their header (GL lines from their voucher) have
    # neither to filter on: a rest_api source reads them whole, which is the window when the tenant's
    # history is the window (as in the benchmark).
    return (None,) if _inherits(job) else job.companies


def _inherits(job: Job) -> bool:
    return bool(job.spec.parent and job.spec.parent.inherit)


def _resource(job: Job, company: str | None) -> dict[str, Any]:
    spec = job.spec
    clauses = [f"{spec.company_field} eq {_quoted(company)}"] if company else []
    if job.change is not None:
        clauses.append(f"{job.change.key_field} eq {_quoted(job.change.key)}")
    elif job.window is not None and spec.window_field:
        start, end = job.window
        clauses.append(f"{spec.window_field} ge {start}T00:00:00Z and {spec.window_field} lt {end}T00:00:00Z")
    # In key order: without $orderby F&O (and the sandbox) may return rows in a different order on each
    # request, and pages would then skip or repeat rows.
    params: dict[str, Any] = {"cross-company": "true", "$orderby": ",".join(spec.key_columns)}
    if clauses:
        params["$filter"] = " and ".join(clauses)
    if spec.page_size:
        # Wide rows: client-driven pages of the catalog's size, stopping at $count.
        params["$count"] = "true"
        paginator: Any = OffsetPaginator(limit=spec.page_size, offset_param="$skip", limit_param="$top",
                                         total_path="['@odata.count']")
    else:
        paginator = JSONLinkPaginator(next_url_path="['@odata.nextLink']")
    return {"name": f"{spec.table}_{company or 'all'}", "endpoint": {"path": spec.entity_set, "params": params,
                                                              "paginator": paginator}}


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run(job: Job, env: Mapping[str, str]) -> int:
    root = Path(job.root)
    pipeline = dlt.pipeline(
        pipeline_name=f"fo_{job.spec.table}",
        pipelines_dir=str(root / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(root / "delta").as_uri()),
        dataset_name=DLT_DATASET,
    )
    data = source(job, env)
    if job.extract_only:
        info = pipeline.extract(data)
        return sum(m.items_count for m in info.metrics[info.loads_ids[0]][0]["job_metrics"].values())
    pipeline.run(data, loader_file_format="parquet", table_format="delta")
    return pipeline.last_trace.last_normalize_info.row_counts.get(job.spec.table, 0)
