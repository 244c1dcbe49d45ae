"""SandboxConfig: everything that shapes a generated tenant and its server."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path


def _new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class SandboxConfig:
    """Knobs of a sandbox tenant. Same seed + anchor_date + scale -> byte-identical data."""

    seed: int = 7
    scale: float = 1.0
    companies: tuple[str, ...] = ("usmf", "demf", "gbsi")
    default_company: str = "usmf"
    page_size: int = 10_000
    token_lifetime_s: int = 3600
    wide: bool = False
    anchor_date: date | None = None  # None = today (UTC)
    days: int = 30
    tenant_id: str = field(default_factory=_new_uuid)
    client_id: str = field(default_factory=_new_uuid)
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    state_dir: Path | None = None
    dimension_delimiter: str = "-"
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 10_000:
            raise ValueError(f"page_size must be 1..10000 (F&O's maximum), got {self.page_size}")
        if self.scale <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if len(self.dimension_delimiter) != 1 or self.dimension_delimiter == "\\":
            raise ValueError(
                f"dimension_delimiter must be one character other than '\\', got {self.dimension_delimiter!r}"
            )
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
