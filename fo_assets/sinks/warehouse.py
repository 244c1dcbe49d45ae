"""Running one statement on a SQL warehouse: submit, poll to a deadline, cancel on abort, read rows.

The SDK has no waiter for statements. A failed statement is HTTP 200 with ``status.state == FAILED``:
that becomes ``StatementFailed`` with the warehouse's error code and message and what we were doing.

Facts this relies on (docs/databricks.md, "Statement Execution API"):

- The SDK re-sends a POST whose answer does not arrive within its HTTP timeout (60 s by default), and the
  warehouse then runs the statement twice. So a submit waits at most half that timeout (never more
  than 30 s) for the statement, then polls.
- Concurrent writes to one Delta table can fail with a conflict (``DELTA_CONCURRENT_*``,
  ``DELTA_METADATA_CHANGED``). Every statement we run is idempotent, so a conflict is retried a few
  times with backoff before it fails the load.
- An INLINE result is capped at 25 MiB: whole tables are read with EXTERNAL_LINKS as Arrow streams,
  fetched from pre-signed URLs without the workspace's Authorization header.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.sql import (
    Disposition,
    ExecuteStatementRequestOnWaitTimeout,
    ExternalLink,
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
SDK_HTTP_TIMEOUT_S = 60.0  # the SDK's default when its config sets none
MAX_SYNC_WAIT_S = 30
CONFLICT_ATTEMPTS = 5
CONFLICT_BACKOFF_S = 0.2
_CONFLICT = re.compile(
    r"\[(DELTA_CONCURRENT_[A-Z_]+|DELTA_METADATA_CHANGED|DELTA_PROTOCOL_CHANGED)[\].]|Concurrent(Append|DeleteRead|"
    r"DeleteDelete|Transaction|Write)Exception|MetadataChangedException|ProtocolChangedException"
)


class StatementFailed(SinkError):
    """A statement the warehouse ran and failed, with its error code and the server's message."""
    def __init__(self, message: str, error_code: str | None, server_message: str | None):
        super().__init__(message)
        self.error_code, self.server_message = error_code, server_message

    @property
    def is_conflict(self) -> bool:
        """A Delta concurrent-write conflict: the same statement may succeed when run again."""
        return bool(_CONFLICT.search(self.server_message or ""))


@dataclass
class StatementResult:
    """The columns and rows a statement returned."""
    columns: list[tuple[str, str]]  # (name, type text as the warehouse reports it)
    rows: list[list[str | None]]

    def first(self) -> dict[str, str | None]:
        """The first row by column name (empty without rows)."""
        return dict(zip((name for name, _ in self.columns), self.rows[0])) if self.rows else {}


class Warehouse:
    """Runs statements on a SQL warehouse through the Statement Execution API, polling to a deadline."""
    def __init__(self, workspace: WorkspaceClient, warehouse_id: str, timeout_s: float, poll_max_s: float = 5.0):
        self.workspace, self.warehouse_id = workspace, warehouse_id
        self.timeout_s, self.poll_max_s = timeout_s, poll_max_s
        http_timeout_s = workspace.config.http_timeout_seconds or SDK_HTTP_TIMEOUT_S
        self.wait_timeout = _wait_timeout(timeout_s, http_timeout_s)

    def run(self, statement: sql.Statement, context: str) -> StatementResult:
        """Run ``statement`` to completion within the timeout; ``context`` names the table and batch."""
        response = self._execute(statement, context, Disposition.INLINE, Format.JSON_ARRAY)
        return self._rows(response)

    def read_arrow(self, statement: sql.Statement, context: str) -> pa.Table:
        """Run a query and fetch its result as Arrow, whatever its size: EXTERNAL_LINKS chunks, each an
        Arrow IPC stream, cast to the types the warehouse reports for the columns."""
        response = self._execute(statement, context, Disposition.EXTERNAL_LINKS, Format.ARROW_STREAM)
        schema = pa.schema([(name, sql.arrow_type(kind)) for name, kind in _columns(response)])
        batches = [batch.cast(schema) if batch.schema != schema else batch
                   for batch in self._arrow_batches(response, statement, context)]
        return pa.Table.from_batches(batches, schema)

    def _execute(self, statement: sql.Statement, context: str, disposition: Disposition,
                 result_format: Format) -> StatementResponse:
        """The statement's final response, SUCCEEDED; conflicts retried, everything else raised."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                return self._succeeded(self._run(statement, context, disposition, result_format), statement, context)
            except StatementFailed as exc:
                if not exc.is_conflict:
                    raise
                if attempt == CONFLICT_ATTEMPTS:
                    raise StatementFailed(
                        f"{statement.what} on {context} failed after {attempt} attempts, each a Delta "
                        f"concurrent-write conflict: {exc.server_message}", exc.error_code, exc.server_message,
                    ) from exc
                pause = CONFLICT_BACKOFF_S * 2 ** (attempt - 1) * random.uniform(1, 1.5)
                log.warning("%s on %s: %s; attempt %d of %d in %.1f s", statement.what, context,
                            exc.server_message, attempt + 1, CONFLICT_ATTEMPTS, pause)
                time.sleep(pause)
            except DatabricksError as exc:  # the API itself failed (after the SDK's retries), not the statement
                raise SinkError(
                    f"{statement.what} on {context}: the SQL warehouse API failed: {type(exc).__name__}: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    def _run(self, statement: sql.Statement, context: str, disposition: Disposition,
             result_format: Format) -> StatementResponse:
        api = self.workspace.statement_execution
        params = [StatementParameterListItem(name=p.name, value=p.value, type=p.type) for p in statement.params]
        deadline = time.monotonic() + self.timeout_s
        response = self._call(lambda: api.execute_statement(
            statement=statement.text,
            warehouse_id=self.warehouse_id,
            parameters=params or None,
            wait_timeout=self.wait_timeout,
            on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
            format=result_format,
            disposition=disposition,
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
        return response

    def _succeeded(self, response: StatementResponse, statement: sql.Statement, context: str) -> StatementResponse:
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
        return response

    def _rows(self, response: StatementResponse) -> StatementResult:
        rows: list[list[str | None]] = []
        chunk = response.result
        while chunk is not None:
            rows.extend(chunk.data_array or [])  # type: ignore[arg-type]  # the SDK types cells as str; NULL is None
            if chunk.next_chunk_index is None:
                break
            index = chunk.next_chunk_index
            chunk = self._call(lambda: self.workspace.statement_execution.get_statement_result_chunk_n(
                response.statement_id or "", index))
        return StatementResult(_columns(response), rows)

    def _arrow_batches(self, response: StatementResponse, statement: sql.Statement,
                       context: str) -> Iterator[pa.RecordBatch]:
        links = list(response.result.external_links or []) if response.result else []
        while links:
            link = links.pop(0)
            yield from _download(link, f"{statement.what} on {context}")
            if not links and link.next_chunk_index is not None:
                index = link.next_chunk_index
                chunk = self._call(lambda: self.workspace.statement_execution.get_statement_result_chunk_n(
                    response.statement_id or "", index))
                links = list(chunk.external_links or [])

    def _cancel(self, statement_id: str) -> None:
        if not statement_id:
            return
        try:
            self.workspace.statement_execution.cancel_execution(statement_id)
        except Exception as exc:  # best effort while another error is on its way up
            log.warning("could not cancel statement %s: %s", statement_id, exc)

    def _call(self, call: Callable[[], Any]) -> Any:
        return call_with_reauth(self.workspace, call)


def _download(link: ExternalLink, doing: str) -> Iterator[pa.RecordBatch]:
    """The record batches behind a pre-signed link. The URL is the credential: no Authorization header
    (cloud storage refuses a second one), and the URL is never repeated in an error (its query signs it)."""
    url = link.external_link or ""
    try:
        with requests.get(url, headers=dict(link.http_headers or {}), stream=True, timeout=SDK_HTTP_TIMEOUT_S) as got:
            if got.status_code != 200:
                raise SinkError(f"{doing}: fetching result chunk {link.chunk_index} from {_without_query(url)} "
                                f"answered HTTP {got.status_code}: {got.text[:200]}")
            got.raw.decode_content = True
            yield from pa.ipc.open_stream(got.raw)
    except requests.RequestException as exc:
        raise SinkError(f"{doing}: fetching result chunk {link.chunk_index} from {_without_query(url)} failed: "
                        f"{type(exc).__name__}") from None


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _columns(response: StatementResponse) -> list[tuple[str, str]]:
    schema = response.manifest.schema if response.manifest else None
    return [(c.name or "", c.type_text or "STRING") for c in (schema.columns or [])] if schema else []


def _state(response: StatementResponse) -> StatementState | None:
    return response.status.state if response.status else None


def _wait_timeout(timeout_s: float, http_timeout_s: float) -> str:
    """How long a submit waits for the statement: at most half the client's HTTP timeout and 30 s, so the
    answer always arrives before the SDK gives up and re-sends the POST. The API takes 0 (return at
    once, then poll) or 5 to 50 seconds."""
    seconds = int(min(MAX_SYNC_WAIT_S, timeout_s, http_timeout_s / 2))
    return f"{seconds}s" if seconds >= 5 else "0s"
