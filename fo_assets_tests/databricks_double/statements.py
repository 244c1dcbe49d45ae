"""The Statement Execution API's state machine: submit, wait, poll, cancel, fetch result chunks.

Statements run at once on a pool of workers, as a warehouse runs them; each reads the table versions of
the moment it started, so two writes to one table that overlap conflict as in Delta (``delta_log``).
Results come as Databricks serves them: ``JSON_ARRAY`` with ``INLINE`` disposition (every value a string,
split into chunks, and the statement fails when its result is over 25 MiB), or ``ARROW_STREAM`` with
``EXTERNAL_LINKS``: each chunk an Arrow IPC stream behind a short-lived pre-signed URL that must be
fetched without the workspace's Authorization header.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .engine import Engine, Result, TableName
from .faults import Faults
from .sqltext import SqlError
from .web import ApiError

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELED", "CLOSED")
INLINE_LIMIT_BYTES = 25 * 1024 * 1024  # the documented cap of an INLINE result
EXTERNAL_LINK_PATH = "/_presigned/statement-results/"
EXTERNAL_LINK_LIFETIME_S = 15 * 60
_WAIT = re.compile(r"^(\d+)s$")
_DISPOSITIONS = {("INLINE", "JSON_ARRAY"), ("EXTERNAL_LINKS", "ARROW_STREAM")}


@dataclass
class StatementRecord:
    id: str
    text: str
    params: dict[str, Any]
    disposition: str = "INLINE"
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
    def __init__(self, engine: Engine, faults: Faults, warehouse_id: str, chunk_rows: int, host: str, workers: int = 8):
        self.engine, self.faults, self.warehouse_id, self.chunk_rows = engine, faults, warehouse_id, chunk_rows
        self.host = host
        self.records: dict[str, StatementRecord] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="databricks-double-sql")
        self._link_key = secrets.token_bytes(32)

    def submit(self, body: dict[str, Any]) -> tuple[StatementRecord, float, bool]:
        """Start a statement; returns it with how long the caller should wait and whether to cancel then."""
        if body.get("warehouse_id") != self.warehouse_id:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"warehouse {body.get('warehouse_id')!r} does not exist.")
        disposition = str(body.get("disposition", "INLINE"))
        if (disposition, str(body.get("format", "JSON_ARRAY"))) not in _DISPOSITIONS:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           "the double serves JSON_ARRAY with INLINE and ARROW_STREAM with EXTERNAL_LINKS only")
        wait = _WAIT.match(str(body.get("wait_timeout", "10s")))
        seconds = int(wait.group(1)) if wait else -1
        if not (seconds == 0 or 5 <= seconds <= 50):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "wait_timeout must be 0s or between 5s and 50s")
        record = StatementRecord(uuid.uuid4().hex, str(body.get("statement", "")), {}, disposition)
        self.records[record.id] = record
        injected = self.faults.statement_failure(record.text)
        try:
            record.params = {p["name"]: _bind(p) for p in body.get("parameters") or []}
        except (KeyError, ValueError, decimal.InvalidOperation) as exc:
            injected = injected or ("BAD_REQUEST", f"[INVALID_PARAMETER_VALUE] {exc}")
        if injected:
            record.finish("FAILED", error=injected)
        else:
            self._pool.submit(self._run, record, self.engine.snapshot(), self.faults.statement_delay(record.text),
                              self.faults.interloper(record.text))
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
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, record: StatementRecord, read: dict[TableName, int], delay: float, interloper: str | None) -> None:
        """Execute on a worker. ``read`` is what the statement saw when it started; a delay makes it slow
        (cancellable meanwhile), so writes that start during it commit first."""
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not record.cancel_requested:
            time.sleep(0.02)
        if record.cancel_requested:
            record.finish("CANCELED")
            return
        record.state = "RUNNING"
        try:
            result = self.engine.execute(record.text, record.params, read, interloper)
        except SqlError as exc:
            record.finish("FAILED", error=(exc.error_code, str(exc)))
            return
        except Exception as exc:  # a bug in the double must still answer, not hang the client
            record.finish("FAILED", error=("INTERNAL_ERROR", f"[DOUBLE_BUG] {type(exc).__name__}: {exc}"))
            return
        if record.disposition == "INLINE" and result.table.nbytes > INLINE_LIMIT_BYTES:
            record.finish("FAILED", error=("BAD_REQUEST", (
                "Inline byte limit exceeded. Statements executed with disposition=INLINE can have a result size "
                f"of at most {INLINE_LIMIT_BYTES} bytes. Please execute the statement with "
                "disposition=EXTERNAL_LINKS if you want to download the full result.")))
            return
        record.finish("SUCCEEDED", result)

    # -- responses ------------------------------------------------------------------------------

    def to_json(self, record: StatementRecord) -> dict[str, Any]:
        body: dict[str, Any] = {"statement_id": record.id, "status": {"state": record.state}}
        if record.error:
            body["status"]["error"] = {"error_code": record.error[0], "message": record.error[1]}
        if record.state == "SUCCEEDED" and record.result is not None:
            result = record.result
            chunks = self._chunk_count(result)
            body["manifest"] = {
                "format": "JSON_ARRAY" if record.disposition == "INLINE" else "ARROW_STREAM",
                "schema": {
                    "column_count": len(result.columns),
                    "columns": [
                        {"name": name, "position": i, **_type(duck)} for i, (name, duck) in enumerate(result.columns)
                    ],
                },
                "total_chunk_count": chunks,
                "chunks": [self._chunk_info(result, i) for i in range(chunks)],
                "total_row_count": result.table.num_rows,
                "truncated": False,
            }
            body["result"] = self.chunk(record, 0)
        return body

    def chunk(self, record: StatementRecord, index: int) -> dict[str, Any]:
        if record.result is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Statement {record.id} has no result")
        if index > 0 and index >= self._chunk_count(record.result):
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"no chunk {index}")
        info = self._chunk_info(record.result, index)
        more = info["row_offset"] + info["row_count"] < record.result.table.num_rows
        links: dict[str, Any] = {}
        if more:
            links = {"next_chunk_index": index + 1,
                     "next_chunk_internal_link": f"/api/2.0/sql/statements/{record.id}/result/chunks/{index + 1}"}
        if record.disposition == "EXTERNAL_LINKS":
            return {"external_links": [{**info, **links, "byte_count": len(self._arrow(record, index)),
                                        "external_link": self._link(record.id, index),
                                        "expiration": _expiry(EXTERNAL_LINK_LIFETIME_S)}]}
        data: dict[str, Any] = {**info, **links}
        rows = record.result.table.slice(info["row_offset"], info["row_count"]).to_pylist()
        if rows:
            data["data_array"] = [[_text(v) for v in row.values()] for row in rows]
        return data

    def download(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> bytes:
        """The bytes behind a pre-signed link, as cloud storage serves them: the signature in the URL is
        the only credential, so a request that also carries an Authorization header is refused."""
        if "authorization" in headers:
            raise ApiError(400, "InvalidArgument", "Only one auth mechanism allowed; the Authorization header "
                                                   "must not be sent with a pre-signed URL")
        statement_id, _, chunk = path[len(EXTERNAL_LINK_PATH):].partition("/")
        expires = query.get("expires", ["0"])[0]
        signature = query.get("signature", [""])[0]
        if not hmac.compare_digest(signature, self._signature(statement_id, chunk, expires)):
            raise ApiError(403, "AccessDenied", "Request signature does not match")
        if int(expires) < time.time():
            raise ApiError(403, "AccessDenied", "Request has expired")
        record = self.get(statement_id)
        return self._arrow(record, int(chunk))

    def _link(self, statement_id: str, index: int) -> str:
        expires = str(int(time.time()) + EXTERNAL_LINK_LIFETIME_S)
        signature = self._signature(statement_id, str(index), expires)
        return f"{self.host}{EXTERNAL_LINK_PATH}{statement_id}/{index}?expires={expires}&signature={signature}"

    def _signature(self, statement_id: str, chunk: str, expires: str) -> str:
        return hmac.new(self._link_key, f"{statement_id}/{chunk}/{expires}".encode(), hashlib.sha256).hexdigest()

    def _arrow(self, record: StatementRecord, index: int) -> bytes:
        assert record.result is not None
        info = self._chunk_info(record.result, index)
        table = record.result.table.slice(info["row_offset"], info["row_count"])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    def _chunk_count(self, result: Result) -> int:
        return max(1, -(-result.table.num_rows // self.chunk_rows))

    def _chunk_info(self, result: Result, index: int) -> dict[str, int]:
        offset = index * self.chunk_rows
        count = max(0, min(self.chunk_rows, result.table.num_rows - offset))
        return {"chunk_index": index, "row_offset": offset, "row_count": count}


def _expiry(seconds: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


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
