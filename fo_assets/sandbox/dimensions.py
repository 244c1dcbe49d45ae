"""Financial-dimension display strings as F&O formats them.

Ledger format: MainAccount-BusinessUnit-Department-CostCenter; default format:
BusinessUnit-Department-CostCenter. Every segment of the format is present, so blank segments leave
doubled or trailing delimiters (``605140--022-``); a value containing the delimiter is escaped with a
backslash (``DAT\\-0000000002``); an empty dimension set is ``""``.
"""

from __future__ import annotations

import numpy as np

BUSINESS_UNITS = ("001", "002", "003", "004", "005", "006", "DAT-0000000002")
DEPARTMENTS = tuple(f"{n:03d}" for n in range(11, 36))
COST_CENTERS = tuple(f"{n:03d}" for n in range(4, 100, 6))


def display(segments: tuple[str, ...], delimiter: str) -> str:
    if not any(segments):
        return ""
    return delimiter.join(s.replace(delimiter, "\\" + delimiter) for s in segments)


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


def ledger_values(rng: np.random.Generator, main_accounts: list[str], n: int, delimiter: str) -> np.ndarray:
    """Ledger-dimension display values over the given main accounts, with the documented shapes."""
    accounts = rng.choice(np.array(main_accounts, dtype=object), 300).tolist()
    pool = [display((a, *seg), delimiter) for a, seg in zip(accounts, _segment_pool(rng, 300))]
    special = main_accounts[0] if "605140" not in main_accounts else "605140"
    required = [display((special, "", "022", ""), delimiter), display((special, "DAT-0000000002", "", ""), delimiter)]
    return _pick(rng, pool, required, n)
