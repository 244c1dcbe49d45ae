"""Running one statement on a SQL warehouse: submit, poll to a deadline, cancel on abort, read rows.

The SDK has no waiter for statements. A failed statement is HTTP 200 with ``status.state == FAILED``:
that becomes ``StatementFailed`` with the warehouse's error code and message and what we were doing.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.sql import (
    Disposition,
    ExecuteStatementRequestOnWaitTimeout,
    Format,
    StatementParameterListItem,
    StatementResponse,
    StatementState,
)

from fo_assets.sinks import sql
from fo_assets.sinks.base import SinkError
from fo_assets.sinks.workspace import call_with_reauth

log = logging.getLogger(__name__)
_DONE = (StatementState.SUCCEEDED, StatementState.FAILED, StatementState.CANCELED, StatementState.CLOSED)


class StatementFailed(SinkError):
    def __init__(self, message: str, error_code: str | None, server_message: str | None):
        super().__init__(message)
        self.error_code, self.server_message = error_code, server_message


@dataclass
class StatementResult:
    columns: list[tuple[str, str]]  # (name, type text as the warehouse reports it)
    rows: list[list[str | None]]

    def first(self) -> dict[str, str | None]:
        return dict(zip((name for name, _ in self.columns), self.rows[0])) if self.rows else {}

    def to_arrow(self) -> pa.Table:
        arrays = {}
        for i, (name, type_text) in enumerate(self.columns):
            kind = sql.arrow_type(type_text)
            parse = _parser(kind)
            arrays[name] = pa.array([None if row[i] is None else parse(row[i]) for row in self.rows], kind)
        return pa.table(arrays)


class Warehouse:
    def __init__(self, workspace: WorkspaceClient, warehouse_id: str, timeout_s: float, poll_max_s: float = 5.0):
        self.workspace, self.warehouse_id = workspace, warehouse_id
        self.timeout_s, self.poll_max_s = timeout_s, poll_max_s

    def run(self, statement: sql.Statement, context: str) -> StatementResult:
        """Run ``statement`` to completion within the timeout; ``context`` names the table and batch."""
        try:
            return self._run(statement, context)
        except DatabricksError as exc:  # the API itself failed (after the SDK's retries), not the statement
            raise SinkError(
                f"{statement.what} on {context}: the SQL warehouse API failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _run(self, statement: sql.Statement, context: str) -> StatementResult:
        api = self.workspace.statement_execution
        params = [StatementParameterListItem(name=p.name, value=p.value, type=p.type) for p in statement.params]
        deadline = time.monotonic() + self.timeout_s
        response = self._call(lambda: api.execute_statement(
            statement=statement.text,
            warehouse_id=self.warehouse_id,
            parameters=params or None,
            wait_timeout=_wait_timeout(self.timeout_s),
            on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
            format=Format.JSON_ARRAY,
            disposition=Disposition.INLINE,
        ))
        statement_id = response.statement_id or ""
        try:
            pause = 0.2
            while _state(response) not in _DONE:
                if time.monotonic() >= deadline:
                    raise SinkError(
                        f"{statement.what} on {context} did not finish within {self.timeout_s:g} s; cancelled it"
                    )
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 1.5, self.poll_max_s)
                response = self._call(lambda: api.get_statement(statement_id))
        except BaseException:  # timeout, Ctrl-C, run termination: do not leave it running on the warehouse
            self._cancel(statement_id)
            raise
        return self._result(response, statement, context)

    def _result(self, response: StatementResponse, statement: sql.Statement, context: str) -> StatementResult:
        state = _state(response)
        if state == StatementState.FAILED:
            error = response.status.error if response.status else None
            code = error.error_code.value if error and error.error_code else None
            message = error.message if error else None
            raise StatementFailed(
                f"{statement.what} on {context} failed on the SQL warehouse ({code or 'no error code'}): {message}",
                code, message,
            )
        if state != StatementState.SUCCEEDED:
            raise SinkError(f"{statement.what} on {context} ended {state.value if state else 'without a state'}")
        schema = response.manifest.schema if response.manifest else None
        columns = [(c.name or "", c.type_text or "STRING") for c in (schema.columns or [])] if schema else []
        rows: list[list[str | None]] = []
        chunk = response.result
        while chunk is not None:
            rows.extend(chunk.data_array or [])
            if chunk.next_chunk_index is None:
                break
            index = chunk.next_chunk_index
            chunk = self._call(lambda: self.workspace.statement_execution.get_statement_result_chunk_n(
                response.statement_id or "", index))
        return StatementResult(columns, rows)

    def _cancel(self, statement_id: str) -> None:
        if not statement_id:
            return
        try:
            self.workspace.statement_execution.cancel_execution(statement_id)
        except Exception as exc:  # best effort while another error is on its way up
            log.warning("could not cancel statement %s: %s", statement_id, exc)

    def _call(self, call: Callable[[], Any]) -> Any:
        return call_with_reauth(self.workspace, call)


def _state(response: StatementResponse) -> StatementState | None:
    return response.status.state if response.status else None


def _wait_timeout(timeout_s: float) -> str:
    # The API accepts 0 (return at once) or 5..50 seconds of synchronous waiting.
    return "0s" if timeout_s < 5 else f"{min(50, int(timeout_s))}s"


def _parser(kind: pa.DataType) -> Callable[[str], Any]:
    """Parse a JSON_ARRAY value (always a string) into the Python value Arrow expects for ``kind``."""
    if pa.types.is_decimal(kind):
        return decimal.Decimal
    if pa.types.is_timestamp(kind):
        if kind.tz:
            return lambda v: dt.datetime.fromisoformat(v).astimezone(dt.timezone.utc)
        return dt.datetime.fromisoformat
    if pa.types.is_date(kind):
        return dt.date.fromisoformat
    if pa.types.is_boolean(kind):
        return lambda v: v.lower() == "true"
    if pa.types.is_integer(kind):
        return int
    if pa.types.is_floating(kind):
        return float
    if pa.types.is_binary(kind):
        return base64.b64decode
    return str
