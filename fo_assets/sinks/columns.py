"""Whether a batch's columns fit its table: names Delta accepts, types the table can follow.

Both are checked before anything is staged or written, so a refused batch costs nothing and stays
replayable once the catalog or the table is fixed (docs/databricks.md, "Names" and "Type changes").
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from fo_assets.landing import LandedBatch
from fo_assets.sinks import sql
from fo_assets.sinks.base import SinkError

# Delta refuses these in column names unless the table uses column mapping, which fo-assets does not
# turn on: every reader of the tables would then need column-mapping support.
DELTA_INVALID_NAME_CHARACTERS = " ,;{}()\n\t="


def check_column_names(batch: LandedBatch, table_name: str, schema: pa.Schema) -> None:
    """Refuse columns Delta cannot name without column mapping (SinkError)."""
    bad = [name for name in schema.names if any(ch in DELTA_INVALID_NAME_CHARACTERS for ch in name)]
    if bad:
        raise SinkError(
            f"batch {batch.batch_id} of {table_name}: column {bad[0]!r} cannot be a Delta column name (a space or "
            "any of ,;{}()=, a tab or a newline), and fo-assets does not enable column mapping for such names: "
            "exclude the field in the catalog, or rename it in F&O"
        )


def check_column_types(
    batch: LandedBatch, table_name: str, schema: pa.Schema, existing: Sequence[tuple[str, str]], *, adapts: bool
) -> None:
    """Refuse a batch with a column whose type changed in a way the table cannot follow, naming it.

    ``existing`` is the table's (name, SQL type) before the load. With ``adapts`` (Databricks: a MERGE
    casts values into a wider column, and type widening widens a column) a change is taken when either
    type is a widening of the other; without (local Delta), never."""
    table_types = {name.lower(): kind for name, kind in existing}
    for field in schema:
        old = table_types.get(field.name.lower())
        new = sql.column_type(field.type, field.name)
        if old is None or old == new or (adapts and (sql.widens(new, old) or sql.widens(old, new))):
            continue
        fix = ("Delta's type widening does not turn one into the other: migrate the column by hand"
               if adapts else "local Delta tables keep their column types: migrate or rebuild the table")
        raise SinkError(
            f"batch {batch.batch_id} of {table_name}: column {field.name!r} is {old} in the table but {new} in "
            f"the batch; {fix} (docs/databricks.md, \"Type changes\")"
        )
