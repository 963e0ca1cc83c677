"""A stop-gap for an upstream bug, to delete once asgi-csrf releases PR #39.

asgi-csrf 0.11 reads a multipart body's token with python-multipart's old ``FormParser(FileClass=…)``,
which python-multipart ≥ 0.0.26 removed (simonw/asgi-csrf#38): every multipart POST without the
x-csrftoken header (a plain HTML upload form) fails with a 500. This is the same check — the
token must come before any file part; parts are read only until the token is found — written
against the low-level MultipartParser, whose callbacks are stable. Install before the middleware runs.
"""

from __future__ import annotations

import asgi_csrf
from python_multipart.multipart import MultipartParser, parse_options_header


async def parse_multipart_token(boundary, receive):
    """(token or None, replay_receive); FileBeforeToken if a file part comes first."""
    messages: list[dict] = []
    part = {"header": b"", "value": b"", "headers": {}}

    def on_part_begin():
        part.update(header=b"", value=b"", headers={}, field=b"")

    def on_header_field(data, start, end):
        part["field"] = part.get("field", b"") + data[start:end]

    def on_header_value(data, start, end):
        part["header"] += data[start:end]

    def on_header_end():
        part["headers"][part["field"].lower()] = part["header"]
        part["field"], part["header"] = b"", b""

    def on_part_data(data, start, end):
        _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if b"filename" in options:
            raise asgi_csrf.FileBeforeToken
        part["value"] += data[start:end]

    def on_part_end():
        _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if b"filename" in options:
            raise asgi_csrf.FileBeforeToken
        if options.get(b"name") == b"csrftoken":
            raise asgi_csrf.TokenFound(part["value"].decode("utf-8"))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_part_data": on_part_data, "on_part_end": on_part_end})

    async def replay_receive():
        return messages.pop(0) if messages else await receive()

    more_body = True
    try:
        while more_body:
            message = await receive()
            messages.append(message)
            parser.write(message.get("body", b""))
            more_body = message.get("more_body", False)
    except asgi_csrf.TokenFound as found:
        return found.args[0], replay_receive
    return None, replay_receive


def install() -> None:
    asgi_csrf._parse_multipart_form_data = parse_multipart_token
