"""The national dataset every benchmark runs on, and scratch databases to build it in.

76 provinces and 878 districts (geothai, Bangkok left out); the FY 2567 directive launched once
per province (slug and ``province_code`` changed in memory): 878 × 12 = 10,536 tracked items, all
open; staff and head per district, coordinator and head per province, each with a LINE id, an
e-mail address and the password ``PASSWORD`` (one argon2 hash shared by all, made once).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bench._common import ROOT
from domain.access import Role
from domain.directive import DirectiveSpec, load_directive
from models.directive import TrackedItem
from models.org import District
from models.user import User
from tidtam.app.accounts import hash_password
from tidtam.app.orgtree import department_provinces, load_provinces
from tidtam.app.tracking import launch_directive
from tidtam.infra.db import engine_for, migrate, session_scope

DIRECTIVE = ROOT / "directives" / "fy2567-sakaeo-volunteer-centers.yaml"
LAUNCHED = datetime(2024, 7, 12, 2, 0, tzinfo=UTC)
PASSWORD = "bench-national-password"
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class NationalDataset:
    url: str
    engine: Engine
    provinces: list[str]
    districts: int
    items: int
    people: int


def national_dataset(url: str) -> NationalDataset:
    """Migrate ``url`` (an empty database) and load the whole country into it."""
    migrate(url)
    engine = engine_for(url)
    spec = load_directive(DIRECTIVE)
    provinces = department_provinces()
    with session_scope(engine) as session:
        districts = load_provinces(session, provinces)
        for code in provinces:
            launch_directive(session, province_copy(spec, code), now=LAUNCHED)
        made = people(session, hash_password(PASSWORD))
        session.add_all(made)
    with session_scope(engine) as session:
        items = session.exec(select(func.count()).select_from(TrackedItem)).one()
    return NationalDataset(url, engine, provinces, districts, items, len(made))


def province_copy(spec: DirectiveSpec, code: str) -> DirectiveSpec:
    return spec.model_copy(update={"slug": f"{spec.slug}-{code}", "province_code": code})


def people(session: Session, password_hash: str) -> list[User]:
    """Staff and head per district, coordinator and head per province, reachable on both channels."""
    made: list[User] = []

    def add(name: str, role: Role, province: str, district: str | None = None) -> None:
        made.append(User(username=name, full_name=name, role=role, province_code=province,
                         district_code=district, email=f"{name}@bench.tidtam.local",
                         line_user_id="U" + f"{len(made):032x}", password_hash=password_hash,
                         created_at=LAUNCHED))

    for code in department_provinces():
        add(coordinator(code), Role.COORDINATOR, code)
        add(f"province-head-{code}", Role.PROVINCIAL_HEAD, code)
    for district in session.exec(select(District)):
        add(f"staff-{district.code}", Role.DISTRICT_STAFF, district.province_code, district.code)
        add(f"head-{district.code}", Role.DISTRICT_HEAD, district.province_code, district.code)
    return made


def coordinator(province_code: str) -> str:
    """The username of a province's coordinator (may mark any item of the province)."""
    return f"coordinator-{province_code}"


@contextmanager
def scratch_database(kind: str, folder: Path) -> Iterator[str]:
    """An empty database for the block: a SQLite file in ``folder``, or a PostgreSQL database
    created at 127.0.0.1:5432 (trust auth, user postgres) and dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'national.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    import psycopg

    name = f"tidtam_bench_{uuid.uuid4().hex[:12]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_SERVER}/{name}"
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DEMO_AS_OF = datetime(2024, 8, 13, 3, 0, tzinfo=UTC)  # Tuesday 13 August 2024, 10:00 Bangkok


def demo_dataset(kind: str, url: str):
    """``tidtam demo-data --provinces all --seed 1`` as of ``DEMO_AS_OF``, without photo files,
    into ``url``; prints what it built and how long it took; returns the engine and the result."""
    import time

    from tidtam.demo.dataset import generate

    engine = engine_for(url)
    started = time.perf_counter()
    result = generate(engine, provinces=department_provinces(), seed=1, as_of=DEMO_AS_OF,
                      photos=None)
    print(f"[{kind}] dataset: {result.districts} districts, {result.items} tracked items, "
          f"{sum(result.outbox.values())} outbox rows, built in {time.perf_counter() - started:.0f} s")
    return engine, result
