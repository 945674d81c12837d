"""Migrations: the schema they build is the models' schema, and they run down and up again."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import skycart.models  # noqa: F401
from skycart.config import Settings
from skycart.platform.db import Base
from skycart.platform.migrate import alembic_config


def _diff(url: str) -> list:
    async def _compare() -> list:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}),
                                              Base.metadata)
            )
        await engine.dispose()
        return diff

    return asyncio.run(_compare())


def test_migrated_schema_matches_the_models(backend: str) -> None:
    from skycart.platform.migrate import upgrade

    upgrade(Settings(database_url=backend))
    assert _diff(backend) == []


def test_migrations_downgrade_to_nothing_and_upgrade_again(backend: str) -> None:
    from alembic import command

    config = alembic_config(Settings(database_url=backend))
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    assert _diff(backend) == []
