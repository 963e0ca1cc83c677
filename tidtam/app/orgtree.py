"""Load provinces and districts (DOPA codes, Thai/English names) from geothai.

The Department of Community Development works with 76 provinces and their 878 districts.
geothai also holds Bangkok (code 10) and its 50 khet, which are not CDD districts: "all"
leaves them out, and naming "10" explicitly loads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import geothai
from sqlmodel import Session, col, select

from domain.errors import InvalidInput, NotFound
from models.org import District, Province

ALL = "all"
BANGKOK = "10"  # its khet are run by the BMA, not by a CDD district office


@dataclass(frozen=True)
class Loaded:
    provinces: int
    districts: int


def department_provinces() -> list[str]:
    """The province codes the Department works with: every province in geothai but Bangkok."""
    return [p.code for p in geothai.provinces() if p.code != BANGKOK]


def parse_province_codes(text: str) -> list[str]:
    """``all``, or a comma list of DOPA codes (``27,50``); ``all,10`` adds Bangkok."""
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    if not tokens:
        raise InvalidInput("--provinces: give 'all' or province codes such as 27,50",
                           "--provinces: ระบุ all หรือรหัสจังหวัด เช่น 27,50")
    codes: list[str] = []
    for token in tokens:
        for code in department_provinces() if token.lower() == ALL else [token]:
            if code not in codes:
                codes.append(code)
    unknown = [code for code in codes if geothai.province(code) is None]
    if unknown:
        raise InvalidInput(f"--provinces: unknown province code(s) {', '.join(unknown)} "
                           "(DOPA codes are two digits, e.g. 27; or 'all')",
                           f"--provinces: ไม่พบรหัสจังหวัด {', '.join(unknown)} "
                           "(รหัสจังหวัดของกรมการปกครองมีสองหลัก เช่น 27 หรือใช้ all)")
    return codes


def load_provinces(session: Session, codes: Iterable[str]) -> int:
    """Insert or refresh the given provinces and their districts; returns districts loaded."""
    return load_org_tree(session, codes).districts


def load_org_tree(session: Session, codes: Iterable[str]) -> Loaded:
    """Insert or refresh provinces and districts in bulk: two reads and batched writes."""
    sources = [_source(code) for code in dict.fromkeys(codes)]
    districts = [d for p in sources for d in geothai.districts(p.code)]
    _upsert(session, Province, {p.code: {"name_th": p.name_th, "name_en": p.name_en}
                                for p in sources})
    session.flush()  # provinces first: districts refer to them
    _upsert(session, District, {d.code: {"province_code": d.province_code, "name_th": d.name_th,
                                         "name_en": d.name_en} for d in districts})
    session.flush()
    return Loaded(len(sources), len(districts))


def _source(code: str) -> geothai.Province:
    source = geothai.province(code)
    if source is None:
        raise NotFound(f"unknown province code {code!r} (DOPA codes are two digits, e.g. 27)",
                       f"ไม่พบรหัสจังหวัด {code!r} (รหัสจังหวัดของกรมการปกครองมีสองหลัก เช่น 27)")
    return source


def _upsert(session: Session, model: type[Province] | type[District],
            rows: dict[str, dict[str, str]]) -> None:
    """Add the rows that are new, refresh the names of those already there."""
    existing = {row.code: row for row in
                session.exec(select(model).where(col(model.code).in_(list(rows))))}
    for code, values in rows.items():
        row = existing.get(code)
        if row is None:
            session.add(model(code=code, **values))
            continue
        for name, value in values.items():
            setattr(row, name, value)
