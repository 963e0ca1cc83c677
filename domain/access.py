"""Who may see and change what: the Department sees every province and changes nothing;
province staff see their province, district staff their district."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a person does: the one vocabulary of accounts, access rules and the ladder's audiences."""

    COORDINATOR = "coordinator"  # กลุ่มงานส่งเสริมการพัฒนาชุมชน: the province's follow-up
    DISTRICT_STAFF = "district_staff"  # เจ้าหน้าที่ สพอ.
    DISTRICT_HEAD = "district_head"  # พัฒนาการอำเภอ
    PROVINCIAL_HEAD = "provincial_head"  # พัฒนาการจังหวัด
    DEPARTMENT_VIEWER = "department_viewer"  # กรมการพัฒนาชุมชน: reads every province, changes nothing


COORDINATOR = Role.COORDINATOR
NATIONAL_ROLES = frozenset({Role.DEPARTMENT_VIEWER})
PROVINCE_ROLES = frozenset({Role.COORDINATOR, Role.PROVINCIAL_HEAD})
DISTRICT_ROLES = frozenset({Role.DISTRICT_STAFF, Role.DISTRICT_HEAD})


def can_see_province(role: str, user_province: str | None, province_code: str) -> bool:
    """Whether a user may look at a province's board: the Department, or the province's own staff."""
    if role in NATIONAL_ROLES:
        return True
    return role in PROVINCE_ROLES and user_province is not None and user_province == province_code


def can_see_district(role: str, user_province: str | None, user_district: str | None,
                     district_code: str, district_province: str) -> bool:
    """Whether a user may look at one district's items and reports (the Department: every one)."""
    if role in NATIONAL_ROLES:
        return True
    if user_province is None or user_province != district_province:
        return False
    if role in PROVINCE_ROLES:
        return True
    return role in DISTRICT_ROLES and user_district == district_code


def can_mark_item(role: str, user_district: str | None, item_district: str) -> bool:
    """Whether a user may mark an item done: its own district, or the province's coordinator.

    The coordinator's province is not checked here; check it with ``can_see_district``.
    """
    if role == COORDINATOR:
        return True
    return role in DISTRICT_ROLES and user_district is not None and user_district == item_district


def can_waive_item(role: str, user_province: str | None, district_province: str) -> bool:
    """Whether a user may mark a district's step not applicable (waive it), or undo that: only
    the coordinator of the district's own province. District people ask; the province decides."""
    return role == COORDINATOR and user_province is not None and user_province == district_province


def can_close_directive(role: str, user_province: str | None, directive_province: str | None) -> bool:
    """Only the coordinator of the directive's own province closes it (or it closes itself on
    the day its YAML sets)."""
    return (role == COORDINATOR and user_province is not None
            and directive_province is not None and user_province == directive_province)


def can_review_report(role: str) -> bool:
    """Only the provincial coordinator accepts or returns a district's report."""
    return role == COORDINATOR


def can_edit_report(role: str, user_district: str | None, district_code: str) -> bool:
    """Only the district's own staff and head write its report; the province reviews it."""
    return role in DISTRICT_ROLES and user_district is not None and user_district == district_code


def can_manage_account(role: str, user_province: str | None, target_role: str,
                       target_province: str | None) -> bool:
    """Who creates, disables, re-enables and resets whose account: the coordinator the district
    accounts of their own province; the Department viewer the Department's own accounts. No one
    manages a province role's account from the web (``tidtam user-add`` does), nor their own."""
    if role == COORDINATOR:
        return (target_role in DISTRICT_ROLES and user_province is not None
                and user_province == target_province)
    if role in NATIONAL_ROLES:
        return target_role in NATIONAL_ROLES
    return False


def can_manage_accounts(role: str) -> bool:
    """Whether the accounts page is for this role at all."""
    return role == COORDINATOR or role in NATIONAL_ROLES


def manageable_roles(role: str) -> frozenset[Role]:
    """The roles of the accounts this role may create."""
    if role == COORDINATOR:
        return DISTRICT_ROLES
    return NATIONAL_ROLES if role in NATIONAL_ROLES else frozenset()
