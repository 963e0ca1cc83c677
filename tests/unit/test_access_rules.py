"""Province staff see their province; district staff see and mark their own district."""

import pytest

from domain.access import can_mark_item, can_review_report, can_see_district

SAKAEO, ARAN, MUEANG = "27", "2705", "2701"


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
    ("department_viewer", SAKAEO, None, ARAN, SAKAEO, False),    # unknown roles see nothing
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
    ("department_viewer", None, ARAN, False),
])
def test_can_mark_item(role, user_district, item_district, allowed):
    assert can_mark_item(role, user_district, item_district) is allowed


@pytest.mark.parametrize(("role", "allowed"), [
    ("coordinator", True), ("provincial_head", False),
    ("district_staff", False), ("district_head", False),
])
def test_only_the_coordinator_reviews_reports(role, allowed):
    assert can_review_report(role) is allowed
