"""The organisation tree: provinces and their districts, with DOPA codes (from geothai)."""

from __future__ import annotations

from sqlmodel import Field, Session, SQLModel, col, select


class Province(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=2, description="DOPA province code, e.g. 27")
    name_th: str
    name_en: str


class District(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=4, description="DOPA district code, e.g. 2701")
    province_code: str = Field(foreign_key="province.code", index=True, max_length=2)
    name_th: str
    name_en: str


def districts_of(session: Session, province_code: str) -> list[District]:
    return list(session.exec(
        select(District).where(District.province_code == province_code).order_by(District.code)))


def districts_in(session: Session, province_codes: list[str]) -> list[District]:
    """The districts of several provinces, by code."""
    return list(session.exec(select(District).where(col(District.province_code).in_(province_codes))
                             .order_by(District.code)))


def get_district(session: Session, code: str) -> District | None:
    return session.get(District, code)


def get_province(session: Session, code: str) -> Province | None:
    return session.get(Province, code)


def all_provinces(session: Session) -> list[Province]:
    return list(session.exec(select(Province).order_by(Province.code)))
