"""Migrations: the schema they build is the models' schema, and they run down and up again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import skycart.models  # noqa: F401
from skycart.config import Settings
from skycart.platform.db import Base
from skycart.platform.migrate import alembic_config
from tests.conftest import scratch_database


def _diff(url: str) -> list:
    async def _compare() -> list:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
        await engine.dispose()
        return diff

    return asyncio.run(_compare())


@pytest.fixture
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of the backend under test of its own: the live server's is left alone."""
    with scratch_database("sqlite" if backend.startswith("sqlite") else "mariadb", tmp_path) as url:
        yield url


def test_migrated_schema_matches_the_models(empty_database: str) -> None:
    command.upgrade(alembic_config(Settings(database_url=empty_database)), "head")
    assert _diff(empty_database) == []


def test_migrations_downgrade_to_nothing_and_upgrade_again(empty_database: str) -> None:
    config = alembic_config(Settings(database_url=empty_database))
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert _diff(empty_database) != [], "the downgrade removed the tables"
    command.upgrade(config, "head")
    assert _diff(empty_database) == []
