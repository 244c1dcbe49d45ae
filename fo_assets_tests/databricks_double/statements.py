"""The Statement Execution API's state machine: submit, wait, poll, cancel, fetch result chunks.

Statements run one at a time on a worker thread (one DuckDB connection). Results are returned as
Databricks does with ``format=JSON_ARRAY, disposition=INLINE``: every value a string, split into chunks.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .engine import Engine, Result
from .faults import Faults
from .sqltext import SqlError
from .web import ApiError

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "CLOSED")
_WAIT = re.compile(r"^(\d+)s$")


@dataclass
class StatementRecord:
    id: str
    text: str
    params: dict[str, Any]
    state: str = "PENDING"
    result: Result | None = None
    error: tuple[str, str] | None = None  # (error_code, message)
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, state: str, result: Result | None = None, error: tuple[str, str] | None = None) -> None:
        if self.state in TERMINAL:
            return
        self.state, self.result, self.error = state, result, error
        self.done.set()


class Statements:
    def __init__(self, engine: Engine, faults: Faults, warehouse_id: str, chunk_rows: int):
        self.engine, self.faults, self.warehouse_id, self.chunk_rows = engine, faults, warehouse_id, chunk_rows
        self.records: dict[str, StatementRecord] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="databricks-double-sql")

    def submit(self, body: dict[str, Any]) -> tuple[StatementRecord, float, bool]:
        """Start a statement; returns it with how long the caller should wait and whether to cancel then."""
        if body.get("warehouse_id") != self.warehouse_id:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"warehouse {body.get('warehouse_id')!r} does not exist.")
        for unsupported, allowed in (("format", "JSON_ARRAY"), ("disposition", "INLINE")):
            if body.get(unsupported, allowed) != allowed:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"the double serves {unsupported}={allowed} only")
        wait = _WAIT.match(str(body.get("wait_timeout", "10s")))
        seconds = int(wait.group(1)) if wait else -1
        if not (seconds == 0 or 5 <= seconds <= 50):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "wait_timeout must be 0s or between 5s and 50s")
        record = StatementRecord(uuid.uuid4().hex, str(body.get("statement", "")), {})
        self.records[record.id] = record
        injected = self.faults.statement_failure(record.text)
        try:
            record.params = {p["name"]: _bind(p) for p in body.get("parameters") or []}
        except (KeyError, ValueError, decimal.InvalidOperation) as exc:
            injected = injected or ("BAD_REQUEST", f"[INVALID_PARAMETER_VALUE] {exc}")
        if injected:
            record.finish("FAILED", error=injected)
        else:
            self._worker.submit(self._run, record, self.faults.statement_delay(record.text))
        return record, float(seconds), body.get("on_wait_timeout") == "CANCEL"

    def get(self, statement_id: str) -> StatementRecord:
        if statement_id not in self.records:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Statement {statement_id} not found")
        return self.records[statement_id]

    def cancel(self, statement_id: str) -> None:
        record = self.get(statement_id)
        record.cancel_requested = True
        if record.state == "PENDING":
            record.finish("CANCELED")

    def shutdown(self) -> None:
        for record in self.records.values():
            record.cancel_requested = True
        self._worker.shutdown(wait=True, cancel_futures=True)

    def _run(self, record: StatementRecord, delay: float) -> None:
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not record.cancel_requested:
            time.sleep(0.02)
        if record.cancel_requested:
            record.finish("CANCELED")
            return
        record.state = "RUNNING"
        try:
            record.finish("SUCCEEDED", self.engine.execute(record.text, record.params))
        except SqlError as exc:
            record.finish("FAILED", error=(exc.error_code, str(exc)))
        except Exception as exc:  # a bug in the double must still answer, not hang the client
            record.finish("FAILED", error=("INTERNAL_ERROR", f"[DOUBLE_BUG] {type(exc).__name__}: {exc}"))

    def to_json(self, record: StatementRecord) -> dict[str, Any]:
        body: dict[str, Any] = {"statement_id": record.id, "status": {"state": record.state}}
        if record.error:
            body["status"]["error"] = {"error_code": record.error[0], "message": record.error[1]}
        if record.state == "SUCCEEDED" and record.result is not None:
            result = record.result
            chunks = max(1, -(-len(result.rows) // self.chunk_rows))
            body["manifest"] = {
                "format": "JSON_ARRAY",
                "schema": {
                    "column_count": len(result.columns),
                    "columns": [
                        {"name": name, "position": i, **_type(duck)} for i, (name, duck) in enumerate(result.columns)
                    ],
                },
                "total_chunk_count": chunks,
                "chunks": [self._chunk_info(result, i) for i in range(chunks)],
                "total_row_count": len(result.rows),
                "truncated": False,
            }
            body["result"] = self.chunk(record, 0)
        return body

    def chunk(self, record: StatementRecord, index: int) -> dict[str, Any]:
        if record.result is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Statement {record.id} has no result")
        info = self._chunk_info(record.result, index)
        rows = record.result.rows[info["row_offset"]: info["row_offset"] + info["row_count"]]
        if index > 0 and not rows:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"no chunk {index}")
        data: dict[str, Any] = dict(info)
        if rows:
            data["data_array"] = [[_text(v) for v in row] for row in rows]
        if info["row_offset"] + len(rows) < len(record.result.rows):
            data["next_chunk_index"] = index + 1
            data["next_chunk_internal_link"] = f"/api/2.0/sql/statements/{record.id}/result/chunks/{index + 1}"
        return data

    def _chunk_info(self, result: Result, index: int) -> dict[str, int]:
        offset = index * self.chunk_rows
        count = max(0, min(self.chunk_rows, len(result.rows) - offset))
        return {"chunk_index": index, "row_offset": offset, "row_count": count}


def _bind(param: dict[str, Any]) -> Any:
    """A parameter's string value cast to its declared type, as the warehouse does."""
    value, kind = param.get("value"), str(param.get("type") or "STRING").upper()
    if value is None:
        return None
    if kind == "STRING":
        return str(value)
    if kind == "DATE":
        return dt.date.fromisoformat(value)
    if kind in ("TIMESTAMP", "TIMESTAMP_NTZ"):
        stamp = dt.datetime.fromisoformat(value)
        if kind == "TIMESTAMP":
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)
        return stamp.replace(tzinfo=None)
    if kind in ("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "LONG"):
        return int(value)
    if kind == "BOOLEAN":
        if value.lower() not in ("true", "false"):
            raise ValueError(f"not a boolean: {value!r}")
        return value.lower() == "true"
    if kind in ("DOUBLE", "FLOAT"):
        return float(value)
    if kind.startswith("DECIMAL"):
        return decimal.Decimal(value)
    raise ValueError(f"unsupported parameter type {kind}")


def _type(duck: str) -> dict[str, str]:
    """DuckDB type -> the type_text/type_name Databricks reports."""
    upper = duck.upper()
    if upper.startswith("DECIMAL"):
        return {"type_text": upper, "type_name": "DECIMAL"}
    text = {
        "VARCHAR": "STRING", "BIGINT": "BIGINT", "INTEGER": "INT", "SMALLINT": "SMALLINT", "TINYINT": "TINYINT",
        "BOOLEAN": "BOOLEAN", "DOUBLE": "DOUBLE", "FLOAT": "FLOAT", "DATE": "DATE",
        "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "TIMESTAMP": "TIMESTAMP_NTZ", "BLOB": "BINARY",
        "HUGEINT": "DECIMAL(38,0)",
    }.get(upper, "STRING")
    name = {"BIGINT": "LONG", "SMALLINT": "SHORT", "TINYINT": "BYTE"}.get(text, text.split("(")[0])
    return {"type_text": text, "type_name": name}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, (dt.date, decimal.Decimal, int, float)):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)
