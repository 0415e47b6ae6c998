"""The committed migrations build the schema on SQLite and PostgreSQL and match the models."""

import pytest
from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from backend.core import db as core_db
from tests.conftest import reset_postgres


@pytest.fixture
def empty_database(settings):
    if not settings.is_sqlite:
        reset_postgres(settings.database_url)
    return settings


@pytest.mark.slow
async def test_migrations_apply_and_match_models(empty_database):
    settings = empty_database
    await core_db.migrate(settings)
    await core_db.migrate(settings)  # a second run has nothing to do
    config = core_db.tortoise_config(settings)
    await Tortoise.init(config=config)
    try:
        apps_config = config["apps"]
        detector = MigrationAutodetector(Tortoise.apps, apps_config)
        pending = await detector.changes()
        assert not pending, "models changed without a migration: run `make migrations`"
        from backend.accounts.models import User

        assert await User.all().count() == 0
    finally:
        await Tortoise.close_connections()
