"""`fo-assets dev`: the sandbox, the events receiver and `dagster dev`, wired together for a laptop."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from fo_assets.demo import events_receiver
from fo_assets.events.inbox import open_inbox
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.settings import load_settings

WORKSPACE = Path(__file__).resolve().parent.parent / "workspace.yaml"


def run_dev(port: int) -> int:
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
            command = [sys.executable, "-m", "dagster", "dev", "-w", str(WORKSPACE), "-p", str(port)]
            process = subprocess.Popen(command, env=env)
            try:
                return process.wait()
            except KeyboardInterrupt:
                process.terminate()
                return process.wait(timeout=30)
