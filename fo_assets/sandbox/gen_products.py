"""Products (ProductsV2, shared) and the items each company released from them (ReleasedProductsV2)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import SandboxConfig
from .gen_common import Columns, amounts, full, ids, obj, pick, rng_for, with_empty

_ADJECTIVES = ("Standard", "Premium", "Compact", "Heavy-duty", "Eco")
_NOUNS = ("Speaker", "Cable", "Bolt", "Panel", "Sensor", "Pump")


@lru_cache(maxsize=8)
def product_catalogue(cfg: SandboxConfig) -> tuple[tuple[str, str], ...]:
    """(ProductNumber, ProductName) of every product."""
    n = max(1, round(200 * cfg.scale))
    rng = rng_for(cfg, "ProductNames")
    names = [f"{a} {b}" for a, b in zip(pick(rng, _ADJECTIVES, n), pick(rng, _NOUNS, n))]
    return tuple(zip(ids("P{:06d}", n).tolist(), names))


def products(cfg: SandboxConfig) -> Columns:
    catalogue = product_catalogue(cfg)
    n = len(catalogue)
    rng = rng_for(cfg, "ProductsV2")
    names = obj([name for _, name in catalogue])
    product_type = pick(rng, ("Item", "Service"), n, (0.85, 0.15))
    stocked = product_type == "Item"
    return {
        "ProductNumber": obj([number for number, _ in catalogue]),
        "ProductName": names,
        "ProductSearchName": obj([s.upper()[:20] for s in names]),
        "ProductType": product_type,
        "ProductSubType": pick(rng, ("Product", "ProductMaster"), n, (0.9, 0.1)),
        "ProductDescription": with_empty(rng, obj([f"{s}, catalogue item" for s in names]), 0.2, 0.2),
        "ProductDimensionGroupName": with_empty(rng, pick(rng, ("Col", "Size", "CS"), n), 0.7),
        "StorageDimensionGroupName": np.where(stocked, pick(rng, ("SiteWH", "SWL"), n), "").astype(object),
        "TrackingDimensionGroupName": np.where(stocked, pick(rng, ("None", "Batch"), n), "").astype(object),
        "RetailProductCategoryName": pick(rng, ("Audio", "Hardware", "Services", "Tools"), n),
    }


@lru_cache(maxsize=64)
def released_items(cfg: SandboxConfig, company: str) -> tuple[tuple[str, str], ...]:
    """(ItemNumber, name) of the products a company released (about 80% of them, always the first)."""
    catalogue = product_catalogue(cfg)
    keep = rng_for(cfg, "Released", company).random(len(catalogue)) < 0.8
    keep[0] = True
    return tuple(item for item, kept in zip(catalogue, keep) if kept)


def released_products(cfg: SandboxConfig, company: str) -> Columns:
    items = released_items(cfg, company)
    n = len(items)
    rng = rng_for(cfg, "ReleasedProductsV2", company)
    numbers = obj([number for number, _ in items])
    unit = pick(rng, ("ea", "pcs", "kg", "box"), n)
    return {
        "dataAreaId": full(company, n),
        "ItemNumber": numbers,
        "ProductNumber": numbers.copy(),
        "SearchName": obj([name.lower()[:20] for _, name in items]),
        "ProductSearchName": obj([name.upper()[:20] for _, name in items]),
        "ItemModelGroupId": pick(rng, ("FIFO", "STD", "AVG"), n),
        "ProductGroupId": pick(rng, ("Audio", "Parts", "Services", "Tools"), n),
        "PurchaseUnitSymbol": unit,
        "InventoryUnitSymbol": unit.copy(),
        "SalesUnitSymbol": unit.copy(),
        "PurchasePrice": amounts(rng, n, 1, 2_000),
        "SalesPrice": amounts(rng, n, 2, 4_000),
        "UnitCost": amounts(rng, n, 1, 1_500),
        "IsPurchasePriceAutomaticallyUpdated": pick(rng, ("No", "Yes"), n),
        "ProductType": pick(rng, ("Item", "Service"), n, (0.85, 0.15)),
        "ProductSubType": full("Product", n),
        "BuyerGroupId": with_empty(rng, pick(rng, ("BG-A", "BG-B"), n), 0.5),
    }
