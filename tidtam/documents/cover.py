"""A district's printable cover sheet (A4): the letter, the district's deadlines and a QR code
that opens the district's sign-in and then its report form.

The QR code is made by ``segno`` as an SVG placed in the page (no inline style: CSP) and as
a PNG (what the tests decode). Its address is absolute, from ``TIDTAM_BASE_URL``, because a
phone that scans it knows nothing of the page it was printed from.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

import segno

from models.directive import Directive, DirectiveStep
from models.org import District
from tidtam.app.boards import Board


@dataclass(frozen=True)
class Deadline:
    step: DirectiveStep
    due_on: date  # the district's own (an amendment may move one district's day)


@dataclass(frozen=True)
class CoverSheet:
    directive: Directive
    district: District
    deadlines: list[Deadline]
    url: str
    qr_svg: str


def report_path(directive: Directive, district_code: str) -> str:
    return f"/directives/{directive.slug}/districts/{district_code}/report"


def sign_in_url(base_url: str, directive: Directive, district_code: str) -> str:
    """The sign-in page, which opens the district's report form once signed in."""
    return f"{base_url.rstrip('/')}/login?next={quote(report_path(directive, district_code))}"


def _qr(url: str) -> segno.QRCode:
    return segno.make(url, error="m", micro=False)


def qr_svg(url: str, title: str) -> str:
    """The QR code as an SVG element (no XML declaration, scalable by CSS: class ``qr``)."""
    out = io.BytesIO()
    _qr(url).save(out, kind="svg", xmldecl=False, svgns=True, nl=False, scale=4,
                  svgclass="qr", lineclass="qr-modules", title=title, border=4,
                  omitsize=True)  # a viewBox only: the page sizes it (tidtam.css)
    return out.getvalue().decode("utf-8")


def qr_png(url: str, scale: int = 8) -> bytes:
    out = io.BytesIO()
    _qr(url).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def cover_sheets(board: Board, base_url: str, district_code: str | None = None) -> list[CoverSheet]:
    """One sheet per district of the board (or only ``district_code``'s), by district code."""
    sheets = []
    for row in board.rows:
        if district_code is not None and row.district.code != district_code:
            continue
        url = sign_in_url(base_url, board.directive, row.district.code)
        sheets.append(CoverSheet(
            directive=board.directive, district=row.district,
            deadlines=[Deadline(c.step, c.item.due_on) for c in row.cells],
            url=url, qr_svg=qr_svg(url, f"{row.district.name_th} {row.district.code}")))
    return sheets
