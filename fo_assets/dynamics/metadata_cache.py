"""The F&O metadata cache shared through the landing archive: a run pod that starts with an empty home
takes ``$metadata`` (tens of MB on a real tenant) from there instead of fetching it from F&O again."""

from __future__ import annotations

from fo_assets.landing.archive import Archive, read_archived


class SharedFolder:
    """Files by name in one folder of the archive: caches every machine shares."""

    def __init__(self, archive: Archive, name: str):
        self._archive, self._folder = archive, f"{archive.root}/{name}"

    def read(self, name: str) -> bytes | None:
        """The bytes cached under ``name``, or None."""
        return read_archived(self._archive, f"{self._folder}/{name}")

    def write(self, name: str, data: bytes) -> None:
        """Cache ``data`` under ``name`` (written atomically)."""
        self._archive.put(data, f"{self._folder}/{name}")


