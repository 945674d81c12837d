"""The image run exactly as an environment's task definition says, for dev and for prod.

CloudFormation on a moto server deploys the environment's network and service stacks from
infra/cloudformation (tests/infra/moto_stacks.py), in eu-west-1; ECS then holds the task definition
as it would in AWS. podman runs the image `make image` built with what that definition gives the
container: its environment, its secrets read from Secrets Manager as ECS injects them, its user,
read-only root, /tmp, dropped capabilities, init, memory, health check and stop timeout. What ECS
adds, the test adds: AWS_REGION (the stack's region, and no other region setting) and the task role's
credentials. What this machine needs besides: the moto endpoint, and a free port, since the container
shares the host's network (podman has no awsvpc).

podman has no awslogs driver: `podman logs` is what the driver would send to the boot log group.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from skycart.config import PRODUCTION_SETTINGS, Settings
from tests.aws.conftest import log_lines, moto_server
from tests.catalog.images_support import picture
from tests.conftest import _free_port, flight_body, order_body, product_body
from tests.container.test_image import IMAGE, _image_ready, app_database, podman, succeeded, wait_ready
from tests.infra.moto_stacks import REGION, MotoAccount, deploy_environment
from tests.metering.cluster import onboard

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

REDIS_URL = "redis://127.0.0.1:6379/12"
# The variables ECS sets in every task besides the definition's (the credentials come from the task role).
ECS_SETS = ("AWS_REGION",)
# Never in a task definition: where this machine's stand-ins are.
MACHINE_ONLY = ("SKYCART_AWS_ENDPOINT_URL", "SKYCART_PORT")


@dataclass
class Deployed:
    """One environment's stack on moto, its task definition, and the container running it."""

    environment: str
    account: MotoAccount
    definition: dict[str, Any]
    container: dict[str, Any]
    outputs: dict[str, str]
    name: str = field(default_factory=lambda: f"skycart-deployed-{uuid.uuid4().hex[:8]}")
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    operator_key: str = ""
    sent: list[str] = field(default_factory=list)

    @property
    def settings_set(self) -> dict[str, str]:
        """Every variable the definition sets: plain values and secrets (by name)."""
        plain = {item["name"]: item["value"] for item in self.container["environment"]}
        return plain | {item["name"]: item["valueFrom"] for item in self.container["secrets"]}

    def flags(self) -> list[str]:
        """podman run's options for what the definition says about the container."""
        container, linux = self.container, self.container["linuxParameters"]
        assert container["privileged"] is False and container["readonlyRootFilesystem"] is True
        assert [mount["containerPath"] for mount in container["mountPoints"]] == ["/tmp"]
        assert {volume["name"] for volume in self.definition["volumes"]} == {
            container["mountPoints"][0]["sourceVolume"]
        }
        health = container["healthCheck"]
        kind, *argv = health["command"]
        # ECS's ["CMD", argv...] or ["CMD-SHELL", line]; podman takes an argv as a JSON array, a line as a string.
        command = json.dumps(argv) if kind == "CMD" else argv[0]
        return [
            "--pull=never",
            "--network", "host",
            "--user", container["user"],
            "--read-only", "--read-only-tmpfs=false",
            # Fargate backs a task volume with the task's ephemeral storage; here a tmpfs stands in for it.
            "--tmpfs", "/tmp",
            *(flag for capability in linux["capabilities"]["drop"] for flag in ("--cap-drop", capability)),
            *(["--init"] if linux["initProcessEnabled"] else []),
            "--memory", f"{self.definition['memory']}m",
            "--health-cmd", command,
            "--health-timeout", f"{health['timeout']}s",
            "--health-retries", str(health["retries"]),
            "--health-start-period", f"{health['startPeriod']}s",
            # The check runs on demand below: this machine has no systemd to time it.
            "--health-interval", "disable",
            *(flag for name in self.env for flag in ("--env", name)),  # values from podman's environment
        ]  # fmt: skip

    def run(self, *command: str, detach: bool = False) -> str:
        mode = ["--detach", "--name", self.name] if detach else ["--rm"]
        return succeeded(podman("run", *mode, *self.flags(), IMAGE, *command, env=self.env))

    def request(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request whose id this test chose, so its access line can be found in the log group."""
        request_id = f"as-deployed-{uuid.uuid4().hex[:12]}"
        self.sent.append(request_id)
        headers = {**kwargs.pop("headers", {}), "X-Request-Id": request_id}
        return client.request(method, path, headers=headers, **kwargs)

    def log_lines(self, group: str) -> list[dict[str, Any]]:
        return log_lines(self.account.client("logs"), group)


def _secret(account: MotoAccount, value_from: str) -> str:
    """What ECS injects for a `secrets` entry that names a whole secret by ARN."""
    assert value_from.count(":") == 6, f"{value_from}: a JSON key or version would need ECS's suffix rules"
    return account.client("secretsmanager").get_secret_value(SecretId=value_from)["SecretString"]


@pytest.fixture(scope="module", params=["dev", "prod"])
def deployed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    environment = request.param
    with moto_server() as endpoint:
        account = MotoAccount(endpoint)
        stacks = deploy_environment(account, environment, nested=("Network", "Service"), with_bootstrap=False)
        outputs = stacks.outputs["service.yaml"]
        ecs = account.client("ecs")
        (service,) = ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])[
            "services"
        ]
        definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        yield Deployed(environment, account, definition, container, outputs)


@pytest.fixture(scope="module")
def running(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    _image_ready()
    secrets = deployed.account.client("secretsmanager")
    with app_database(tmp_path_factory.mktemp(f"deployed-{deployed.environment}")) as (_, secret):
        # What data.yaml's secrets hold in AWS: the app user's JSON, and the Redis URL.
        by_name = {item["name"]: item["valueFrom"] for item in deployed.container["secrets"]}
        secrets.put_secret_value(SecretId=by_name["SKYCART_DB_SECRET"], SecretString=json.dumps(secret))
        secrets.put_secret_value(SecretId=by_name["SKYCART_REDIS_URL"], SecretString=REDIS_URL)
        credentials = deployed.account.credentials()
        port = _free_port()
        deployed.env = {
            **{item["name"]: item["value"] for item in deployed.container["environment"]},
            **{item["name"]: _secret(deployed.account, item["valueFrom"]) for item in deployed.container["secrets"]},
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": credentials["aws_session_token"],
            "SKYCART_AWS_ENDPOINT_URL": deployed.account.endpoint,
            "SKYCART_PORT": str(port),
        }
        deployed.url = f"http://127.0.0.1:{port}"
        # As a release does before the service rolls: one-off tasks of the same definition.
        deployed.run("db", "upgrade")
        deployed.operator_key = deployed.run("keys", "create", "--operator").strip().splitlines()[-1]
        started = time.monotonic()
        try:
            deployed.run(detach=True)
            seconds = wait_ready(deployed.name, deployed.url, started)
            print(f"\n{deployed.environment}: container start -> /readyz 200 in {seconds:.2f} s")
            yield deployed
        finally:
            podman("rm", "--force", "--time", "0", deployed.name)


def test_every_variable_the_definition_sets_is_read_and_every_production_setting_is_set(deployed: Deployed) -> None:
    read = {f"SKYCART_{name.upper()}" for name in Settings.model_fields}
    given = set(deployed.settings_set)

    assert given - read == set(), "the template sets variables the app never reads"
    assert {f"SKYCART_{name.upper()}" for name in PRODUCTION_SETTINGS} - given == set()
    assert not given & {*ECS_SETS, *MACHINE_ONLY}, "the region comes from ECS; endpoint and port are this machine's"
    assert deployed.settings_set["SKYCART_DB_SECRET_ARN"] == deployed.settings_set["SKYCART_DB_SECRET"]
    assert deployed.container["logConfiguration"]["options"]["awslogs-group"] == deployed.outputs["BootLogGroupName"]
    assert deployed.settings_set["SKYCART_LOG_GROUP"] == deployed.outputs["AppLogGroupName"]


def test_the_image_listens_on_the_port_the_definition_maps(deployed: Deployed) -> None:
    _image_ready()
    image_env = json.loads(succeeded(podman("image", "inspect", "--format", "{{json .Config.Env}}", IMAGE)))
    port = dict(item.split("=", 1) for item in image_env)["SKYCART_PORT"]
    assert [mapping["containerPort"] for mapping in deployed.container["portMappings"]] == [int(port)]


@dataclass
class Sold:
    airline: str
    order: httpx.Response
    image: bytes
    image_response: httpx.Response


@pytest.fixture(scope="module")
def sold(running: Deployed) -> Sold:
    """A new airline sells from a stocked flight and uploads a product image, every request with a known id."""
    with httpx.Client(base_url=running.url, headers={"X-Api-Key": running.operator_key}, timeout=30) as admin:
        code, key = onboard(admin)
    with httpx.Client(base_url=running.url, headers={"X-Api-Key": key}, timeout=30) as client:
        assert running.request(client, "POST", "/v1/products", json=product_body("COLA-33", ["EUR"])).status_code == 201
        flight = running.request(client, "POST", "/v1/flights", json=flight_body()).json()["id"]
        stock = {"items": [{"sku": "COLA-33", "quantity": 10}]}
        assert running.request(client, "PUT", f"/v1/flights/{flight}/inventory", json=stock).status_code == 200
        body = order_body(flight, {"COLA-33": 2}, currency="EUR")
        order = running.request(client, "POST", "/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        for _ in range(5):
            assert running.request(client, "GET", f"/v1/flights/{flight}/menu").status_code == 200
        data = picture("PNG", (320, 240))
        files = {"file": ("cola.png", data, "image/png")}
        image = running.request(client, "POST", "/v1/products/COLA-33/images", files=files)
    return Sold(code, order, data, image)


def test_the_task_becomes_healthy_by_the_definitions_health_check(running: Deployed) -> None:
    result = podman("healthcheck", "run", running.name)
    assert result.returncode == 0 and "unhealthy" not in result.stdout, result.stdout + result.stderr


def test_it_takes_an_order(sold: Sold) -> None:
    assert sold.order.status_code == 201, sold.order.text
    assert (sold.order.json()["status"], sold.order.json()["total"]) == ("paid", "9.00")


def test_it_stores_an_image_in_the_stacks_bucket(running: Deployed, sold: Sold) -> None:
    assert sold.image_response.status_code == 201, sold.image_response.text
    bucket = running.env["SKYCART_ASSETS_BUCKET"]
    assert bucket == f"assets-{running.environment}", "the stack's bucket, named by the definition"
    s3 = running.account.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    [original] = [k for k in keys if k.endswith(f"/{sold.image_response.json()['image_id']}/original.png")]
    assert s3.get_object(Bucket=bucket, Key=original)["Body"].read() == sold.image


# Last: it stops the container, which flushes metering (EMF records) and the queued log lines.
def test_access_lines_and_emf_records_reach_the_stacks_log_group_once_each(running: Deployed, sold: Sold) -> None:
    started = time.monotonic()
    succeeded(podman("stop", "--time", str(running.container["stopTimeout"]), running.name, timeout=90))
    assert time.monotonic() - started < running.container["stopTimeout"]
    assert podman("inspect", "--format", "{{.State.ExitCode}}", running.name).stdout.strip() == "0"

    shipped = running.log_lines(running.outputs["AppLogGroupName"])
    access = Counter(line.get("request_id") for line in shipped if line.get("logger") == "skycart.access")
    arrived = [access[request_id] for request_id in running.sent]
    emf = [line for line in shipped if "_aws" in line and line.get("Airline") == sold.airline and "Route" not in line]
    emf_requests = sum(line["Requests"] for line in emf)
    printed = [json.loads(line) for line in podman("logs", running.name).stdout.splitlines() if line.startswith("{")]
    printed_copies = [line for line in printed if line.get("logger") in ("skycart.access", "skycart.emf")]
    print(
        f"\n{running.environment}: {len(running.sent)} requests sent; their access lines in the app log group:"
        f" {sum(arrived)} ({min(arrived)}-{max(arrived)} per request); EMF records for the airline: {len(emf)},"
        f" counting {emf_requests} requests; on stdout (the boot log group): {len(printed)} JSON lines,"
        f" {len(printed_copies)} of them access or EMF: {dict(Counter(line.get('logger') for line in printed))}"
    )

    assert arrived == [1] * len(running.sent), "every request's access line, once"
    assert emf_requests == len(running.sent), "every request of the airline in exactly one EMF record"
    assert printed_copies == [], "nothing shipped is printed too: the driver would ingest it a second time"
