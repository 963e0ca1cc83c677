"""The national org tree from geothai: the Department's 76 provinces and 878 districts.

geothai holds 77 provinces and 928 districts: Bangkok (10) and its 50 khet are the BMA's, not
CDD district offices, so "all" leaves them out and only an explicit "10" loads them.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel, col, func, select

from domain.access import Role
from domain.errors import InvalidInput, NotFound
from models.org import District, Province
from models.user import User
from tests.conftest import NOW
from tidtam.app.accounts import ensure_user
from tidtam.app.orgtree import department_provinces, load_org_tree, load_provinces, parse_province_codes


def count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_all_loads_76_provinces_and_878_districts_without_bangkok(session):
    loaded = load_org_tree(session, parse_province_codes("all"))
    assert (loaded.provinces, loaded.districts) == (76, 878)
    assert (count(session, Province), count(session, District)) == (76, 878)
    assert session.get(District, "2701").name_th == "เมืองสระแก้ว"
    assert session.get(District, "2701").province_code == "27"
    chiang_mai = session.get(District, "5001")
    assert (chiang_mai.name_th, chiang_mai.name_en, chiang_mai.province_code) == (
        "เมืองเชียงใหม่", "Mueang Chiang Mai", "50")
    assert session.get(Province, "10") is None
    assert session.exec(select(District).where(col(District.code).startswith("10"))).all() == []


def test_bangkok_only_when_asked_by_code(session):
    loaded = load_org_tree(session, parse_province_codes("10"))
    assert (loaded.provinces, loaded.districts) == (1, 50)
    assert session.get(Province, "10").name_th == "กรุงเทพมหานคร"
    assert parse_province_codes("all,10")[-1] == "10" and len(parse_province_codes("all,10")) == 77


def test_loading_again_adds_nothing_and_refreshes_names(session):
    load_provinces(session, ["27", "50"])
    session.get(District, "2701").name_en = "stale"
    assert load_provinces(session, ["27"]) == 9
    assert session.get(District, "2701").name_en == "Mueang Sa Kaeo"
    assert count(session, District) == 9 + 25


@pytest.mark.parametrize("text", ["99", "27,x", "", " , "])
def test_bad_codes_are_refused_in_thai_and_english(text):
    with pytest.raises(InvalidInput) as refused:
        parse_province_codes(text)
    assert "--provinces" in refused.value.message_en and "--provinces" in refused.value.message_th


def test_an_unknown_code_given_directly_is_not_found(session):
    with pytest.raises(NotFound, match="unknown province code '99'"):
        load_provinces(session, ["99"])


def test_department_provinces_are_geothai_without_bangkok():
    codes = department_provinces()
    assert len(codes) == len(set(codes)) == 76 and "10" not in codes and {"27", "50", "38"} <= set(codes)


# --- the Department viewer: a user with no province --------------------------------------------

def test_a_department_viewer_belongs_to_no_province(session):
    load_provinces(session, ["27"])
    viewer, created = ensure_user(session, username="dept", full_name="กรมการพัฒนาชุมชน",
                                  role=Role.DEPARTMENT_VIEWER, province_code=None, district_code=None,
                                  now=NOW, password="x-not-used-x")
    session.expire_all()
    stored = session.get(User, viewer.id)
    assert created and (stored.role, stored.province_code) == (Role.DEPARTMENT_VIEWER, None)


@pytest.mark.parametrize(("role", "province"), [(Role.DEPARTMENT_VIEWER, "27"), (Role.COORDINATOR, None)])
def test_placement_must_fit_the_role(session, role, province):
    load_provinces(session, ["27"])
    with pytest.raises(InvalidInput):
        ensure_user(session, username="misplaced", full_name="x", role=role, province_code=province,
                    district_code=None, now=NOW, password="x-not-used-x")


def test_migration_0004_matches_the_user_table(migrated_engine):
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
