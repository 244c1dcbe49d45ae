"""The one daily partitioning every entity asset shares, and the run windows derived from it."""

from __future__ import annotations

import datetime as dt

import dagster as dg

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def daily_partitions(start: dt.date) -> dg.DailyPartitionsDefinition:
    """The daily partitions every by-day entity shares, from ``start`` to today included."""
    # end_offset=1: today's partition exists (provisional until the day closes), so postings made today
    # are visible the same day; the partition check says when a day was read before it closed.
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)


def run_window(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's [start, end) days."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Tags that make one run cover the partitions first..last (inclusive): a single-run backfill."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def run_partition_keys(tags: dict[str, str]) -> list[str]:
    """The daily partition keys a run covered, from its tags (one partition, or a single-run range)."""
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    if RANGE_START_TAG not in tags:
        return []
    first, last = dt.date.fromisoformat(tags[RANGE_START_TAG]), dt.date.fromisoformat(tags[RANGE_END_TAG])
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
