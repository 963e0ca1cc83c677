"""What the digest and the compilation leave in the Prefect UI, as artifacts under stable keys.

- `digest-<province>-<user>`: each coordinator's digest of the day, as markdown (the same facts
  as the LINE and e-mail message, laid out as tables): the key's history is that coordinator's
  digests, day after day.
- `compiled-xlsx-<slug>`, `compiled-pdf-<slug>`: links to the spreadsheet and the PDF a
  compile-provincial-report run wrote; `totals-<slug>`: the provincial totals as a table.

A key holds only lowercase letters, digits and dashes (Prefect's rule), so each part is slugified.
The markdown is built here from plain values; reading them is tidtam/app/digest.py's work.
Untracked (`flow.fn`, no Prefect server), nothing is published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from domain.thaidate import thai_date, thai_datetime
from flows._common import in_flow_run

_NOT_KEY = re.compile(r"[^a-z0-9]+")


def artifact_key(*parts: str) -> str:
    """``digest-27-coordinator``: the parts lowercased, anything else than a-z 0-9 a dash."""
    slugs = [_NOT_KEY.sub("-", part.lower()).strip("-") for part in parts]
    return "-".join(s for s in slugs if s)


def _cell(text: object) -> str:
    """A value safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- The digest -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DigestArtifact:
    key: str
    markdown: str
    description: str


def digest_markdown(digest, *, recipient: str, base_url: str, tz: ZoneInfo) -> str:
    """One province's digest (tidtam.app.digest.Digest) for one coordinator, as markdown."""
    province = digest.province
    lines = [f"# สรุปงานประจำวัน · จังหวัด{province.name_th} · {thai_date(digest.today, 'long')}",
             "",
             f"ถึง {recipient} · เลยกำหนด {digest.late_count} รายการ · "
             f"รายงานรอตรวจ {digest.waiting_count} ฉบับ"
             + (f" · ส่ง LINE ไม่ถึง {len(digest.broken)} คน" if digest.broken else ""),
             "",
             f"[หนังสือสั่งการทั้งหมดของจังหวัด / all directives]"
             f"({base_url}/provinces/{province.code}/directives)"]
    for section in digest.sections:
        directive = section.directive
        board = f"{base_url}/directives/{directive.slug}"
        lines += ["", f"## {directive.reference_no} {directive.title_th}", "",
                  f"[ดูสถานะทุกอำเภอ / the board]({board})"]
        if section.late:
            lines += ["", "**อำเภอที่เลยกำหนด** (ตัวเลขคือวันทำการที่เลยกำหนด"
                      + ("; ⚑ ถึงขั้นที่จังหวัดต้องเร่งรัด" if section.any_to_chase else "") + ")",
                      "", "| ขั้นตอน | ครบกำหนด | อำเภอ |", "|---|---|---|"]
            for line in section.late:
                if line.everyone:
                    first = line.districts[0]
                    who = f"ทุกอำเภอ ({first.days_late}){' ⚑' if first.to_chase else ''}"
                else:
                    who = ", ".join(f"อ.{d.name_th} ({d.days_late}){' ⚑' if d.to_chase else ''}"
                                    for d in line.districts)
                lines.append(f"| {_cell(line.step.code)} {_cell(line.step.title_th)} "
                             f"| {thai_date(line.step.due_on)} | {_cell(who)} |")
        if section.upcoming:
            lines += ["", "**ครบกำหนดภายใน 3 วันทำการ**", "",
                      "| ขั้นตอน | ครบกำหนด | ยังไม่เสร็จ |", "|---|---|---|"]
            for line in section.upcoming:
                who = "ทุกอำเภอ" if line.everyone else ", ".join(
                    f"อ.{d.name_th}" for d in line.districts)
                lines.append(f"| {_cell(line.step.code)} {_cell(line.step.title_th)} "
                             f"| {thai_date(line.step.due_on)} "
                             f"| {len(line.districts)} อำเภอ: {_cell(who)} |")
        if section.waiting:
            lines += ["", f"**รายงานที่รอจังหวัดตรวจ {len(section.waiting)} ฉบับ** "
                          f"([ตรวจรายงาน / review]({board}/reports))", ""]
            for report in section.waiting:
                when = (f" ส่งเมื่อ {thai_datetime(report.submitted_at, tz)}"
                        if report.submitted_at else "")
                lines.append(f"- อ.{report.name_th}{when}")
    if digest.broken:
        lines += ["", f"## ส่งข้อความ LINE ไม่ถึง {len(digest.broken)} คน", "",
                  f"LINE ปฏิเสธ ระบบหยุดส่งจนกว่าจะเชื่อมบัญชีใหม่ ([กล่องข้อความ / outbox]"
                  f"({base_url}/outbox))", ""]
        lines += [f"- {person.full_name} ({person.username}): {person.line_route_error or ''}"
                  for person in digest.broken]
    return "\n".join(lines) + "\n"


def digest_artifacts(digest, coordinators: Iterable, *, base_url: str,
                     tz: ZoneInfo) -> list[DigestArtifact]:
    """One artifact per coordinator of the digest's province (read while the session is open)."""
    found = []
    for user in coordinators:
        who = user.username if artifact_key(user.username) else f"user-{user.id}"
        key = artifact_key("digest", digest.province.code, who)
        recipient = f"{user.full_name} ({user.username})"
        found.append(DigestArtifact(
            key, digest_markdown(digest, recipient=recipient, base_url=base_url, tz=tz),
            f"สรุปงานประจำวัน {thai_date(digest.today)} ของ {recipient}, "
            f"จังหวัด{digest.province.name_th} / the coordinator's digest of the day"))
    return found


def publish_digests(artifacts: Sequence[DigestArtifact]) -> list[str]:
    """Publish each as a markdown artifact of this run; the keys published ([] untracked)."""
    if not in_flow_run():
        return []
    from prefect.artifacts import create_markdown_artifact

    for artifact in artifacts:
        create_markdown_artifact(markdown=artifact.markdown, key=artifact.key,
                                 description=artifact.description)
    return [a.key for a in artifacts]


# --- The compilation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompiledLink:
    key: str
    link: str
    text: str
    description: str


def download_url(base_url: str, slug: str, suffix: str) -> str:
    """The web's download of a directive's compiled file (web/reports.py: compiled.xlsx, .pdf)."""
    return f"{base_url.rstrip('/')}/directives/{quote(slug)}/reports/compiled.{suffix}"


def compiled_links(slug: str, reference_no: str, files: Sequence[str], *,
                   base_url: str) -> list[CompiledLink]:
    """A link per XLSX or PDF written. The link is the web's download of the same compilation
    (a coordinator opens it from the Prefect UI, signed in to tidtam); the description names the
    file this run wrote, which the coordinator's browser could not open from a file:// link."""
    links = []
    for file in files:
        path = Path(file)
        kind = path.suffix.lstrip(".").lower()
        if kind not in ("xlsx", "pdf"):
            continue
        label = {"xlsx": "สมุดงาน XLSX / spreadsheet", "pdf": "แบบรายงาน PDF / the printed form"}[kind]
        links.append(CompiledLink(
            artifact_key("compiled", kind, slug), download_url(base_url, slug, kind),
            f"{reference_no}: {label}",
            f"ไฟล์ที่รอบนี้เขียน / written by this run: `{path.as_uri()}` "
            f"({path.stat().st_size:,} bytes). The link downloads the directive's compilation "
            "from tidtam's web app (the province's coordinator, signed in), compiled afresh "
            "from the same accepted reports."))
    return links


def totals_rows(summary: dict) -> list[dict[str, object]]:
    """The provincial totals as table rows: item (Thai / English) and count, the form's 1-3."""
    totals = summary["totals"]
    rows = [{"item": "๑. ศูนย์ผู้นำจิตอาสาพัฒนาชุมชนที่จัดกิจกรรม (แห่ง) / centers",
             "count": totals["centers"]},
            {"item": "จำนวนครั้งที่จัดกิจกรรม / sessions", "count": totals["sessions"]}]
    rows += [{"item": f"๒. {c['title_th']} (คน) / {c['title_en']}", "count": c["count"]}
             for c in totals["participants"]]
    rows.append({"item": "๒. รวมผู้เข้าร่วมกิจกรรม (คน) / participants",
                 "count": totals["total_participants"]})
    rows += [{"item": f"๓. กิจกรรม{k['title_th']} (แห่ง) / {k['title_en']}", "count": k["places"]}
             for k in totals["kinds"]]
    rows.append({"item": "อำเภอที่จังหวัดรับรายงานแล้ว / districts accepted",
                 "count": len(summary["accepted"])})
    rows.append({"item": "อำเภอที่ยังไม่มีรายงานที่รับแล้ว / districts missing",
                 "count": len(summary["missing"])})
    return rows


def publish_compilation(slug: str, links: Sequence[CompiledLink], rows: list[dict],
                        description: str) -> list[str]:
    """Publish the links and the totals table of this run; the keys published ([] untracked)."""
    if not in_flow_run():
        return []
    from prefect.artifacts import create_link_artifact, create_table_artifact

    for link in links:
        create_link_artifact(link=link.link, link_text=link.text, key=link.key,
                             description=link.description)
    totals = artifact_key("totals", slug)
    create_table_artifact(table=rows, key=totals, description=description)
    return [*(link.key for link in links), totals]
