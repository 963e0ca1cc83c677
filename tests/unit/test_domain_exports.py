"""The public surface of domain/ and its errors, as the other layers use them."""

import pytest

import domain
from domain.errors import Conflict, Forbidden, InvalidInput, NotFound, TidtamError


def test_every_exported_name_exists_and_is_listed_once():
    assert len(domain.__all__) == len(set(domain.__all__))
    assert [name for name in domain.__all__ if not hasattr(domain, name)] == []


@pytest.mark.parametrize("kind", [InvalidInput, NotFound, Forbidden, Conflict])
def test_errors_carry_both_languages(kind):
    error = kind("district 2799 not found", "ไม่พบอำเภอ 2799")
    assert isinstance(error, TidtamError)
    assert (error.message_en, error.message_th) == ("district 2799 not found", "ไม่พบอำเภอ 2799")
    assert str(error) == "ไม่พบอำเภอ 2799 / district 2799 not found"


def test_invalid_input_is_also_a_value_error_so_validators_may_raise_it():
    assert issubclass(InvalidInput, ValueError)
    assert not issubclass(NotFound, ValueError)
