"""Where the data goes: the sinks (local Delta, Databricks through the SQL Statement Execution API) and the
Databricks workspace code they share with the model's job trigger (``databricks_job``)."""
