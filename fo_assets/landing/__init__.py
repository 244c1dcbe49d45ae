"""The landing zone: every extracted batch as Parquet parts plus a manifest, and the ledger over them.

A batch is what one run read of one entity: the Parquet parts are the audit trail and the replay
source, the manifest says what was asked of F&O, what came back and what became of the load. Layout::

    <home>/landing/<table>/<batch id>/manifest.json
    <home>/landing/<table>/<batch id>/parts/part-00000.parquet ...
    <home>/landing/<table>/<batch id>/scope/parents.parquet      (line entities: headers read whole)

Parts live in their own folder because Databricks' ``read_files`` reads every file of a folder and
a manifest beside them would break the MERGE.

This folder is the working copy. With an ``Archive`` (production: the batch folders a Databricks load
stages in its Unity Catalog volume, ``FO_LANDING_STORE=volume``) every batch that reached the archive
outlives the machine: the ledger mirrors each status change there, ``restore`` brings the manifests
back on a new machine, and a replay fetches the parts back, checked against the manifest's sha256.
"""

from fo_assets.landing.archive import Archive, ArchiveError, read_archived
from fo_assets.landing.ledger import Ledger
from fo_assets.landing.manifest import (
    AUDIT_COLUMNS,
    AUDIT_FIELDS,
    BATCH_ID,
    DELETED,
    EXTRACTED_AT,
    RUN_ID,
    SOURCE_URL,
    DeleteScope,
    LandedBatch,
    Manifest,
    Mode,
    PartInfo,
    Status,
    new_batch_id,
)
from fo_assets.landing.writer import DEFAULT_PART_BYTES, BatchWriter

__all__ = [
    "AUDIT_COLUMNS", "AUDIT_FIELDS", "BATCH_ID", "DEFAULT_PART_BYTES", "DELETED", "EXTRACTED_AT", "RUN_ID",
    "SOURCE_URL", "Archive", "ArchiveError", "BatchWriter", "DeleteScope", "LandedBatch", "Ledger", "Manifest",
    "Mode", "PartInfo", "Status", "new_batch_id", "read_archived",
]
