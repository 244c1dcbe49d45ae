"""Code location `fabrikam`: fo-assets configured by the fo-assets.env file next to this one.

A workspace file cannot give a code location its own environment, so each customer's location names
its own settings file. Copy this folder to add a customer (see docs/operations.md).
"""

from pathlib import Path

import dagster as dg

from fo_assets.definitions import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(str(Path(__file__).with_name("fo-assets.env")))
