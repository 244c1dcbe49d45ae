"""A local Databricks workspace for tests: the real databricks-sdk talks to it over HTTPS.

    with DatabricksDouble(tmp_path) as dbx:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dbx.ca_bundle_path))
        w = connect_workspace(dbx.host, dbx.client_id, dbx.client_secret)
        ...
        dbx.query(f"SELECT count(*) FROM {dbx.table_ref('main', 'fo', 'vendors_v2')}")

SQL is executed in DuckDB (see ``sqltext``, ``engine``, ``merge`` for what is translated and what is
refused; ``delta_log`` for table properties and Delta's write conflicts); ``dbx.faults`` arms failures;
``dbx.jobs.define(job_id, outcome, settings=...)`` declares jobs (``jobs.settings_from_bundle`` reads a
job's settings from a Databricks Asset Bundle). Where the double is as strict as the documented service,
and why: docs/databricks.md.
"""

from .server import DatabricksDouble

__all__ = ["DatabricksDouble"]
