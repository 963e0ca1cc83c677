"""compile-provincial-report: accepted district reports → provincial totals → XLSX, CSV (and PDF).

Run on demand (no schedule): `tidtam compile`, the coordinator's page, or the Prefect UI.
It runs as the system, so it reads every district; the web checks the coordinator first.
It compiles one directive: the one named (any status: a closed one's files still come out), or,
with none named, the one active directive; with several active it refuses and lists them, since
guessing "the newest" once compiled the wrong letter.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import flow

from domain.errors import InvalidInput, NotFound
from domain.report import Compilation
from models.directive import Directive, active_directives
from tidtam.app.directives import find_directive
from tidtam.app.reporting import compilation_summary, compile_directive, spec_of
from tidtam.documents.exports import TABLES, compilation_csv, compilation_xlsx
from tidtam.infra.clock import instant_of
from tidtam.infra.db import get_engine, session_scope
from tidtam.infra.settings import get_settings


@flow(name="compile-provincial-report", log_prints=True)
def compile_provincial_report(directive_slug: str | None = None, out_dir: str | None = None,
                              pdf: bool = False, thai_digits: bool = False,
                              now: str | None = None) -> dict:
    """Compile the directive's accepted reports (default: the one active directive; several:
    refused, listed) into ``out_dir``, as of ``now`` (ISO-8601 with offset; default: the current
    instant)."""
    settings = get_settings()
    instant = instant_of(now)
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
    result = compilation_summary(directive, compilation, spec, files)
    print(f"compile-provincial-report {directive.slug}: {len(compilation.accepted)} accepted, "
          f"{len(compilation.missing)} missing; {result['totals']['total_participants']} participants; "
          f"files in {folder}")
    return result


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
