"""The deployment files agree with each other and with the project, so adding a customer or raising a pin
cannot leave one of them behind: the instance file is a valid Dagster instance, the Helm values carry
the same operating policy, every customer folder is a workspace location and a Helm deployment with its
own home, pool and inbox (and nothing on the pod it cannot lose), runs get pods of their own, and the
image installs exactly the pinned runtime set.
"""

from __future__ import annotations

import re
import tomllib

import yaml
from dagster._core.instance.config import dagster_instance_config
from packaging.requirements import Requirement

from fo_assets.cli import build_parser
from fo_assets.settings import SECRET_NAMES, load_settings, read_config_file
from fo_assets_tests.deploy.customers import DEPLOY, REPO

HELM = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
CUSTOMERS = sorted(p.name for p in (DEPLOY / "customers").iterdir() if p.is_dir() and not p.name.startswith("_"))
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def _pins() -> dict[str, str]:
    lines = (DEPLOY / "constraints.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def test_the_production_instance_file_is_a_valid_dagster_instance_on_postgres():
    config, _ = dagster_instance_config(str(DEPLOY))
    db = config["storage"]["postgres"]["postgres_db"]
    # Everything that differs between installations comes from the environment.
    assert {db[k]["env"] for k in ("hostname", "port", "db_name", "username", "password")} == {
        "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False


def test_the_helm_values_carry_the_same_operating_policy_as_the_instance_file():
    config, _ = dagster_instance_config(str(DEPLOY))
    daemon = HELM["dagsterDaemon"]
    monitoring = config["run_monitoring"]
    assert daemon["runMonitoring"] == {
        "enabled": monitoring["enabled"], "startTimeoutSeconds": monitoring["start_timeout_seconds"],
        "pollIntervalSeconds": monitoring["poll_interval_seconds"],
        "maxResumeRunAttempts": monitoring["max_resume_run_attempts"],
        "freeSlotsAfterRunEndSeconds": monitoring["free_slots_after_run_end_seconds"],
        "maxRuntimeSeconds": monitoring["max_runtime_seconds"]}
    retries = config["run_retries"]
    assert daemon["runRetries"] == {"enabled": retries["enabled"], "maxRetries": retries["max_retries"],
                                    "retryOnAssetOrOpFailure": retries["retry_on_asset_or_op_failure"]}
    concurrency = config["concurrency"]
    assert HELM["concurrency"] == {
        "enabled": True, "runs": {"maxConcurrentRuns": concurrency["runs"]["max_concurrent_runs"]},
        "pools": {"granularity": concurrency["pools"]["granularity"],
                  "defaultLimit": concurrency["pools"]["default_limit"]}}
    assert HELM["postgresql"]["postgresqlScheme"] == config["storage"]["postgres"]["postgres_db"]["scheme"]
    assert HELM["telemetry"] == config["telemetry"]
    # Locally the default launcher runs a process per run; on Kubernetes each run is a Job of its own.
    assert config.get("run_launcher") is None and HELM["runLauncher"]["type"] == "K8sRunLauncher"


def test_every_customer_is_a_location_and_a_deployment_with_its_own_home_pool_and_inbox():
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"]
    locations = {e["python_file"]["location_name"]: e["python_file"]["relative_path"] for e in workspace}
    assert locations == {name: f"customers/{name}/definitions.py" for name in CUSTOMERS}

    deployments = {d["name"]: d for d in HELM["dagster-user-deployments"]["deployments"]}
    assert sorted(deployments) == CUSTOMERS
    pools, inbox_schemas = set(), set()
    for name in CUSTOMERS:
        env_file = DEPLOY / "customers" / name / "fo-assets.env"
        config = read_config_file(env_file)  # refuses secrets
        assert not set(config) & set(SECRET_NAMES)
        settings = load_settings(env={}, config_file=env_file)  # every value valid
        assert settings.fo is not None and settings.databricks is not None, name
        assert str(settings.home) == f"/var/lib/fo-assets/{name}"
        pools.add(settings.pool)
        # Nothing on the pod is needed again: the inbox is in PostgreSQL (its password a secret), in a schema
        # of the customer's own, and the landing zone is kept in the customer's Unity Catalog volume.
        assert settings.inbox_postgres is not None, name
        inbox_schemas.add(settings.inbox_schema)
        assert settings.databricks.landing_in_volume, name

        deployment = deployments[name]
        assert deployment["dagsterApiGrpcArgs"] == ["--python-file", f"/opt/fo-assets/customers/{name}/definitions.py"]
        assert deployment["envSecrets"] == [{"name": f"fo-assets-{name}"}]
        [volume] = deployment["volumes"]
        assert "emptyDir" in volume, "FO_ASSETS_HOME is scratch space of the pod"
        assert deployment["volumeMounts"] == [{"name": volume["name"], "mountPath": str(settings.home)}]
        # Run pods get the location's image, secret and volumes (the K8sRunLauncher builds them from it).
        assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
        for sidecar in deployment["sidecarContainers"]:
            # A sidecar reads the customer's settings file, so it writes to the inbox the sensor reads.
            config_file = f"/opt/fo-assets/customers/{name}/fo-assets.env"
            assert sidecar["command"][:3] == ["fo-assets", "--config-file", config_file]
            build_parser().parse_args(sidecar["command"][1:])  # a command the real CLI accepts
            assert sidecar["envFrom"] == [{"secretRef": {"name": f"fo-assets-{name}"}}]
    assert len(pools) == len(CUSTOMERS)
    assert len(inbox_schemas) == len(CUSTOMERS)


def test_the_image_installs_exactly_the_pinned_runtime_set_as_a_non_root_user():
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(set(bases)) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", bases[0])
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    [install] = re.findall(r"pip install ([^\n]+)", DOCKERFILE)
    assert "--constraint constraints.txt" in install
    pins = _pins()
    for extra in re.findall(r"(\S+)==(\S+)", install):
        assert pins[extra[0]] == extra[1], extra
    # The package, its metadata and the deployment files: no tests, docs or local state in the image.
    sources = {path for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M) for path in copied.split()}
    assert sources == {"pyproject.toml", "README.md", "fo_assets", "deploy/constraints.txt", "deploy/dagster.yaml",
                       "deploy/workspace.yaml", "deploy/customers"}
    allowed = set((DEPLOY / "Dockerfile.dockerignore").read_text().split())
    assert all(f"!{path}" in allowed or f"!{path}/" in allowed for path in sources), "not all in the build context"


def test_the_pinned_runtime_set_satisfies_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in deploy/constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {line}"
    # dagster-postgres and dagster-k8s are released with dagster-databricks, in the line of the pinned dagster.
    assert pins["dagster-postgres"] == pins["dagster-k8s"] == pins["dagster-databricks"]
