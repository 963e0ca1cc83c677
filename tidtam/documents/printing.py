"""The official report form (enclosure 3) as a printable A4 page in Thai: per district and for the province.

A page is one standalone HTML string — the stylesheet inlined, photos embedded as data: URIs —
so it prints the same from a browser tab or from a Chromium subprocess that has no cookie
and no network (tidtam.documents.pdf). Access goes through tidtam.app.reporting: district staff print only
their own district, and only the province prints the compilation.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from itertools import chain, zip_longest
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from sqlmodel import Session

from domain.directive import DirectiveSpec, FormSpec
from domain.errors import NotFound
from domain.report import ACCEPTED, NO_REPORT, Compilation, ReportContent, _kind_key, form_of
from domain.thaidate import thai_date, thai_datetime, to_thai_digits
from models.directive import Directive
from models.org import get_province
from models.report import ReportPhoto, get_report, photos_of
from models.user import User
from tidtam.app.labels import labels
from tidtam.app.reporting import compile_for, report_view, spec_of
from tidtam.documents.exports import session_heads, session_kind
from tidtam.infra.photos import PhotoStore

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STYLESHEET = HERE / "print.css"
PROVINCE_PHOTOS_PER_KIND = 4  # the compiled page shows a sample; each district's page has them all
UNSORTED = ("", "ไม่ระบุลักษณะกิจกรรม")


@lru_cache
def environment() -> Environment:
    """Strict, autoescaped templates of this folder (no Request needed)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["thai_no"] = lambda number: to_thai_digits(str(number))
    env.globals["labels"] = labels()
    return env


@lru_cache
def stylesheet() -> Markup:
    return Markup(STYLESHEET.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Numerals:
    """Numbers and dates as this page writes them: B.E. years, Arabic or Thai digits."""

    thai_digits: bool
    tz: ZoneInfo

    def n(self, value: int | None) -> str:
        text = "-" if value is None else f"{value:,}"
        return to_thai_digits(text) if self.thai_digits else text

    def date(self, day: date, style: Literal["long", "short"] = "long") -> str:
        return thai_date(day, style, self.thai_digits)

    def instant(self, moment: datetime) -> str:
        return thai_datetime(moment, self.tz, "long", self.thai_digits)


@dataclass(frozen=True)
class Tile:
    """One photo in item 4; ``src`` is a data: URI, or None when the file is gone."""

    src: str | None
    held_on: date | None
    center: str
    district_th: str = ""


@dataclass(frozen=True)
class PhotoGroup:
    """Item 4 groups photos by the activity kinds of item 3."""

    title_th: str
    tiles: tuple[Tile, ...]


@dataclass(frozen=True)
class SessionRow:
    held_on: date | None
    center: str
    place: str
    kind_th: str
    counts: tuple[int | None, ...]
    heads: int


# --- the pages --------------------------------------------------------------------------------

def printable_district(session: Session, actor: User, district_code: str, *,
                       directive: Directive, store: PhotoStore, thai_digits: bool = False,
                       tz: ZoneInfo | None = None) -> str:
    """The district's form for the directive as it stands (any status the actor may see;
    "ฉบับร่าง" unless accepted); a closed directive's prints all the same."""
    view = report_view(session, actor, district_code, directive=directive)
    province = get_province(session, view.district.province_code)
    content = view.checked.content
    status = str(view.report.status) if view.report else NO_REPORT
    form = form_of(view.spec)
    return environment().get_template("district.html").render(
        page_title=f"แบบรายงาน อำเภอ{view.district.name_th}", css=stylesheet(),
        fmt=Numerals(thai_digits, tz or _default_tz()), draft=status != ACCEPTED, status=status,
        report=view.report, spec=view.spec, form=form, district=view.district,
        province_name=province.name_th if province else "", summary=view.summary,
        categories=_categories(view.spec, view.summary.participants),
        groups=_district_groups(form, content, view.photos, store),
        sessions=_session_rows(view.spec, content))


def printable_province(session: Session, actor: User, *, directive: Directive, store: PhotoStore,
                       thai_digits: bool = False, as_of: datetime | None = None,
                       tz: ZoneInfo | None = None) -> str:
    """The directive's compiled form (its province's coordinator and provincial head only)."""
    compilation = compile_for(session, actor, directive=directive)
    return province_page(session, directive, compilation, store=store, thai_digits=thai_digits,
                         as_of=as_of, tz=tz)


def province_page(session: Session, directive: Directive, compilation: Compilation, *,
                  store: PhotoStore, thai_digits: bool = False, as_of: datetime | None = None,
                  tz: ZoneInfo | None = None) -> str:
    """The compiled page with no access check: for the flow and the CLI, which run as the system."""
    spec = spec_of(directive)
    form = form_of(spec)
    province = get_province(session, directive.province_code)
    totals = compilation.totals
    return environment().get_template("province.html").render(
        page_title=f"แบบรายงาน สรุปผลภาพรวม จังหวัด{province.name_th if province else ''}",
        css=stylesheet(), fmt=Numerals(thai_digits, tz or _default_tz()), draft=False,
        spec=spec, form=form, province_name=province.name_th if province else "",
        issuer_th=spec.issuer_th, totals=totals, as_of=as_of,
        categories=_categories(spec, totals.participants),
        codes=[c.code for c in spec.participant_categories],
        districts=compilation.districts, accepted=compilation.accepted, missing=compilation.missing,
        groups=_province_groups(session, directive, compilation, store))


def _default_tz() -> ZoneInfo:
    from tidtam.infra.settings import get_settings

    return get_settings().tz


# --- what the templates show --------------------------------------------------------------------

def _categories(spec: DirectiveSpec, counts: dict[str, int]) -> list[tuple[str, int]]:
    """Item 2: (Thai title, head count) in the form's order."""
    return [(c.title_th, counts.get(c.code, 0)) for c in spec.participant_categories]


def _session_rows(spec: DirectiveSpec, content: ReportContent) -> list[SessionRow]:
    form = form_of(spec)
    return [SessionRow(s.held_on, s.center, s.place, session_kind(form, s)[0],
                       tuple(s.participants.get(c.code) for c in spec.participant_categories),
                       session_heads(s))
            for s in content.sessions]


def _kind_titles(form: FormSpec, content: ReportContent) -> dict[str, str]:
    """Kind key → Thai title, in the form's order, then the kinds districts named themselves."""
    titles = {k.code: k.title_th for k in form.activity_kinds}
    for entry in content.sessions:
        if entry.kind and _kind_key(entry) not in titles:
            titles[_kind_key(entry)] = session_kind(form, entry)[0]
    return titles


def _tiles_by_kind(content: ReportContent, photos: Iterable[ReportPhoto], store: PhotoStore,
                   district_th: str = "") -> dict[str, list[Tile]]:
    """Each photo under the kind of the session it shows (unknown sessions under UNSORTED)."""
    sessions = {s.key: s for s in content.sessions}
    grouped: dict[str, list[Tile]] = {}
    for photo in photos:
        entry = sessions.get(photo.session_key)
        key = _kind_key(entry) if entry is not None and entry.kind else UNSORTED[0]
        grouped.setdefault(key, []).append(Tile(
            _data_uri(store, photo), entry.held_on if entry else None,
            entry.center if entry else "", district_th))
    return grouped


def _groups(titles: dict[str, str], tiles: dict[str, list[Tile]]) -> list[PhotoGroup]:
    order = [*titles, *(k for k in tiles if k not in titles)]
    return [PhotoGroup(titles.get(key, UNSORTED[1]), tuple(tiles[key])) for key in order if tiles.get(key)]


def _district_groups(form: FormSpec, content: ReportContent, photos: Sequence[ReportPhoto],
                     store: PhotoStore) -> list[PhotoGroup]:
    return _groups(_kind_titles(form, content), _tiles_by_kind(content, photos, store))


def _province_groups(session: Session, directive: Directive, compilation: Compilation,
                     store: PhotoStore) -> list[PhotoGroup]:
    """A few photos per kind, taken in turn from each accepted district."""
    form = form_of(spec_of(directive))
    titles: dict[str, str] = {k.code: k.title_th for k in form.activity_kinds}
    per_district = []
    for entry in compilation.accepted:
        report = get_report(session, directive.id, entry.code)
        if report is None or entry.content is None:
            continue
        titles |= {k: t for k, t in _kind_titles(form, entry.content).items() if k not in titles}
        per_district.append(_tiles_by_kind(entry.content, photos_of(session, report.id), store,
                                           entry.name_th))
    picked = {}
    for key in titles:
        lists = [tiles.get(key, []) for tiles in per_district]
        turns = (t for t in chain.from_iterable(zip_longest(*lists)) if t is not None)
        picked[key] = [t for _, t in zip(range(PROVINCE_PHOTOS_PER_KIND), turns, strict=False)]
    return _groups(titles, picked)


def _data_uri(store: PhotoStore, photo: ReportPhoto) -> str | None:
    """The display JPEG inline, so the page needs no photo route (None if the file is gone)."""
    try:
        data = store.path(photo.display_name).read_bytes()
    except (NotFound, OSError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def stylesheet_hash() -> str:
    """The CSP source that lets exactly the printed page's inline stylesheet apply."""
    digest = hashlib.sha256(str(stylesheet()).encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"
