"""The Definitions object of the fo_assets code location: assembles the parts, nothing else."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    # Built when the code location loads, not at import: settings come from the environment then.
    return dg.Definitions()
