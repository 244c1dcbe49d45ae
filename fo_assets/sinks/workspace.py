"""Connecting to a Databricks workspace as a service principal (OAuth M2M), failing fast and clearly.

The client is built by dagster-databricks' ``DatabricksClientResource`` (so the Dagster resource and
this code authenticate the same way). Before that, the workspace and the credentials are checked with
bounded requests: the SDK itself would retry an unreachable host for five minutes while building its
config, and would only discover bad credentials at the first API call. Both checks use ``requests``,
like the SDK, so they trust the same CA bundle (``REQUESTS_CA_BUNDLE``).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import urlsplit

import requests
from dagster_databricks import DatabricksClientResource
from dagster_databricks.resources import OauthCredentials
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound, Unauthenticated

from fo_assets.sinks.base import SinkError

T = TypeVar("T")
_ENV_LOCK = threading.Lock()


class WorkspaceConnectionError(RuntimeError):
    """The workspace could not be reached or refused the service principal; never carries the secret."""


def connect_workspace(host: str, client_id: str, client_secret: str, timeout_s: float = 30) -> WorkspaceClient:
    """A ``WorkspaceClient`` authenticated as the service principal ``client_id`` on ``host``."""
    host = _normalise(host)
    try:
        token_endpoint = _discover(host, timeout_s)
        _check_credentials(host, token_endpoint, client_id, client_secret, timeout_s)
        with _oauth_m2m_pinned():
            resource = DatabricksClientResource(
                host=host, oauth_credentials=OauthCredentials(client_id=client_id, client_secret=client_secret)
            )
            return resource.get_client().workspace_client
    except WorkspaceConnectionError as exc:
        raise WorkspaceConnectionError(_scrub(str(exc), client_secret)) from None
    except Exception as exc:
        raise WorkspaceConnectionError(
            _scrub(f"could not build a Databricks client for {host}: {type(exc).__name__}: {exc}", client_secret)
        ) from None


def call_with_reauth(workspace: WorkspaceClient, call: Callable[[], T]) -> T:
    """Run ``call``; if the workspace rejects our token before its expiry (revoked, clock skew), fetch a
    new one and run it once more. The SDK refreshes on expiry by itself, not after a 401."""
    try:
        return call()
    except Unauthenticated:
        workspace.config.init_auth()
        return call()


class VolumeError(SinkError):
    """A Files API call on a Unity Catalog volume failed; names the path and the workspace's message."""


def upload_file(workspace: WorkspaceClient, source: Path | bytes, remote: str, context: str) -> None:
    """Upload a local file (or bytes) to a volume path, replacing what is there: a replay stages the
    same batch again, and a manifest is rewritten at every change of its status."""
    def upload() -> None:
        if isinstance(source, bytes):
            workspace.files.upload(remote, io.BytesIO(source), overwrite=True)
        else:
            with open(source, "rb") as fh:
                workspace.files.upload(remote, fh, overwrite=True)

    name = remote.rsplit("/", 1)[-1] if isinstance(source, bytes) else source.name
    _on_volume(workspace, upload, f"uploading {name} to {remote} for {context}")


def download_file(workspace: WorkspaceClient, remote: str, write: Callable[[BinaryIO], None], context: str) -> None:
    """Stream a volume file into ``write`` (called with the response body as a file object)."""
    def download() -> None:
        body = workspace.files.download(remote).contents
        assert body is not None
        with body:
            write(body)

    _on_volume(workspace, download, f"downloading {remote} for {context}")


def list_folder(workspace: WorkspaceClient, folder: str) -> list[tuple[str, bool]]:
    """(name, is a directory) of each entry of a volume folder; empty when the folder does not exist."""
    def listing() -> list[tuple[str, bool]]:
        try:
            return [(e.name or "", bool(e.is_directory)) for e in workspace.files.list_directory_contents(folder)]
        except NotFound:
            return []

    return _on_volume(workspace, listing, f"listing {folder}")


def remove_folder(workspace: WorkspaceClient, folder: str) -> None:
    """Delete a volume folder and everything in it (the Files API deletes empty directories only)."""
    def remove(path: str) -> None:
        for name, is_directory in list_folder(workspace, path):
            if is_directory:
                remove(f"{path}/{name}")
            else:
                _on_volume(workspace, lambda: workspace.files.delete(f"{path}/{name}"), f"deleting {path}/{name}")
        try:
            _on_volume(workspace, lambda: workspace.files.delete_directory(path), f"deleting {path}")
        except VolumeError as exc:
            if not isinstance(exc.__cause__, NotFound):
                raise

    remove(folder)


def _on_volume(workspace: WorkspaceClient, call: Callable[[], T], doing: str) -> T:
    try:
        return call_with_reauth(workspace, call)
    except DatabricksError as exc:
        raise VolumeError(f"{doing} failed: {type(exc).__name__}: {exc}") from exc


def _normalise(host: str) -> str:
    parts = urlsplit(host.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise WorkspaceConnectionError(
            f"DATABRICKS_HOST must be an https URL such as https://adb-123.azuredatabricks.net, got {host!r}"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise WorkspaceConnectionError(f"DATABRICKS_HOST must be the workspace URL without a path, got {host!r}")
    return f"https://{parts.netloc}"


def _discover(host: str, timeout_s: float) -> str:
    url = f"{host}/oidc/.well-known/oauth-authorization-server"
    try:
        response = requests.get(url, timeout=timeout_s)
    except requests.exceptions.SSLError as exc:
        raise WorkspaceConnectionError(
            f"TLS verification failed for the Databricks workspace {host}: {exc}. If a proxy re-signs TLS, "
            "point REQUESTS_CA_BUNDLE at its CA bundle."
        ) from None
    except requests.RequestException as exc:
        raise WorkspaceConnectionError(
            f"cannot reach the Databricks workspace {host} (waited at most {timeout_s:g} s): "
            f"{type(exc).__name__}: {exc}. Check DATABRICKS_HOST and the network path to it."
        ) from None
    if response.status_code != 200:
        raise WorkspaceConnectionError(
            f"{host} answered HTTP {response.status_code} for its OAuth discovery document: is DATABRICKS_HOST "
            "the workspace URL?"
        )
    try:
        endpoint = str(response.json()["token_endpoint"])
    except (ValueError, KeyError, TypeError):
        raise WorkspaceConnectionError(f"{host} served an OAuth discovery document without a token endpoint") from None
    if not endpoint.startswith("https://"):
        raise WorkspaceConnectionError(f"{host} names a token endpoint that is not https: {endpoint}")
    return endpoint


def _check_credentials(host: str, token_endpoint: str, client_id: str, client_secret: str, timeout_s: float) -> None:
    try:
        response = requests.post(
            token_endpoint,
            data={"grant_type": "client_credentials", "scope": "all-apis"},
            auth=(client_id, client_secret),
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise WorkspaceConnectionError(
            f"cannot reach the token endpoint of {host} (waited at most {timeout_s:g} s): {type(exc).__name__}: {exc}"
        ) from None
    if response.status_code == 200:
        return
    try:
        body = response.json()
        said = f"{body.get('error', '')}: {body.get('error_description', '')}".strip(": ")
    except ValueError:
        said = response.text[:200]
    raise WorkspaceConnectionError(
        f"the Databricks workspace {host} refused the service principal {client_id!r} (HTTP {response.status_code}: "
        f"{said}). Check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (an OAuth secret of that service "
        "principal, not a personal access token)."
    )


@contextmanager
def _oauth_m2m_pinned() -> Iterator[None]:
    """Pin the SDK to OAuth M2M while it builds its config.

    SDK 0.60 reads every DATABRICKS_* variable into its config and refuses two authorization methods
    ("more than one authorization method configured: oauth and pat") when a stray DATABRICKS_TOKEN sits
    beside the client credentials; an explicit auth type settles it, and the resource has no field
    for one, so it goes through the environment for the duration of the build only.
    """
    with _ENV_LOCK:
        saved = os.environ.get("DATABRICKS_AUTH_TYPE")
        os.environ["DATABRICKS_AUTH_TYPE"] = "oauth-m2m"
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("DATABRICKS_AUTH_TYPE", None)
            else:
                os.environ["DATABRICKS_AUTH_TYPE"] = saved


def _scrub(message: str, secret: str) -> str:
    return message.replace(secret, "***") if secret else message
