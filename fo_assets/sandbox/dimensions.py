"""Financial-dimension values as F&O formats them: display strings and the BI entities' JSON.

Ledger format: MainAccount-BusinessUnit-Department-CostCenter; default format:
BusinessUnit-Department-CostCenter. Every segment of the format is present, so blank segments leave
doubled or trailing delimiters (``605140--022-``); a value containing the delimiter is escaped with a
backslash (``DAT\\-0000000002``); an empty dimension set is ``""``.

``LedgerDimensionValuesJson`` (BI entities) lists the non-blank segments as one-key objects,
``[{"MAINACCOUNT":"605140"},{"DEPARTMENT":"022"}]``: the shape a public integration parses; Microsoft does
not document it.
"""

from __future__ import annotations

import numpy as np
import orjson

BUSINESS_UNITS = ("001", "002", "003", "004", "005", "006", "DAT-0000000002")
DEPARTMENTS = tuple(f"{n:03d}" for n in range(11, 36))
COST_CENTERS = tuple(f"{n:03d}" for n in range(4, 100, 6))
LEDGER_ATTRIBUTES = ("MAINACCOUNT", "BUSINESSUNIT", "DEPARTMENT", "COSTCENTER")


def display(segments: tuple[str, ...], delimiter: str) -> str:
    if not any(segments):
        return ""
    return delimiter.join(s.replace(delimiter, "\\" + delimiter) for s in segments)


def values_json(segments: tuple[str, ...]) -> str:
    return orjson.dumps([{a: s} for a, s in zip(LEDGER_ATTRIBUTES, segments) if s]).decode()


def _segment_pool(rng: np.random.Generator, size: int) -> list[tuple[str, str, str]]:
    bu = rng.choice(np.array(BUSINESS_UNITS + ("",), dtype=object), size, p=[0.15] * 6 + [0.04, 0.06])
    dept = rng.choice(np.array(DEPARTMENTS + ("",), dtype=object), size)
    cc = rng.choice(np.array(COST_CENTERS + ("",) * 4, dtype=object), size)
    return list(zip(bu.tolist(), dept.tolist(), cc.tolist()))


def _pick(rng: np.random.Generator, pool: list[str], required: list[str], n: int) -> np.ndarray:
    """``n`` values from ``pool``, each of ``required`` placed at least once (where n allows)."""
    out = np.array(pool, dtype=object)[rng.integers(0, len(pool), n)]
    positions = rng.choice(n, min(n, len(required)), replace=False)
    out[positions] = required[: len(positions)]
    return out


def default_values(rng: np.random.Generator, n: int, delimiter: str) -> np.ndarray:
    """Default-dimension display values: mostly full, some with blank segments, some empty, one escaped."""
    pool = [display(seg, delimiter) for seg in _segment_pool(rng, 40)]
    required = ["", display(("DAT-0000000002", "", ""), delimiter), display(("001", "", ""), delimiter)]
    return _pick(rng, pool + [""], required, n)


class LedgerCombinations:
    """A pool of ledger dimension combinations over given main accounts: each has the account's position,
    its display string and its JSON. Lines pick combinations, so account, string and JSON always agree."""

    def __init__(self, rng: np.random.Generator, main_accounts: list[str], delimiter: str, size: int = 300) -> None:
        accounts = rng.integers(0, len(main_accounts), size).tolist()
        segments = _segment_pool(rng, size)
        # The documented shapes: a blank business unit and cost center, an escaped business unit.
        special = main_accounts.index("605140") if "605140" in main_accounts else 0
        accounts[:2] = [special, special]
        segments[:2] = [("", "022", ""), ("DAT-0000000002", "", "")]
        self.account = np.array(accounts, dtype=np.int64)
        full = [(main_accounts[a], *seg) for a, seg in zip(accounts, segments)]
        self.display = np.array([display(s, delimiter) for s in full], dtype=object)
        self.json = np.array([values_json(s) for s in full], dtype=object)

    def pick(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Positions in the pool for ``n`` lines; the special combinations are used at least once."""
        chosen = rng.integers(0, len(self.account), n)
        chosen[rng.choice(n, min(n, 2), replace=False)] = np.arange(min(n, 2))
        return chosen
