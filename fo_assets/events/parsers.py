"""The receiver's event parsers: ``intake`` in processes of their own.

Parsing a post is CPU work: json.loads of a 1 MiB body holds the interpreter's lock for ~70 ms without a
break, so in a thread it would still hold up the receiver's event loop (``/healthz``, other posts). In a
process of its own, at a lower priority than the receiver, it holds up nothing. A parser hands back the
events as the inbox stores them (plain strings and numbers: cheap to pass between processes).

This module imports only what a parser needs, so a parser process starts quickly.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from fo_assets.events.payload import intake, stored_form

# Two parsers for the machine's cores; posts wait for a free one.
PARSERS = 2


@dataclass(frozen=True)
class Parsed:
    """A delivery as a parser hands it back."""

    validation_code: str | None
    ignored: int
    rows: list[tuple]  # ``stored_form`` of each event
    names: list[str]  # BusinessEventId/EventId of each event, for the log line


def parse(body: bytes, max_events: int) -> Parsed:
    """Runs in a parser process: ``intake``, and the events' stored form."""
    delivery = intake(body, max_events=max_events)
    return Parsed(delivery.validation_code, delivery.ignored, [stored_form(e) for e in delivery.events],
                  [f"{e.business_event_id}/{e.event_id}" for e in delivery.events])


def _started(receiver_pid: int) -> None:
    """In each parser process: yield the CPU to the receiver (its event loop answers first, parsing waits),
    and end with the receiver, however it ends (a killed receiver cannot stop its parsers)."""
    os.nice(10)

    def watch() -> None:
        while os.getppid() == receiver_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-receiver", daemon=True).start()


class EventParsers:
    """The parser processes, started with the first post (spawned: forking a process that runs threads is
    unsafe) and started again after one died (killed, out of memory), which fails only the posts it had."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def parse(self, body: bytes, max_events: int) -> Parsed:
        """``parse`` in a parser process; raises what ``intake`` raises, or BrokenProcessPool."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(PARSERS, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_started, initargs=(os.getpid(),))
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(parse, body, max_events))
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
            raise

    def stop(self) -> None:
        """Shut the parser pool down, cancelling what has not started."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
