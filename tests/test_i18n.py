"""The English catalog is complete and every label the UI asks for exists."""
from __future__ import annotations

import re
from pathlib import Path

from rxcrm import i18n

ROOT = Path(__file__).resolve().parents[1] / "rxcrm"


def test_catalogs_have_the_same_keys_and_no_blanks():
    assert set(i18n.RU) == set(i18n.EN)
    for lang, cat in i18n.CATALOGS.items():
        assert all(v.strip() for v in cat.values()), lang


def test_english_catalog_is_translated():
    same = [k for k in i18n.RU if i18n.RU[k] == i18n.EN[k] and k not in {"app.name", "nav.section.crm"}]
    assert same == []


def test_every_key_used_in_the_ui_exists():
    used = set()
    for path in ROOT.rglob("*.py"):
        used |= set(re.findall(r'\bt\["([a-z_.]+)"\]', path.read_text(encoding="utf-8")))
    # keys passed through tables (e.g. SECTIONS) as plain strings
    for path in (ROOT / "pages").rglob("*.py"):
        used |= {k for k in re.findall(r'"((?:page|nav|common)\.[a-z_.]+)"', path.read_text(encoding="utf-8"))}
    assert used, "no labels found: the scan is broken"
    assert sorted(used - set(i18n.RU)) == []
