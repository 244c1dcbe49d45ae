"""fo-assets: Dagster assets that land Dynamics 365 F&O data in Databricks or local Delta tables."""
