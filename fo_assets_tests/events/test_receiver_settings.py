"""The receiver's settings as an operator sets them: FO_EVENTS_* variables and the secret's minimum length."""

from __future__ import annotations

from pathlib import Path

import pytest

from fo_assets.secrets import Secret, generate_master_key
from fo_assets.settings import ConfigError, ReceiverSettings, load_settings


def test_defaults_and_every_variable(tmp_path: Path) -> None:
    assert load_settings({"FO_ASSETS_HOME": str(tmp_path)}).receiver == ReceiverSettings()
    receiver = load_settings({
        "FO_ASSETS_HOME": str(tmp_path), "FO_EVENTS_MAX_PER_POST": "100", "FO_EVENTS_RATE": "12.5",
        "FO_EVENTS_HEADER_TIMEOUT": "3", "FO_EVENTS_BODY_TIMEOUT": "7", "FO_EVENTS_KEEP_ALIVE": "2",
        "FO_EVENTS_MAX_CONNECTIONS": "20", "FO_EVENTS_TRUSTED_PROXIES": " 127.0.0.1, 10.1.0.0/16,::1",
        "FO_EVENTS_RETENTION_DAYS": "30", "FO_EVENTS_BACKLOG_ALERT": "60",
    }).receiver
    assert receiver == ReceiverSettings(
        max_events_per_post=100, events_per_second=12.5, header_timeout_s=3, body_timeout_s=7, keep_alive_s=2,
        max_connections=20, trusted_proxies=("127.0.0.1", "10.1.0.0/16", "::1"), retention_days=30,
        backlog_alert_s=60)


@pytest.mark.parametrize("name, value, fragment", [
    ("FO_EVENTS_MAX_PER_POST", "0", "out of range"),
    ("FO_EVENTS_MAX_PER_POST", "9000", "out of range"),
    ("FO_EVENTS_RATE", "-1", "must be positive"),
    ("FO_EVENTS_HEADER_TIMEOUT", "soon", "not a number"),
    ("FO_EVENTS_TRUSTED_PROXIES", "proxy.internal", "give IP addresses or networks"),
    ("FO_EVENTS_TRUSTED_PROXIES", "10.1.0.5/16", "give IP addresses or networks"),  # host bits set
    ("FO_EVENTS_TRUSTED_PROXIES", "*", "give IP addresses or networks"),  # uvicorn would trust everyone
])
def test_a_wrong_value_names_the_variable(tmp_path: Path, name: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings({"FO_ASSETS_HOME": str(tmp_path), name: value})
    assert fragment in str(caught.value)


def test_the_events_secret_needs_32_characters_from_the_environment_or_the_store(tmp_path: Path) -> None:
    env = {"FO_ASSETS_HOME": str(tmp_path), "FO_ASSETS_MASTER_KEY": generate_master_key()}
    assert load_settings({**env, "FO_EVENTS_SECRET": "e" * 32}).secret("FO_EVENTS_SECRET").reveal() == "e" * 32
    with pytest.raises(ConfigError, match="FO_EVENTS_SECRET is 31 characters long; it must have at least 32") as caught:
        load_settings({**env, "FO_EVENTS_SECRET": "e" * 31}).secret("FO_EVENTS_SECRET")
    assert "e" * 31 not in str(caught.value)
    load_settings(env).secret_store.set("FO_EVENTS_SECRET", Secret("short"))
    with pytest.raises(ConfigError, match="FO_EVENTS_SECRET is 5 characters long"):
        load_settings(env).secret("FO_EVENTS_SECRET")
    # Other secrets keep whatever length their issuer gives them.
    assert load_settings({**env, "FO_CLIENT_SECRET": "x"}).secret("FO_CLIENT_SECRET").reveal() == "x"
