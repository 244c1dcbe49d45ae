"""Files API over Unity Catalog volumes, stored on local disk (only volumes created by SQL exist).

As documented: an upload replaces an existing file unless ``overwrite=false``, and a directory listing
comes in pages (``next_page_token``); the double's pages are small, so a client that reads one page
misses entries.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import parse_qs

from fo_assets.sandbox.httpserver import Request, Response

from .engine import Engine
from .faults import Faults
from .web import ApiError, empty, json_response

FILES = "/api/2.0/fs/files"
DIRECTORIES = "/api/2.0/fs/directories"


class Volumes:
    def __init__(self, engine: Engine, faults: Faults, page_size: int = 3):
        self.engine, self.faults, self.page_size = engine, faults, page_size
        self.uploads = 0  # stored uploads, for tests

    def handle(self, request: Request) -> Response:
        is_files = request.path.startswith(FILES + "/")
        volume_path = request.path[len(FILES if is_files else DIRECTORIES):]
        try:
            local = self.engine.local_path(volume_path)
        except FileNotFoundError as exc:
            raise ApiError(404, "NOT_FOUND", str(exc)) from None
        if is_files:
            return self._file(request, volume_path, local)
        return self._directory(request, volume_path, local)

    def _file(self, request: Request, volume_path: str, local: Path) -> Response:
        if request.method == "PUT":
            status = self.faults.upload_failure(volume_path)
            if status:
                raise ApiError(status, "TEMPORARILY_UNAVAILABLE", "injected upload failure")
            overwrite = parse_qs(request.query).get("overwrite", ["true"])[0].lower() != "false"
            if local.exists() and not overwrite:
                raise ApiError(409, "ALREADY_EXISTS", f"{volume_path} already exists")
            if local.is_dir():
                raise ApiError(409, "ALREADY_EXISTS", f"{volume_path} is a directory")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(request.body)
            self.uploads += 1
            return empty(204)
        if not local.is_file():
            raise ApiError(404, "NOT_FOUND", f"The file {volume_path} does not exist")
        if request.method == "GET":
            return Response(200, local.read_bytes(), "application/octet-stream")
        if request.method == "HEAD":
            return Response(200, b"", "application/octet-stream", {"x-file-size": str(local.stat().st_size)})
        if request.method == "DELETE":
            local.unlink()
            return empty(204)
        raise ApiError(405, "METHOD_NOT_ALLOWED", request.method)

    def _listing(self, volume_path: str, local: Path, query: dict[str, list[str]]) -> dict[str, object]:
        """One page of a directory's entries; ``next_page_token`` names where the next page starts."""
        base = volume_path.rstrip("/")
        requested = int(query.get("page_size", ["1000"])[0])
        size = max(1, min(requested, self.page_size))
        start = int(query.get("page_token", ["0"])[0] or 0)
        entries = sorted(local.iterdir())
        page = {
            "contents": [
                {
                    "path": f"{base}/{entry.name}" + ("/" if entry.is_dir() else ""),
                    "name": entry.name,
                    "is_directory": entry.is_dir(),
                    **({} if entry.is_dir() else {"file_size": entry.stat().st_size}),
                    "last_modified": int(entry.stat().st_mtime * 1000),
                }
                for entry in entries[start:start + size]
            ]
        }
        if start + size < len(entries):
            page["next_page_token"] = str(start + size)
        return page

    def _directory(self, request: Request, volume_path: str, local: Path) -> Response:
        if request.method == "PUT":
            if local.is_file():
                raise ApiError(409, "ALREADY_EXISTS", f"{volume_path} is a file")
            local.mkdir(parents=True, exist_ok=True)
            return empty(204)
        if not local.is_dir():
            raise ApiError(404, "NOT_FOUND", f"The directory {volume_path} does not exist")
        if request.method == "HEAD":
            return empty(200)
        if request.method == "GET":
            return json_response(200, self._listing(volume_path, local, parse_qs(request.query)))
        if request.method == "DELETE":
            if any(local.iterdir()):
                raise ApiError(400, "DIRECTORY_NOT_EMPTY", f"The directory {volume_path} is not empty")
            shutil.rmtree(local)
            return empty(204)
        raise ApiError(405, "METHOD_NOT_ALLOWED", request.method)
