"""Rotates the app's database secret with alternating users, then redeploys the ECS service.

Secrets Manager calls the function four times per rotation (createSecret, setSecret, testSecret,
finishSecret) and retries a failed step, so every step first checks whether its work is already done.
Two database users take turns, `<name>` and `<name>_clone`: a rotation gives the user that is not
current a new password, so tasks still holding the current secret keep working until the next one.

The secret is `{username, password, host, port, dbname, masterarn}`; `masterarn` names the admin secret
(RDS-managed, `{username, password}`) that creates the users and sets their passwords.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import Any

import pymysql

from skycart_deploy.aws import client

log = logging.getLogger(__name__)

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
CLONE_SUFFIX = "_clone"
ADMIN_SECRET_KEY = "masterarn"
PASSWORD_LENGTH = 40
# What a rotation may not change: only the user and the password alternate.
SAME_AS_CURRENT = ("host", "port", "dbname", ADMIN_SECRET_KEY)
# MySQL 8 allows 32 characters in a user name (MariaDB 80); plain names keep the SQL free of quoting doubts.
USERNAME = re.compile(r"[A-Za-z0-9_]{1,32}")
DATABASE_NAME = re.compile(r"[A-Za-z0-9_$]{1,64}")

Connect = Callable[..., Any]


class RotationRefused(ValueError):
    """The event or the secret is not one this function may rotate."""


@dataclass(frozen=True)
class EcsService:
    """The service whose tasks read the secret at start."""

    cluster: str
    name: str


def handler(event: dict[str, Any], context: Any) -> None:
    """Lambda entry point: one rotation step for the secret in `event`."""
    secrets, ecs = _clients()
    rotate(event=event, secrets=secrets, ecs=ecs, service=_service_from_environment())


# Built on the first invocation and kept for the life of the execution environment (once per cold start).
@functools.cache
def _clients() -> tuple[Any, Any]:
    return client("secretsmanager"), client("ecs")


def _service_from_environment() -> EcsService | None:
    cluster, service = os.environ.get("ECS_CLUSTER"), os.environ.get("ECS_SERVICE")
    return EcsService(cluster, service) if cluster and service else None


def rotate(
    *,
    event: Mapping[str, Any],
    secrets: Any,
    ecs: Any,
    service: EcsService | None,
    connect: Connect = pymysql.connect,
) -> None:
    """Check the event against the secret's versions, then run its step."""
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    metadata = secrets.describe_secret(SecretId=arn)
    if metadata.get("RotationEnabled") is False:
        raise RotationRefused(f"rotation is not enabled for {arn}")
    stages = metadata["VersionIdsToStages"]
    if token not in stages:
        raise RotationRefused(f"version {token} is not a version of {arn}")
    if CURRENT in stages[token]:
        log.info("rotation_step_skipped", extra={"step": step, "secret": arn, "version": token, "why": "current"})
        return
    if PENDING not in stages[token]:
        raise RotationRefused(f"version {token} of {arn} is not staged {PENDING}")
    log.info("rotation_step", extra={"step": step, "secret": arn, "version": token})
    if step == "createSecret":
        create_secret(secrets=secrets, arn=arn, token=token)
    elif step == "setSecret":
        set_secret(secrets=secrets, arn=arn, token=token, connect=connect)
    elif step == "testSecret":
        test_secret(secrets=secrets, arn=arn, token=token, connect=connect)
    elif step == "finishSecret":
        finish_secret(secrets=secrets, ecs=ecs, arn=arn, token=token, service=service)
    else:
        raise RotationRefused(f"unknown rotation step {step!r}")


def create_secret(*, secrets: Any, arn: str, token: str) -> None:
    """Stage the other user with a new password as AWSPENDING, unless this version has a value already."""
    current = _secret_value(secrets, arn, stage=CURRENT)
    try:
        secrets.get_secret_value(SecretId=arn, VersionId=token, VersionStage=PENDING)
        log.info("create_secret_done_before", extra={"secret": arn, "version": token})
        return
    except secrets.exceptions.ResourceNotFoundException:
        pass
    password = secrets.get_random_password(PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True)["RandomPassword"]
    pending = {**current, "username": alternate_username(current["username"]), "password": password}
    secrets.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(pending), VersionStages=[PENDING]
    )
    log.info("create_secret_staged", extra={"secret": arn, "version": token, "user": pending["username"]})


def set_secret(*, secrets: Any, arn: str, token: str, connect: Connect = pymysql.connect) -> None:
    """Give the pending user the current user's grants and the pending password, as the admin."""
    current = _secret_value(secrets, arn, stage=CURRENT)
    pending = _secret_value(secrets, arn, stage=PENDING, version=token)
    # Before anything connects anywhere: a pending secret that names another server (or another admin
    # secret) would otherwise get the admin's credentials sent to it. AWS's own rotation samples refuse it too.
    for key in SAME_AS_CURRENT:
        if pending.get(key) != current.get(key):
            raise RotationRefused(f"the pending secret's {key!r} differs from the current secret's")
    # The password is the last thing set, so a working login means every earlier statement ran too.
    if _logs_in(pending, connect):
        log.info("set_secret_done_before", extra={"secret": arn, "version": token, "user": pending["username"]})
        return
    if pending["username"] != alternate_username(current["username"]):
        raise RotationRefused(f"the pending user {pending['username']!r} does not alternate with the current one")
    if ADMIN_SECRET_KEY not in pending:
        raise RotationRefused(f"the secret names no admin secret under {ADMIN_SECRET_KEY!r}")
    admin = _secret_value(secrets, pending[ADMIN_SECRET_KEY], stage=CURRENT)
    if admin["username"] in (current["username"], pending["username"]):
        raise RotationRefused("the app secret must not hold the admin user")
    with _session(connect, pending, admin=admin) as db:
        copy_user(
            db,
            source=current["username"],
            target=pending["username"],
            password=pending["password"],
            dbname=pending["dbname"],
        )
    log.info("set_secret_done", extra={"secret": arn, "version": token, "user": pending["username"]})


def test_secret(*, secrets: Any, arn: str, token: str, connect: Connect = pymysql.connect) -> None:
    """Log in with the pending secret and run a query; any failure raises and AWSCURRENT stays where it is."""
    pending = _secret_value(secrets, arn, stage=PENDING, version=token)
    with _session(connect, pending) as db, db.cursor() as cursor:
        cursor.execute("SELECT NOW()")
        cursor.fetchone()
    log.info("test_secret_passed", extra={"secret": arn, "version": token, "user": pending["username"]})


def finish_secret(*, secrets: Any, ecs: Any, arn: str, token: str, service: EcsService | None) -> None:
    """Make the pending version AWSCURRENT, then redeploy the service so new tasks read it."""
    stages = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next(version for version, labels in stages.items() if CURRENT in labels)
    if current == token:
        log.info("finish_secret_done_before", extra={"secret": arn, "version": token})
        return
    secrets.update_secret_version_stage(
        SecretId=arn, VersionStage=CURRENT, MoveToVersionId=token, RemoveFromVersionId=current
    )
    log.info("finish_secret_current", extra={"secret": arn, "version": token, "previous": current})
    if service is not None:
        ecs.update_service(cluster=service.cluster, service=service.name, forceNewDeployment=True)
        log.info("service_redeployed", extra={"cluster": service.cluster, "service": service.name})


def alternate_username(username: str) -> str:
    """`app` -> `app_clone` and back."""
    other = username.removesuffix(CLONE_SUFFIX) if username.endswith(CLONE_SUFFIX) else username + CLONE_SUFFIX
    if not USERNAME.fullmatch(other):
        raise RotationRefused(f"user name {other!r} is not 1-32 letters, digits or underscores")
    return other


def copy_user(db: Any, *, source: str, target: str, password: str, dbname: str) -> None:
    """Create `target` where missing with `source`'s grants (or all on `dbname` if `source` does not exist yet)."""
    with db.cursor() as cursor:
        cursor.execute("SELECT Host FROM mysql.user WHERE User = %s", (source,))
        hosts = [row[0] for row in cursor.fetchall()]
        for host in hosts or ["%"]:
            # A throwaway password until the grants are in place; the real one comes last.
            cursor.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (target, host, token_urlsafe(32)))
            if hosts:
                cursor.execute("SHOW GRANTS FOR %s@%s", (source, host))
                for (grant,) in cursor.fetchall():
                    cursor.execute(grant_for(grant, source=source, target=target))
            else:
                if not DATABASE_NAME.fullmatch(dbname):
                    raise RotationRefused(f"database name {dbname!r} is not a plain identifier")
                cursor.execute(f"GRANT ALL PRIVILEGES ON `{dbname}`.* TO %s@%s", (target, host))
            cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (target, host, password))


_IDENTIFIED = re.compile(
    r"\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s.*?|WITH\s.*?)(?=\s+REQUIRE\s|\s+WITH\s+(?:GRANT|MAX_)|$)"
)


def grant_for(grant: str, *, source: str, target: str) -> str:
    """One line of SHOW GRANTS for `source`, granted to `target` instead and without `source`'s password."""
    grantee = re.compile(rf"(\b(?:TO|FROM)\s+)([`']){re.escape(source)}\2@")
    replaced, count = grantee.subn(lambda found: f"{found[1]}{found[2]}{target}{found[2]}@", grant)
    if count != 1:
        raise RotationRefused(f"cannot find the grantee {source!r} in a SHOW GRANTS line")
    return _IDENTIFIED.sub("", replaced)


def _secret_value(secrets: Any, secret_id: str, *, stage: str, version: str | None = None) -> dict[str, Any]:
    # Always name the stage: without it moto answers the version the secret was created with.
    ask = {"SecretId": secret_id, "VersionStage": stage} | ({"VersionId": version} if version else {})
    value = json.loads(secrets.get_secret_value(**ask)["SecretString"])
    if not isinstance(value, dict) or not {"username", "password"} <= value.keys():
        raise RotationRefused(f"secret {secret_id} ({stage}) is not JSON with username and password")
    return value


@contextmanager
def _session(connect: Connect, secret: Mapping[str, Any], *, admin: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A connection to the secret's server: as its user into its database, or as `admin` into none."""
    login = admin or secret
    # Without TLS options PyMySQL (>= 1.2) uses TLS whenever the server offers it; Aurora requires it.
    connection = connect(
        host=secret["host"],
        port=int(secret.get("port", 3306)),
        user=login["username"],
        password=login["password"],
        database=None if admin else secret["dbname"],
        connect_timeout=5,
        autocommit=True,
    )
    with closing(connection):
        yield connection


def _logs_in(secret: Mapping[str, Any], connect: Connect) -> bool:
    try:
        with _session(connect, secret):
            return True
    except pymysql.err.OperationalError:
        return False
