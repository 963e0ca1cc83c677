"""The locale files: Thai and English have the same keys, and every key a template uses exists."""

from __future__ import annotations

import re

import pytest

from web.i18n import LANGUAGES, Translator, catalog
from web.rendering import TEMPLATES_DIR

KEY_IN_TEMPLATE = re.compile(r"""\bt(?:_other)?\(\s*["']([\w.\-]+)["']""")


def test_thai_and_english_have_the_same_keys():
    assert set(catalog("th")) == set(catalog("en"))


def test_every_literal_key_in_the_templates_exists():
    used = {key for path in TEMPLATES_DIR.glob("*.html")
            for key in KEY_IN_TEMPLATE.findall(path.read_text(encoding="utf-8"))}
    keys = set(catalog("th"))
    whole = {key for key in used if not key.endswith(".")}  # "status." ~ x: a prefix
    assert whole, "the pattern found no keys at all"
    assert whole - keys == set()
    for prefix in used - whole:
        assert any(key.startswith(prefix) for key in keys), prefix


def test_every_status_channel_and_role_has_a_label():
    from domain.access import Role
    from models.directive import ItemStatus, StepKind
    from models.outbox import Channel, OutboxStatus

    keys = set(catalog("th"))
    needed = ({f"status.{s}" for s in ItemStatus} | {f"kind.{k}" for k in StepKind}
              | {f"outbox.status.{s}" for s in OutboxStatus} | {f"channel.{c}" for c in Channel}
              | {f"role.{r}" for r in Role})
    assert needed - keys == set()
    assert catalog("th")["outbox.status.not-sent-no-channel"] == "ไม่ได้ส่ง: ไม่มีช่องทาง"


def test_unknown_keys_raise_and_unknown_languages_fall_back_to_thai():
    with pytest.raises(KeyError):
        Translator("th")("no.such.key")
    assert Translator("fr").lang == "th" and LANGUAGES[0] == "th"
    assert Translator("en")("district.title", name="Ta Phraya") == "Ta Phraya district"
