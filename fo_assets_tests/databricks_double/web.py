"""HTTP pieces every route of the double shares: the REST error shape and JSON responses."""

from __future__ import annotations

import json
from typing import Any

from fo_assets.sandbox.httpserver import Response


class ApiError(Exception):
    """Answered as Databricks does: the status and ``{"error_code": ..., "message": ...}``."""

    def __init__(self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error_code, self.message, self.headers = status, error_code, message, headers or {}

    def response(self) -> Response:
        return json_response(self.status, {"error_code": self.error_code, "message": self.message}, self.headers)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(body).encode(), "application/json", headers or {})


def empty(status: int = 200) -> Response:
    return Response(status, b"", "application/json")
