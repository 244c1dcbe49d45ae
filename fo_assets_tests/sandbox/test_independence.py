"""The sandbox is a double of F&O, not of fo-assets: it imports nothing of the connector.

Built from the connector's own catalog, the sandbox would agree with the connector whatever a real tenant
says, and no test could fail on a wrong entity set, key or field. Its tenant comes from the real metadata
under fo_assets/sandbox/real_tenant/ instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fo_assets.sandbox

SANDBOX = Path(fo_assets.sandbox.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_sandbox_imports_nothing_of_the_connector():
    modules = sorted(SANDBOX.rglob("*.py"))
    assert len(modules) > 20  # the whole package is read, not an empty folder
    outside = {
        f"{path.relative_to(SANDBOX)}: {name}"
        for path in modules for name in _imported_modules(path)
        if name.startswith("fo_assets") and not name.startswith("fo_assets.sandbox")
    }
    assert outside == set()
