"""Errors to answers: JSON ``{"detail": {"th", "en"}}`` under /api, a Thai+English page elsewhere.

No stack trace ever reaches a user; an unexpected error is logged and shown as a plain 500.
"""

from __future__ import annotations

import errno
import logging
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, TidtamError, Unavailable
from models.unreachable import database_unreachable
from tidtam.infra.photos import FULL, READ_ONLY, storage_error
from web.admission import DatabaseBusy
from web.deps import LoginRequired, NotAuthenticated
from web.i18n import catalog
from web.rendering import render

log = logging.getLogger("tidtam.web")

STATUS_OF = {NotFound: 404, Forbidden: 403, Conflict: 409, InvalidInput: 422, Unavailable: 503}
HTTP_KEYS = {400, 401, 403, 404, 405, 413, 422, 429, 500}
# Seconds a client is asked to wait when the database cannot be reached: a restart takes about
# one, a failover a few.
DATABASE_RETRY_AFTER = 5


def status_of(exc: TidtamError) -> int:
    return next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 400)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def wants_json(request: Request) -> bool:
    """The API, or a page's script asking for JSON (``Accept: application/json``); a browser
    navigating gets pages."""
    return is_api(request) or "application/json" in request.headers.get("accept", "")


def bilingual(key: str) -> dict[str, str]:
    """A locale text in both languages, for answers that show both."""
    return {"th": catalog("th")[key], "en": catalog("en")[key]}


def answer(request: Request, status: int, th: str, en: str,
           headers: dict[str, str] | None = None) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": {"th": th, "en": en}}, status_code=status, headers=headers)
    return render(request, "error.html", {"status": status, "message_th": th, "message_en": en},
                  status_code=status)


def http_answer(request: Request, status: int) -> Response:
    text = bilingual(f"error.http.{status if status in HTTP_KEYS else 400}")
    return answer(request, status, text["th"], text["en"])


async def on_domain_error(request: Request, exc: TidtamError) -> Response:
    return answer(request, status_of(exc), exc.message_th, exc.message_en)


async def on_login_required(request: Request, exc: LoginRequired) -> Response:
    query = f"?{urlencode({'next': request.url.path})}" if request.method == "GET" else ""
    return RedirectResponse(f"/login{query}", status_code=303)


async def on_not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
    text = bilingual("error.not_authenticated")
    return JSONResponse({"detail": text}, status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if is_api(request) and isinstance(exc.detail, dict):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)
    return http_answer(request, exc.status_code)


def invalid_fields(exc: RequestValidationError) -> str:
    """The fields a request got wrong, as ``body.version (Input should be a valid integer)``."""
    named = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        named.append(f"{where} ({error.get('msg', '')})" if where else str(error.get("msg", "")))
    return "; ".join(named)


async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
    """422 in the app's one error shape (``ErrorPublic``), naming the fields, API and pages alike."""
    if not is_api(request):
        return http_answer(request, 422)
    fields = invalid_fields(exc)
    text = {lang: message.format(fields=fields) for lang, message in
            bilingual("error.validation").items()}
    return answer(request, 422, text["th"], text["en"])


async def on_pool_exhausted(request: Request, exc: DatabaseBusy | PoolTimeout) -> Response:
    """Every database connection stayed busy for the pool timeout (or SQLite's write lock for
    its busy timeout): 503 with ``Retry-After`` in Thai and English, never a hang and a 500.
    Nothing was written: the request's transaction never began or was rolled back."""
    seconds = exc.retry_after if isinstance(exc, DatabaseBusy) else \
        request.app.state.admission.retry_after
    log.warning("busy: no database connection for %s %s (%s)", request.method, request.url.path,
                type(exc).__name__)
    text = {lang: message.format(seconds=seconds) for lang, message in bilingual("error.busy").items()}
    response = answer(request, 503, text["th"], text["en"])
    response.headers["Retry-After"] = str(seconds)  # on the page as well as the JSON
    return response


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    try:
        return http_answer(request, 500)
    except Exception:  # the error page itself failed: still no trace to the user
        text = bilingual("error.http.500")
        return PlainTextResponse(f"{text['th']}\n{text['en']}", status_code=500)


# SQLite says its file's disk refused a write in these words (SQLITE_FULL, SQLITE_READONLY).
SQLITE_DISK = {"database or disk is full": errno.ENOSPC,
               "attempt to write a readonly database": errno.EROFS}


def disk_refusal(exc: DBAPIError) -> OSError | None:
    """The database's write refused by its disk, as the OSError a file write would raise."""
    text = str(exc.orig or "")
    code = next((code for words, code in SQLITE_DISK.items() if words in text), None)
    return OSError(code, text) if code is not None else None


async def on_storage_error(request: Request, exc: OSError) -> Response:
    """The server's own disk refused a write (full, read-only, no permission) anywhere a route
    did not say so itself: 503 with what happened, never a bare 500."""
    if exc.errno not in FULL | READ_ONLY:
        return await on_unexpected(request, exc)
    log.error("storage error on %s %s: %s", request.method, request.url.path, exc)
    error = storage_error(exc, ("your change", "การเปลี่ยนแปลงนี้"))
    return answer(request, 503, error.message_th, error.message_en)


async def on_database_unreachable(request: Request, exc: DBAPIError) -> Response:
    """The database is down, restarting or cut off: 503 in Thai and English, at once.

    Answered here, inside the app, and not re-raised: an error that reaches Starlette's outer
    handler is re-raised after its 500 is sent, and uvicorn then closes the connection, so a
    client's next request on that keep-alive connection gets no answer at all. Any other
    error of the database driver is an unexpected one (500), answered the same way.
    """
    if not database_unreachable(exc):
        disk = disk_refusal(exc)
        if disk is not None:  # SQLite's own file: the data folder is full or read-only
            return await on_storage_error(request, disk)
        return await on_unexpected(request, exc)
    reason = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
    log.warning("database unreachable on %s %s: %s", request.method, request.url.path,
                reason[:300])
    text = bilingual("error.database_unreachable")
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
    try:
        response = answer(request, 503, text["th"], text["en"], headers=headers)
    except Exception:  # the error page itself failed: still an answer
        response = PlainTextResponse(f"{text['th']}\n{text['en']}", status_code=503)
    response.headers.update(headers)
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(TidtamError, on_domain_error)
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(NotAuthenticated, on_not_authenticated)
    app.add_exception_handler(DatabaseBusy, on_pool_exhausted)
    app.add_exception_handler(PoolTimeout, on_pool_exhausted)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(OSError, on_storage_error)
    app.add_exception_handler(OperationalError, on_database_unreachable)
    app.add_exception_handler(InterfaceError, on_database_unreachable)
    app.add_exception_handler(Exception, on_unexpected)


# --- what the OpenAPI schema says these answers look like ------------------------------------------

ERROR_REF = {"$ref": "#/components/schemas/ErrorPublic"}
# What every operation may answer besides its own: a body too large (web.limits), the database
# busy or unreachable (503); with a body, one the server could not read (400).
ANSWERS = {"413": "The request is too large", "503": "The database is busy or unreachable; retry"}
BODY_ANSWERS = {"400": "The body could not be read (malformed)"}
WEBHOOK_ANSWERS = {"400": "Not a webhook body", "401": "Missing or wrong signature",
                   "413": "The request is too large"}


def _error_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def document(app: FastAPI) -> None:
    """The OpenAPI schema states the app's one error shape: every 422 is ``ErrorPublic`` (not
    FastAPI's list), and the 400/413/503 any operation can give are listed."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas.setdefault("BilingualText", {
            "title": "BilingualText", "type": "object", "required": ["th", "en"],
            "properties": {"th": {"type": "string"}, "en": {"type": "string"}}})
        schemas.setdefault("ErrorPublic", {
            "title": "ErrorPublic", "type": "object", "required": ["detail"],
            "properties": {"detail": {"$ref": "#/components/schemas/BilingualText"}}})
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                _document_operation(path, method, operation)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _document_operation(path: str, method: str, operation: dict) -> None:
    responses = operation.setdefault("responses", {})
    if path == "/line/webhook":  # LINE's own plain answers: {"detail": "…"}
        plain = {"type": "object", "properties": {"detail": {"type": "string"}}}
        for code, text in WEBHOOK_ANSWERS.items():
            responses.setdefault(code, _error_response(text, plain))
        return
    if "422" in responses:
        responses["422"] = _error_response("Invalid input (Thai and English)", ERROR_REF)
    extra = {**ANSWERS, **(BODY_ANSWERS if method in ("post", "put", "patch") else {})}
    for code, text in extra.items():
        responses.setdefault(code, _error_response(text, ERROR_REF))
