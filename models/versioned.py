"""The conditional write of a versioned row: one ``UPDATE … WHERE id AND version [AND status]
… RETURNING version``, so that of any number of concurrent writers holding the same version
exactly one succeeds (the database checks the condition at write time: on PostgreSQL the others
wait for the row lock, then find the version changed; on SQLite they wait for the write lock).

The statement for each table and set of columns is built once and reused with new parameters
(building it on every call cost as much as running it), and the session's copy of the row is
updated in memory from what was written, without reading it back.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import bindparam, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel

Row = TypeVar("Row", bound=SQLModel)


def versioned_update(session: Session, model: type[Row], row_id: int, *,
                     expected_version: int | None = None,
                     statuses: Iterable[str] | None = None, **values: Any) -> Row | None:
    """Write ``values`` and bump the version if the row is still at ``expected_version`` (when
    given) and in one of ``statuses`` (when given); the session's copy of the row, updated, or
    None when no row matched (another writer changed it first)."""
    version = versioned_write(session, model, row_id, expected_version=expected_version,
                              statuses=statuses, **values)
    if version is None:
        return None
    row = session.get(model, row_id)  # the copy the caller holds: no query when it is loaded
    for name, value in values.items():
        set_committed_value(row, name, value)
    set_committed_value(row, "version", version)
    return row


def versioned_write(session: Session, model: type[SQLModel], row_id: int, *,
                    expected_version: int | None = None, statuses: Iterable[str] | None = None,
                    **values: Any) -> int | None:
    """The same conditional UPDATE without touching the session's copy of the row: the new
    version, or None when no row matched."""
    statement = _statement(model, tuple(sorted(values)), expected_version is not None,
                           statuses is not None)
    params: dict[str, Any] = {f"new_{name}": value for name, value in values.items()}
    params["row_id"] = row_id
    if expected_version is not None:
        params["expected_version"] = expected_version
    if statuses is not None:
        params["statuses"] = list(statuses)
    return session.execute(statement, params).scalar()


@lru_cache(maxsize=64)
def _statement(model: type[SQLModel], columns: tuple[str, ...], with_version: bool,
               with_statuses: bool):
    table = model.__table__
    conditions = [table.c.id == bindparam("row_id")]
    if with_version:
        conditions.append(table.c.version == bindparam("expected_version"))
    if with_statuses:
        conditions.append(table.c.status.in_(bindparam("statuses", expanding=True)))
    return (update(table).where(*conditions)
            .values(version=table.c.version + 1,
                    **{name: bindparam(f"new_{name}", type_=table.c[name].type)
                       for name in columns})
            .returning(table.c.version))
