"""Database credentials from Secrets Manager, and reconnecting after a password rotation."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import boto3
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from skycart.config import ConfigError, Settings
from skycart.platform.db import create_engine
from tests.conftest import _mariadb_admin, scratch_database


def _secret(user: str, password: str, dbname: str) -> str:
    return json.dumps({"username": user, "password": password, "host": "127.0.0.1", "port": 3306, "dbname": dbname})


def test_the_url_comes_from_the_secret_and_errors_never_show_it() -> None:
    settings = Settings(db_secret=_secret("app", "p@ss/word", "sky"))
    assert settings.database_url == "mysql+asyncmy://app:p%40ss%2Fword@127.0.0.1:3306/sky"
    assert "p@ss" not in repr(settings)
    with pytest.raises(ConfigError) as raised:
        Settings(db_secret='{"username": "app", "password": "hunter2"}')
    assert "hunter2" not in str(raised.value) and "hunter2" not in repr(raised.value)


def test_after_a_rotation_new_connections_reread_the_secret(moto_endpoint: str, tmp_path: Path) -> None:
    with scratch_database("mariadb", tmp_path) as url:
        dbname = url.rsplit("/", 1)[1]
        user = f"sky_{uuid.uuid4().hex[:8]}"
        _mariadb_admin(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'first-password'")
        try:
            _mariadb_admin(f"GRANT ALL ON {dbname}.* TO '{user}'@'%'")
            secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="eu-central-1")
            arn = secrets.create_secret(Name=f"skycart/{user}", SecretString=_secret(user, "first-password", dbname))[
                "ARN"
            ]
            common = dict(
                db_secret=_secret(user, "first-password", dbname),
                aws_endpoint_url=moto_endpoint,
                aws_region="eu-central-1",
            )

            async def _run() -> tuple[int, bool]:
                following = create_engine(Settings(**common, db_secret_arn=arn))
                stale = create_engine(Settings(**common))
                for engine in (following, stale):
                    async with engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
                # The rotation: the password changes in the database and in the secret.
                _mariadb_admin(f"ALTER USER '{user}'@'%' IDENTIFIED BY 'second-password'")
                secrets.put_secret_value(SecretId=arn, SecretString=_secret(user, "second-password", dbname))
                for engine in (following, stale):
                    await engine.dispose()  # new connections from here on
                async with following.connect() as conn:
                    answer = (await conn.execute(text("SELECT 1"))).scalar_one()
                try:
                    async with stale.connect() as conn:
                        await conn.execute(text("SELECT 1"))
                    refused = False
                except OperationalError:
                    refused = True
                await following.dispose()
                await stale.dispose()
                return answer, refused

            answer, stale_refused = asyncio.run(_run())
        finally:
            _mariadb_admin(f"DROP USER IF EXISTS '{user}'@'%'")
    assert answer == 1, "the engine that knows the secret's ARN reconnected with the new password"
    assert stale_refused, "without the ARN the old password is refused (so the test can tell)"
