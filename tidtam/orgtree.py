"""Load provinces and districts (DOPA codes, Thai/English names) from geothai."""

from __future__ import annotations

import geothai
from sqlmodel import Session

from domain.errors import NotFound
from models.org import District, Province


def load_provinces(session: Session, codes: list[str]) -> int:
    """Insert or refresh the given provinces and their districts; returns districts loaded."""
    count = 0
    for code in codes:
        source = geothai.province(code)
        if source is None:
            raise NotFound(f"unknown province code {code!r}", f"ไม่พบรหัสจังหวัด {code!r}")
        session.merge(Province(code=source.code, name_th=source.name_th, name_en=source.name_en))
        for district in geothai.districts(code):
            session.merge(District(code=district.code, province_code=source.code,
                                   name_th=district.name_th, name_en=district.name_en))
            count += 1
    session.flush()
    return count
