"""Where landed batches are loaded: local Delta tables or Databricks (Files API and SQL MERGE)."""
