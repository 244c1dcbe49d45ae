"""An encrypted credential store, so client secrets need not live in the environment.

The store is one file (``<home>/secrets.enc``, mode 0600) holding a JSON object encrypted with AES-256-GCM
(authenticated: a tampered file fails to open). The key is derived from ``FO_ASSETS_MASTER_KEY`` with scrypt
and a random salt kept in the file's header, so a weak master key still costs an attacker real work.
Writes are atomic (temporary file, fsync, rename) so a crash never leaves half a store.
"""

from __future__ import annotations

import json
import os
import re
import secrets as _random
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from fo_assets.folders import private_folders

_MAGIC = b"FOSEC1"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


class SecretStoreError(RuntimeError):
    """The store cannot be read or written; the message never contains secret material."""


class Secret:
    """A secret value that does not show itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The secret's value; never log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and _random.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))


class SecretStore:
    """The encrypted secret store of a home (AES-GCM, key derived from FO_ASSETS_MASTER_KEY).

    Raises:
        SecretStoreError: a wrong master key, a tampered file or no master key, without secret material.
    """
    def __init__(self, path: Path, master_key: Secret | None):
        self.path = Path(path)
        self._master_key = master_key

    def exists(self) -> bool:
        """True when the store file exists."""
        return self.path.is_file()

    def names(self) -> list[str]:
        """The names of the stored secrets."""
        return sorted(self._load())

    def get(self, name: str) -> Secret | None:
        """The stored secret ``name``, or None."""
        value = self._load().get(name)
        return Secret(value) if value is not None else None

    def set(self, name: str, value: Secret) -> None:
        """Store ``value`` under ``name``, replacing the file atomically."""
        if not _NAME.match(name):
            raise SecretStoreError(f"secret name {name!r} must be upper-case letters, digits and _")
        if not value.reveal():
            raise SecretStoreError(f"refusing to store an empty value for {name}")
        data = self._load() if self.exists() else {}
        data[name] = value.reveal()
        self._save(data)

    def delete(self, name: str) -> bool:
        """Remove ``name``; False when it was not stored."""
        data = self._load()
        if name not in data:
            return False
        del data[name]
        self._save(data)
        return True

    def _key(self, salt: bytes) -> bytes:
        if self._master_key is None or not self._master_key.reveal():
            raise SecretStoreError(
                f"the secret store {self.path} needs FO_ASSETS_MASTER_KEY to be set "
                "(generate one with `fo-assets secrets keygen`)"
            )
        kdf = Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)
        return kdf.derive(self._master_key.reveal().encode())

    def _load(self) -> dict[str, str]:
        if not self.exists():
            return {}
        blob = self.path.read_bytes()
        header = len(_MAGIC) + _SALT_BYTES + _NONCE_BYTES
        if not blob.startswith(_MAGIC) or len(blob) < header + 16:
            raise SecretStoreError(f"{self.path} is not a fo-assets secret store (bad header)")
        salt = blob[len(_MAGIC) : len(_MAGIC) + _SALT_BYTES]
        nonce = blob[len(_MAGIC) + _SALT_BYTES : header]
        try:
            plain = AESGCM(self._key(salt)).decrypt(nonce, blob[header:], _MAGIC)
        except InvalidTag:
            # One message for both causes: telling them apart would need the key we cannot trust.
            raise SecretStoreError(
                f"cannot open {self.path}: FO_ASSETS_MASTER_KEY is wrong or the file was modified"
            ) from None
        return json.loads(plain)

    def _save(self, data: dict[str, str]) -> None:
        salt = _random.token_bytes(_SALT_BYTES)
        nonce = _random.token_bytes(_NONCE_BYTES)
        sealed = AESGCM(self._key(salt)).encrypt(nonce, json.dumps(data).encode(), _MAGIC)
        private_folders(self.path.parent)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + salt + nonce + sealed)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.chmod(self.path, 0o600)


def generate_master_key() -> str:
    """A new random master key for a secret store."""
    return _random.token_urlsafe(32)
