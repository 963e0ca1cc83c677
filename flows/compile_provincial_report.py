"""compile-provincial-report: accepted district reports → provincial totals → XLSX, CSV (and PDF).

Run on demand (no schedule): `tidtam compile`, the Prefect UI, or the automation that runs it when
a province's last district report of a directive is accepted (tidtam/ops/automations.py).
It runs as the system, so it reads every district; the web checks the coordinator first.
It compiles one directive: the one named (any status: a closed one's files still come out), or,
with none named, the one active directive; with several active it refuses and lists them, since
guessing "the newest" once compiled the wrong letter.

A tracked run is named `compile-provincial-report · สระแก้ว · สก ๐๐๑๙/ว ๒๕๒ · 14 ส.ค. 2567 10:00`
and leaves link artifacts to the XLSX and PDF it wrote and a table of the totals
(flows/report_artifacts.py).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow, task
from pydantic import BaseModel

from domain.errors import InvalidInput, NotFound
from domain.report import Compilation
from flows._common import DirectiveSlug, Instant, call, named, resolve_now, run_logger, run_parameters
from flows._runs import TASK_RETRIES
from flows.report_artifacts import compiled_links, publish_compilation, totals_rows
from models.directive import Directive, active_directives
from tidtam.app.directives import find_directive
from tidtam.app.reporting import compilation_summary, compile_directive, spec_of
from tidtam.documents.exports import TABLES, compilation_csv, compilation_xlsx
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings

FLOW = "compile-provincial-report"


# --- The result: the keys `tidtam compile --json` has always shown ------------------------------

class DirectiveRef(BaseModel):
    slug: str
    reference_no: str
    title_th: str


class Category(BaseModel):
    code: str
    title_th: str
    title_en: str
    count: int


class Kind(BaseModel):
    code: str
    title_th: str
    title_en: str
    places: int
    sessions: int


class Totals(BaseModel):
    centers: int
    sessions: int
    participants: list[Category]
    total_participants: int
    kinds: list[Kind]


class DistrictRow(BaseModel):
    code: str
    name_th: str
    status: str
    status_th: str
    total_participants: int | None


class MissingDistrict(BaseModel):
    code: str
    name_th: str
    status: str
    status_th: str


class CompileReport(BaseModel):
    """The provincial totals of one directive, who is missing, and the files written."""

    directive: DirectiveRef
    totals: Totals
    districts: list[DistrictRow]
    accepted: list[str]
    missing: list[MissingDistrict]
    files: list[str]


# --- The run ------------------------------------------------------------------------------------

def _run_name() -> str:
    parameters = run_parameters()
    return named(FLOW, parameters.get("now"), *_place(parameters.get("directive_slug")))


def _place(slug: str | None) -> tuple[str | None, ...]:
    """(province's Thai name, reference number) of the directive compiled; a name must not fail
    the run, so a directive that cannot be found is named by its slug (the run then says why)."""
    from models.org import Province

    try:
        with session_scope(get_engine()) as session:
            directive = _directive(session, slug)
            province = session.get(Province, directive.province_code) if directive.province_code \
                else None
            return (province.name_th if province else None, directive.reference_no)
    except Exception:  # noqa: BLE001
        return (slug,)


@task(name="compile-and-write", **TASK_RETRIES)
def compile_and_write(directive_slug: str | None, out_dir: str | None, pdf: bool,
                      thai_digits: bool, instant: datetime) -> dict:
    """Add up the accepted reports and write the files; the summary as plain data."""
    settings = get_settings()
    with session_scope(get_engine()) as session:
        directive = _directive(session, directive_slug)
        compilation = compile_directive(session, directive)
        spec = spec_of(directive)
        folder = Path(out_dir) if out_dir else settings.data_dir / "compiled" / directive.slug
        folder.mkdir(parents=True, exist_ok=True)
        files = _write_tables(folder, directive.slug, compilation, spec)
        if pdf:
            files.append(_write_pdf(session, folder, directive, compilation, thai_digits,
                                    instant))
        return compilation_summary(directive, compilation, spec, files)


@flow(name=FLOW, flow_run_name=_run_name)
def compile_provincial_report(directive_slug: DirectiveSlug | None = None,
                              out_dir: str | None = None, pdf: bool = False,
                              thai_digits: bool = False,
                              now: Instant | None = None) -> CompileReport:
    """Compile the directive's accepted reports (default: the one active directive; several:
    refused, listed) into ``out_dir`` (default: <data dir>/compiled/<slug>), as of ``now`` (an
    aware instant; default: the clock's); ``pdf`` also prints the compiled form (Chromium)."""
    settings = get_settings()
    instant = resolve_now(now)
    logger = run_logger(FLOW)
    summary = call(compile_and_write, directive_slug, out_dir, pdf, thai_digits, instant)
    report = CompileReport.model_validate(summary)
    slug = report.directive.slug
    published = publish_compilation(
        slug, compiled_links(slug, report.directive.reference_no, report.files,
                             base_url=settings.base_url),
        totals_rows(summary),
        f"สรุปผลภาพรวมจังหวัด {report.directive.reference_no}: รับรายงานแล้ว "
        f"{len(report.accepted)} จาก {len(report.districts)} อำเภอ / provincial totals")
    logger.info("compile-provincial-report %s: %d accepted, %d missing; %d participants; "
                "files in %s; artifacts %s", slug, len(report.accepted), len(report.missing),
                report.totals.total_participants,
                str(Path(report.files[0]).parent) if report.files else "-",
                ", ".join(published) or "none (untracked)")
    return report


def _directive(session, slug: str | None) -> Directive:
    """The directive named, else the one active directive (none or several: a clear refusal)."""
    if slug:
        return find_directive(session, slug)
    active = active_directives(session)
    if len(active) == 1:
        return active[0]
    if not active:
        raise NotFound("no active directive; name one with --directive",
                       "ไม่มีหนังสือสั่งการที่ติดตามอยู่ — ระบุด้วย --directive")
    names = ", ".join(d.slug for d in active)
    raise InvalidInput(f"several active directives; name one with --directive: {names}",
                       f"มีหนังสือสั่งการที่ติดตามอยู่หลายฉบับ — ระบุด้วย --directive: {names}")


def _write_tables(folder: Path, slug: str, compilation: Compilation, spec) -> list[str]:
    xlsx = folder / f"{slug}-compiled.xlsx"
    xlsx.write_bytes(compilation_xlsx(compilation, spec))
    files = [str(xlsx)]
    for table in TABLES:
        path = folder / f"{slug}-{table}.csv"
        path.write_text(compilation_csv(compilation, spec, table), encoding="utf-8", newline="")
        files.append(str(path))
    return files


def _write_pdf(session, folder: Path, directive: Directive, compilation: Compilation,
               thai_digits: bool, as_of: datetime) -> str:
    from tidtam.documents.pdf import html_to_pdf
    from tidtam.documents.printing import province_page
    from tidtam.infra.photos import PhotoStore

    settings = get_settings()
    html = province_page(session, directive, compilation, store=PhotoStore(settings.data_dir / "photos"),
                         thai_digits=thai_digits, as_of=as_of, tz=settings.tz)
    path = folder / f"{directive.slug}-compiled.pdf"
    path.write_bytes(html_to_pdf(html))
    return str(path)


if __name__ == "__main__":
    compile_provincial_report()
