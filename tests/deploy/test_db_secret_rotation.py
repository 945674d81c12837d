"""The DB secret rotation Lambda against moto server and real MariaDB: alternating users, idempotent steps.

moto runs a rotation function only in Docker, so the tests call the function's steps themselves, as
Secrets Manager would. Secrets Manager's own parts are done here too, with moto's public API:
- before createSecret it stages a new, empty version AWSPENDING. moto does that in rotate_secret and then
  looks for the function; pointed at a function that does not exist it stops right after staging;
- after finishSecret it removes AWSPENDING (moto keeps it, and then refuses the next rotation).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pymysql
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from skycart.app import create_app
from skycart.config import Settings
from skycart.platform.migrate import upgrade
from skycart_deploy.lambdas import db_secret_rotation as rotation_lambda
from tests.conftest import MARIADB_URL, _free_port, _mariadb_admin, scratch_database

REGION = "eu-central-1"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
NO_FUNCTION = f"arn:aws:lambda:{REGION}:123456789012:function:steps-run-by-the-test"


def query(sql: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    """Rows of one statement, run as the MariaDB root user."""
    url = make_url(MARIADB_URL)
    connection = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "")
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())
    finally:
        connection.close()


def logs_in(secret: dict[str, Any]) -> bool:
    try:
        pymysql.connect(
            host=secret["host"],
            port=secret["port"],
            user=secret["username"],
            password=secret["password"],
            database=secret["dbname"],
        ).close()
        return True
    except pymysql.err.OperationalError:
        return False


def kill_connections(user: str) -> int:
    ids = query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
    for (connection_id,) in ids:
        query(f"KILL {int(connection_id)}")
    return len(ids)


def begin_rotation(secrets: Any, arn: str) -> str:
    """Secrets Manager's part before createSecret: a new version, empty, staged AWSPENDING."""
    token = str(uuid.uuid4())
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.rotate_secret(SecretId=arn, ClientRequestToken=token, RotationLambdaARN=NO_FUNCTION)
    stages = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert stages[token] == [PENDING], "moto no longer stages the version before it looks for the function"
    return token


@dataclass
class Rig:
    """A scratch database with an app user and an admin, their secrets in moto, and an ECS service."""

    endpoint: str
    secrets: Any
    ecs: Any
    arn: str
    dbname: str
    user: str
    service: rotation_lambda.EcsService

    def step(self, step: str, token: str) -> None:
        event = {"SecretId": self.arn, "ClientRequestToken": token, "Step": step}
        rotation_lambda.rotate(event=event, secrets=self.secrets, ecs=self.ecs, service=self.service)

    def begin(self) -> str:
        return begin_rotation(self.secrets, self.arn)

    def end(self, token: str) -> None:
        """Secrets Manager's part after finishSecret: AWSPENDING goes."""
        self.secrets.update_secret_version_stage(SecretId=self.arn, VersionStage=PENDING, RemoveFromVersionId=token)

    def rotate(self) -> str:
        token = self.begin()
        for step in STEPS:
            self.step(step, token)
        self.end(token)
        return token

    def stages(self) -> dict[str, list[str]]:
        return self.secrets.describe_secret(SecretId=self.arn)["VersionIdsToStages"]

    def value(self, stage: str) -> dict[str, Any]:
        # moto answers the version the secret was created with unless the stage is named.
        return json.loads(self.secrets.get_secret_value(SecretId=self.arn, VersionStage=stage)["SecretString"])

    def deployment(self) -> str:
        described = self.ecs.describe_services(cluster=self.service.cluster, services=[self.service.name])
        return described["services"][0]["deployments"][0]["id"]

    def snapshot(self) -> dict[str, Any]:
        """Everything a step may change: versions, their labels and values, the users and the deployment."""
        stages = self.stages()
        values = {}
        for version in stages:
            try:
                values[version] = self.secrets.get_secret_value(SecretId=self.arn, VersionId=version)["SecretString"]
            except self.secrets.exceptions.ResourceNotFoundException:
                values[version] = None
        users = query(
            "SELECT User, Host, authentication_string FROM mysql.user WHERE User IN (%s, %s) ORDER BY User",
            (self.user, self.user + "_clone"),
        )
        grants = {user: query("SHOW GRANTS FOR %s@%s", (user, host)) for user, host, _ in users}
        return {"stages": stages, "values": values, "users": users, "grants": grants, "deployment": self.deployment()}


@pytest.fixture
def rig(moto_endpoint: str, tmp_path: Path) -> Iterator[Rig]:
    with scratch_database("mariadb", tmp_path) as url:
        dbname = url.rsplit("/", 1)[1]
        tag = uuid.uuid4().hex[:8]
        user, admin = f"app_{tag}", f"rot_admin_{tag}"
        user_password, admin_password = uuid.uuid4().hex, uuid.uuid4().hex
        try:
            _mariadb_admin(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{user_password}'")
            _mariadb_admin(f"GRANT ALL PRIVILEGES ON `{dbname}`.* TO '{user}'@'%'")
            _mariadb_admin(f"CREATE USER '{admin}'@'%' IDENTIFIED BY '{admin_password}'")
            _mariadb_admin(f"GRANT ALL PRIVILEGES ON *.* TO '{admin}'@'%' WITH GRANT OPTION")
            secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION)
            ecs = boto3.client("ecs", endpoint_url=moto_endpoint, region_name=REGION)
            admin_arn = secrets.create_secret(
                Name=f"rds!cluster-{tag}", SecretString=json.dumps({"username": admin, "password": admin_password})
            )["ARN"]
            app_secret = {
                "username": user,
                "password": user_password,
                "host": "127.0.0.1",
                "port": 3306,
                "dbname": dbname,
                "masterarn": admin_arn,
            }
            arn = secrets.create_secret(Name=f"skycart/{tag}/db", SecretString=json.dumps(app_secret))["ARN"]
            # Turns rotation on (moto copies the value into a new current version).
            secrets.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
            ecs.create_cluster(clusterName=f"skycart-{tag}")
            ecs.register_task_definition(
                family=f"skycart-{tag}", containerDefinitions=[{"name": "app", "image": "skycart:test", "memory": 512}]
            )
            ecs.create_service(
                cluster=f"skycart-{tag}", serviceName="app", taskDefinition=f"skycart-{tag}", desiredCount=1
            )
            service = rotation_lambda.EcsService(cluster=f"skycart-{tag}", name="app")
            yield Rig(moto_endpoint, secrets, ecs, arn, dbname, user, service)
        finally:
            for name in (user, f"{user}_clone", admin):
                _mariadb_admin(f"DROP USER IF EXISTS '{name}'@'%'")


def test_a_rotation_switches_to_the_other_user_and_both_users_still_log_in(rig: Rig) -> None:
    original = rig.value(CURRENT)
    rig.rotate()
    current, previous = rig.value(CURRENT), rig.value(PREVIOUS)
    assert current["username"] == f"{rig.user}_clone"
    assert {**current, "username": rig.user, "password": original["password"]} == original, (
        "only user and password change"
    )
    assert previous == original
    assert logs_in(current), "AWSCURRENT logs in"
    assert logs_in(previous), "AWSPREVIOUS still logs in: tasks that have not restarted keep working"


def test_the_next_rotation_returns_to_the_first_user_with_a_new_password(rig: Rig) -> None:
    original = rig.value(CURRENT)
    rig.rotate()
    first = rig.value(CURRENT)
    rig.rotate()
    current, previous = rig.value(CURRENT), rig.value(PREVIOUS)
    assert current["username"] == rig.user
    assert current["password"] not in (original["password"], first["password"])
    assert previous == first
    assert logs_in(current) and logs_in(previous)
    assert not logs_in(original), "the first user's old password is gone"


def test_every_step_run_twice_changes_nothing_the_second_time(rig: Rig) -> None:
    token = rig.begin()
    before = rig.snapshot()
    for step in STEPS:
        rig.step(step, token)
        after_first = rig.snapshot()
        if step != "testSecret":
            assert after_first != before, f"{step} changed something the first time"
        rig.step(step, token)
        assert rig.snapshot() == after_first, f"{step} run again changed something"
        before = after_first


def test_the_other_user_gets_the_current_users_grants_but_not_its_password(rig: Rig) -> None:
    _mariadb_admin(f"GRANT PROCESS ON *.* TO '{rig.user}'@'%'")
    _mariadb_admin(f"CREATE TABLE `{rig.dbname}`.fares (id INT PRIMARY KEY)")
    _mariadb_admin(f"GRANT SELECT ON `{rig.dbname}`.fares TO '{rig.user}'@'%'")
    rig.rotate()
    clone = f"{rig.user}_clone"

    def grants(user: str) -> set[str]:
        lines = {row[0].split(" IDENTIFIED ")[0] for row in query("SHOW GRANTS FOR %s@'%%'", (user,))}
        return {line.replace(f"`{user}`", "`<user>`") for line in lines}

    assert grants(clone) == grants(rig.user)
    replayed = [
        rotation_lambda.grant_for(row[0], source=rig.user, target=clone)
        for row in query("SHOW GRANTS FOR %s@'%%'", (rig.user,))
    ]
    assert any("PASSWORD" in row[0] for row in query("SHOW GRANTS FOR %s@'%%'", (rig.user,))), "MariaDB shows the hash"
    assert not any("IDENTIFIED" in line or rig.user + "`" in line for line in replayed), replayed
    assert any("PROCESS ON *.*" in line for line in grants(clone)) and any("`fares`" in line for line in grants(clone))
    hashes = dict(query("SELECT User, authentication_string FROM mysql.user WHERE User IN (%s, %s)", (rig.user, clone)))
    assert hashes[clone] != hashes[rig.user]


def test_the_first_rotation_creates_the_user_with_all_privileges_on_the_app_database(rig: Rig) -> None:
    # A new cluster: the secret names its user, which the database does not have yet.
    _mariadb_admin(f"DROP USER '{rig.user}'@'%'")
    rig.rotate()
    current = rig.value(CURRENT)
    assert current["username"] == f"{rig.user}_clone" and logs_in(current)
    granted = [row[0] for row in query("SHOW GRANTS FOR %s@'%%'", (current["username"],))]
    assert any(line.startswith(f"GRANT ALL PRIVILEGES ON `{rig.dbname}`.*") for line in granted), granted


def _sabotage_pending_user(rig: Rig, sabotage: str) -> None:
    """Change the pending user behind the rotation's back: a new password, or no user at all."""
    clone = f"{rig.user}_clone"
    if sabotage == "password changed":
        _mariadb_admin(f"ALTER USER '{clone}'@'%' IDENTIFIED BY 'changed-behind-its-back'")
    else:
        _mariadb_admin(f"DROP USER '{clone}'@'%'")


@pytest.mark.parametrize("sabotage", ["password changed", "user dropped"])
def test_a_failing_test_step_raises_and_leaves_awscurrent_untouched(rig: Rig, sabotage: str) -> None:
    current_version = next(version for version, labels in rig.stages().items() if CURRENT in labels)
    token = rig.begin()
    rig.step("createSecret", token)
    rig.step("setSecret", token)
    _sabotage_pending_user(rig, sabotage)
    with pytest.raises(pymysql.err.OperationalError):
        rig.step("testSecret", token)
    assert CURRENT in rig.stages()[current_version] and PENDING in rig.stages()[token]
    assert rig.value(CURRENT)["username"] == rig.user and logs_in(rig.value(CURRENT))


@pytest.mark.parametrize("sabotage", ["password changed", "user dropped"])
def test_a_retried_set_step_repairs_a_pending_user_changed_behind_its_back(rig: Rig, sabotage: str) -> None:
    token = rig.begin()
    rig.step("createSecret", token)
    rig.step("setSecret", token)
    _sabotage_pending_user(rig, sabotage)
    rig.step("setSecret", token)
    rig.step("testSecret", token)
    rig.step("finishSecret", token)
    assert logs_in(rig.value(CURRENT))


def test_the_handler_finishes_by_forcing_a_new_deployment_of_the_service(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SKYCART_AWS_ENDPOINT_URL", rig.endpoint)
    monkeypatch.setenv("ECS_CLUSTER", rig.service.cluster)
    monkeypatch.setenv("ECS_SERVICE", rig.service.name)
    rotation_lambda._clients.cache_clear()  # a cold start, with this test's endpoint
    try:
        before = rig.deployment()
        token = rig.begin()
        for step in STEPS[:-1]:
            rotation_lambda.handler({"SecretId": rig.arn, "ClientRequestToken": token, "Step": step}, None)
        assert rig.deployment() == before, "nothing redeploys before the new secret is current"
        rotation_lambda.handler({"SecretId": rig.arn, "ClientRequestToken": token, "Step": "finishSecret"}, None)
        assert rig.deployment() != before
    finally:
        rotation_lambda._clients.cache_clear()


def test_steps_refuse_a_token_that_is_not_a_pending_version_of_the_secret(rig: Rig) -> None:
    with pytest.raises(rotation_lambda.RotationRefused, match="not a version"):
        rig.step("createSecret", str(uuid.uuid4()))
    previous = next(version for version, labels in rig.stages().items() if labels == [PREVIOUS])
    with pytest.raises(rotation_lambda.RotationRefused, match="not staged"):
        rig.step("createSecret", previous)


@pytest.mark.parametrize(
    "tampered", [{"host": "10.255.255.1"}, {"port": 3307}, {"dbname": "other"}, {"masterarn": "arn:other"}]
)
def test_the_set_step_refuses_a_pending_secret_for_another_server_before_connecting(
    rig: Rig, tampered: dict[str, Any]
) -> None:
    """Whoever could write AWSPENDING would otherwise receive the admin's login at their own host."""
    token = rig.begin()
    pending = {**rig.value(CURRENT), "username": rig.user + "_clone", "password": uuid.uuid4().hex, **tampered}
    rig.secrets.put_secret_value(
        SecretId=rig.arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=[PENDING]
    )
    before = rig.snapshot()
    started = time.monotonic()
    with pytest.raises(rotation_lambda.RotationRefused, match=f"pending secret's '{next(iter(tampered))}' differs"):
        rig.step("setSecret", token)
    assert time.monotonic() - started < 2, "refused before any connection was tried"
    assert rig.snapshot() == before


def test_steps_refuse_a_secret_whose_rotation_is_turned_off(rig: Rig) -> None:
    token = rig.begin()
    rig.secrets.cancel_rotate_secret(SecretId=rig.arn)
    before = rig.snapshot()
    with pytest.raises(rotation_lambda.RotationRefused, match="not enabled"):
        rig.step("createSecret", token)
    assert rig.snapshot() == before


@contextmanager
def serving(settings: Settings) -> Iterator[httpx.Client]:
    """The app on a free port over real HTTP, as one ECS task would run it."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=_free_port(), log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def task_settings(rig: Rig, secret: dict[str, Any], tmp_path: Path) -> Settings:
    """What ECS hands a task: the secret's current JSON, plus its ARN to follow rotations."""
    return Settings(
        db_secret=json.dumps(secret),
        db_secret_arn=rig.arn,
        aws_endpoint_url=rig.endpoint,
        aws_region=REGION,
        log_level="WARNING",
        access_log=False,
        metering_enabled=False,
        assets_dir=tmp_path / "assets",
    )


def assert_serves(client: httpx.Client, moment: str) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200, f"{moment}: {answer.text}"


def test_a_running_skycart_keeps_serving_through_a_rotation(rig: Rig, tmp_path: Path) -> None:
    settings = task_settings(rig, rig.value(CURRENT), tmp_path)
    upgrade(settings)
    with serving(settings) as task:
        assert_serves(task, "before the rotation")
        token = rig.begin()
        for step in STEPS:
            rig.step(step, token)
            assert_serves(task, f"after {step}")
        rig.end(token)
        assert kill_connections(rig.user) > 0
        assert_serves(task, "after its connections were dropped: the previous user still logs in")


def test_a_task_started_after_a_rotation_keeps_serving_through_the_next_one(rig: Rig, tmp_path: Path) -> None:
    upgrade(task_settings(rig, rig.value(CURRENT), tmp_path))
    rig.rotate()
    # What the forced deployment starts: tasks with the new secret.
    with serving(task_settings(rig, rig.value(CURRENT), tmp_path)) as task:
        assert_serves(task, "a task started after the rotation")
        token = rig.begin()
        for step in STEPS:
            rig.step(step, token)
            assert_serves(task, f"next rotation, after {step}")
        rig.end(token)
        assert kill_connections(f"{rig.user}_clone") > 0
        assert_serves(task, "after the next rotation and dropped connections")


def test_a_task_whose_password_was_rotated_away_reads_the_secret_again(rig: Rig, tmp_path: Path) -> None:
    original = rig.value(CURRENT)
    settings = task_settings(rig, original, tmp_path)
    upgrade(settings)
    with serving(settings) as task:
        assert_serves(task, "before the rotations")
        rig.rotate()
        rig.rotate()
        assert not logs_in(original), "the second rotation changed the task's password"
        assert kill_connections(rig.user) > 0
        assert_serves(task, "after its password changed and its connections were dropped")
