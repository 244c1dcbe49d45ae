"""Folders only their owner can open: FO_ASSETS_HOME holds the secret store, tokens and staged F&O data."""

from __future__ import annotations

import os
from pathlib import Path


def private_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents owner-only (``mkdir(parents=True)`` ignores the mode)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)  # whatever the umask
