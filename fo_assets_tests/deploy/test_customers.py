"""One code location per customer: each its own tenant, credentials, legal entities, home and F&O pool.

Two sandbox tenants stand in for Contoso and Fabrikam (different tenant and client ids, secrets and
legal entities, and different host names, hence different pools, as two real environments have). The
customer folders of deploy/customers are copied with their fo-assets.env pointed at the sandboxes, and
each client secret is kept only in that customer's encrypted store: nothing exports FO_CLIENT_SECRET.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dagster as dg
import pytest

from fo_assets.catalog import STANDARD
from fo_assets.definitions import ENTITY_JOB
from fo_assets.sandbox import Sandbox, SandboxConfig
from fo_assets.secrets import Secret, SecretStore, generate_master_key
from fo_assets.sinks.local_delta import LocalDeltaSink
from fo_assets_tests.support.tenant import ANCHOR
from fo_assets_tests.deploy.customers import BIN, DEPLOY, Customer, clean_env, run, set_up_customer, write_workspace

pytestmark = pytest.mark.slow

COMPANIES = {"contoso": ("usmf", "demf"), "fabrikam": ("frrt", "itco")}
HOSTS = {"contoso": "127.0.0.1", "fabrikam": "localhost"}
VENDORS = STANDARD.spec_for("VendorsV2")


@dataclass(frozen=True)
class Site:
    """The operator's host: its master key and the customers set up on it."""

    root: Path
    master_key: str
    customers: dict[str, Customer]


@pytest.fixture(scope="module")
def tenants() -> Iterator[dict[str, Sandbox]]:
    sandboxes = {
        name: Sandbox(SandboxConfig(scale=0.05, days=5, anchor_date=ANCHOR, companies=companies,
                                    default_company=companies[0], host=HOSTS[name]))
        for name, companies in COMPANIES.items()
    }
    for sandbox in sandboxes.values():
        sandbox.start()
    yield sandboxes
    for sandbox in sandboxes.values():
        sandbox.stop()


@pytest.fixture(scope="module")
def site(tenants: dict[str, Sandbox], tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("site")
    key = generate_master_key()  # one host, one key; each customer's store is its own file
    return Site(root, key, {name: set_up_customer(root, name, tenants[name], key) for name in COMPANIES})


def load_location(definitions: Path) -> dg.Definitions:
    """The Definitions of a code location, loaded from its python file as `python_file:` does."""
    spec = importlib.util.spec_from_file_location(f"location_{definitions.parent.name}", definitions)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs()


def test_each_customer_lands_its_own_tenant_with_its_own_secret_in_its_own_home(tenants, site, monkeypatch):
    monkeypatch.setenv("FO_ASSETS_MASTER_KEY", site.master_key)
    assert "FO_CLIENT_SECRET" not in os.environ  # each location must use its own store
    pools = {}
    for name, customer in site.customers.items():
        store = SecretStore(customer.home / "secrets.enc", Secret(site.master_key))
        assert store.get("FO_CLIENT_SECRET") == Secret(tenants[name].cfg.client_secret)

        defs = load_location(customer.definitions)
        pools[name] = defs.get_assets_def(dg.AssetKey([name, *VENDORS.asset_key_path])).op.pool
        assert pools[name] == customer.pool
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(ENTITY_JOB).execute_in_process(instance=instance,
                                                                         partition_key=ANCHOR.isoformat())
        assert result.success

        for spec in (VENDORS, STANDARD.spec_for("GeneralJournalAccountEntryBiEntities")):
            landed = LocalDeltaSink(customer.home / "delta").read(spec).to_pylist()
            assert {row[spec.company_field] for row in landed} == set(COMPANIES[name]), spec.table
        expected = {r["VendorAccountNumber"] for r in tenants[name].tenant.rows(VENDORS.entity_set)}
        landed_vendors = LocalDeltaSink(customer.home / "delta").read(VENDORS).to_pylist()
        assert {r["VendorAccountNumber"] for r in landed_vendors} == expected
    assert len(set(pools.values())) == len(pools), pools  # one customer's throttling never holds another's slot


def test_the_workspace_file_loads_every_customer_location(site, tmp_path):
    workspace = write_workspace(site.root, list(site.customers.values()))
    out = run([str(BIN / "dagster"), "definitions", "validate", "-w", str(workspace)],
              clean_env(DAGSTER_HOME=str(_empty_dagster_home(tmp_path))))
    for name in site.customers:
        assert f"Validation successful for code location {name}" in out


def test_the_checked_in_production_workspace_validates(tmp_path):
    out = run([str(BIN / "dagster"), "definitions", "validate", "-w", str(DEPLOY / "workspace.yaml")],
              clean_env(DAGSTER_HOME=str(_empty_dagster_home(tmp_path))))
    assert "Validation successful for code location fabrikam" in out


def test_customer_histories_stay_apart_in_one_instance(site, monkeypatch):
    monkeypatch.setenv("FO_ASSETS_MASTER_KEY", site.master_key)
    keys = {}
    with dg.DagsterInstance.ephemeral() as instance:
        for name in site.customers:
            job = load_location(site.customers[name].definitions).resolve_job_def(ENTITY_JOB)
            result = job.execute_in_process(instance=instance, partition_key=ANCHOR.isoformat(),
                                            asset_selection=[dg.AssetKey([name, *VENDORS.asset_key_path])])
            keys[name] = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys["contoso"].isdisjoint(keys["fabrikam"])


def _empty_dagster_home(tmp_path: Path) -> Path:
    """Dagster's CLI needs a DAGSTER_HOME; an empty one is a throwaway SQLite instance."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return home
