import logging
import os
import stat
import subprocess
import sys

import pytest

from fo_assets.secrets import Secret, SecretStore, SecretStoreError

KEY = Secret("correct horse battery staple")


def test_round_trip_and_file_is_private(tmp_path):
    store = SecretStore(tmp_path / "secrets.enc", KEY)
    store.set("FO_CLIENT_SECRET", Secret("value-1"))
    store.set("DATABRICKS_CLIENT_SECRET", Secret("value-2"))
    reopened = SecretStore(tmp_path / "secrets.enc", Secret("correct horse battery staple"))
    assert reopened.get("FO_CLIENT_SECRET").reveal() == "value-1"
    assert reopened.names() == ["DATABRICKS_CLIENT_SECRET", "FO_CLIENT_SECRET"]
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    raw = store.path.read_bytes()
    assert b"value-1" not in raw and b"FO_CLIENT_SECRET" not in raw
    assert reopened.delete("FO_CLIENT_SECRET") and reopened.get("FO_CLIENT_SECRET") is None
    assert not reopened.delete("FO_CLIENT_SECRET")
    assert not list(tmp_path.glob("*.tmp"))


def test_wrong_key_is_a_clear_error_without_secret_material(tmp_path):
    SecretStore(tmp_path / "s.enc", KEY).set("FO_CLIENT_SECRET", Secret("value-1"))
    with pytest.raises(SecretStoreError, match="FO_ASSETS_MASTER_KEY is wrong or the file was modified") as info:
        SecretStore(tmp_path / "s.enc", Secret("wrong key")).get("FO_CLIENT_SECRET")
    assert "value-1" not in str(info.value) and "wrong key" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_tampered_file_is_refused(tmp_path):
    store = SecretStore(tmp_path / "s.enc", KEY)
    store.set("FO_CLIENT_SECRET", Secret("value-1"))
    blob = bytearray(store.path.read_bytes())
    blob[-5] ^= 0x01
    store.path.write_bytes(bytes(blob))
    with pytest.raises(SecretStoreError, match="wrong or the file was modified"):
        store.get("FO_CLIENT_SECRET")
    store.path.write_bytes(b"not a store")
    with pytest.raises(SecretStoreError, match="bad header"):
        store.get("FO_CLIENT_SECRET")


def test_missing_master_key(tmp_path):
    with pytest.raises(SecretStoreError, match="needs FO_ASSETS_MASTER_KEY"):
        SecretStore(tmp_path / "s.enc", None).set("FO_CLIENT_SECRET", Secret("v"))


def test_bad_names_and_empty_values(tmp_path):
    store = SecretStore(tmp_path / "s.enc", KEY)
    with pytest.raises(SecretStoreError, match="upper-case"):
        store.set("lower", Secret("v"))
    with pytest.raises(SecretStoreError, match="empty value"):
        store.set("FO_CLIENT_SECRET", Secret(""))


def test_secret_is_masked_in_logs(caplog):
    secret = Secret("hunter2-sentinel")
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("using %s and %r", secret, secret)
    assert "hunter2-sentinel" not in caplog.text
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def _cli(args, home, stdin="", key="cli-master-key"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FO_", "DATABRICKS_"))}
    env.update(FO_ASSETS_HOME=str(home), FO_ASSETS_MASTER_KEY=key)
    return subprocess.run([sys.executable, "-m", "fo_assets.cli", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_set_list_delete_never_prints_values(tmp_path):
    assert _cli(["secrets", "set", "FO_CLIENT_SECRET"], tmp_path, stdin="cli-sentinel-value\n").returncode == 0
    listed = _cli(["secrets", "list"], tmp_path)
    assert listed.stdout.split() == ["FO_CLIENT_SECRET"]
    assert "cli-sentinel-value" not in listed.stdout + listed.stderr
    wrong = _cli(["secrets", "list"], tmp_path, key="other-key")
    assert wrong.returncode == 2 and "FO_ASSETS_MASTER_KEY is wrong" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert _cli(["secrets", "delete", "FO_CLIENT_SECRET"], tmp_path).returncode == 0
    assert _cli(["secrets", "list"], tmp_path).stdout == ""


def test_cli_config_file_selects_a_locations_home(tmp_path):
    home = tmp_path / "contoso-home"
    config = tmp_path / "fo-assets.env"
    config.write_text(f"# contoso\nFO_ASSETS_HOME={home}\n")
    elsewhere = tmp_path / "elsewhere"
    stored = _cli(["--config-file", str(config), "secrets", "set", "FO_CLIENT_SECRET"], elsewhere, stdin="v\n")
    assert stored.returncode == 0, stored.stderr
    assert (home / "secrets.enc").exists() and not (elsewhere / "secrets.enc").exists()
    config.write_text("FO_CLIENT_SECRET=inline\n")
    refused = _cli(["--config-file", str(config), "secrets", "list"], elsewhere)
    assert refused.returncode == 2 and "cannot live in a configuration file" in refused.stderr
    assert "inline" not in refused.stderr


def test_a_new_home_is_created_owner_only(tmp_path):
    """FO_ASSETS_HOME holds the secret store, tokens and staged F&O data: nobody else may list or read it,
    whatever the umask."""
    old = os.umask(0o022)
    try:
        home = tmp_path / "deep" / "home"
        SecretStore(home / "secrets.enc", KEY).set("FO_CLIENT_SECRET", Secret("value-1"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "deep").st_mode) == 0o700  # created for it too
