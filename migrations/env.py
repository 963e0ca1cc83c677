"""Alembic environment: the tables are SQLModel's metadata; the URL comes from settings."""

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    from tidtam.infra.settings import get_settings

    config.set_main_option("sqlalchemy.url", get_settings().db_url.replace("%", "%%"))


def run_migrations_online() -> None:
    from tidtam.infra.db import engine_for

    engine = engine_for(config.get_main_option("sqlalchemy.url").replace("%%", "%"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=SQLModel.metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
