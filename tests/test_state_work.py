"""State handler tests for the work surfaces: board load, optimistic drag, refusal dialog,
filters → chips → URL, list paging/selection, bulk move."""
from __future__ import annotations

import pytest
from sqlmodel import select

from rxcrm.db import db_url, migrate, session_scope
from rxcrm.models import Deal, User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


@pytest.fixture(scope="module")
def app_world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "wm1")).first():
            m = f.user(s, "wm1", full_name="Белова Анна Петровна")
            c = f.contact(s, "Громов", "Олег", phones=["+7 916 123-45-67"], responsible=m)
            for i in range(25):
                f.deal(s, f"Сделка {i:02d}", m, amount=1000 * (i + 1), source="Лендинг" if i % 2 else "Звонок",
                       contact_=c if i == 0 else None)
            f.deal(s, "Регистрация 1", m, stage_code="REGISTRATION", amount=5000)
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        token, _ = auth.login(s, "wm1", "demo")
        ids = {d.title: d.id for d in s.exec(select(Deal)).all()}
        stages = {st.code: st.id for st in [f.stage(s, "dpo", c) for c in ("INTEREST", "REGISTRATION", "CONTRACT")]}
    assert db_url().startswith("sqlite")
    return token, ids, stages


def _state(token):
    from rxcrm.state.work import WorkState
    st = f.logged_in(WorkState, token)
    st.check_login()
    return st


def _drain(result):
    return list(result) if hasattr(result, "__iter__") and not isinstance(result, (list, dict, str)) else result


def test_board_loads_counts_and_first_page(app_world):
    token, ids, stages = app_world
    st = _state(token)
    st.on_load()
    interest = next(c for c in st.board if c.name == "Интерес")
    assert interest.count == 25 and len(interest.cards) == 20 and interest.has_more
    assert interest.amount == "325\u00a0000\u00a0₽"
    # the built-in default preset "Мои сделки в работе" is applied and shown as chips
    assert [c.key for c in st.chips] == ["responsible_id", "semantic"]
    st.load_more(interest.id)
    interest = next(c for c in st.board if c.name == "Интерес")
    assert len(interest.cards) == 25 and not interest.has_more


def test_drag_moves_optimistically_then_persists(app_world):
    token, ids, stages = app_world
    st = _state(token)
    st.on_load()
    card_id = ids["Сделка 05"]
    gen = st.on_drag_end({"draggableId": str(card_id), "from": str(stages["INTEREST"]),
                          "to": str(stages["REGISTRATION"])})
    next(gen)  # first yield: the card already sits in the new column
    reg = next(c for c in st.board if c.id == stages["REGISTRATION"])
    assert reg.cards[0].id == card_id
    _drain(gen)
    with session_scope() as s:
        assert s.get(Deal, card_id).stage_id == stages["REGISTRATION"]
    assert next(c for c in st.board if c.id == stages["REGISTRATION"]).count == 2


def test_refused_drag_returns_the_card_and_opens_the_dialog(app_world):
    token, ids, stages = app_world
    st = _state(token)
    st.on_load()
    card_id = ids["Сделка 07"]
    _drain(st.on_drag_end({"draggableId": str(card_id), "from": str(stages["INTEREST"]),
                           "to": str(stages["CONTRACT"])}))
    assert st.missing_open and "Номер договора" in st.missing_message
    assert [m.key for m in st.missing_fields] == ["custom.dpo_contract_number"]
    assert any(c.id == card_id for c in next(c for c in st.board if c.id == stages["INTEREST"]).cards)
    _drain(st.submit_missing({"custom.dpo_contract_number": "  "}))  # still empty: dialog stays, value kept
    assert st.missing_open
    _drain(st.submit_missing({"custom.dpo_contract_number": "Д-1"}))
    assert not st.missing_open
    with session_scope() as s:
        assert s.get(Deal, card_id).stage_id == stages["CONTRACT"]


def test_drag_from_a_stale_board_is_refused_with_who_changed_it(app_world):
    """Two people drag the same card: the second one's board is stale, so the move is
    refused with the inline-edit notice and the board is read again — nothing is applied on
    top of the first move."""
    token, ids, stages = app_world
    with session_scope() as s:
        if not s.exec(select(User).where(User.login == "wm2")).first():
            f.user(s, "wm2", role="head", full_name="Соколова Мария")
        token2, _ = auth.login(s, "wm2", "demo")
    card_id = ids["Сделка 09"]
    first, second = _state(token), _state(token2)
    first.on_load()
    second.on_load()
    second._filters = {}  # the head looks at the whole department's board
    _drain(second._reload())
    assert any(c.id == card_id for col in second.board for c in col.cards)
    _drain(first.on_drag_end({"draggableId": str(card_id), "from": str(stages["INTEREST"]),
                              "to": str(stages["REGISTRATION"])}))
    out = _drain(second.on_drag_end({"draggableId": str(card_id), "from": str(stages["INTEREST"]),
                                      "to": str(stages["CONTRACT"])}))
    assert "Карточку изменил Белова Анна Петровна" in str(out) and "обновите" in str(out)
    with session_scope() as s:
        assert s.get(Deal, card_id).stage_id == stages["REGISTRATION"]  # the first move stands
    # the second board was read again: the card now shows in its real column
    reg = next(c for c in second.board if c.id == stages["REGISTRATION"])
    assert any(c.id == card_id for c in reg.cards)


def test_search_by_phone_and_filter_form_make_chips_and_url(app_world):
    token, ids, stages = app_world
    st = _state(token)
    st.on_load()
    st.set_view("list")
    st.search({"q": "8 (916) 123-45-67"})
    assert st.total == 1 and st.rows[0]["id"] == str(ids["Сделка 00"])
    assert any(c.label.startswith("Поиск:") for c in st.chips)
    st.clear_filters()
    st.apply_filter_form({"source__Лендинг": "on", "amount_from": "10000", "amount_to": ""})
    assert {c.key for c in st.chips} == {"source", "amount"}
    assert "source=" in st._url() and "amount=10000.." in st._url()
    assert all(int(r["id"]) for r in st.rows)
    expected = sum(1 for i in range(25) if i % 2 and 1000 * (i + 1) >= 10000)
    assert st.total == expected


def test_list_selection_and_bulk_move(app_world):
    token, ids, stages = app_world
    st = _state(token)
    st.on_load()
    st.set_view("list")
    st.apply_filter_form({"source__Звонок": "on"})
    st.set_page_size("10")
    st.toggle_page(True)
    assert st.selection_count == 10 and st.page_all_selected
    st.select_all_matching()
    assert st.selection_count == st.total
    st.bulk_move(str(stages["REGISTRATION"]))
    with session_scope() as s:
        moved = [d for d in s.exec(select(Deal).where(Deal.source == "Звонок")).all()]
    assert all(d.stage_id in (stages["REGISTRATION"], stages["CONTRACT"]) for d in moved)
    assert st.selected == [] and not st.all_matching


def test_create_dialog_makes_a_lead_and_refuses_an_empty_one(app_world):
    token, ids, stages = app_world
    from rxcrm.models import Lead
    st = _state(token)
    st.page, st.entity = "leads", "lead"
    st.set_create_open(True)
    st.create_item({"last_name": "", "first_name": "", "phone": "", "email": ""})
    assert st.create_open and st.create_error  # nothing to identify the person: refused, dialog stays
    spec = st.create_item({"last_name": "Новикова", "first_name": "Ирина", "phone": "8 (912) 345-67-89",
                           "email": "", "source": "Звонок"})
    assert not st.create_open and "/leads/" in str(spec)
    with session_scope() as s:
        lead = s.exec(select(Lead).where(Lead.last_name == "Новикова")).one()
        assert lead.source == "Звонок" and lead.responsible_id is not None


def test_queue_preset_switches_the_leads_list_to_queue_order(app_world):
    token, ids, stages = app_world
    st = _state(token)
    st.page, st.entity, st.pipeline_id = "leads", "lead", 0
    from rxcrm.services import catalogs
    with session_scope() as s:
        st.pipeline_id = catalogs.default_pipeline(s, "lead").id
        st._load_presets(s, st._actor())
    queue = next(p for p in st.presets if p.name == "Очередь")
    st.apply_preset(queue.id)
    assert st.sort == "queue" and st.view == "list" and st.error == ""
    other = next(p for p in st.presets if p.name == "Мои лиды в работе")
    st.apply_preset(other.id)
    assert st.sort == "created_at"  # the queue order came with «Очередь»: another preset drops it


def test_a_saved_preset_brings_back_its_sort_and_view(app_world):
    """A preset is the whole view: saved from a list sorted by amount ascending, it opens
    that list in that order again — and a sort the person chose stays when a preset has none."""
    token, ids, stages = app_world
    st = _state(token)
    st.on_load()
    _drain(st.set_view("list"))
    _drain(st.set_sort("amount"))
    _drain(st.set_sort("amount"))  # ascending
    assert (st.sort, st.desc) == ("amount", False)
    st.save_preset({"name": "Дешёвые сначала"})
    mine = next(p for p in st.presets if p.name == "Дешёвые сначала")
    _drain(st.set_view("kanban"))
    _drain(st.set_sort("title"))
    st.apply_preset(mine.id)
    assert (st.view, st.sort, st.desc) == ("list", "amount", False)
    amounts = [r["amount"] for r in st.rows]
    assert amounts and amounts == sorted(amounts, key=lambda a: float(a.replace("\u00a0", "").replace("₽", "")
                                                                 .replace(",", ".") or 0))
