"""Opening offline: the service worker at the site's root and the page it shows when it has none.

The worker (``static/sw.js``) must be served from ``/`` to control every page, so it has a route
of its own here rather than living under ``/static``; ``no-cache`` makes the browser check for a
new worker on every visit. The fallback page is what a navigation shows when the network is down
and this device never opened that address: it names no person (it is cached apart from the
signed-in pages, which are dropped at sign-out). ``static/offline.js`` registers the worker and
keeps photos picked offline on the device until the network returns.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from web.rendering import render

router = APIRouter(include_in_schema=False)

WORKER = Path(__file__).resolve().parent / "static" / "sw.js"


@router.get("/sw.js")
def service_worker() -> Response:
    """The service worker, for the whole site (scope ``/``)."""
    return FileResponse(WORKER, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"})


@router.get("/offline")
def offline_page(request: Request) -> Response:
    """Shown by the worker for a page this device has not kept; the same for everyone."""
    return render(request, "offline.html", {"user": None})
