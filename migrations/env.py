"""Alembic environment: the tables are SQLModel's metadata; the URL comes from settings.

Every run is one transaction, on SQLite as on PostgreSQL: a migration that fails (or a process
killed in the middle of one) leaves the database as it was before the run, never half-way.
SQLite's connection is made for it by ``tidtam.infra.db.migration_engine`` (foreign keys off,
as batch mode needs; transactional DDL); every row is checked before the commit instead.
"""

from alembic import context
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    from tidtam.infra.settings import get_settings

    config.set_main_option("sqlalchemy.url", get_settings().db_url.replace("%", "%%"))


def run_migrations_online() -> None:
    from tidtam.infra.db import migration_engine

    engine = migration_engine(config.get_main_option("sqlalchemy.url").replace("%%", "%"))
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            context.configure(connection=connection, target_metadata=SQLModel.metadata,
                              render_as_batch=sqlite, compare_type=True,
                              # pysqlite's own transaction handling is off (migration_engine), so
                              # SQLite's DDL is transactional: Alembic need not treat it as not.
                              transactional_ddl=True)
            with context.begin_transaction():
                if sqlite:
                    _clear_leftovers_of_earlier_releases(connection)
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
    finally:
        engine.dispose()


# Before this environment, SQLite's DDL was committed statement by statement, so a migration that
# failed (0004, 0005 and 0007 always did on a database with data: FOREIGN KEY constraint failed
# on DROP TABLE) left what it had created so far, and every later run failed on it ("table
# _alembic_tmp_directive already exists", "table provincial_report already exists"). What such a
# run can have left is known and closed (no run can leave anything now): the copies batch mode
# makes of a table, and the tables and indexes 0002-0006 create, found while the database's
# revision is still before the migration that creates them. Each is removed before migrating
# when nothing can be lost: the copy's table still exists (the DROP and the rename came after the
# copy's INSERT, in its transaction, which was rolled back), the table is empty. Anything else
# is refused, with what to look at.
_TABLES_CREATED_BY = {
    "report": "0002", "report_photo": "0002",
    "line_contact": "0003", "line_webhook_event": "0003", "line_group": "0003",
    "line_link_code": "0003",
    "provincial_report": "0005",
}
_INDEXES_CREATED_BY = {"ix_audit_log_entity": "0006"}
_BATCH_COPY = "_alembic_tmp_"


def _clear_leftovers_of_earlier_releases(connection) -> None:
    objects = dict(connection.exec_driver_sql(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'index')").fetchall())
    if "alembic_version" not in objects:
        return  # a new database
    current = context.get_context().get_current_revision()
    applied = {script.revision for script in context.script.iterate_revisions(current, "base")}
    for name in sorted(objects):
        if name.startswith(_BATCH_COPY):
            original = name.removeprefix(_BATCH_COPY)
            if objects.get(original) != "table":
                raise RuntimeError(
                    f"the database holds {name}, a copy a failed migration made of the table "
                    f"{original}, but {original} itself is gone: restore the database from its "
                    f"backup (or rename {name} to {original} after checking it) and migrate again")
            connection.exec_driver_sql(f'DROP TABLE "{name}"')
    for table, revision in _TABLES_CREATED_BY.items():
        if objects.get(table) == "table" and revision not in applied:
            if connection.exec_driver_sql(f'SELECT count(*) FROM "{table}"').scalar():
                raise RuntimeError(
                    f"the database is at migration {current} but holds rows in {table}, a table "
                    f"migration {revision} creates: it is not the database its revision says; "
                    "restore it from its backup")
            connection.exec_driver_sql(f'DROP TABLE "{table}"')
    for index, revision in _INDEXES_CREATED_BY.items():
        if objects.get(index) == "index" and revision not in applied:
            connection.exec_driver_sql(f'DROP INDEX "{index}"')


def _check_foreign_keys(connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError("the migration would leave rows pointing at missing rows (table, "
                           f"rowid, parent, constraint): {broken[:10]}; nothing was changed")


run_migrations_online()
