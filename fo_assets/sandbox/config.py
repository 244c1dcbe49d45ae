"""SandboxConfig: everything that shapes a generated tenant and its server."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path


def _new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class LatencyModel:
    """What F&O's OData costs, and its user-based service protection limits (docs/sandbox.md has the sources).

    Each request takes ``base_s + per_row_s * rows + per_mb_s * MB of JSON`` of server time; beyond
    ``max_concurrent`` requests in flight, ``max_requests`` requests or ``execution_budget_s`` seconds of
    server time in the last ``window_s`` seconds, requests are answered 429 with ``Retry-After``.
    """

    base_s: float = 0.1
    per_row_s: float = 0.00005
    per_mb_s: float = 0.3
    max_concurrent: int = 52
    max_requests: int = 6_000
    execution_budget_s: float = 1_200.0
    window_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("base_s", "per_row_s", "per_mb_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"latency {name} must not be negative, got {getattr(self, name)}")
        for name in ("max_concurrent", "max_requests", "execution_budget_s", "window_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"latency {name} must be positive, got {getattr(self, name)}")


_OFFSET = re.compile(r"^[+-](\d{2}):(\d{2})$")


@dataclass(frozen=True)
class SandboxConfig:
    """Knobs of a sandbox tenant. Same seed + anchor_date + scale -> byte-identical data.

    The F&O behaviours a connector must survive are on by default (``unstable_order``, ``max_filter_nodes``,
    ``date_filter_utc_offset``, ``upper_case_bi_companies``); ``latency`` (None = answer at once) and
    ``extension_entities`` are opt-in.
    """

    seed: int = 7
    scale: float = 1.0
    companies: tuple[str, ...] = ("usmf", "demf", "gbsi")
    default_company: str = "usmf"
    page_size: int = 10_000
    token_lifetime_s: int = 3600
    anchor_date: date | None = None  # None = today (UTC)
    days: int = 30
    tenant_id: str = field(default_factory=_new_uuid)
    client_id: str = field(default_factory=_new_uuid)
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    state_dir: Path | None = None
    dimension_delimiter: str = "-"
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    # Serve the customer extension ContosoProjectBudgets (not from the real metadata).
    extension_entities: bool = False
    # Without an $orderby that is unique over the result, row order changes from request to request.
    unstable_order: bool = True
    # ASP.NET OData's MaxNodeCount for $filter; None lifts it.
    max_filter_nodes: int | None = 100
    # The zone a DateTimeOffset literal is converted in when compared with an X++ Date field.
    date_filter_utc_offset: str = "-08:00"
    # BI entities and Ledgers answer company values (dataAreaId, LegalEntityId...) in upper case.
    upper_case_bi_companies: bool = True
    latency: LatencyModel | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 10_000:
            raise ValueError(f"page_size must be 1..10000 (F&O's maximum), got {self.page_size}")
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if self.token_lifetime_s < 1:
            raise ValueError(f"token_lifetime_s must be at least 1, got {self.token_lifetime_s}")
        if len(self.dimension_delimiter) != 1 or self.dimension_delimiter == "\\":
            raise ValueError(
                f"dimension_delimiter must be one character other than '\\', got {self.dimension_delimiter!r}"
            )
        if self.max_filter_nodes is not None and self.max_filter_nodes < 1:
            raise ValueError(f"max_filter_nodes must be positive or None, got {self.max_filter_nodes}")
        match = _OFFSET.match(self.date_filter_utc_offset)
        if not match or int(match.group(1)) > 14 or int(match.group(2)) > 59:
            raise ValueError(f"date_filter_utc_offset must look like -08:00, got {self.date_filter_utc_offset!r}")
        companies = tuple(c.lower() for c in self.companies)
        object.__setattr__(self, "companies", companies)
        object.__setattr__(self, "default_company", self.default_company.lower())
        if self.default_company not in companies:
            raise ValueError(f"default_company {self.default_company!r} is not one of {companies}")
        if self.state_dir is not None:
            object.__setattr__(self, "state_dir", Path(self.state_dir))

    @property
    def anchor(self) -> date:
        return self.anchor_date or datetime.now(UTC).date()

    @property
    def date_filter_offset(self) -> timedelta:
        sign = -1 if self.date_filter_utc_offset.startswith("-") else 1
        hours, minutes = self.date_filter_utc_offset[1:].split(":")
        return sign * timedelta(hours=int(hours), minutes=int(minutes))
