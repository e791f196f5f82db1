"""Saved filter presets and list column sets on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import ColumnSet, CustomField, Deal, FilterPreset, PresetRoleDefault, UserPageSetting
from rxcrm.services import listing, views
from rxcrm.services.auth import actor_for
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.services.errors import AccessDenied, NotFound, ValidationFailed
from rxcrm.services.fields import DEFAULT_COLUMNS

from . import factories as f


@pytest.fixture
def world(db):
    """Two ДПО managers, an admissions manager, a ДПО head, an admin, an inactive ДПО user."""
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        adm = f.user(s, "admissions1", dept_code="admissions")
        head = f.user(s, "head1", role="head")
        boss = f.user(s, "admin", role="admin", dept_code=None)
        gone = f.user(s, "gone", full_name="Уволен")
        gone.is_active = False
        s.add(gone)
        d1 = f.deal(s, "Сделка Петрова", m1)
        d2 = f.deal(s, "Сделка Сидоровой", m2)
        f.deal(s, "Выиграна", m1, stage_code="WON")
        f.deal(s, "Магистратура", adm, pipe_code="masters", stage_code="REGISTRATION")
        ids = dict(m1=m1.id, m2=m2.id, adm=adm.id, head=head.id, boss=boss.id, gone=gone.id,
                   d1=d1.id, d2=d2.id, dpo=f.pipeline(s, "dpo").id, masters=f.pipeline(s, "masters").id)
        users = {u.login: actor_for(u) for u in (m1, m2, adm, head, boss)}
    return db, ids, users


LEADS = ["Мои лиды в работе", "Очередь", "Лиды отдела в работе", "Все лиды в работе"]
DEALS = ["Мои сделки в работе", "Сделки отдела в работе", "Менеджеры ДПО", "Все сделки в работе"]


def names(db, actor, page):
    with session_scope(db) as s:
        return [p.name for p in views.list_presets(s, actor, page)]


def preset_id(db, code):
    with session_scope(db) as s:
        return s.exec(select(FilterPreset.id).where(FilterPreset.code == code)).one()


# ---- presets --------------------------------------------------------------------------

def test_builtins_exist_once_after_defaults_run_twice(world):
    db, _, u = world
    with session_scope(db) as s:
        ensure_defaults(s)
    with session_scope(db) as s:
        ensure_defaults(s)
    with session_scope(db) as s:
        rows = s.exec(select(FilterPreset).where(FilterPreset.is_builtin.is_(True))).all()
        assert sorted(p.code for p in rows) == ["all_deals", "all_leads", "dept_deals", "dept_leads",
                                                "dpo_managers", "my_deals", "my_leads", "queue"]
        assert all(p.is_shared and p.owner_id is None for p in rows)
        assert len(s.exec(select(PresetRoleDefault)).all()) == 8  # 2 pages × 4 roles, written once
    assert names(db, u["manager1"], "leads") == LEADS
    assert names(db, u["manager1"], "deals") == DEALS
    assert names(db, u["manager1"], "contacts") == []


def test_builtins_cannot_be_deleted_even_by_admin(world):
    db, _, u = world
    pid = preset_id(db, "my_deals")
    for who in ("manager1", "admin"):
        with pytest.raises(AccessDenied), session_scope(db) as s:
            views.delete_preset(s, u[who], pid)
    with session_scope(db) as s:
        assert s.get(FilterPreset, pid) is not None


def test_personal_presets_are_private_shared_ones_visible_to_all(world):
    db, ids, u = world
    with session_scope(db) as s:
        views.save_preset(s, u["manager1"], "deals", "Я: Лендинг", {"source": ["Лендинг"]})
        views.save_preset(s, u["manager1"], "deals", "Б: крупные", {"amount": {"from": 40000}})
        views.save_preset(s, u["manager2"], "deals", "Чужое", {"q": "python"})
        views.save_preset(s, u["head1"], "deals", "Отдел: все открытые", {"semantic": ["process"]}, shared=True)
        views.save_preset(s, u["manager1"], "leads", "Лиды с лендинга", {"source": ["Лендинг"]})
    # built-ins/shared first (by sort), then personal by name; nobody else's personal ones
    assert names(db, u["manager1"], "deals") == [*DEALS, "Отдел: все открытые", "Б: крупные", "Я: Лендинг"]
    assert names(db, u["manager2"], "deals") == [*DEALS, "Отдел: все открытые", "Чужое"]
    assert names(db, u["admin"], "deals") == [*DEALS, "Отдел: все открытые"]
    assert names(db, u["manager1"], "leads") == [*LEADS, "Лиды с лендинга"]


def test_same_name_updates_instead_of_duplicating(world):
    db, _, u = world
    with session_scope(db) as s:
        a = views.save_preset(s, u["manager1"], "deals", "Крупные", {"amount": {"from": 10000}})
        b = views.save_preset(s, u["manager1"], "deals", "  крупные ", {"amount": {"from": 50000}})
        other = views.save_preset(s, u["manager2"], "deals", "Крупные", {"amount": {"from": 1}})
        same_name_other_page = views.save_preset(s, u["manager1"], "leads", "Крупные", {"amount": {"from": 1}})
        assert a.id == b.id
        assert other.id != a.id and same_name_other_page.id != a.id
    with session_scope(db) as s:
        row = s.get(FilterPreset, a.id)
        assert row.name == "крупные" and row.filters == {"amount": {"from": 50000}}
        assert len(s.exec(select(FilterPreset).where(FilterPreset.owner_id == row.owner_id,
                                                     FilterPreset.page == "deals")).all()) == 1


def test_name_is_required_and_limited(world):
    db, _, u = world
    for bad in ("", "   ", "я" * 81):
        with pytest.raises(ValidationFailed) as e, session_scope(db) as s:
            views.save_preset(s, u["manager1"], "deals", bad, {})
        assert "назван" in e.value.message.lower()
    with session_scope(db) as s:
        assert views.save_preset(s, u["manager1"], "deals", "я" * 80, {}).name == "я" * 80


def test_manager_cannot_share_head_and_admin_can(world):
    db, _, u = world
    with pytest.raises(AccessDenied) as e, session_scope(db) as s:
        views.save_preset(s, u["manager1"], "deals", "Для всех", {"semantic": ["process"]}, shared=True)
    assert e.value.message == "Общие представления могут сохранять только руководители и администраторы"
    with session_scope(db) as s:
        assert views.save_preset(s, u["head1"], "deals", "От руководителя", {}, shared=True).is_shared
        assert views.save_preset(s, u["admin"], "leads", "От админа", {}, shared=True).is_shared
    assert "От руководителя" in names(db, u["manager2"], "deals")
    assert "От админа" in names(db, u["admissions1"], "leads")


def test_delete_rules(world):
    db, _, u = world
    with session_scope(db) as s:
        mine = views.save_preset(s, u["manager1"], "deals", "Моё", {}).id
        theirs = views.save_preset(s, u["manager2"], "deals", "Чужое", {}).id
        shared = views.save_preset(s, u["head1"], "deals", "Общее", {}, shared=True).id
        shared2 = views.save_preset(s, u["head1"], "deals", "Общее 2", {}, shared=True).id
    with pytest.raises(NotFound), session_scope(db) as s:
        views.delete_preset(s, u["manager1"], theirs)  # not even visible to them
    with pytest.raises(AccessDenied), session_scope(db) as s:
        views.delete_preset(s, u["manager1"], shared)
    with session_scope(db) as s:
        views.set_default_preset(s, u["manager1"], "deals", shared2)  # pinned: deletion unpins
        views.delete_preset(s, u["manager1"], mine)
        views.delete_preset(s, u["admin"], shared)  # admin removes someone's shared preset
        views.delete_preset(s, u["head1"], shared2)
    assert names(db, u["manager1"], "deals") == DEALS
    with session_scope(db) as s:
        assert views.default_preset(s, u["manager1"], "deals").code == "my_deals"
        assert s.exec(select(UserPageSetting)).one().default_preset_id is None


def test_bad_filter_keys_are_refused(world):
    db, ids, u = world
    with pytest.raises(ValidationFailed) as e, session_scope(db) as s:
        views.save_preset(s, u["manager1"], "deals", "Сломанное", {"stage_id": [1], "department": ["dpo"]})
    assert "department" in e.value.message
    with pytest.raises(ValidationFailed), session_scope(db) as s:
        views.save_preset(s, u["manager1"], "contacts", "Стадия", {"stage_id": [1]})  # no stages on contacts
    with pytest.raises(ValidationFailed), session_scope(db) as s:
        views.save_preset(s, u["manager1"], "deals", "Не словарь", ["stage_id"])
    with pytest.raises(ValidationFailed), session_scope(db) as s:
        views.save_preset(s, u["manager1"], "nowhere", "Страница", {})
    with session_scope(db) as s:
        p = views.save_preset(s, u["manager1"], "deals", "Все ключи",
                              {"q": "x", "activity": "overdue", "semantic": ["process"], "pipeline_id": [ids["dpo"]],
                               "custom.dpo_docs_received": ["Да"], "custom.masters_exam_score": {"from": 200}})
        assert p.filters["custom.dpo_docs_received"] == ["Да"]
        assert s.exec(select(FilterPreset).where(FilterPreset.name == "Сломанное")).first() is None


def test_me_and_department_placeholders(world):
    db, ids, u = world
    with session_scope(db) as s:
        my_deals = views.default_preset(s, u["manager1"], "deals")
        assert my_deals.filters == {"responsible_id": ["@me"], "semantic": ["process"]}
        assert views.preset_filters(my_deals, u["manager1"]) == {"responsible_id": [ids["m1"]],
                                                                 "semantic": ["process"]}
        assert views.preset_filters(my_deals, u["manager2"])["responsible_id"] == [ids["m2"]]
        assert my_deals.filters["responsible_id"] == ["@me"]  # the stored row is untouched
        dpo = s.get(FilterPreset, preset_id(db, "dpo_managers"))
        got = views.preset_filters(dpo, u["admissions1"], s)
        # active ДПО users (managers, head), not the inactive one, nobody from admissions or without a department
        assert got["responsible_id"] == sorted([ids["m1"], ids["m2"], ids["head"]])
        # the resolved filter runs through the listing service
        items, _ = listing.query_items(s, u["admin"], "deal", views.preset_filters(my_deals, u["manager1"]),
                                       limit=None)
        assert {i.id for i in items} == {ids["d1"]}
        items, _ = listing.query_items(s, u["admin"], "deal", got, limit=None)
        assert {i.id for i in items} == {ids["d1"], ids["d2"]}


def test_placeholder_resolving_to_nobody_matches_nothing(world):
    db, _, u = world
    with session_scope(db) as s:
        p = views.save_preset(s, u["admin"], "deals", "Пустой отдел", {"responsible_id": ["@dept:nope"]})
        flt = views.preset_filters(p, u["admin"])
        assert flt == {"responsible_id": [views.NO_MATCH_ID]}
        assert listing.query_items(s, u["admin"], "deal", flt, limit=None)[0] == []


def test_default_pin_unpin_and_fallback(world):
    db, _, u = world
    with session_scope(db) as s:
        assert views.default_preset(s, u["manager1"], "leads").code == "my_leads"
        assert views.default_preset(s, u["manager1"], "deals").code == "my_deals"
        assert views.default_preset(s, u["manager1"], "contacts") is None
        assert views.default_preset(s, u["manager1"], "companies") is None
        mine = views.save_preset(s, u["manager1"], "deals", "Моё", {"source": ["Лендинг"]})
        theirs = views.save_preset(s, u["manager2"], "deals", "Чужое", {})
        lead_p = views.save_preset(s, u["manager1"], "leads", "Лиды", {})
        shared = views.save_preset(s, u["head1"], "deals", "Общее", {}, shared=True)
        views.set_default_preset(s, u["manager1"], "deals", mine.id)
        assert views.default_preset(s, u["manager1"], "deals").id == mine.id
        assert views.default_preset(s, u["manager2"], "deals").code == "my_deals"  # per user
        with pytest.raises(NotFound):
            views.set_default_preset(s, u["manager1"], "deals", theirs.id)
        with pytest.raises(ValidationFailed):
            views.set_default_preset(s, u["manager1"], "deals", lead_p.id)  # another page
        views.set_default_preset(s, u["manager1"], "deals", preset_id(db, "dpo_managers"))
        assert views.default_preset(s, u["manager1"], "deals").code == "dpo_managers"
        views.set_default_preset(s, u["manager1"], "contacts", None)  # nothing pinned: no-op
        views.set_default_preset(s, u["manager1"], "deals", None)
        assert views.default_preset(s, u["manager1"], "deals").code == "my_deals"
        # a pinned shared preset that stops being visible (un-shared by its author) falls back
        views.set_default_preset(s, u["manager1"], "deals", shared.id)
        views.save_preset(s, u["head1"], "deals", "Общее", {}, shared=False)
        assert views.default_preset(s, u["manager1"], "deals").code == "my_deals"
        assert len(s.exec(select(UserPageSetting)).all()) == 1


# ---- column sets ----------------------------------------------------------------------

def test_columns_personal_over_shared_over_default(world):
    db, _, u = world
    with session_scope(db) as s:
        assert views.columns_for(s, u["manager1"], "deals") == DEFAULT_COLUMNS["deal"]
        assert views.columns_for(s, u["manager1"], "companies") == DEFAULT_COLUMNS["company"]
        views.save_columns(s, u["admin"], "deals", ["title", "amount", "responsible_id"], for_all=True)
        assert views.columns_for(s, u["manager1"], "deals") == ["title", "amount", "responsible_id"]
        views.save_columns(s, u["manager1"], "deals", ["title", "stage_id", "title"])
        assert views.columns_for(s, u["manager1"], "deals") == ["title", "stage_id"]
        assert views.columns_for(s, u["manager2"], "deals") == ["title", "amount", "responsible_id"]
        views.save_columns(s, u["manager1"], "deals", ["id", "title"])  # upsert, not a second row
        views.save_columns(s, u["admin"], "deals", ["title", "amount"], for_all=True)
        assert len(s.exec(select(ColumnSet).where(ColumnSet.page == "deals")).all()) == 2
        assert views.columns_for(s, u["manager1"], "deals") == ["id", "title"]
        assert views.reset_columns(s, u["manager1"], "deals") == ["title", "amount"]
        assert views.columns_for(s, u["manager1"], "deals") == ["title", "amount"]
        views.reset_columns(s, u["manager1"], "deals")  # nothing left to reset: fine
        assert views.columns_for(s, u["manager1"], "leads") == DEFAULT_COLUMNS["lead"]


def test_for_all_is_admin_only(world):
    db, _, u = world
    for who in ("manager1", "head1"):
        with pytest.raises(AccessDenied), session_scope(db) as s:
            views.save_columns(s, u[who], "leads", ["title"], for_all=True)
    with session_scope(db) as s:
        assert s.exec(select(ColumnSet)).all() == []
        views.save_columns(s, u["admin"], "leads", ["title"], for_all=True)
        assert s.exec(select(ColumnSet)).one().user_id is None


def test_unknown_and_empty_columns_refused(world):
    db, _, u = world
    with pytest.raises(ValidationFailed) as e, session_scope(db) as s:
        views.save_columns(s, u["manager1"], "contacts", ["full_name", "stage_id", "custom.nope"])
    assert "stage_id" in e.value.message and "custom.nope" in e.value.message
    assert "full_name" not in e.value.message
    with pytest.raises(ValidationFailed) as e, session_scope(db) as s:
        views.save_columns(s, u["manager1"], "contacts", [])
    assert e.value.message == "Выберите хотя бы одно поле"
    with session_scope(db) as s:
        assert s.exec(select(ColumnSet)).all() == []


def test_custom_field_columns_per_pipeline(world):
    db, ids, u = world
    cols = ["title", "custom.dpo_docs_received", "custom.masters_exam_score", "amount"]
    with session_scope(db) as s:
        views.save_columns(s, u["manager1"], "deals", cols)  # any pipeline's custom fields may be stored
        assert views.columns_for(s, u["manager1"], "deals") == cols
        assert views.columns_for(s, u["manager1"], "deals", ids["dpo"]) == [
            "title", "custom.dpo_docs_received", "amount"]
        assert views.columns_for(s, u["manager1"], "deals", ids["masters"]) == [
            "title", "custom.masters_exam_score", "amount"]
        # a deleted custom field disappears from the stored set
        s.delete(s.exec(select(CustomField).where(CustomField.code == "masters_exam_score")).one())
        s.flush()
        assert views.columns_for(s, u["manager1"], "deals") == ["title", "custom.dpo_docs_received", "amount"]
        # a stored set with nothing left falls back to the next level
        views.save_columns(s, u["manager2"], "deals", ["custom.dpo_contract_number"])
        assert views.columns_for(s, u["manager2"], "deals", ids["masters"]) == DEFAULT_COLUMNS["deal"]


def test_available_columns(world):
    db, ids, u = world
    with session_scope(db) as s:
        all_deal = dict(views.available_columns(s, "deals"))
        assert all_deal["title"] == "Сделка"
        assert "custom.dpo_docs_received" in all_deal and "custom.masters_exam_score" in all_deal
        assert all_deal["custom.masters_exam_score"].startswith("Сумма баллов")
        dpo = dict(views.available_columns(s, "deals", ids["dpo"], lang="en"))
        assert dpo["title"] == "Deal" and dpo["custom.dpo_docs_received"] == "All documents received"
        assert "custom.masters_exam_score" not in dpo
        keys = [k for k, _ in views.available_columns(s, "contacts")]
        assert keys[:2] == ["id", "full_name"] and not any(k.startswith("custom.") for k in keys)


# ---- defaults that follow the person (issue 12) ----------------------------------------------

def test_default_preset_by_role_and_a_pin_still_wins(world):
    db, ids, u = world
    with session_scope(db) as s:
        director = actor_for(f.user(s, "director1", role="director", dept_code=None))
    with session_scope(db) as s:
        assert views.default_preset(s, u["manager1"], "deals").code == "my_deals"
        assert views.default_preset(s, u["head1"], "deals").code == "dept_deals"
        assert views.default_preset(s, director, "deals").code == "all_deals"
        assert views.default_preset(s, u["admin"], "deals").code == "all_deals"
        assert [views.default_preset(s, u[w], "leads").code for w in ("manager1", "head1", "admin")] == [
            "my_leads", "dept_leads", "all_leads"]
        # the head's department in work: every open deal of ДПО, whoever is responsible
        dept = views.preset_filters(views.default_preset(s, u["head1"], "deals"), u["head1"])
        assert dept == {"department_id": [f.dept(s, "dpo").id], "semantic": ["process"]}
        got, _ = listing.query_items(s, u["head1"], "deal", dept, limit=None)
        assert {i.id for i in got} == {ids["d1"], ids["d2"]}
        everything = views.preset_filters(views.default_preset(s, director, "deals"), director)
        assert {i.title for i in listing.query_items(s, director, "deal", everything, limit=None)[0]} == {
            "Сделка Петрова", "Сделка Сидоровой", "Магистратура"}
        # a pin wins; pinning it again unpins it: back to the role default
        mine = views.save_preset(s, u["head1"], "deals", "Крупные", {"amount": {"from": 40000}})
        views.toggle_default(s, u["head1"], "deals", mine.id)
        assert views.default_preset(s, u["head1"], "deals").id == mine.id
        views.toggle_default(s, u["head1"], "deals", mine.id)
        assert views.default_preset(s, u["head1"], "deals").code == "dept_deals"
        # a built-in pinned by hand unpins too (it used to stay pinned for good)
        views.toggle_default(s, u["head1"], "deals", preset_id(db, "dpo_managers"))
        assert views.default_preset(s, u["head1"], "deals").code == "dpo_managers"
        views.toggle_default(s, u["head1"], "deals", preset_id(db, "dpo_managers"))
        assert views.default_preset(s, u["head1"], "deals").code == "dept_deals"


def test_my_department_placeholder_without_a_department_matches_nothing(world):
    db, _, u = world
    with session_scope(db) as s:
        p = s.get(FilterPreset, preset_id(db, "dept_deals"))
        assert views.preset_filters(p, u["admin"]) == {"department_id": [views.NO_MATCH_ID],
                                                        "semantic": ["process"]}


def test_role_defaults_are_rows_written_once(world):
    db, _, u = world
    with session_scope(db) as s:
        row = s.exec(select(PresetRoleDefault).where(PresetRoleDefault.page == "deals",
                                                     PresetRoleDefault.role_code == "manager")).one()
        row.preset_id = preset_id(db, "dpo_managers")  # an admin changed it in the database
        s.add(row)
    with session_scope(db) as s:
        ensure_defaults(s)  # a restart keeps the change
    with session_scope(db) as s:
        assert views.default_preset(s, u["manager2"], "deals").code == "dpo_managers"
        # deleting a shared preset that is a role default drops the role default with it
        shared = views.save_preset(s, u["head1"], "deals", "Отдел", {}, shared=True)
        s.exec(select(PresetRoleDefault).where(PresetRoleDefault.role_code == "head",
                                               PresetRoleDefault.page == "deals")).one().preset_id = shared.id
        s.flush()
        assert views.default_preset(s, u["head1"], "deals").id == shared.id
        views.delete_preset(s, u["head1"], shared.id)
        assert views.default_preset(s, u["head1"], "deals") is None


def test_remember_pipeline_view_and_page_size(world):
    db, ids, u = world
    with session_scope(db) as s:
        assert views.page_setting(s, u["manager1"], "deals") is None
        views.remember(s, u["manager1"], "deals", pipeline_id=ids["masters"])
        views.remember(s, u["manager1"], "deals", view_mode="list")
        views.remember(s, u["manager1"], "deals", page_size=50)
        views.remember(s, u["manager1"], "deals", view_mode="table", page_size=7)  # not values: ignored
        row = views.page_setting(s, u["manager1"], "deals")
        assert (row.pipeline_id, row.view_mode, row.page_size) == (ids["masters"], "list", 50)
        assert views.page_setting(s, u["manager2"], "deals") is None  # per user
        with pytest.raises(ValidationFailed):
            views.remember(s, u["manager1"], "leads", pipeline_id=ids["masters"])  # a deal pipeline
        assert len(s.exec(select(UserPageSetting)).all()) == 1


def test_pipelines_offered_and_the_one_opened(world):
    from rxcrm.services import catalogs
    db, ids, u = world
    with session_scope(db) as s:
        offered = {w: [p.id for p in catalogs.pipelines_for(s, u[w], "deal")]
                   for w in ("manager1", "admissions1", "head1", "admin")}
        assert offered["manager1"] == [ids["dpo"]]  # nothing to see in Магистратура
        assert offered["admissions1"] == [ids["masters"]]  # …nor in ДПО for admissions
        assert offered["head1"] == [ids["dpo"]]
        assert offered["admin"] == [ids["dpo"], ids["masters"]]

        def opened(who, remembered=None):
            pipes = catalogs.pipelines_for(s, u[who], "deal")
            return catalogs.pipeline_for(s, u[who], "deal", pipes, remembered).id

        assert opened("admissions1") == ids["masters"]  # the department's pipeline
        assert opened("manager1") == ids["dpo"]
        assert opened("admin") == ids["dpo"]  # no department: the default pipeline
        assert opened("admin", ids["masters"]) == ids["masters"]  # the one chosen last
        assert opened("manager1", ids["masters"]) == ids["dpo"]  # not offered: ignored
        assert opened("admin", 10 ** 6) == ids["dpo"]  # gone: ignored
        # a department's own pipeline is offered even before it holds anything visible
        s.delete(s.exec(select(Deal).where(Deal.title == "Магистратура")).one())
        s.flush()
        assert [p.id for p in catalogs.pipelines_for(s, u["admissions1"], "deal")] == [ids["masters"]]
        # leads: one pipeline
        assert len(catalogs.pipelines_for(s, u["manager1"], "lead")) == 1
