"""A local Databricks workspace for tests: the real databricks-sdk talks to it over HTTPS.

    with DatabricksDouble(tmp_path) as dbx:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(dbx.ca_bundle_path))
        w = connect_workspace(dbx.host, dbx.client_id, dbx.client_secret)
        ...
        dbx.query(f"SELECT count(*) FROM {dbx.table_ref('main', 'fo', 'vendors_v2')}")

SQL is executed in DuckDB (see ``sqltext``, ``engine``, ``merge`` for what is translated and what is
refused); ``dbx.faults`` arms failures; ``dbx.jobs.define(job_id, outcome)`` declares jobs.
"""

from .server import DatabricksDouble

__all__ = ["DatabricksDouble"]
