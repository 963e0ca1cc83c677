"""HTML to PDF through headless Chromium, whose printing keeps Thai text intact in the text layer.

WeasyPrint is not an option: its PDFs extract สำนักงาน as สำนักงำน (the SARA AM is split),
so a search or a copy-paste of the official form would be wrong. Chromium shapes Thai with
HarfBuzz and writes a correct ToUnicode map. The page must be standalone (inline CSS,
data: URIs): it is opened from a temporary file with no network and no cookie.

Every PDF is printed with the font in ``fonts/`` (Laksaman with its marks given a width in the
PDF, see fonts/README.md): with the system's Laksaman a copy of "เป็น" gave "เป็ น".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from domain.errors import Unavailable

FONTS = Path(__file__).resolve().parent / "fonts"
FONT_FACES = (
    '<style>@font-face{font-family:"tidtam Laksaman";font-display:block;'
    'src:url(tidtamLaksaman-Regular.ttf) format("truetype")}'
    '@font-face{font-family:"tidtam Laksaman";font-weight:bold;font-display:block;'
    'src:url(tidtamLaksaman-Bold.ttf) format("truetype")}</style>')
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-pdf-header-footer", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-quic", "--mute-audio", "--hide-scrollbars")


class PdfUnavailable(Unavailable):
    """The server cannot make PDFs (no Chromium, or it failed): an operator's problem, not the user's."""


def find_chromium(chromium: str | None = None) -> str:
    """The Chromium to run: the one given (a path or a name on PATH), else the first found on PATH."""
    names = (chromium,) if chromium else CANDIDATES
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    tried = ", ".join(names)
    raise PdfUnavailable(
        f"cannot make a PDF: Chromium is not installed (looked for {tried}); "
        "install it, e.g. `apt-get install chromium fonts-thai-tlwg`",
        f"สร้างไฟล์ PDF ไม่ได้ เนื่องจากเครื่องแม่ข่ายไม่มีโปรแกรม Chromium (ค้นหา {tried}) "
        "กรุณาแจ้งผู้ดูแลระบบให้ติดตั้ง หรือใช้คำสั่งพิมพ์ของเบราว์เซอร์แทน")


def html_to_pdf(html: str, *, chromium: str | None = None, timeout: float = 60) -> bytes:
    """Print a standalone HTML page to PDF (its CSS ``@page`` sets the paper, e.g. A4)."""
    binary = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="tidtam-pdf-") as tmp:
        work = Path(tmp)
        page, out = work / "page.html", work / "out.pdf"
        page.write_text(with_print_font(html, work), encoding="utf-8")
        command = [binary, *FLAGS, f"--user-data-dir={work / 'profile'}",
                   f"--crash-dumps-dir={work / 'crashes'}", f"--print-to-pdf={out}", page.as_uri()]
        code, output = _run(command, timeout, work)
        if code != 0 or not out.exists() or out.stat().st_size == 0:
            raise PdfUnavailable(
                f"Chromium could not print the page (exit {code}): {output[-500:]}",
                f"Chromium พิมพ์เอกสารเป็น PDF ไม่สำเร็จ (รหัส {code}) กรุณาแจ้งผู้ดูแลระบบ")
        return out.read_bytes()


def with_print_font(html: str, folder: Path) -> str:
    """The page with the print font declared first in its head, the font files beside it."""
    for font in FONTS.glob("*.ttf"):
        shutil.copyfile(font, folder / font.name)
    lower = html[:2000].lower()
    head = lower.find("<head>")
    if head >= 0:
        at = head + len("<head>")
    else:  # no <head>: after the doctype, so the page stays in standards mode
        at = lower.find(">") + 1 if lower.lstrip().startswith("<!doctype") else 0
    return html[:at] + FONT_FACES + html[at:]


def _run(command: list[str], timeout: float, home: Path) -> tuple[int, str]:
    """Run Chromium in its own process group, so a hung print is killed with all its helpers."""
    env = {**os.environ, "HOME": str(home)}  # Chromium writes caches under HOME; keep them in the temp dir
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise PdfUnavailable(
            f"Chromium did not finish printing within {timeout:g} s",
            f"Chromium พิมพ์เอกสารเป็น PDF ไม่เสร็จภายใน {timeout:g} วินาที กรุณาลองใหม่อีกครั้ง"
        ) from None
    finally:
        _kill_group(process, only_leftovers=True)
    return process.returncode, output.decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen, only_leftovers: bool = False) -> None:
    """Kill the process group Chromium leads (zygote, GPU and utility children included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if not only_leftovers:
        process.communicate()
