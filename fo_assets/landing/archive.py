"""Where batch folders outlive this machine: the archive port (production: the Unity Catalog volume)."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO, Protocol


class Archive(Protocol):
    """Where batch folders outlive this machine, laid out like the landing zone: ``<table>/<batch id>/``.
    Paths are full archive paths, as ``folder`` makes them; other folders under ``root`` (not named for a
    table) hold files every machine shares."""

    root: str

    def folder(self, table: str, batch_id: str) -> str:
        """The archive folder of one batch."""

    def put(self, source: bytes, path: str) -> None:
        """Write ``source`` to ``path``, replacing it."""
        ...

    def get(self, path: str, write: Callable[[BinaryIO], None]) -> None:
        """Stream the file at ``path`` into ``write``; ``FileNotFoundError`` when there is none."""
        ...

    def batch_ids(self) -> list[tuple[str, str]]:
        """(table, batch id) of every batch folder in the archive."""
        ...

    def remove(self, table: str, batch_id: str) -> None:
        """Delete one batch's folder from the archive."""


class ArchiveError(RuntimeError):
    """An archived batch could not be brought back; names the batch and what was wrong."""


def read_archived(archive: Archive, path: str) -> bytes | None:
    """A whole (small) archived file, or None when there is none."""
    buffer = bytearray()
    try:
        archive.get(path, lambda body: buffer.extend(body.read()))
    except FileNotFoundError:
        return None
    return bytes(buffer)


