"""The run-time resource: settings, sink and ledger, built when a run starts (never at import)."""


import logging

import dagster as dg
from pydantic import PrivateAttr

from fo_assets.dynamics.extract import Extractor
from fo_assets.landing import Ledger
from fo_assets.settings import Settings, load_settings
from fo_assets.sinks.base import Sink


def build_sink(settings: Settings) -> Sink:
    """Databricks when a workspace is configured, local Delta under FO_ASSETS_HOME otherwise."""
    if settings.databricks is None:
        from fo_assets.sinks.local_delta import LocalDeltaSink

        return LocalDeltaSink(settings.delta_root)
    from fo_assets.sinks.databricks import DatabricksSink, connect_workspace

    db = settings.databricks
    workspace = connect_workspace(db.host, db.client_id, settings.secret("DATABRICKS_CLIENT_SECRET").reveal())
    return DatabricksSink(workspace, db.warehouse_id, db.catalog, db.schema, db.volume,
                          keep_staged=db.landing_in_volume)


def build_ledger(settings: Settings, sink: Sink) -> Ledger:
    """The batch ledger under FO_ASSETS_HOME, archived in the sink's volume when the sink keeps its
    staged batches there (FO_LANDING_STORE=volume): then a lost machine loses no batch that reached it."""
    if settings.databricks is None or not settings.databricks.landing_in_volume:
        return Ledger(settings.home)  # without importing databricks-sdk (a second and a half per run)
    from fo_assets.sinks.databricks import DatabricksSink, VolumeArchive

    assert isinstance(sink, DatabricksSink), "build_sink makes a DatabricksSink when a workspace is set"
    return Ledger(settings.home, VolumeArchive(sink, frozenset(spec.table for spec in settings.catalog)))


class FoRuntime(dg.ConfigurableResource):
    """Everything a run needs from the environment, resolved once per run.

    Settings and secrets are read in ``setup_for_execution`` (run start), so a secret kept in the
    encrypted store works exactly like one in the environment, and nothing is read at import.
    """

    config_file: str | None = None  # a code location's own settings file (one per customer)

    _settings: Settings | None = PrivateAttr(default=None)
    _sink: Sink | None = PrivateAttr(default=None)
    _ledger: Ledger | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Validate the settings when a run starts, so a wrong one fails the run with its message."""
        self._settings = load_settings(config_file=self.config_file)

    @property
    def settings(self) -> Settings:
        """The run's settings, read once."""
        if self._settings is None:
            self._settings = load_settings(config_file=self.config_file)
        return self._settings

    @property
    def sink(self) -> Sink:
        """The sink the settings choose (Databricks or local Delta), built once per run."""
        if self._sink is None:
            self._sink = build_sink(self.settings)
        return self._sink

    @property
    def ledger(self) -> Ledger:
        """The batch ledger, archived in the volume when the sink keeps batches there."""
        if self._ledger is None:
            self._ledger = build_ledger(self.settings, self.sink)
        return self._ledger

    def extractor(self, run_id: str, log: logging.Logger | None = None) -> Extractor:
        """An extractor for one run (close it when done)."""
        return Extractor(self.settings, run_id=run_id, log=log, ledger=self.ledger)
