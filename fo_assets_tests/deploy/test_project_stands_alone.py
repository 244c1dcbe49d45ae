"""The repository stands on its own: no file cites a document that is not in it."""

from __future__ import annotations

import subprocess

from fo_assets_tests.deploy.customers import REPO

# Spelt in pieces so this file does not cite them itself.
OUTSIDE = ("REFERENCE" + ".md", "../" + "shared")


def test_no_tracked_file_cites_a_document_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    citing = []
    for name in filter(None, tracked.decode().split("\0")):
        path = REPO / name
        if not path.is_file() or path.suffix in {".png", ".jpg", ".svg"}:
            continue
        text = path.read_text(errors="replace")
        citing += [f"{name}: {needle}" for needle in OUTSIDE if needle in text]
    assert not citing, "cite docs/*.md instead:\n" + "\n".join(citing)
