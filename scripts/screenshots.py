"""`make screenshots`: the README's pictures, taken from the demo so they never go stale.

Starts the demo as `make run` does (`tidtam init --demo --follow-up`, then `tidtam serve`), but
on free ports and in a var folder of its own, runs the morning sweep once so Prefect has a flow
run to show, then drives headless Chromium (/usr/bin/chromium) over:

- the coordinator's board on a desktop          → docs/img/board.png
- a district's report form on a phone (390×844) → docs/img/report-form-phone.png
- the directive's chart (/directives/<slug>/chart) → docs/img/chart.png (skipped, with a note, where
  this version has no chart page yet)
- the sweep's flow run in the Prefect UI         → docs/img/prefect-sweep.png

Any page that answers an HTTP error, throws a script error or never appears stops the script with a
non-zero exit (the pictures already written stay). Not part of `make test`.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image

from tidtam.demo.province import DEMO_PASSWORD
from tidtam.infra.paths import ROOT

CHROMIUM = os.environ.get("TIDTAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = ROOT / "docs" / "img"
DEMO_NOW = os.environ.get("DEMO_NOW", "2024-08-06T09:00:00+07:00")
DEMO_LAUNCH = os.environ.get("DEMO_LAUNCH", "2024-07-12T10:00:00+07:00")
SLUG = "fy2567-sakaeo-volunteer-centers"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "th-TH"}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2, "locale": "th-TH"}
MAX_BYTES = 300_000


class Failed(SystemExit):
    """A page errored or never came: say which, exit non-zero."""

    def __init__(self, message: str) -> None:
        super().__init__(f"make screenshots: {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], bool], timeout: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise Failed(f"the demo stopped while waiting for {what}")
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise Failed(f"{what} did not come within {timeout:.0f} s")


class Demo:
    """`tidtam serve` in demo mode on free ports, in its own var folder, stopped on exit."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.port, self.prefect_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefect_url = f"http://127.0.0.1:{self.prefect_port}"
        self.env = {**os.environ, "TIDTAM_DEMO": "1", "TIDTAM_DATA_DIR": str(var),
                    "TIDTAM_BASE_URL": self.url, "TIDTAM_DEMO_NOW": DEMO_NOW,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
        for name in ("TIDTAM_DATABASE_URL", "PREFECT_API_URL", "TIDTAM_LINE_CHANNEL_ACCESS_TOKEN"):
            self.env.pop(name, None)
        self.process: subprocess.Popen | None = None

    def tidtam(self, *args: str, **env: str) -> None:
        subprocess.run([sys.executable, "-m", "tidtam.cli", *args], cwd=ROOT, check=True,
                       env={**self.env, **env})

    def __enter__(self) -> Demo:
        self.tidtam("init", "--demo", "--follow-up", "--exist-ok", "--now", DEMO_LAUNCH)
        log = open(self.var / "serve.log", "wb")  # noqa: SIM115 (the child's, for its life)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tidtam.cli", "serve", "--port", str(self.port),
             "--prefect-port", str(self.prefect_port)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        alive = self.alive
        wait_for("the web app", lambda: httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200,
                 120, alive)
        print(f"demo up: {self.url} (log {self.var / 'serve.log'})")
        wait_for("the Prefect server",
                 lambda: httpx.get(f"{self.prefect_url}/api/health", timeout=2).status_code == 200,
                 240, alive)
        print(f"Prefect up: {self.prefect_url}")
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __exit__(self, *_exc) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # `tidtam serve` stops its own children
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def sweep(self) -> str:
        """Run the morning sweep for Sa Kaeo at the demo's instant; the id of its flow run."""
        self.tidtam("sweep", "--province", "27", "--now", DEMO_NOW,
                    PREFECT_API_URL=f"{self.prefect_url}/api")
        answer = httpx.post(f"{self.prefect_url}/api/flow_runs/filter", timeout=30, json={
            "flows": {"name": {"any_": ["escalation-sweep"]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
            "sort": "START_TIME_DESC", "limit": 1})
        answer.raise_for_status()
        runs = answer.json()
        if not runs:
            raise Failed("the sweep left no completed flow run in Prefect")
        return runs[0]["id"]


class Camera:
    """Pages in headless Chromium that fail loudly: an HTTP error or a script error stops us."""

    def __init__(self, browser, demo: Demo) -> None:
        self.browser, self.demo = browser, demo

    def page(self, options: dict, username: str | None = None):
        context = self.browser.new_context(**options)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        if username:
            self.open(page, f"{self.demo.url}/login")
            page.fill("#username", username)
            page.fill("#password", DEMO_PASSWORD)
            page.locator("form.stack button[type=submit]").click()
            page.wait_for_load_state("networkidle")
            if "/login" in page.url:
                raise Failed(f"{username} could not sign in")
        return page

    def open(self, page, url: str, *, missing_ok: bool = False, ours: bool = True) -> bool:
        """Go to ``url``; False for a 404 when ``missing_ok``. ``ours=False``: another program's
        page (Prefect's UI), whose console errors are not tidtam's to fail on."""
        answer = page.goto(url, wait_until="networkidle")
        if answer is None or answer.status >= 400:
            if missing_ok and answer is not None and answer.status == 404:
                return False
            raise Failed(f"{url} answered {answer.status if answer else 'nothing'}")
        if ours and page.errors:
            raise Failed(f"{url} threw a script error: {page.errors}")
        return True

    def shoot(self, page, name: str, **options) -> None:
        if page.errors:
            raise Failed(f"{page.url} threw a script error: {page.errors}")
        save(page.screenshot(**options), OUT / name)
        page.context.close()


def save(png: bytes, path: Path) -> None:
    """As a PNG of 256 colours when the full one is too large for the README (< ~300 KB)."""
    image = Image.open(io.BytesIO(png))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    if out.tell() > MAX_BYTES:
        out = io.BytesIO()
        image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(out, "PNG", optimize=True)
    if out.tell() > MAX_BYTES:
        raise Failed(f"{path.name} is {out.tell() // 1000} KB even with 256 colours")
    path.write_bytes(out.getvalue())
    print(f"wrote {path.relative_to(ROOT)} ({out.tell() // 1000} KB, {image.width}×{image.height})")


def board(camera: Camera) -> None:
    page = camera.page(DESKTOP, "coordinator")
    camera.open(page, f"{camera.demo.url}/directives/{SLUG}")
    page.locator("table.board").wait_for()
    camera.shoot(page, "board.png", full_page=True)


def form_on_a_phone(camera: Camera) -> None:
    page = camera.page(PHONE, "staff-2701")
    camera.open(page, f"{camera.demo.url}/directives/{SLUG}/districts/2701/report")
    page.locator("#report-form").wait_for()
    camera.shoot(page, "report-form-phone.png")


def chart(camera: Camera) -> None:
    page = camera.page(DESKTOP, "coordinator")
    if not camera.open(page, f"{camera.demo.url}/directives/{SLUG}/chart", missing_ok=True):
        print(f"note: /directives/{SLUG}/chart is 404 in this version (the chart page is not merged "
              "yet): docs/img/chart.png not taken; run `make screenshots` again once it is")
        page.context.close()
        return
    page.locator("svg").first.wait_for()
    camera.shoot(page, "chart.png", full_page=True)


def prefect_view(camera: Camera, run_id: str) -> None:
    page = camera.page(DESKTOP)
    camera.open(page, f"{camera.demo.prefect_url}/runs/flow-run/{run_id}", ours=False)
    page.get_by_text("escalation-sweep").first.wait_for(timeout=60_000)
    page.get_by_text("Completed").first.wait_for(timeout=60_000)
    page.wait_for_timeout(3000)  # the run graph draws itself after the page settles
    page.errors.clear()
    camera.shoot(page, "prefect-sweep.png")


def main() -> int:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise Failed(f"no Chromium at {CHROMIUM} (apt-get install chromium, or TIDTAM_CHROMIUM=…)")
    OUT.mkdir(parents=True, exist_ok=True)
    var = Path(tempfile.mkdtemp(prefix="tidtam-screenshots-"))
    ok = False
    try:
        with Demo(var) as demo, sync_playwright() as playwright:
            run_id = demo.sweep()
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)
            camera = Camera(browser, demo)
            board(camera)
            form_on_a_phone(camera)
            chart(camera)
            prefect_view(camera, run_id)
            browser.close()
        ok = True
    finally:
        if ok:
            shutil.rmtree(var, ignore_errors=True)
        else:
            print(f"the demo's logs are kept in {var}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
