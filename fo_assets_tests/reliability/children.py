"""Runs in processes of their own: started with the stack's environment, killed with a real SIGKILL."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import fo_assets_tests

REPO = Path(fo_assets_tests.__file__).resolve().parents[1]


@dataclass
class Child:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def result_line(self) -> str:
        """The child's own verdict: ``RUN <id> SUCCESS`` or ``RUN <id> FAILURE <error>``."""
        lines = [line for line in self.output().splitlines() if line.startswith("RUN ")]
        assert lines, f"the child printed no result:\n{self.output()[-3000:]}"
        return lines[-1]


def start_run(log: Path, tables: Iterable[str], first: dt.date, last: dt.date) -> Child:
    """``child_run`` with this process's environment (what the stack configured), output to ``log``."""
    return _start(log, "fo_assets_tests.reliability.child_run", "--first", first.isoformat(),
                  "--last", last.isoformat(), "--tables", ",".join(tables))


def start_model_run(log: Path, instance: Path) -> Child:
    """``model_runs``: the model materialized on the persistent instance in the folder ``instance``."""
    return _start(log, "fo_assets_tests.reliability.model_runs", "--instance", str(instance))


def _start(log: Path, module: str, *args: str) -> Child:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Output goes to a file: a pipe nobody reads fills up and blocks the child before the phase is reached.
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=REPO)
    return Child(process, log)


def kill_when(child: Child, reached: Callable[[], bool], timeout_s: float = 90) -> None:
    """SIGKILL the child from this process as soon as ``reached()`` holds; fail if it ends first."""
    deadline = time.monotonic() + timeout_s
    while not reached():
        if child.process.poll() is not None:
            raise AssertionError(f"the run ended before the phase was reached:\n{child.output()[-3000:]}")
        if time.monotonic() > deadline:
            child.process.kill()
            raise AssertionError(f"the phase was not reached within {timeout_s:g} s:\n{child.output()[-3000:]}")
        time.sleep(0.002)
    os.kill(child.process.pid, signal.SIGKILL)
    assert child.process.wait(30) == -signal.SIGKILL
