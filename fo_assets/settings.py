"""Configuration: the contract of the README, read from the environment when a run starts.

Nothing here runs at import. ``load_settings()`` validates every variable that is present and names the
variable and the fix when one is wrong. Secrets are not part of ``Settings``: ``Settings.secret(name)``
resolves one when it is needed (environment first, then the encrypted store) and returns a ``Secret``
whose repr never shows the value. Secrets are never copied into the process environment.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fo_assets.catalog import STANDARD, Catalog, CatalogError
from fo_assets.catalog.custom import load_catalog
from fo_assets.secrets import Secret, SecretStore

SECRET_NAMES = (
    "FO_CLIENT_SECRET", "DATABRICKS_CLIENT_SECRET", "FO_EVENTS_SECRET", "FO_SERVICEBUS_CONNECTION", "FO_INBOX_PASSWORD"
)
# Shortest value a secret may have (the events secret is sent by anyone who can reach the receiver).
MIN_SECRET_LENGTH = {"FO_EVENTS_SECRET": 32}
DATABRICKS_REQUIRED = (
    "DATABRICKS_HOST",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_WAREHOUSE_ID",
    "DATABRICKS_CATALOG",
    "DATABRICKS_SCHEMA",
    "DATABRICKS_VOLUME",
)
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
# F&O's service protection refuses more than 52 concurrent requests per user and web server.
MAX_FO_CONCURRENCY = 52
_LEGAL_ENTITY = re.compile(r"^[a-z0-9]{1,4}$")
_DATABRICKS_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,254}$")
# Lower case only: PostgreSQL folds unquoted names, so this is the name an operator types in psql too.
_POSTGRES_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ConfigError(ValueError):
    """A configuration variable is missing or wrong; the message names it and says how to fix it."""


@dataclass(frozen=True)
class DimensionFormats:
    """The delimiter and segment names of the financial dimension formats."""
    delimiter: str = "-"
    ledger: tuple[str, ...] = ("MainAccount", "BusinessUnit", "Department", "CostCenter")
    default: tuple[str, ...] = ("BusinessUnit", "Department", "CostCenter")


@dataclass(frozen=True)
class FoSettings:
    """Where the F&O environment is and how to reach it."""
    base_url: str  # scheme://host[:port], no trailing slash, no path
    tenant_id: str
    client_id: str
    legal_entities: tuple[str, ...]
    authority_host: str = MICROSOFT_AUTHORITY
    ca_bundle: Path | None = None
    warmup_timeout_s: float = 120.0
    request_timeout_s: float = 30.0
    max_concurrency: int = 8
    min_concurrency: int = 1
    deadline_s: float = 3600.0

    @property
    def odata_root(self) -> str:
        """The OData service root, ``<base_url>/data``."""
        return f"{self.base_url}/data"

    @property
    def scope(self) -> str:
        """The OAuth scope of the environment."""
        return f"{self.base_url}/.default"

    @property
    def host(self) -> str:
        """The environment's host (and port)."""
        return urlsplit(self.base_url).netloc


@dataclass(frozen=True)
class DatabricksSettings:
    """The Databricks workspace, warehouse and Unity Catalog names the sink writes to."""
    host: str
    client_id: str
    warehouse_id: str
    catalog: str
    schema: str
    volume: str
    job_id: int | None = None
    # FO_LANDING_STORE=volume: staged batch folders stay in the volume as the landing zone's durable copy.
    landing_in_volume: bool = True


@dataclass(frozen=True)
class ReceiverSettings:
    """The Business Events receiver's bounds (``fo-assets events serve``) and the inbox's upkeep.

    The defaults hold for an F&O tenant posting directly or through Event Grid; the README's
    internet-facing recipe says which of them the proxy in front must match or undercut.
    """

    max_body_bytes: int = 1_048_576
    max_events_per_post: int = 500
    events_per_second: float = 50.0  # per client, after a burst of one full post
    header_timeout_s: float = 10.0  # to send the request head, from the first byte (or from connecting)
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0  # an idle kept-alive connection is closed after this
    max_connections: int = 100
    # Proxies whose X-Forwarded-For names the client (addresses or networks); none: the peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    retention_days: int = 7  # events the sensor has passed are deleted from the inbox after this
    backlog_alert_s: float = 900.0  # an event waiting longer than this for its run is alerted


@dataclass(frozen=True)
class Settings:
    """Everything a run reads from the configuration; secrets are resolved on demand with ``secret()``.

    Raises:
        ConfigError: (from ``require_fo``, ``require_servicebus_queue``, ``secret``) a setting needed now is missing.
    """
    home: Path
    partitions_start: dt.date
    fo: FoSettings | None = None
    databricks: DatabricksSettings | None = None
    dimensions: DimensionFormats = field(default_factory=DimensionFormats)
    trailing_days: int = 7
    landing_retention_days: int = 30
    alert_webhook_url: str | None = None
    dagster_ui_url: str | None = None  # for links in alerts
    asset_key_prefix: tuple[str, ...] = ()  # one per code location when several share an instance
    inbox_postgres: str | None = None  # libpq DSN without the password; None: the SQLite inbox under home
    inbox_schema: str = "fo_assets"
    catalog: Catalog = STANDARD  # the standard entities as changed by FO_CATALOG_FILE
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    servicebus_queue: str | None = None  # the queue (or topic) F&O's Service Bus endpoint sends to
    servicebus_subscription: str | None = None  # the subscription, when it is a topic
    secret_store: SecretStore | None = field(default=None, repr=False, compare=False)
    _env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def require_fo(self) -> FoSettings:
        """The F&O settings; a ConfigError says what to set when they are missing."""
        if self.fo is None:
            raise ConfigError(
                "FO_BASE_URL is not set: set FO_BASE_URL, FO_TENANT_ID, FO_CLIENT_ID and FO_LEGAL_ENTITIES "
                "(or run `fo-assets sandbox serve` and export what it prints)"
            )
        return self.fo

    def require_servicebus_queue(self) -> str:
        """The Service Bus queue; a ConfigError when FO_SERVICEBUS_QUEUE is not set."""
        if not self.servicebus_queue:
            raise ConfigError("FO_SERVICEBUS_QUEUE is not set: the queue (or topic) F&O's endpoint sends to")
        return self.servicebus_queue

    def secret(self, name: str) -> Secret:
        """Resolve a secret now: the environment first, then the encrypted store."""
        if name not in SECRET_NAMES:
            raise ValueError(f"{name} is not one of the secrets fo-assets knows: {', '.join(SECRET_NAMES)}")
        value = self._env.get(name)
        found = Secret(value) if value else None
        if found is None and self.secret_store is not None and self.secret_store.exists():
            found = self.secret_store.get(name)
        if found is not None:
            return _long_enough(name, found)
        raise ConfigError(
            f"{name} is not set: export it, or store it with `fo-assets secrets set {name}` "
            "(needs FO_ASSETS_MASTER_KEY)"
        )

    @property
    def delta_root(self) -> Path:
        """Where local Delta tables live."""
        return self.home / "delta"

    @property
    def inbox_path(self) -> Path:
        """The SQLite inbox's file (when the inbox is not in PostgreSQL)."""
        return self.home / "events" / "inbox.sqlite3"

    @property
    def pool(self) -> str:
        """The Dagster pool of the F&O environment."""
        return pool_for(self.fo.base_url if self.fo else "")


def pool_for(base_url: str) -> str:
    """One Dagster pool per F&O environment bounds how many runs hit it at once."""
    # By host name, not port: a local sandbox restarted on another port is still the same environment.
    host = urlsplit(base_url.strip()).hostname or "unconfigured"
    return "fo_" + re.sub(r"[^a-z0-9]+", "_", host.lower()).strip("_")


@dataclass(frozen=True)
class DefinitionSettings:
    """The few settings that shape a code location's definitions, read when it loads.

    Only these: the asset keys (prefix and catalog), the partitions and the pool. Everything else is read
    and validated when a run, a schedule or a sensor needs it, so one wrong runtime setting fails those
    with its message instead of taking the code location, its schedules and its alerts down.
    """

    partitions_start: dt.date
    asset_key_prefix: tuple[str, ...]
    catalog: Catalog
    pool: str
    backfill_chunk_days: int


def _long_enough(name: str, secret: Secret) -> Secret:
    """The receiver's secret is all that stands between the internet and the inbox: it must be unguessable."""
    minimum = MIN_SECRET_LENGTH.get(name, 0)
    if len(secret.reveal()) < minimum:
        raise ConfigError(
            f"{name} is {len(secret.reveal())} characters long; it must have at least {minimum}: generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return secret


def read_config_file(path: Path) -> dict[str, str]:
    """A code location's own configuration: ``KEY=VALUE`` lines (``#`` comments), no secrets.

    One Dagster instance can serve several customers, one code location each; the processes share one
    environment, so each location names its file and the file's values win over the environment.
    Secrets are refused here: they belong in the location's encrypted store (or the environment).
    """
    values: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.match(r"^[A-Z][A-Z0-9_]*$", name):
            raise ConfigError(f"{path}:{number}: expected NAME=value")
        if name in SECRET_NAMES or name == "FO_ASSETS_MASTER_KEY":
            raise ConfigError(
                f"{path}:{number}: {name} is a secret and cannot live in a configuration file; store it with "
                f"`FO_ASSETS_HOME=<this location's home> fo-assets secrets set {name}`"
            )
        values[name] = value.strip().strip('"').strip("'")
    return values


def _environment(env: Mapping[str, str] | None, config_file: Path | str | None) -> tuple[dict[str, str], Path]:
    """The variables in effect (the configuration file's win) and the folder relative paths start from."""
    values = dict(os.environ if env is None else env)
    if config_file is None:
        return values, Path.cwd()
    values.update(read_config_file(Path(config_file)))
    return values, Path(config_file).resolve().parent


@dataclass(frozen=True)
class AlertSettings:
    """What alerts need: the webhook and the UI's address for links."""
    webhook_url: str | None
    dagster_ui_url: str | None  # for links in alerts


def load_alert_settings(env: Mapping[str, str] | None = None,
                        config_file: Path | str | None = None) -> AlertSettings:
    """Only what alerts need: a wrong setting elsewhere must not silence the alerts about it."""
    values, _ = _environment(env, config_file)
    return AlertSettings(_optional_https(values, "FO_ALERT_WEBHOOK_URL"),
                         (values.get("FO_DAGSTER_UI_URL") or "").rstrip("/") or None)


def load_definition_settings(env: Mapping[str, str] | None = None,
                             config_file: Path | str | None = None) -> DefinitionSettings:
    """The settings that shape a code location's definitions, from the environment and its file."""
    values, base = _environment(env, config_file)
    return DefinitionSettings(
        partitions_start=_date(values, "FO_PARTITIONS_START", default=dt.date(2026, 1, 1)),
        asset_key_prefix=_key_prefix(values.get("FO_ASSET_KEY_PREFIX", "")),
        catalog=_catalog(values, base),
        pool=pool_for(values.get("FO_BASE_URL", "")),
        backfill_chunk_days=_int(values, "FO_BACKFILL_CHUNK_DAYS", 31, low=0, high=3660),
    )


def load_settings(env: Mapping[str, str] | None = None, config_file: Path | str | None = None) -> Settings:
    """All settings, from ``env`` (default the process environment) and the location's ``config_file``.

    Raises:
        ConfigError: a variable that is wrong, naming it and the fix.
    """
    env, base = _environment(env, config_file)
    home = Path(env.get("FO_ASSETS_HOME") or "~/.fo_assets").expanduser().resolve()
    master_key = env.get("FO_ASSETS_MASTER_KEY")
    store = SecretStore(home / "secrets.enc", Secret(master_key) if master_key else None)
    return Settings(
        home=home,
        partitions_start=_date(env, "FO_PARTITIONS_START", default=dt.date(2026, 1, 1)),
        fo=_fo_settings(env),
        databricks=_databricks_settings(env),
        dimensions=_dimension_formats(env),
        trailing_days=_int(env, "FO_TRAILING_DAYS", 7, low=1, high=366),
        landing_retention_days=_int(env, "FO_LANDING_RETENTION_DAYS", 30, low=1, high=3650),
        alert_webhook_url=_optional_https(env, "FO_ALERT_WEBHOOK_URL"),
        dagster_ui_url=(env.get("FO_DAGSTER_UI_URL") or "").rstrip("/") or None,
        asset_key_prefix=_key_prefix(env.get("FO_ASSET_KEY_PREFIX", "")),
        inbox_postgres=_inbox_postgres(env),
        inbox_schema=_inbox_schema(env),
        catalog=_catalog(env, base),
        receiver=_receiver_settings(env),
        servicebus_queue=env.get("FO_SERVICEBUS_QUEUE") or None,
        servicebus_subscription=env.get("FO_SERVICEBUS_SUBSCRIPTION") or None,
        secret_store=store,
        _env=env,
    )


def _fo_settings(env: Mapping[str, str]) -> FoSettings | None:
    raw = env.get("FO_BASE_URL", "").strip()
    if not raw:
        return None
    base_url = validate_tenant_url("FO_BASE_URL", raw)
    missing = [name for name in ("FO_TENANT_ID", "FO_CLIENT_ID", "FO_LEGAL_ENTITIES") if not env.get(name)]
    if missing:
        raise ConfigError(f"FO_BASE_URL is set but {', '.join(missing)} not: all of them are needed to read F&O")
    tenant = env["FO_TENANT_ID"].strip()
    if tenant.lower() in ("common", "organizations", "consumers"):
        raise ConfigError(f"FO_TENANT_ID is {tenant!r}: client credentials need a specific tenant id or domain")
    ca_bundle = None
    if env.get("FO_CA_BUNDLE"):
        ca_bundle = Path(env["FO_CA_BUNDLE"]).expanduser().resolve()
        if not ca_bundle.is_file():
            raise ConfigError(f"FO_CA_BUNDLE points to {ca_bundle}, which is not a file")
    max_concurrency = _int(env, "FO_MAX_CONCURRENCY", 8, low=1, high=MAX_FO_CONCURRENCY)
    return FoSettings(
        base_url=base_url,
        tenant_id=tenant,
        client_id=env["FO_CLIENT_ID"].strip(),
        legal_entities=parse_legal_entities(env["FO_LEGAL_ENTITIES"]),
        authority_host=validate_tenant_url("FO_AUTHORITY_HOST", env.get("FO_AUTHORITY_HOST") or MICROSOFT_AUTHORITY),
        ca_bundle=ca_bundle,
        warmup_timeout_s=_float(env, "FO_WARMUP_TIMEOUT", 120.0),
        request_timeout_s=_float(env, "FO_REQUEST_TIMEOUT", 30.0),
        max_concurrency=max_concurrency,
        min_concurrency=min(_int(env, "FO_MIN_CONCURRENCY", 1, low=1, high=MAX_FO_CONCURRENCY), max_concurrency),
        deadline_s=_float(env, "FO_DEADLINE", 3600.0),
    )


def validate_tenant_url(name: str, raw: str) -> str:
    """https://host[:port] only: a path, query or fragment after the host is a pasted browser URL."""
    parts = urlsplit(raw.strip())
    if parts.scheme != "https":
        raise ConfigError(f"{name} must start with https:// (got scheme {parts.scheme or 'none'!r})")
    if not parts.hostname:
        raise ConfigError(f"{name} has no host: expected https://<environment>.operations.dynamics.com")
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not carry credentials in the URL")
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        raise ConfigError(
            f"{name} must be scheme and host only, without a path, query or fragment "
            f"(got path {parts.path!r}); the OData root /data is added by fo-assets"
        )
    if parts.port is not None and not _is_loopback(parts.hostname):
        raise ConfigError(f"{name} has a port ({parts.port}): ports are only for local test servers on loopback")
    return f"https://{parts.netloc.lower()}"


def parse_legal_entities(raw: str) -> tuple[str, ...]:
    """The legal entities of FO_LEGAL_ENTITIES, lower case and without repeats."""
    entities = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    if not entities:
        raise ConfigError("FO_LEGAL_ENTITIES is empty: give comma-separated dataAreaIds, e.g. usmf,demf")
    bad = [e for e in entities if not _LEGAL_ENTITY.fullmatch(e)]
    if bad:
        raise ConfigError(
            f"FO_LEGAL_ENTITIES has {', '.join(map(repr, bad))}: a dataAreaId is 1 to 4 letters or digits"
        )
    return entities


def _databricks_settings(env: Mapping[str, str]) -> DatabricksSettings | None:
    present = [name for name in DATABRICKS_REQUIRED if env.get(name)]
    store = (env.get("FO_LANDING_STORE") or "").strip().lower()
    if store not in ("", "volume", "local"):
        raise ConfigError(f"FO_LANDING_STORE={env['FO_LANDING_STORE']!r}: use volume or local")
    if not present:
        if store == "volume":
            raise ConfigError("FO_LANDING_STORE=volume needs a Databricks workspace: set the DATABRICKS_* settings")
        return None
    missing = [name for name in DATABRICKS_REQUIRED if not env.get(name)]
    if missing:
        raise ConfigError(
            f"Databricks settings are half-present: {', '.join(present)} set but {', '.join(missing)} not. "
            "Set all of them to load into Databricks, or none for local Delta tables"
        )
    host = env["DATABRICKS_HOST"].strip()
    parts = urlsplit(host)
    if parts.scheme != "https" or not parts.hostname or parts.path.rstrip("/"):
        raise ConfigError("DATABRICKS_HOST must be https://<workspace host> without a path")
    for name in ("DATABRICKS_CATALOG", "DATABRICKS_SCHEMA", "DATABRICKS_VOLUME"):
        if not _DATABRICKS_NAME.fullmatch(env[name]):
            raise ConfigError(f"{name}={env[name]!r} is not a valid Unity Catalog name (letters, digits, _ and -)")
    # Unity Catalog stores these names lower-case and resolves /Volumes paths by the stored name
    # (docs/databricks.md, "Names"): take them as it stores them, so paths and metadata match the workspace.
    catalog, schema, volume = (env[n].lower() for n in ("DATABRICKS_CATALOG", "DATABRICKS_SCHEMA", "DATABRICKS_VOLUME"))
    job_id = env.get("DATABRICKS_JOB_ID")
    if job_id and not job_id.strip().isdigit():
        raise ConfigError(f"DATABRICKS_JOB_ID must be the numeric job id, got {job_id!r}")
    return DatabricksSettings(
        host=f"https://{parts.netloc.lower()}",
        client_id=env["DATABRICKS_CLIENT_ID"].strip(),
        warehouse_id=env["DATABRICKS_WAREHOUSE_ID"].strip(),
        catalog=catalog,
        schema=schema,
        volume=volume,
        job_id=int(job_id) if job_id else None,
        landing_in_volume=store != "local",
    )


def _dimension_formats(env: Mapping[str, str]) -> DimensionFormats:
    base = DimensionFormats()
    delimiter = env.get("FO_DIMENSION_DELIMITER", base.delimiter)
    if len(delimiter) != 1 or delimiter == "\\":
        raise ConfigError("FO_DIMENSION_DELIMITER must be one character other than a backslash")

    def names(var: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = env.get(var)
        if not raw:
            return default
        parts = tuple(p.strip() for p in raw.split(","))
        if not all(re.match(r"^[A-Za-z][A-Za-z0-9_]*$", p) for p in parts):
            raise ConfigError(f"{var} must be comma-separated dimension names, e.g. MainAccount,Department")
        return parts

    return DimensionFormats(
        delimiter=delimiter,
        ledger=names("FO_LEDGER_DIMENSION_FORMAT", base.ledger),
        default=names("FO_DEFAULT_DIMENSION_FORMAT", base.default),
    )


def _key_prefix(raw: str) -> tuple[str, ...]:
    parts = tuple(p for p in raw.strip().split("/") if p)
    if not all(re.fullmatch(r"[A-Za-z0-9_]+", p) for p in parts):
        raise ConfigError(f"FO_ASSET_KEY_PREFIX={raw!r}: use letters, digits and _, segments joined by /")
    return parts


def _catalog(env: Mapping[str, str], base: Path) -> Catalog:
    raw = (env.get("FO_CATALOG_FILE") or "").strip()
    if not raw:
        return STANDARD
    path = (base / Path(raw).expanduser()).resolve()  # relative to the configuration file that names it
    try:
        return load_catalog(path)
    except CatalogError as exc:
        raise ConfigError(f"FO_CATALOG_FILE: {exc}") from None


def _inbox_postgres(env: Mapping[str, str]) -> str | None:
    raw = env.get("FO_INBOX_POSTGRES", "").strip()
    if not raw:
        return None
    from psycopg2 import ProgrammingError
    from psycopg2.extensions import parse_dsn

    try:
        keywords = parse_dsn(raw)
    except ProgrammingError:
        # libpq's message quotes the text around the mistake, which may be a password: not repeated here.
        raise ConfigError(
            "FO_INBOX_POSTGRES is not a PostgreSQL connection string: use keyword=value pairs "
            "(host=db.internal dbname=dagster user=fo_contoso) or a URL (postgresql://fo_contoso@db.internal/dagster)"
        ) from None
    if any("password" in keyword for keyword in keywords):
        raise ConfigError(
            "FO_INBOX_POSTGRES must not contain a password (it is configuration, logged and shown): remove it "
            "and give the password as the secret FO_INBOX_PASSWORD (export it, or `fo-assets secrets set "
            "FO_INBOX_PASSWORD`)"
        )
    return raw


def _inbox_schema(env: Mapping[str, str]) -> str:
    raw = (env.get("FO_INBOX_SCHEMA") or "fo_assets").strip()
    if not _POSTGRES_SCHEMA.fullmatch(raw) or raw.startswith("pg_"):
        raise ConfigError(
            f"FO_INBOX_SCHEMA={raw!r} is not a usable PostgreSQL schema name: lower-case letters, digits and _, "
            "not starting with a digit or pg_, at most 63 characters"
        )
    return raw


def _receiver_settings(env: Mapping[str, str]) -> ReceiverSettings:
    base = ReceiverSettings()
    return ReceiverSettings(
        max_events_per_post=_int(env, "FO_EVENTS_MAX_PER_POST", base.max_events_per_post, low=1, high=5000),
        events_per_second=_float(env, "FO_EVENTS_RATE", base.events_per_second),
        header_timeout_s=_float(env, "FO_EVENTS_HEADER_TIMEOUT", base.header_timeout_s),
        body_timeout_s=_float(env, "FO_EVENTS_BODY_TIMEOUT", base.body_timeout_s),
        keep_alive_s=_float(env, "FO_EVENTS_KEEP_ALIVE", base.keep_alive_s),
        max_connections=_int(env, "FO_EVENTS_MAX_CONNECTIONS", base.max_connections, low=1, high=10_000),
        trusted_proxies=_networks(env, "FO_EVENTS_TRUSTED_PROXIES"),
        retention_days=_int(env, "FO_EVENTS_RETENTION_DAYS", base.retention_days, low=1, high=3650),
        backlog_alert_s=_float(env, "FO_EVENTS_BACKLOG_ALERT", base.backlog_alert_s),
    )


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """IP addresses and networks, as uvicorn's proxy-header check reads them (it takes anything else as a name)."""
    parts = tuple(p.strip() for p in env.get(name, "").split(",") if p.strip())
    for part in parts:
        try:
            ipaddress.ip_network(part) if "/" in part else ipaddress.ip_address(part)
        except ValueError:
            raise ConfigError(f"{name} has {part!r}: give IP addresses or networks, e.g. 10.0.0.5,10.1.0.0/16") from None
    return parts


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _date(env: Mapping[str, str], name: str, default: dt.date) -> dt.date:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a date: use YYYY-MM-DD") from None


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range: {low} to {high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _optional_https(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    if urlsplit(raw).scheme != "https":
        raise ConfigError(f"{name} must be an https:// URL")
    return raw
