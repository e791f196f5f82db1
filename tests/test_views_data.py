"""Views are data: the filter panel's fields and the «Создать» dialog's inputs follow the field
catalog (services/fields.py) and the entity registry (services/entities.py) — a field made
unfilterable leaves the panel, a field declared up front joins it (and its values are read
from the submitted form), an input declared for a create form appears in the dialog."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from sqlmodel import select

from rxcrm import i18n
from rxcrm.db import migrate, session_scope
from rxcrm.models import Deal, User
from rxcrm.services import auth, entities, fields
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.services.entities import FormField

from . import factories as f

STATE_DIR = Path(__file__).resolve().parents[1] / "rxcrm" / "state"


@pytest.fixture(scope="module")
def token():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "vd1")).first():
            m = f.user(s, "vd1", full_name="Данные Вера")
            f.deal(s, "Вероятная сделка", m, probability=70)
            f.deal(s, "Сомнительная сделка", m, probability=10)
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        tok, _ = auth.login(s, "vd1", "demo")
    return tok


def _state(token, path="/deals"):
    from rxcrm.state.work import WorkState
    st = f.logged_in(WorkState, token, path)
    st.check_login()
    return st


def _replace_field(monkeypatch, entity: str, key: str, **changes) -> None:
    defs = [dataclasses.replace(fd, **changes) if fd.key == key else fd for fd in fields.CATALOG[entity]]
    monkeypatch.setitem(fields.CATALOG, entity, defs)


def _declare(monkeypatch, entity: str, **changes) -> None:
    monkeypatch.setitem(entities.ENTITIES, entity, dataclasses.replace(entities.ENTITIES[entity], **changes))


def test_the_panel_shows_the_declared_catalog_fields(token):
    st = _state(token)
    st.on_load()
    rows = st.filter_rows
    assert [r.key for r in rows] == ["stage_id", "responsible_id", "source", "program_id", "created_at",
                                     "updated_at", "amount", "activity"]
    assert [r.label for r in rows] == ["Стадия", "Ответственный", "Источник", "Образовательная программа",
                                       "Дата создания", "Дата изменения", "Сумма, ₽", "Дела"]
    assert [r.control for r in rows] == ["checks"] * 4 + ["range"] * 3 + ["activity"]
    by_key = {r.key: r for r in rows}
    assert {o.value for o in by_key["source"].options} == set(fields.SOURCES)
    assert [o.label for o in by_key["stage_id"].options] == [o.label for o in st.stage_options]
    assert (by_key["created_at"].input_type, by_key["amount"].input_type) == ("date", "number")
    assert [o.value for o in by_key["activity"].options] == ["any", "overdue", "today", "none"]
    # the default preset (my deals in progress) is what the rows hold
    assert by_key["responsible_id"].checked == [str(st.user_id)] and st.filter_only_open
    # fields shown up front are not offered again by «Добавить поле»
    assert not {"stage_id", "source", "amount", "next_activity_at"} & {o.value for o in st.extra_field_options}
    st.lang = "en"
    assert [r.label for r in st.filter_rows][:3] == ["Stage", "Responsible", "Source"]
    assert "Overdue" in [o.label for o in st.filter_rows[-1].options]


def test_companies_and_contacts_have_their_own_panels(token):
    st = _state(token, "/companies")
    st.on_load()
    assert [r.key for r in st.filter_rows] == ["responsible_id", "created_at", "updated_at"]
    st = _state(token, "/contacts")
    st.on_load()
    assert [r.key for r in st.filter_rows] == ["responsible_id", "source", "created_at", "updated_at"]


def test_a_field_made_unfilterable_leaves_the_panel(token, monkeypatch):
    _replace_field(monkeypatch, "deal", "source", filterable=False)
    st = _state(token)
    st.on_load()
    assert "source" not in [r.key for r in st.filter_rows]
    assert "source" not in [o.value for o in st.extra_field_options]
    st.apply_filter_form({"source__Лендинг": "on"})  # nothing reads it any more
    assert "source" not in st._filters


def test_a_field_declared_up_front_joins_the_panel_and_filters(token, monkeypatch):
    _declare(monkeypatch, "deal", filter_panel=(*entities.get("deal").filter_panel, "probability"))
    st = _state(token)
    st.on_load()
    row = st.filter_rows[-1]
    assert (row.key, row.label, row.control, row.input_type) == ("probability", "Вероятность", "range", "number")
    assert "probability" not in [o.value for o in st.extra_field_options]
    st.set_view("list")
    st.apply_filter_form({"probability_from": "50", "probability_to": ""})
    assert st._filters["probability"] == {"from": "50", "to": None}
    titles = [r["title"] for r in st.rows]
    assert "Вероятная сделка" in titles
    with session_scope() as s:  # other modules' deals share the database: each shown one is ≥ 50 %
        assert all(d.probability is not None and d.probability >= 50
                   for d in s.exec(select(Deal).where(Deal.title.in_(titles))).all())
        low = s.exec(select(Deal).where(Deal.probability < 50)).all()
    assert not {d.title for d in low} & set(titles)
    assert any(c.key == "probability" for c in st.chips)
    assert st.filter_rows[-1].value_from == "50"
    # an enum of the catalog declared up front: a box per option of its own
    _declare(monkeypatch, "lead", filter_panel=("marketplace_action",))
    st = _state(token, "/leads")
    st.on_load()
    (row,) = st.filter_rows
    assert row.control == "checks" and [o.value for o in row.options] == \
        list(next(fd for fd in fields.CATALOG["lead"] if fd.key == "marketplace_action").options)


def test_the_create_dialog_follows_the_registry(token, monkeypatch):
    st = _state(token)
    st.on_load()
    names = [x.name for x in st.create_fields]
    assert names == ["title", "program", "amount", "", "last_name", "first_name", "phone", "email", "source"]
    by_name = {x.name: x for x in st.create_fields}
    assert by_name["title"].placeholder == "Название сделки" and by_name["title"].required
    assert by_name["title"].testid == "create-title" and by_name["last_name"].testid == "create-last"
    assert by_name["phone"].testid == "create-phone" and by_name["phone"].half
    assert [o.value for o in by_name["program"].choices] == [o.value for o in st.program_options]
    assert st.create_title == "Новая сделка"
    st.lang = "en"
    assert st.create_title == "New deal" and st.create_fields[0].placeholder == "Deal name"

    _declare(monkeypatch, "deal", create_form=(*entities.get("deal").create_form,
                                               FormField("middle_name", placeholder="work.create.middle_name")))
    st = _state(token)
    st.on_load()
    assert st.create_fields[-1].name == "middle_name" and st.create_fields[-1].placeholder == "Отчество"


@pytest.mark.parametrize("code", entities.ITEM_ENTITIES)
def test_declarations_are_complete(code):
    """Every field the registry shows up front is a filterable field of the catalog the panel
    can ask for; every create input submits a name the state reads and has its texts."""
    from rxcrm.state.work import CREATE_NAMES, filter_control
    e = entities.get(code)
    catalog = {fd.key: fd for fd in fields.CATALOG[code]}
    for key in e.filter_panel:
        assert key in catalog and catalog[key].filterable and filter_control(catalog[key]), key
    for x in e.create_form:
        assert x.kind == "note" or x.name in CREATE_NAMES, x
        assert x.placeholder in i18n.RU and x.placeholder in i18n.EN, x
    assert f"work.create.title.{code}" in i18n.RU


def test_keys_composed_in_code_exist():
    from rxcrm.services.filters import ACTIVITY_STATES
    for state in ("any", *ACTIVITY_STATES):
        assert f"work.filter.activity.{state}" in i18n.RU
    for state in ACTIVITY_STATES:
        assert f"work.chip.activity.{state}" in i18n.RU
    # the parsers' `what` keys (state/base.py shows «Неверные данные запроса: <what>»)
    used = set()
    for path in STATE_DIR.glob("*.py"):
        used |= set(re.findall(r'"((?:common|work)\.what\.[a-z_]+)"', path.read_text(encoding="utf-8")))
    assert used and sorted(used - set(i18n.RU)) == []


def test_a_refusal_of_the_parsers_speaks_the_persons_language():
    from rxcrm.services.errors import ValidationFailed
    from rxcrm.state import base
    with pytest.raises(ValidationFailed) as refused:
        base.to_id("abc", "work.what.stage")
    assert refused.value.message == "Неверные данные запроса: стадия"
    assert base.describe(refused.value, "en") == "Invalid request data: stage"
    with pytest.raises(ValidationFailed) as refused:
        base.to_text("x" * 5, "work.what.name", 3)
    assert refused.value.message == "Слишком длинный текст: название (не больше 3 символов)"
    assert base.describe(refused.value, "en") == "Text too long: name (at most 3 characters)"
    # a `what` that is no key is shown as it is; a service's message maps through MESSAGES_EN
    with pytest.raises(ValidationFailed) as refused:
        base.to_id("abc", "period")
    assert base.describe(refused.value, "en") == "Invalid request data: period"
    assert base.describe(ValidationFailed("Нет доступа"), "en") == "Access denied"


def test_built_in_presets_are_named_in_the_persons_language(token):
    """A built-in preset still named as shipped shows in the person's language (a renamed
    one, or a person's own, keeps its name)."""
    from rxcrm.rules.defaults import BUILTIN_PRESETS
    for code, _page, name, *_ in BUILTIN_PRESETS:
        assert i18n.RU[f"work.preset.{code}"] == name
    st = _state(token)
    st.on_load()
    assert "Мои сделки в работе" in [p.name for p in st.presets]
    st.save_preset({"name": "Мои крупные"})
    st.lang = "en"
    st.on_load()
    names = [p.name for p in st.presets]
    assert "My deals in progress" in names and "Мои крупные" in names
