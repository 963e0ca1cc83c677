"""The fuzz (issue 14 item 7): schemathesis over /openapi.json, in-process over ASGI, as three
roles (coordinator, district staff, Department viewer) on the Sa Kaeo demo.

Seeded and bounded (hypothesis derandomized, a few examples an operation), so it is short and
the same on every run. Every answer must be below 500 and conform to the schema: a documented
status code, its content type, its body's schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from models.sessions import SessionKind
from tests.web.conftest import make_app
from tests.web.helpers import user_named
from tests.web.test_line_webhook import SECRET
from tidtam.app.accounts import start_session
from tidtam.infra.db import session_scope

ROLES = ("coordinator", "staff-2706", "department")
EXAMPLES = 6
# No 5xx; the status code documented; its content type; its body's schema. Not "valid data is
# accepted": a well-formed report the rules refuse (no accepted district yet…) is a correct 422.
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]
# Each case of a PDF download the caller may read starts headless Chromium (about a second,
# several seconds on a busy machine): a dozen per role would triple the fuzz's time for one code
# path. tests/web/test_api_lifecycle.py prints one and checks every refusal of the PDF routes.
NOT_FUZZED = {"/api/v1/districts/{code}/report.pdf", "/api/v1/reports/compiled.pdf"}


@pytest.fixture
def app(engine):
    return make_app(engine, line_channel_secret=SECRET, line_channel_access_token="t" * 40)


def bearer(app, engine, username: str) -> dict[str, str]:
    """A live API token of the user's, as /api/v1/token issues it (a server-side session row)."""
    with session_scope(engine) as session:
        token = start_session(session, user_named(engine, username), SessionKind.API,
                              app.state.clock.now())
    return {"Authorization": f"Bearer {token}"}


def fuzz(operation, headers: dict[str, str], mode: GenerationMode) -> None:
    """A few seeded cases of one operation: each must answer below 500 and as documented."""
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case) -> None:
        response = case.call_and_validate(headers={**(case.headers or {}), **headers},
                                          checks=CHECKS)
        assert response.status_code < 500, (case.method, case.formatted_path)

    try:
        run()
    except Unsatisfiable:  # an operation with no input has no invalid input to make
        if mode is GenerationMode.POSITIVE:
            raise


@pytest.mark.parametrize("role", ROLES)
def test_the_api_answers_every_role_without_5xx_and_as_documented(app, engine, role):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = bearer(app, engine, role)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        if operation.path == "/api/v1/logout":  # it ends the token the others use: fuzzed last
            continue
        if operation.path in NOT_FUZZED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, headers, mode)
    for operation in operations:
        if operation.path == "/api/v1/logout":
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, bearer(app, engine, role), mode)
