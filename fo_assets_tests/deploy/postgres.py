"""A throwaway PostgreSQL server on loopback, from the Debian packages, for the production instance and inbox.

initdb refuses to run as root, so as root the server runs as the ``postgres`` user the package creates,
in a fresh directory under /tmp it owns (pytest's own temp folders are private to root). The server
listens on 127.0.0.1 only, on a free port, with its socket in the same directory, and requires a
password (scram-sha-256) like a production server.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

USER = "dagster"
DATABASE = "dagster"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    password: str

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": DATABASE,
            "DAGSTER_PG_USERNAME": USER,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def inbox_env(self, schema: str) -> dict[str, str]:
        """The variables that put the Business Events inbox in this server, in its own schema."""
        return {"FO_INBOX_POSTGRES": f"host={self.host} port={self.port} dbname={DATABASE} user={USER}",
                "FO_INBOX_PASSWORD": self.password, "FO_INBOX_SCHEMA": schema}

    def connect(self):  # -> psycopg2 connection
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=USER, password=self.password,
                                dbname=DATABASE, connect_timeout=10)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            conn.close()


def find_bindir() -> Path | None:
    """Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<major>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root, but there is no postgres user to run PostgreSQL as "
                           "(install the Debian package postgresql)") from None
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def _create_database(port: int, password: str) -> None:
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", port=port, user=USER, password=password, dbname="postgres")
    try:
        admin.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        admin.close()


def running_postgres(bindir: Path) -> Iterator[Postgres]:
    """Start a server, yield how to reach it, and stop and remove it afterwards."""
    prefix = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="fo-pg-", dir="/tmp"))
    if prefix:
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    password = secrets.token_urlsafe(16)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if prefix:
        shutil.chown(pwfile, "postgres", "postgres")
    port = _free_port()
    try:
        _run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
              f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8"])
        # fsync off: a test server that loses its data on a power cut is fine and much faster.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
        _run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
        try:
            _create_database(port, password)
            yield Postgres("127.0.0.1", port, password)
        finally:
            _run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
