"""One measured job: what a pipeline reads and where it lands it, handed to a child process as JSON."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from fo_assets.catalog import STANDARD, EntitySpec

Side = Literal["fo-assets", "dlt"]
SIDES: tuple[Side, ...] = ("fo-assets", "dlt")


@dataclass(frozen=True)
class Change:
    """A record edited through the sandbox's admin endpoint right before a keyed pull re-reads it."""

    company: str
    key_field: str
    key: str
    field: str
    value: str


@dataclass(frozen=True)
class Job:
    side: Side
    label: str  # the scenario, e.g. "a", or "warm" / "setup" for work that is not measured
    entity_set: str
    root: str  # the side's state: fo-assets' FO_ASSETS_HOME, dlt's pipelines and bucket
    companies: tuple[str, ...]
    window: tuple[str, str] | None = None  # [start, end), ISO dates
    change: Change | None = None  # keyed pull: edit this record, then re-read it by key
    extract_only: bool = False  # warming the sandbox's page cache: read, land nothing
    decimals: tuple[tuple[str, int, int], ...] = ()  # (field, precision, scale) of the entity's amounts

    @property
    def spec(self) -> EntitySpec:
        return STANDARD.spec_for(self.entity_set)

    @property
    def dates(self) -> tuple[dt.date, dt.date] | None:
        return (dt.date.fromisoformat(self.window[0]), dt.date.fromisoformat(self.window[1])) if self.window else None

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self)))
        return path

    @classmethod
    def load(cls, path: Path) -> Job:
        raw = json.loads(path.read_text())
        change, window = raw.pop("change"), raw.pop("window")
        return cls(**raw | {  # JSON has lists where the job has tuples
            "change": Change(**change) if change else None,
            "window": tuple(window) if window else None,
            "decimals": tuple(tuple(d) for d in raw["decimals"]),
            "companies": tuple(raw["companies"]),
        })


def fo_table_path(root: Path, spec: EntitySpec) -> Path:
    return root / "delta" / spec.table


DLT_DATASET = "fo"


def dlt_table_path(root: Path, spec: EntitySpec) -> Path:
    return root / "delta" / DLT_DATASET / spec.table


def table_path(side: Side, root: Path, spec: EntitySpec) -> Path:
    return fo_table_path(root, spec) if side == "fo-assets" else dlt_table_path(root, spec)
