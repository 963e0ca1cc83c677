"""The account rules, table-driven, no database: who manages whom, what a password must be."""

from __future__ import annotations

import pytest

from domain.access import Role, can_manage_account
from domain.errors import InvalidInput
from domain.passwords import check_password

C, PH, DS, DH, DV = (Role.COORDINATOR, Role.PROVINCIAL_HEAD, Role.DISTRICT_STAFF,
                     Role.DISTRICT_HEAD, Role.DEPARTMENT_VIEWER)


@pytest.mark.parametrize(("role", "province", "target", "target_province", "allowed"), [
    (C, "27", DS, "27", True),
    (C, "27", DH, "27", True),
    (C, "27", DS, "50", False),  # another province's district
    (C, "27", C, "27", False),  # a province role
    (C, "27", PH, "27", False),
    (C, "27", DV, None, False),
    (DV, None, DV, None, True),  # the Department its own
    (DV, None, DS, "27", False),
    (DV, None, C, "27", False),
    (PH, "27", DS, "27", False),
    (DS, "27", DS, "27", False),
    (DH, "27", DS, "27", False),
    (C, None, DS, None, False),  # a coordinator without a province manages no one
])
def test_who_manages_whom(role, province, target, target_province, allowed):
    assert can_manage_account(role, province, target, target_province) is allowed


@pytest.mark.parametrize(("password", "words", "refused_for"), [
    ("short-1", (), "at least 12"),
    (" " * 12, (), "spaces"),
    ("\t \n" * 5, (), "spaces"),
    ("a" * 12, (), "one character"),
    ("password1234", (), "too common"),
    ("qwertyuiop12", (), "too common"),
    ("somchai.rakchart", ("somchai.rakchart", "Somchai Rakchart"), "too common"),
    ("lantern-papaya-orbit-93", (), None),
    ("correct horse battery staple", (), None),
    ("ส้มตำ-ไก่ย่าง-ข้าวเหนียว", (), None),
])
def test_password_rule(password, words, refused_for):
    if refused_for is None:
        check_password(password, user_inputs=words)
        return
    with pytest.raises(InvalidInput) as refused:
        check_password(password, user_inputs=words)
    assert refused_for in refused.value.message_en
    assert refused.value.message_th.startswith("รหัสผ่าน")
