"""The built image run as ECS Fargate runs it (infra/cloudformation/service.yaml's task definition).

podman runs SKYCART_TEST_IMAGE (`make image` builds it; `make test` builds it first) with a read-only
root filesystem and only /tmp writable, every capability dropped, the image's own non-root user,
and every setting from the environment: the database as the Secrets Manager JSON of a MariaDB user of
its own, Redis, and S3 and CloudWatch Logs on a moto server. The container shares the host's network
namespace, so all of it stays on loopback. As a release does, a first container migrates the database.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.aws.conftest import moto_server
from tests.catalog.images_support import picture, upload
from tests.conftest import (
    _answers,
    _free_port,
    _mariadb_admin,
    flight_body,
    order_body,
    product_body,
    scratch_database,
    service_missing,
)
from tests.metering.cluster import onboard

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("SKYCART_TEST_IMAGE", "localhost/skycart:latest")
REGION = "eu-central-1"
AWS_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
APP_UID = 10001
# The dev environment's task size (skycart.yaml's EnvironmentConfig), the smallest Fargate offers.
TASK_MEMORY_MIB = 512
# What the task definition gives the container: no writable root, a /tmp volume, no capabilities, an init.
FARGATE_LIKE = [
    "--pull=never",
    "--init",
    "--read-only",
    "--read-only-tmpfs=false",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--memory",
    f"{TASK_MEMORY_MIB}m",
    "--network",
    "host",
]


def podman(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run podman with this machine's containers.conf (the one `make` exports, else the project's own)."""
    conf = os.environ.get("CONTAINERS_CONF") or str(ROOT / "infra" / "containers" / "containers.conf")
    return subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CONTAINERS_CONF": conf, **(env or {})},
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{' '.join(result.args)} exited {result.returncode}: {result.stderr[-2000:]}"
    return result.stdout


@dataclass
class Task:
    """The running container and what it talks to."""

    name: str
    url: str
    env: dict[str, str]
    operator_key: str
    database_url: str
    bucket: str
    log_group: str
    s3: Any
    logs: Any
    seconds_to_ready: float

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Api-Key": key}, timeout=30)

    def one_off(self, *command: str) -> str:
        """A short-lived container of the same image and environment, as ECS runs a one-off task."""
        return succeeded(podman("run", "--rm", *FARGATE_LIKE, *self.env_flags(), IMAGE, *command, env=self.env))

    def env_flags(self) -> list[str]:
        # Passed by name: podman takes the values from its own environment, so no secret is on a command line.
        return [flag for name in self.env for flag in ("--env", name)]


def _image_ready() -> None:
    if shutil.which("podman") is None:
        service_missing("podman (installed by `make image`)")
    if podman("image", "exists", IMAGE).returncode != 0:
        service_missing(f"the image {IMAGE} (built by `make image`)")
    if not _answers(6379):
        service_missing("Redis on 127.0.0.1:6379")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@contextmanager
def app_database(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A scratch MariaDB database, and the secret of a user that may use only that database."""
    with scratch_database("mariadb", folder) as url:
        parsed = make_url(url)
        user, password = f"skycart_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        _mariadb_admin(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        try:
            _mariadb_admin(f"GRANT ALL PRIVILEGES ON {parsed.database}.* TO '{user}'@'%'")
            secret = {
                "username": user,
                "password": password,
                "host": parsed.host or "127.0.0.1",
                "port": parsed.port or 3306,
                "dbname": parsed.database,
            }
            yield url, secret
        finally:
            _mariadb_admin(f"DROP USER IF EXISTS '{user}'@'%'")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    with app_database(tmp_path_factory.mktemp("container")) as found:
        yield found


@pytest.fixture(scope="module")
def task(moto_endpoint: str, database: tuple[str, dict[str, Any]]) -> Iterator[Task]:
    _image_ready()
    url, secret = database
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, **AWS_KEYS)
    logs = boto3.client("logs", endpoint_url=moto_endpoint, **AWS_KEYS)
    bucket, log_group = f"skycart-assets-{uuid.uuid4().hex[:8]}", f"/skycart/test-{uuid.uuid4().hex[:8]}"
    # CloudFormation's part: the app only writes objects and log events.
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    logs.create_log_group(logGroupName=log_group)
    port = _free_port()
    env = {
        "SKYCART_DB_SECRET": json.dumps(secret),
        "SKYCART_REDIS_URL": "redis://127.0.0.1:6379/11",
        "SKYCART_ASSETS_BUCKET": bucket,
        "SKYCART_LOG_GROUP": log_group,
        "SKYCART_LOG_SEND_SECONDS": "0.5",
        "SKYCART_AWS_ENDPOINT_URL": moto_endpoint,
        "SKYCART_AWS_REGION": REGION,
        "SKYCART_EMF_METRICS": "true",
        "SKYCART_WORKERS": "2",
        "SKYCART_HOST": "127.0.0.1",
        "SKYCART_PORT": str(port),
        # Longer than the module runs: only the flush at the stop writes usage, which the last test checks.
        "SKYCART_METERING_FLUSH_SECONDS": "300",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    name = f"skycart-test-{uuid.uuid4().hex[:8]}"
    task = Task(name, f"http://127.0.0.1:{port}", env, "", url, bucket, log_group, s3, logs, 0.0)
    task.one_off("db", "upgrade")
    task.operator_key = task.one_off("keys", "create", "--operator").strip().splitlines()[-1]
    started = time.monotonic()
    try:
        # The healthcheck runs on demand below: this machine has no systemd to time it.
        succeeded(
            podman(
                "run", "--detach", "--name", name, *FARGATE_LIKE, "--health-interval", "disable",
                *task.env_flags(), IMAGE, env=env,
            )
        )  # fmt: skip
        task.seconds_to_ready = wait_ready(task.name, task.url, started)
        yield task
    finally:
        podman("rm", "--force", "--time", "0", name)


def wait_ready(name: str, url: str, started: float, timeout: float = 60) -> float:
    """Seconds from `started` until the container's /readyz answers 200; fails if it stops first."""
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            pytest.fail(f"the container is {state}: {podman('logs', name).stdout[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"/readyz did not answer 200 within {timeout} s: {podman('logs', name).stdout[-3000:]}")


@pytest.fixture(scope="module")
def airline(task: Task) -> Iterator[tuple[str, httpx.Client]]:
    with task.client(task.operator_key) as admin:
        code, key = onboard(admin)
    with task.client(key) as client:
        yield code, client


def _usage_requests(database_url: str, airline: str) -> dict[tuple[str, str, str], int]:
    """(route, method, status class) -> requests, as the metering flusher wrote them."""
    engine = create_engine(database_url.replace("+asyncmy", "+pymysql"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT route, method, status_class, SUM(requests) FROM usage_minutes"
                    " WHERE airline = :airline GROUP BY route, method, status_class"
                ),
                {"airline": airline},
            )
            return {(route, method, status): int(count) for route, method, status, count in rows}
    finally:
        engine.dispose()


def test_readyz_answers_200_with_the_database_and_redis_reachable(task: Task) -> None:
    response = httpx.get(f"{task.url}/readyz", timeout=5)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "database": "ok", "redis": "ok"}
    print(f"\ncontainer start -> /readyz 200: {task.seconds_to_ready:.2f} s")
    assert task.seconds_to_ready < 30, "ECS gives a new task 60 s of grace; it should need far less"


def test_an_airline_sells_a_product_from_a_stocked_flight(task: Task, airline: tuple[str, httpx.Client]) -> None:
    _, client = airline
    product = client.post("/v1/products", json=product_body("COLA-33", ["EUR"]))
    assert product.status_code == 201, product.text
    flight = client.post("/v1/flights", json=flight_body())
    assert flight.status_code == 201, flight.text
    flight_id = flight.json()["id"]
    stock = client.put(f"/v1/flights/{flight_id}/inventory", json={"items": [{"sku": "COLA-33", "quantity": 10}]})
    assert stock.status_code == 200, stock.text
    order = client.post(
        "/v1/orders",
        json=order_body(flight_id, {"COLA-33": 3}, currency="EUR"),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    assert order.json()["total"] == "13.50"
    assert client.get(f"/v1/orders/{order.json()['id']}").json()["status"] == "paid"
    [item] = client.get(f"/v1/flights/{flight_id}/menu").json()["items"]
    assert (item["sku"], item["available"]) == ("COLA-33", 7)


def test_an_uploaded_image_lands_in_the_assets_bucket(task: Task, airline: tuple[str, httpx.Client]) -> None:
    _, client = airline
    assert client.post("/v1/products", json=product_body("MUFFIN", ["EUR"])).status_code == 201
    data = picture("PNG", (640, 480))
    response = upload(client, "MUFFIN", data, filename="muffin.png", content_type="image/png")
    assert response.status_code == 201, response.text
    image_id = response.json()["image_id"]
    keys = [item["Key"] for item in task.s3.list_objects_v2(Bucket=task.bucket).get("Contents", [])]
    originals = [key for key in keys if key.endswith(f"/{image_id}/original.png")]
    assert len(originals) == 1, keys
    assert task.s3.get_object(Bucket=task.bucket, Key=originals[0])["Body"].read() == data
    assert httpx.get(response.json()["images"][0]["url"], timeout=10).content == data, "the presigned URL serves it"


def test_the_web_console_is_served_with_its_templates_and_styles(task: Task) -> None:
    page = httpx.get(f"{task.url}/console/sign-in", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:500]
    styles = httpx.get(f"{task.url}/static/web/web.css", timeout=10)
    assert styles.status_code == 200 and styles.headers["content-type"].startswith("text/css"), styles.status_code


def test_log_lines_reach_the_cloudwatch_log_group(task: Task, airline: tuple[str, httpx.Client]) -> None:
    _, client = airline
    request_id = client.get("/v1/plan").headers["x-request-id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = task.logs.filter_log_events(logGroupName=task.log_group)["events"]
        if any(json.loads(event["message"]).get("request_id") == request_id for event in events):
            return
        time.sleep(0.5)
    pytest.fail(f"no log line with request_id {request_id} in {task.log_group}")


def test_the_image_healthcheck_reports_the_server_healthy(task: Task) -> None:
    result = podman("healthcheck", "run", task.name)
    assert result.returncode == 0 and "unhealthy" not in result.stdout, result.stdout + result.stderr


def _processes(task: Task) -> list[str]:
    """The host pids of every process in the container."""
    return succeeded(podman("top", task.name, "hpid")).split()[1:]


def _kib(pid: str, file: str, field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/{file}").read_text(), re.MULTILINE).group(1))


def test_every_process_runs_as_the_images_non_root_uid(task: Task) -> None:
    pids = _processes(task)
    assert len(pids) >= 4, f"init, the gunicorn master and two workers: {pids}"
    for pid in pids:
        uids = re.search(r"^Uid:\s+(.*)$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE).group(1).split()
        assert uids == [str(APP_UID)] * 4, f"pid {pid}: real, effective, saved and fs uid {uids}"


def test_the_serving_processes_fit_in_the_smallest_task_memory(task: Task) -> None:
    pids = _processes(task)
    # Proportional set size: pages the workers share with the master are counted once, as the kernel charges them.
    pss = sum(_kib(pid, "smaps_rollup", "Pss") for pid in pids) / 1024
    rss = sum(_kib(pid, "status", "VmRSS") for pid in pids) / 1024
    print(f"\nmemory of the container's {len(pids)} processes: PSS {pss:.0f} MiB, RSS summed {rss:.0f} MiB")
    assert pss < TASK_MEMORY_MIB * 0.75, "a quarter of the task's memory is left for traffic"


@pytest.mark.parametrize("folder", ["/", "/opt/skycart", "/srv/skycart", "/etc", "/var/tmp", "/run"])
def test_nothing_outside_tmp_is_writable_even_for_root(task: Task, folder: str) -> None:
    result = podman("exec", "--user", "0", task.name, "touch", f"{folder.rstrip('/')}/written-at-run-time")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr, result.stderr


def test_the_app_user_writes_to_tmp(task: Task) -> None:
    assert succeeded(podman("exec", task.name, "sh", "-c", "id -u > /tmp/probe && cat /tmp/probe")) == f"{APP_UID}\n"


# Last: it stops the container the tests above share.
def test_a_stop_exits_0_within_30_seconds_after_flushing_metering(task: Task) -> None:
    with task.client(task.operator_key) as admin:
        code, key = onboard(admin)
    with task.client(key) as client:
        for _ in range(5):
            assert client.get("/v1/products").status_code == 200
    assert _usage_requests(task.database_url, code) == {}, "flushed before the stop: the test would prove nothing"
    started = time.monotonic()
    succeeded(podman("stop", "--time", "30", task.name, timeout=60))
    stopped_in = time.monotonic() - started
    print(f"\npodman stop -> exited: {stopped_in:.2f} s")
    assert podman("inspect", "--format", "{{.State.ExitCode}}", task.name).stdout.strip() == "0"
    assert stopped_in < 30
    assert _usage_requests(task.database_url, code) == {("/v1/products", "GET", "2xx"): 5}
