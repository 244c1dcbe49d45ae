"""The batch ledger: manifests under ``<home>/landing``, queried and updated in place, and mirrored to the
archive for every batch that reached it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from pathlib import Path

from fo_assets.folders import private_folders
from fo_assets.landing.archive import Archive, ArchiveError, read_archived
from fo_assets.landing.manifest import LandedBatch, Manifest, Status, _now_iso, _write_bytes_atomic
from fo_assets.landing.writer import DEFAULT_PART_BYTES, BatchWriter, _sha256

log = logging.getLogger(__name__)


class Ledger:
    """The batch ledger: manifests under ``<home>/landing``, queried and updated in place, and mirrored
    to the archive for every batch that reached it."""

    def __init__(self, home: Path, archive: Archive | None = None):
        self.root = Path(home) / "landing"
        self.archive = archive

    def new_writer(self, manifest: Manifest, part_bytes: int = DEFAULT_PART_BYTES) -> BatchWriter:
        """A writer for a new batch of ``manifest`` under the ledger's root."""
        manifest.created_at = manifest.created_at or _now_iso()
        return BatchWriter(self.root / manifest.table / manifest.batch_id, manifest, part_bytes)

    def batches(self, table: str | None = None, status: Status | None = None) -> list[LandedBatch]:
        """Batches oldest first (batch ids sort by creation time)."""
        pattern = f"{table}/*/manifest.json" if table else "*/*/manifest.json"
        found = []
        for path in sorted(self.root.glob(pattern), key=lambda p: p.parent.name):
            batch = LandedBatch(path.parent, Manifest.from_json(json.loads(path.read_text())))
            if status is None or batch.manifest.status == status:
                found.append(batch)
        return found

    def get(self, batch_id: str) -> LandedBatch:
        """The batch ``batch_id``; a KeyError when the ledger has no such batch."""
        for path in self.root.glob(f"*/{batch_id}/manifest.json"):
            return LandedBatch(path.parent, Manifest.from_json(json.loads(path.read_text())))
        raise KeyError(f"no landed batch {batch_id!r} under {self.root}")

    def mark_loaded(self, batch: LandedBatch, counts: dict[str, int]) -> None:
        """Record that the batch was loaded, with its insert, update and delete counts."""
        batch.manifest.status = "loaded"
        batch.manifest.error = None
        batch.manifest.load_counts = dict(counts)
        self._save(batch)

    def mark_failed(self, batch: LandedBatch, error: str) -> None:
        """Record that loading the batch failed, and why (a replay picks it up)."""
        batch.manifest.status = "failed"
        batch.manifest.error = error
        self._save(batch)

    def _save(self, batch: LandedBatch) -> None:
        batch.save()
        if self.archive is None or batch.manifest.archive is None:
            return  # its parts never reached the archive: a manifest there alone could not be replayed
        try:
            self.archive.put(batch.manifest_json(), f"{batch.manifest.archive}/manifest.json")
        except Exception as exc:  # the outcome stands; the archive's copy says an earlier status, which at
            # worst makes a new machine replay a loaded batch once more (loads are idempotent)
            log.warning("batch %s of %s: the archived manifest was not updated: %s",
                        batch.batch_id, batch.manifest.table, exc)

    def restore(self) -> list[str]:
        """Bring back the manifests of archived batches this machine lacks, or holds unloaded (another
        machine may have loaded them since): the ledger as a new pod sees it. Returns their batch ids."""
        if self.archive is None:
            return []
        restored = []
        for table, batch_id in self.archive.batch_ids():
            path = self.root / table / batch_id / "manifest.json"
            if path.exists() and json.loads(path.read_text()).get("status") in ("loaded", "extracting"):
                continue
            archived = self._archived_manifest(table, batch_id)
            if archived is None:
                continue  # parts whose upload was cut short: never a batch anyone could replay
            private_folders(path.parent)
            _write_bytes_atomic(path, archived)
            restored.append(batch_id)
        return restored

    def _archived_manifest(self, table: str, batch_id: str) -> bytes | None:
        assert self.archive is not None
        return read_archived(self.archive, f"{self.archive.folder(table, batch_id)}/manifest.json")

    def fetch(self, batch: LandedBatch) -> None:
        """Make sure the files a load reads are on this disk, fetching missing ones from the archive and
        checking each part against the size and sha256 its manifest recorded."""
        missing = [path for path in batch.local_files if not path.exists()]
        where = batch.manifest.archive
        if not missing or where is None:
            return  # never archived: the files are here, or loading says which is missing
        if self.archive is None:
            raise ArchiveError(
                f"batch {batch.batch_id} of {batch.manifest.table}: {missing[0]} is missing here and the batch is "
                f"archived in {where}, but no archive is configured (FO_LANDING_STORE=local?)"
            )
        recorded = {batch.folder / part.path: part for part in batch.manifest.parts}
        for path in missing:
            private_folders(path.parent)
            relative = path.relative_to(batch.folder).as_posix()
            tmp = path.with_name(path.name + ".fetching")
            with open(tmp, "wb") as out:
                self.archive.get(f"{where}/{relative}", lambda body: shutil.copyfileobj(body, out, 1 << 20))
            part = recorded.get(path)
            if part is not None and (tmp.stat().st_size, _sha256(tmp)) != (part.bytes, part.sha256):
                tmp.unlink()
                raise ArchiveError(
                    f"batch {batch.batch_id} of {batch.manifest.table}: the archived {where}/{relative} does not "
                    f"match its manifest (expected {part.bytes} bytes, sha256 {part.sha256[:12]}...): refusing to "
                    "load it; re-run its partition instead"
                )
            os.replace(tmp, path)

    def purge(self, older_than: dt.timedelta, now: dt.datetime | None = None) -> list[str]:
        """Delete batches older than the retention that are loaded (or were incomplete reads, never
        loadable), here and in the archive; failed and unloaded ones are always kept."""
        now = now or dt.datetime.now(dt.UTC)

        def expired(manifest: Manifest) -> bool:
            created = dt.datetime.fromisoformat(manifest.created_at)
            return manifest.status in ("loaded", "incomplete") and now - created > older_than

        removed = []
        for batch in self.batches():
            if expired(batch.manifest):
                shutil.rmtree(batch.folder)
                removed.append(batch.batch_id)
        if self.archive is None:
            return removed
        removed_here = set(removed)
        for table, batch_id in self.archive.batch_ids():
            if batch_id not in removed_here:
                if _created(batch_id) > now - older_than:
                    continue  # too young to expire, whatever its status
                archived = self._archived_manifest(table, batch_id)
                # No manifest: the parts of an upload cut short, which nothing will ever read.
                if archived is not None and not expired(Manifest.from_json(json.loads(archived))):
                    continue
                removed.append(batch_id)
            self.archive.remove(table, batch_id)
        return removed


def _created(batch_id: str) -> dt.datetime:
    """When a batch began, from its id (see ``new_batch_id``); the epoch for an id of another shape, so
    its manifest decides."""
    try:
        stamp = dt.datetime.strptime(batch_id.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ")
    except ValueError:
        stamp = dt.datetime(1970, 1, 1)
    return stamp.replace(tzinfo=dt.UTC)


