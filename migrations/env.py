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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a table (copy, DROP the old one, rename the copy): with
            # foreign keys enforced, dropping a table that other rows point at fails, as SQLite's
            # own ALTER TABLE procedure warns. Off while migrating (it cannot change inside a
            # transaction), then every row is checked and enforcement is back on.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(connection=connection, target_metadata=SQLModel.metadata,
                              render_as_batch=sqlite, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _check_foreign_keys(connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows pointing at missing rows: {broken[:10]}")


run_migrations_online()
