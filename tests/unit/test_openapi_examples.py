"""Every example the OpenAPI document shows is one the API itself would take or give.

The examples live on the models in web/schemas.py (``model_config["json_schema_extra"]``); an
integrator copies them, so each must validate against its own model.
"""

from __future__ import annotations

import inspect

import pytest
from pydantic import BaseModel

from web import schemas

MODELS = [obj for _, obj in inspect.getmembers(schemas, inspect.isclass)
          if issubclass(obj, BaseModel) and obj.__module__ == schemas.__name__]
WITH_EXAMPLES = [(m, ex) for m in MODELS
                 for ex in (m.model_config.get("json_schema_extra") or {}).get("examples", [])]


def test_the_api_models_people_send_and_read_most_carry_examples():
    shown = {m.__name__ for m, _ in WITH_EXAMPLES}
    for name in ("ErrorPublic", "TokenPublic", "DoneIn", "WaiveIn", "ItemPublic",
                 "OutboxMessagePublic", "ReportIn", "ReturnIn", "ReopenIn", "AcceptIn"):
        assert name in shown, f"{name} has no example in the OpenAPI document"


@pytest.mark.parametrize(("model", "example"), WITH_EXAMPLES,
                         ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(WITH_EXAMPLES)])
def test_every_example_validates_against_its_own_model(model, example):
    model.model_validate(example)
