"""What the double keeps of each Delta table besides its rows: properties and the commit log.

Table properties are checked as Delta checks them (a ``delta.`` key it does not know, or a value it
cannot parse, is refused). Every write reads a version of the table and commits on top of the newest
one; a commit that concurrent commits overtook is checked against them the way Delta's conflict checker
does (docs/databricks.md, "Concurrent writes"):

- a metadata change (table properties, a schema change) fails every writer it overtook, and a write
  that changes the schema fails when any commit overtook it;
- MERGE/UPDATE against MERGE/UPDATE conflicts (the double does not try to prove the rows disjoint);
- OPTIMIZE against MERGE/UPDATE conflicts, unless the table has deletion vectors (row-level concurrency);
- VACUUM commits nothing a writer reads, so it never conflicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .sqltext import SqlError

WRITE, OPTIMIZE, METADATA = "WRITE", "OPTIMIZE", "METADATA"
DEFAULT_DELETED_FILE_RETENTION_HOURS = 7 * 24  # delta.deletedFileRetentionDuration's default

_INTERVAL = re.compile(r"^\s*(?:interval\s+)?(\d+)\s+(week|day|hour|minute|second)s?\s*$", re.IGNORECASE)
_HOURS = {"week": 168.0, "day": 24.0, "hour": 1.0, "minute": 1 / 60, "second": 1 / 3600}
_BOOLEAN = ("true", "false")
# The delta.* properties the double knows, and how each value is checked.
_KNOWN = {
    "delta.enableChangeDataFeed": _BOOLEAN,
    "delta.enableDeletionVectors": _BOOLEAN,
    "delta.enableTypeWidening": _BOOLEAN,
    "delta.columnMapping.mode": ("none", "name", "id"),
    "delta.deletedFileRetentionDuration": _INTERVAL,
    "delta.logRetentionDuration": _INTERVAL,
    "delta.minReaderVersion": re.compile(r"^[1-3]$"),
    "delta.minWriterVersion": re.compile(r"^[1-7]$"),
}
_CONFLICTS = {
    "DELTA_METADATA_CHANGED": (
        "MetadataChangedException: The metadata of the Delta table has been changed by a concurrent update. "
        "Please try the operation again."
    ),
    "DELTA_CONCURRENT_APPEND.WITHOUT_HINT": (
        "ConcurrentAppendException: Files were added to the root of the table by a concurrent update. "
        "Please try the operation again."
    ),
    "DELTA_CONCURRENT_DELETE_READ.WITHOUT_HINT": (
        "ConcurrentDeleteReadException: This transaction attempted to read one or more files that were deleted "
        "by a concurrent update. Please try the operation again."
    ),
    "DELTA_CONCURRENT_DELETE_DELETE.WITHOUT_HINT": (
        "ConcurrentDeleteDeleteException: This transaction attempted to delete one or more files that were "
        "deleted by a concurrent update. Please try the operation again."
    ),
}


def interval_hours(value: str) -> float | None:
    """Hours of a Delta interval property (``interval 30 days``); None if Delta would not parse it."""
    match = _INTERVAL.match(value)
    return int(match.group(1)) * _HOURS[match.group(2).lower()] if match else None


def check_property(key: str, value: str) -> str:
    """The value as Delta stores it, or the error Delta raises for it."""
    if not key.startswith("delta."):
        return value  # user metadata: any key and value
    rule = _KNOWN.get(key)
    if rule is None:
        raise SqlError("DELTA_UNKNOWN_CONFIGURATION", f"Unknown configuration was specified: {key}")
    valid = rule.match(value) if isinstance(rule, re.Pattern) else value.lower() in rule
    if not valid:
        raise SqlError("DELTA_VIOLATE_TABLE_PROPERTY_VALIDATION_FAILED",
                       f"The validation of the property {key} failed: {value!r} is not a valid value.")
    return value.lower() if rule in (_BOOLEAN, _KNOWN["delta.columnMapping.mode"]) else value


@dataclass(frozen=True)
class Commit:
    version: int
    operation: str  # WRITE, OPTIMIZE or METADATA


@dataclass
class DeltaLog:
    properties: dict[str, str] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)

    @property
    def version(self) -> int:
        return len(self.commits)

    def flag(self, key: str) -> bool:
        return self.properties.get(key, "false") == "true"

    @property
    def column_mapping(self) -> bool:
        return self.properties.get("delta.columnMapping.mode", "none") != "none"

    @property
    def deleted_file_retention_hours(self) -> float:
        value = self.properties.get("delta.deletedFileRetentionDuration")
        return interval_hours(value) if value else DEFAULT_DELETED_FILE_RETENTION_HOURS  # type: ignore[return-value]

    def commit(self, read_version: int, operation: str, changes_metadata: bool = False) -> None:
        """Commit ``operation`` read at ``read_version`` (a write that also changes the schema says so),
        or raise the conflict Delta would raise."""
        error = self.conflict(read_version, operation, changes_metadata)
        if error:
            raise SqlError(error, _CONFLICTS[error])
        self.commits.append(Commit(self.version + 1, METADATA if changes_metadata else operation))

    def conflict(self, read_version: int, operation: str, changes_metadata: bool = False) -> str | None:
        winners = [c.operation for c in self.commits[read_version:]]
        if not winners or operation == METADATA and METADATA not in winners:
            return None  # a properties change reads no data: only another metadata change overtakes it
        if METADATA in winners:
            return "DELTA_METADATA_CHANGED"
        row_level = self.flag("delta.enableDeletionVectors")
        if operation == WRITE and WRITE in winners:
            return "DELTA_CONCURRENT_APPEND.WITHOUT_HINT"
        if operation == WRITE and OPTIMIZE in winners and not row_level:
            return "DELTA_CONCURRENT_DELETE_READ.WITHOUT_HINT"
        if operation == OPTIMIZE and (OPTIMIZE in winners or (WRITE in winners and not row_level)):
            return "DELTA_CONCURRENT_DELETE_DELETE.WITHOUT_HINT"
        if changes_metadata:  # schema evolution conflicts with every concurrent write
            return "DELTA_METADATA_CHANGED"
        return None
