"""`fo-assets dev`: the sandbox, the events receiver and `dagster dev`, wired together for a laptop."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from fo_assets.demo import events_receiver
from fo_assets.events.inbox import open_inbox
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.settings import load_settings

# The root workspace.yaml's one location, written out here: an installed package has no project folder.
WORKSPACE = """load_from:
  - python_module:
      module_name: fo_assets.definitions
      location_name: fo_assets
"""


def run_dev(port: int) -> int:
    """`fo-assets dev`: sandbox, events receiver and `dagster dev` until interrupted; returns the exit code."""
    events_secret = secrets.token_urlsafe(24)
    with Sandbox(SandboxConfig()) as sandbox:
        env = {**os.environ, **sandbox.env()}
        settings = load_settings(env)
        settings.inbox_path.parent.mkdir(parents=True, exist_ok=True)
        tls = sandbox.tls
        # The receiver's secret goes to a private file, not the terminal: post with ?code=$(cat <file>).
        secret_file = settings.inbox_path.parent / "receiver.secret"
        secret_file.touch(mode=0o600)
        secret_file.write_text(events_secret)
        with events_receiver(open_inbox(settings), events_secret, tls.cert_path, tls.key_path) as url:
            print(f"F&O sandbox:      {sandbox.base_url} (CA {sandbox.ca_path})")
            print(f"events receiver:  {url} (its secret is in {secret_file})")
            print(f"Dagster UI:       http://127.0.0.1:{port}")
            with tempfile.TemporaryDirectory(prefix="fo-assets-dev-") as folder:
                workspace = Path(folder) / "workspace.yaml"
                workspace.write_text(WORKSPACE)
                return _dagster_dev(workspace, port, env)


def _dagster_dev(workspace: Path, port: int, env: dict[str, str]) -> int:
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-p", str(port)]
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait(timeout=30)
