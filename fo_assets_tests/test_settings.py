import datetime as dt
from pathlib import Path

import pytest

from fo_assets.settings import ConfigError, load_settings

BASE = {
    "FO_BASE_URL": "https://contoso.operations.dynamics.com",
    "FO_TENANT_ID": "11111111-2222-3333-4444-555555555555",
    "FO_CLIENT_ID": "app-id",
    "FO_LEGAL_ENTITIES": "USMF, demf ,usmf",
}
DATABRICKS = {
    "DATABRICKS_HOST": "https://adb-123.azuredatabricks.net",
    "DATABRICKS_CLIENT_ID": "sp",
    "DATABRICKS_WAREHOUSE_ID": "wh1",
    "DATABRICKS_CATALOG": "finance",
    "DATABRICKS_SCHEMA": "fo_raw",
    "DATABRICKS_VOLUME": "landing",
}


def test_valid_configuration_is_normalised(tmp_path):
    settings = load_settings({**BASE, "FO_BASE_URL": "https://Contoso.operations.dynamics.com/",
                              "FO_ASSETS_HOME": str(tmp_path / "x" / ".." / "home")})
    fo = settings.require_fo()
    assert fo.base_url == "https://contoso.operations.dynamics.com"
    assert fo.scope == "https://contoso.operations.dynamics.com/.default"
    assert fo.odata_root == "https://contoso.operations.dynamics.com/data"
    assert fo.legal_entities == ("usmf", "demf")
    assert fo.authority_host == "https://login.microsoftonline.com"
    assert settings.home == (tmp_path / "home").resolve() and settings.home.is_absolute()
    assert settings.databricks is None
    assert settings.pool == "fo_contoso_operations_dynamics_com"


def test_nothing_configured_loads_with_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings({})
    assert settings.fo is None
    assert settings.home == Path(tmp_path / ".fo_assets")
    assert settings.partitions_start == dt.date(2026, 1, 1)
    with pytest.raises(ConfigError, match="FO_BASE_URL is not set"):
        settings.require_fo()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"FO_BASE_URL": "http://contoso.operations.dynamics.com"}, "FO_BASE_URL must start with https://"),
        ({"FO_BASE_URL": "https://contoso.operations.dynamics.com/data"}, "without a path"),
        ({"FO_BASE_URL": "https://contoso.operations.dynamics.com/?cmp=usmf"}, "without a path, query"),
        ({"FO_BASE_URL": "https://contoso.operations.dynamics.com:8443"}, "ports are only for local"),
        ({"FO_BASE_URL": "https://user:pw@contoso.operations.dynamics.com"}, "must not carry credentials"),
        ({"FO_LEGAL_ENTITIES": "usmf,toolong"}, "'toolong'.*1 to 4 letters"),
        ({"FO_LEGAL_ENTITIES": "us-mf"}, "1 to 4 letters"),
        ({"FO_LEGAL_ENTITIES": " , "}, "FO_LEGAL_ENTITIES is empty"),
        ({"FO_TENANT_ID": "common"}, "specific tenant"),
        ({"FO_CLIENT_ID": ""}, "FO_CLIENT_ID not"),
        ({"FO_AUTHORITY_HOST": "http://login.example"}, "FO_AUTHORITY_HOST must start with https"),
        ({"FO_CA_BUNDLE": "/nonexistent/ca.pem"}, "FO_CA_BUNDLE points to"),
        ({"FO_PARTITIONS_START": "2026/01/01"}, "FO_PARTITIONS_START.*YYYY-MM-DD"),
        ({"FO_MAX_CONCURRENCY": "53"}, "FO_MAX_CONCURRENCY=53 is out of range: 1 to 52"),
        ({"FO_REQUEST_TIMEOUT": "-1"}, "FO_REQUEST_TIMEOUT must be positive"),
        ({"FO_DIMENSION_DELIMITER": "\\"}, "FO_DIMENSION_DELIMITER"),
        ({"FO_ALERT_WEBHOOK_URL": "http://hooks.example"}, "FO_ALERT_WEBHOOK_URL must be an https"),
        ({"DATABRICKS_HOST": "https://adb.example"}, "half-present"),
        ({**DATABRICKS, "DATABRICKS_HOST": "http://adb.example"}, "DATABRICKS_HOST must be https"),
        ({**DATABRICKS, "DATABRICKS_SCHEMA": "raw`; DROP"}, "DATABRICKS_SCHEMA"),
        ({**DATABRICKS, "DATABRICKS_JOB_ID": "job-1"}, "DATABRICKS_JOB_ID must be the numeric"),
        ({"FO_INBOX_POSTGRES": "host=db dbname"}, "FO_INBOX_POSTGRES is not a PostgreSQL connection string"),
        ({"FO_INBOX_SCHEMA": "Contoso"}, "FO_INBOX_SCHEMA='Contoso' is not a usable PostgreSQL schema name"),
        ({"FO_INBOX_SCHEMA": "fo-assets"}, "FO_INBOX_SCHEMA"),
        ({"FO_INBOX_SCHEMA": 'x"; DROP TABLE events; --'}, "FO_INBOX_SCHEMA"),
        ({"FO_INBOX_SCHEMA": "pg_inbox"}, "FO_INBOX_SCHEMA"),
        ({"FO_INBOX_SCHEMA": "a" * 64}, "FO_INBOX_SCHEMA"),
    ],
)
def test_each_rejection_names_the_variable(change, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({**BASE, **change})


def test_loopback_port_allowed_for_local_servers():
    fo = load_settings({**BASE, "FO_BASE_URL": "https://127.0.0.1:8443"}).require_fo()
    assert fo.base_url == "https://127.0.0.1:8443"
    assert fo.host == "127.0.0.1:8443"


def test_databricks_complete(tmp_path):
    settings = load_settings({**BASE, **DATABRICKS, "DATABRICKS_JOB_ID": "42"})
    assert settings.databricks is not None
    assert settings.databricks.job_id == 42
    assert settings.databricks.host == "https://adb-123.azuredatabricks.net"
    assert settings.databricks.landing_in_volume  # the durable landing zone is the default with Databricks


def test_unity_catalog_names_are_taken_lower_case_as_unity_catalog_stores_them():
    settings = load_settings({**BASE, **DATABRICKS, "DATABRICKS_CATALOG": "Finance", "DATABRICKS_SCHEMA": "FO_Raw",
                              "DATABRICKS_VOLUME": "Landing-Zone"})
    db = settings.databricks
    assert (db.catalog, db.schema, db.volume) == ("finance", "fo_raw", "landing-zone")


@pytest.mark.parametrize("name", ["fo raw", "fo.raw", "fo/raw", "a" * 256])
def test_a_name_unity_catalog_refuses_is_refused_naming_the_variable(name):
    with pytest.raises(ConfigError, match="DATABRICKS_SCHEMA.*not a valid Unity Catalog name"):
        load_settings({**BASE, **DATABRICKS, "DATABRICKS_SCHEMA": name})


def test_landing_store_choices():
    assert not load_settings({**BASE, **DATABRICKS, "FO_LANDING_STORE": "local"}).databricks.landing_in_volume
    assert load_settings({**BASE, **DATABRICKS, "FO_LANDING_STORE": "Volume"}).databricks.landing_in_volume
    with pytest.raises(ConfigError, match="FO_LANDING_STORE='s3': use volume or local"):
        load_settings({**BASE, **DATABRICKS, "FO_LANDING_STORE": "s3"})
    with pytest.raises(ConfigError, match="FO_LANDING_STORE=volume needs a Databricks workspace"):
        load_settings({**BASE, "FO_LANDING_STORE": "volume"})


def test_secret_from_environment_is_masked():
    settings = load_settings({**BASE, "FO_CLIENT_SECRET": "s3cr3t-value"})
    secret = settings.secret("FO_CLIENT_SECRET")
    assert secret.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(secret) and "s3cr3t-value" not in str(secret)
    assert "s3cr3t-value" not in repr(settings)


def test_missing_secret_says_where_to_put_it(tmp_path):
    settings = load_settings({**BASE, "FO_ASSETS_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="fo-assets secrets set FO_CLIENT_SECRET"):
        settings.secret("FO_CLIENT_SECRET")


def test_secret_never_copied_into_process_environment(tmp_path, monkeypatch):
    from fo_assets.secrets import Secret
    import os

    env = {**BASE, "FO_ASSETS_HOME": str(tmp_path), "FO_ASSETS_MASTER_KEY": "k" * 20}
    settings = load_settings(env)
    settings.secret_store.set("FO_CLIENT_SECRET", Secret("from-store"))
    assert load_settings(env).secret("FO_CLIENT_SECRET").reveal() == "from-store"
    # Environment wins over the store.
    assert load_settings({**env, "FO_CLIENT_SECRET": "from-env"}).secret("FO_CLIENT_SECRET").reveal() == "from-env"
    assert "from-store" not in os.environ.values()


def test_inbox_defaults_to_sqlite_under_the_home(tmp_path):
    settings = load_settings({"FO_ASSETS_HOME": str(tmp_path)})
    assert settings.inbox_postgres is None
    assert settings.inbox_path == tmp_path / "events" / "inbox.sqlite3"
    assert settings.inbox_schema == "fo_assets"


@pytest.mark.parametrize("dsn", [
    "host=db.internal port=5432 dbname=dagster user=fo_contoso sslmode=require",
    "postgresql://fo_contoso@db.internal:5432/dagster?sslmode=require",
])
def test_inbox_in_postgres_in_either_libpq_form(dsn):
    settings = load_settings({"FO_INBOX_POSTGRES": f" {dsn} ", "FO_INBOX_SCHEMA": "fo_contoso"})
    assert settings.inbox_postgres == dsn
    assert settings.inbox_schema == "fo_contoso"


@pytest.mark.parametrize("dsn", [
    "host=db.internal dbname=dagster user=fo_contoso password=hunter2-Secret",
    "postgresql://fo_contoso:hunter2-Secret@db.internal/dagster",
    "postgresql://fo_contoso@db.internal/dagster?password=hunter2-Secret",
    "host=db.internal user=fo_contoso sslpassword=hunter2-Secret",
])
def test_inbox_connection_string_with_a_password_is_refused_without_repeating_it(dsn):
    with pytest.raises(ConfigError, match="FO_INBOX_POSTGRES must not contain a password.*FO_INBOX_PASSWORD") as caught:
        load_settings({"FO_INBOX_POSTGRES": dsn})
    assert "hunter2" not in str(caught.value)


def test_inbox_password_is_a_secret(tmp_path):
    settings = load_settings({"FO_INBOX_PASSWORD": "pg-Secret-1"})
    assert settings.secret("FO_INBOX_PASSWORD").reveal() == "pg-Secret-1"
    assert "pg-Secret-1" not in repr(settings)
    config = tmp_path / "fo-assets.env"
    config.write_text("FO_INBOX_POSTGRES=host=db user=fo\nFO_INBOX_PASSWORD=pg-Secret-1\n")
    with pytest.raises(ConfigError, match="FO_INBOX_PASSWORD is a secret and cannot live in a configuration file"):
        load_settings({}, config_file=config)


def test_service_bus_queue_comes_from_the_settings_and_its_file(tmp_path, monkeypatch, capsys):
    """`fo-assets events drain --config-file` reads the queue from the location's file, like every setting."""
    from fo_assets.cli import main as cli

    for name in ("FO_SERVICEBUS_QUEUE", "FO_SERVICEBUS_SUBSCRIPTION", "FO_SERVICEBUS_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "fo-assets.env"
    config.write_text(f"FO_ASSETS_HOME={tmp_path / 'home'}\nFO_SERVICEBUS_QUEUE=fo-events\n"
                      "FO_SERVICEBUS_SUBSCRIPTION=fo-assets\n")
    settings = load_settings(env={}, config_file=config)
    assert (settings.servicebus_queue, settings.servicebus_subscription) == ("fo-events", "fo-assets")
    # The queue is found; what is missing next is the connection string, a secret.
    assert cli(["--config-file", str(config), "events", "drain"]) == 2
    assert "FO_SERVICEBUS_CONNECTION is not set" in capsys.readouterr().err

    config.write_text(f"FO_ASSETS_HOME={tmp_path / 'home'}\n")
    assert cli(["--config-file", str(config), "events", "drain"]) == 2
    assert "FO_SERVICEBUS_QUEUE is not set" in capsys.readouterr().err
