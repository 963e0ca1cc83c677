"""Province staff see their province; district staff see and mark their own district."""

import pytest

from domain.access import (
    can_edit_report,
    can_mark_item,
    can_review_report,
    can_see_district,
    can_see_province,
    can_waive_item,
)

SAKAEO, ARAN, MUEANG = "27", "2705", "2701"
CHIANG_MAI, MUEANG_CM = "50", "5001"


@pytest.mark.parametrize(("role", "user_province", "user_district", "district", "province",
                          "allowed"), [
    ("coordinator", SAKAEO, None, ARAN, SAKAEO, True),
    ("provincial_head", SAKAEO, None, ARAN, SAKAEO, True),
    ("coordinator", SAKAEO, None, "1001", "10", False),          # another province
    ("provincial_head", SAKAEO, None, "1001", "10", False),
    ("district_staff", SAKAEO, ARAN, ARAN, SAKAEO, True),
    ("district_head", SAKAEO, ARAN, ARAN, SAKAEO, True),
    ("district_staff", SAKAEO, ARAN, MUEANG, SAKAEO, False),     # a neighbour district
    ("district_head", SAKAEO, ARAN, MUEANG, SAKAEO, False),
    ("district_staff", SAKAEO, None, ARAN, SAKAEO, False),       # staff without a district
    ("district_staff", "10", ARAN, ARAN, SAKAEO, False),         # inconsistent user record
    ("coordinator", CHIANG_MAI, None, ARAN, SAKAEO, False),
    ("coordinator", None, None, ARAN, SAKAEO, False),            # no province: nothing
    ("district_staff", CHIANG_MAI, MUEANG_CM, MUEANG_CM, CHIANG_MAI, True),
    ("district_staff", SAKAEO, MUEANG, MUEANG_CM, CHIANG_MAI, False),
    ("department_viewer", None, None, ARAN, SAKAEO, True),       # the Department sees every district
    ("department_viewer", None, None, MUEANG_CM, CHIANG_MAI, True),
    ("department_viewer", None, None, "1001", "10", True),
    ("national_admin", None, None, ARAN, SAKAEO, False),         # unknown roles see nothing
    ("", SAKAEO, ARAN, ARAN, SAKAEO, False),
])
def test_can_see_district(role, user_province, user_district, district, province, allowed):
    assert can_see_district(role, user_province, user_district, district, province) is allowed


@pytest.mark.parametrize(("role", "user_district", "item_district", "allowed"), [
    ("district_staff", ARAN, ARAN, True),
    ("district_head", ARAN, ARAN, True),
    ("district_staff", ARAN, MUEANG, False),
    ("district_head", MUEANG, ARAN, False),
    ("district_staff", None, ARAN, False),
    ("coordinator", None, ARAN, True),        # its province is checked by can_see_district
    ("provincial_head", None, ARAN, False),   # is told, does not mark
    ("department_viewer", None, ARAN, False),  # reads, never marks
])
def test_can_mark_item(role, user_district, item_district, allowed):
    assert can_mark_item(role, user_district, item_district) is allowed


@pytest.mark.parametrize(("role", "user_province", "district_province", "allowed"), [
    ("coordinator", SAKAEO, SAKAEO, True),
    ("coordinator", CHIANG_MAI, SAKAEO, False),   # another province's coordinator
    ("coordinator", None, SAKAEO, False),
    ("provincial_head", SAKAEO, SAKAEO, False),   # is told, does not decide
    ("district_staff", SAKAEO, SAKAEO, False),    # a district asks; the province decides
    ("district_head", SAKAEO, SAKAEO, False),
    ("department_viewer", None, SAKAEO, False),   # reads, never changes
    ("", SAKAEO, SAKAEO, False),
])
def test_only_the_provinces_coordinator_waives_an_item(role, user_province, district_province,
                                                       allowed):
    assert can_waive_item(role, user_province, district_province) is allowed


@pytest.mark.parametrize(("role", "allowed"), [
    ("coordinator", True), ("provincial_head", False),
    ("district_staff", False), ("district_head", False), ("department_viewer", False),
])
def test_only_the_coordinator_reviews_reports(role, allowed):
    assert can_review_report(role) is allowed


@pytest.mark.parametrize(("role", "user_province", "province", "allowed"), [
    ("department_viewer", None, SAKAEO, True),
    ("department_viewer", None, CHIANG_MAI, True),
    ("coordinator", SAKAEO, SAKAEO, True),
    ("provincial_head", SAKAEO, SAKAEO, True),
    ("coordinator", SAKAEO, CHIANG_MAI, False),
    ("provincial_head", CHIANG_MAI, SAKAEO, False),
    ("coordinator", None, SAKAEO, False),
    ("district_staff", SAKAEO, SAKAEO, False),   # a district role sees its district, not the board
    ("district_head", SAKAEO, SAKAEO, False),
    ("", SAKAEO, SAKAEO, False),
])
def test_can_see_province(role, user_province, province, allowed):
    assert can_see_province(role, user_province, province) is allowed


@pytest.mark.parametrize(("role", "user_district", "allowed"), [
    ("district_staff", ARAN, True), ("district_head", ARAN, True),
    ("district_staff", MUEANG, False), ("coordinator", None, False),
    ("provincial_head", None, False), ("department_viewer", None, False),
])
def test_only_the_district_edits_its_report(role, user_district, allowed):
    assert can_edit_report(role, user_district, ARAN) is allowed
