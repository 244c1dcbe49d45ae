"""The upsert IO manager: an entity asset returns a landed batch, this loads it into the entity's table
(fo_assets/loading.py) and reads a table back for downstream Python assets."""


import dagster as dg
import pyarrow as pa

from fo_assets.landing import LandedBatch
from fo_assets.loading import load_metadata, upsert_batch
from fo_assets.resources import FoRuntime

ENTITY_SET_KEY = "fo/entity_set"


class UpsertIOManager(dg.ConfigurableIOManager):
    """Upserts each landed batch by the entity's key into its table (Databricks or local Delta)."""

    runtime: FoRuntime

    def handle_output(self, context: dg.OutputContext, obj: LandedBatch) -> None:
        """Load the landed batch into its table through the one load path (``upsert_batch``)."""
        spec = self.runtime.settings.catalog.spec_for(context.definition_metadata[ENTITY_SET_KEY])
        result = upsert_batch(self.runtime.sink, self.runtime.ledger, obj, spec)
        context.add_output_metadata(load_metadata(obj, result))

    def load_input(self, context: dg.InputContext) -> pa.Table:
        """Downstream Python assets get the entity's current rows as an Arrow table."""
        upstream = context.upstream_output
        assert upstream is not None
        catalog = self.runtime.settings.catalog
        return self.runtime.sink.read(catalog.spec_for(upstream.definition_metadata[ENTITY_SET_KEY]))
