"""Asset keys: ``fo/<table>`` and ``fo_model/<table>``, under a per-location prefix when one is set.

One Dagster instance keeps asset history by key; two customers' code locations must not share keys, so
each names a prefix (``FO_ASSET_KEY_PREFIX=contoso`` gives ``contoso/fo/vendors_v2``).
"""

from collections.abc import Sequence

import dagster as dg

from fo_assets.catalog import EntitySpec


def entity_key(spec: EntitySpec, prefix: Sequence[str] = ()) -> dg.AssetKey:
    """The asset key of an entity table."""
    return dg.AssetKey([*prefix, *spec.asset_key_path])


def model_key(table: str, prefix: Sequence[str] = ()) -> dg.AssetKey:
    """The asset key of a model table."""
    return dg.AssetKey([*prefix, "fo_model", table])
