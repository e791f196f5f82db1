"""The access matrix, enforced by the real services, on SQLite and PostgreSQL.

For each role × action × ownership of the item (own / same department / other
department) the service allows or refuses exactly as rules/defaults.PERMISSIONS says.
The expected answer is derived from the declaration, never from the code under test."""
from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from rxcrm.db import session_scope
from rxcrm.models import Company, Deal, User, utcnow
from rxcrm.rules.defaults import ENTITIES, PERMISSIONS
from rxcrm.services import activities, admin, auth, cards, conversion, create, export, items, listing
from rxcrm.services.errors import AccessDenied

from . import factories as f

ROLES = ("manager", "head", "director", "admin")
ACTIONS = ("view", "add", "edit", "delete", "export")
OWNERSHIP = ("own", "department", "other")
# Which ownerships a level covers (the matrix's meaning, SPEC §5).
COVERS = {"none": set(), "own": {"own"}, "department": {"own", "department"},
          "all": {"own", "department", "other"}}


def expected(role: str, action: str, ownership: str, matrix=PERMISSIONS) -> bool:
    return ownership in COVERS[matrix[role][action]]


@pytest.fixture
def world(db):
    """Everyone acting sits in ДПО; `colleague` is another ДПО manager, `stranger` a manager
    of the admissions office. Returns {login: user id}."""
    with session_scope(db) as s:
        ids = {}
        for login, role in (("manager", "manager"), ("head", "head"), ("director", "director"),
                            ("admin", "admin"), ("colleague", "manager")):
            ids[login] = f.user(s, login, role=role).id
        ids["stranger"] = f.user(s, "stranger", dept_code="admissions").id
    return db, ids


def _actor(s, uid):
    return auth.actor_for(s.get(User, uid))


def _owner(ids: dict, role: str, ownership: str) -> int:
    return {"own": ids[role], "department": ids["colleague"], "other": ids["stranger"]}[ownership]


def _deal(s, owner_id: int, title: str) -> int:
    owner = s.get(User, owner_id)
    pipe = "dpo" if owner.department_id == f.dept(s, "dpo").id else "masters"
    stage = "INTEREST" if pipe == "dpo" else "REGISTRATION"
    return f.deal(s, title, owner, pipe_code=pipe, stage_code=stage).id


def attempt(db, ids, role: str, action: str, ownership: str) -> bool:
    """Run the real service; True = allowed, False = refused with AccessDenied."""
    owner = _owner(ids, role, ownership)
    title = f"Проверка {role} {action} {ownership}"
    with session_scope(db) as s:
        deal_id = _deal(s, owner, title) if action != "add" else None
    try:
        with session_scope(db) as s:
            actor = _actor(s, ids[role])
            if action == "view":
                cards.open_card(s, actor, "deal", deal_id)
            elif action == "edit":
                items.update_fields(s, actor, "deal", deal_id, {"title": title + " (изм.)"})
            elif action == "delete":
                items.delete_item(s, actor, "deal", deal_id)
            elif action == "export":
                dest = Path(tempfile.mkdtemp()) / "x.xlsx"
                rows = export.export_xlsx(s, actor, "deal", {"title": title}, ["id", "title"], dest=dest)
                assert rows in (0, 1)
                return rows == 1
            elif action == "add":
                owner_user = s.get(User, owner)
                pipe = f.pipeline(s, "dpo" if owner_user.department_id == f.dept(s, "dpo").id else "masters")
                create.create_deal(s, actor, pipeline_id=pipe.id, title=title, responsible_id=owner)
        return True
    except AccessDenied as exc:
        assert exc.message  # a clear message for the person
        return False


@pytest.mark.parametrize("ownership", OWNERSHIP)
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_default_matrix(world, role, action, ownership):
    db, ids = world
    assert attempt(db, ids, role, action, ownership) is expected(role, action, ownership), \
        f"{role} {action} {ownership}: the matrix says {PERMISSIONS[role][action]}"


def test_refusal_writes_nothing(world):
    db, ids = world
    with session_scope(db) as s:
        deal_id = _deal(s, ids["stranger"], "Чужая сделка")
    with session_scope(db) as s, pytest.raises(AccessDenied):
        items.update_fields(s, _actor(s, ids["manager"]), "deal", deal_id, {"title": "Взлом"})
    with session_scope(db) as s:
        assert s.get(Deal, deal_id).title == "Чужая сделка"


def test_matrix_is_the_same_for_every_entity_by_default(world):
    db, _ = world
    with session_scope(db) as s:
        m = admin.permission_matrix(s)
    for role, actions in PERMISSIONS.items():
        for entity in ENTITIES:
            for action, level in actions.items():
                assert m[role][entity][action] == level


@pytest.mark.parametrize("entity", ["lead", "contact", "company"])
def test_manager_on_other_entities(world, entity):
    """view/edit/delete on leads, contacts and companies follow the same matrix."""
    db, ids = world
    with session_scope(db) as s:
        made = {}
        for own in OWNERSHIP:
            owner = s.get(User, _owner(ids, "manager", own))
            if entity == "lead":
                made[own] = f.lead(s, f"Лид {own}", owner).id
            elif entity == "contact":
                made[own] = f.contact(s, "Контактов", own, responsible=owner).id
            else:
                c = Company(title=f"ООО {own}", responsible_id=owner.id, department_id=owner.department_id)
                s.add(c)
                s.flush()
                made[own] = c.id
    edit_field = {"lead": "title", "contact": "position", "company": "title"}[entity]
    for own in OWNERSHIP:
        for action in ("view", "edit", "delete"):
            try:
                with session_scope(db) as s:
                    actor = _actor(s, ids["manager"])
                    if action == "view":
                        cards.open_card(s, actor, entity, made[own])
                    elif action == "edit":
                        items.update_fields(s, actor, entity, made[own], {edit_field: "Новое значение"})
                    else:
                        items.delete_item(s, actor, entity, made[own])
                got = True
            except AccessDenied:
                got = False
            assert got is expected("manager", action, own), f"{entity} {action} {own}"


def test_changing_a_cell_takes_effect(world):
    db, ids = world
    with session_scope(db) as s:
        colleague_deal = _deal(s, ids["colleague"], "Сделка коллеги")
        own_deal = _deal(s, ids["manager"], "Своя сделка")
    # Default: a manager may not edit a colleague's deal.
    with session_scope(db) as s, pytest.raises(AccessDenied):
        items.update_fields(s, _actor(s, ids["manager"]), "deal", colleague_deal, {"title": "x"})
    with session_scope(db) as s:
        assert admin.set_permission(s, _actor(s, ids["admin"]), "manager", "deal", "edit", "department")
        admin.set_permission(s, _actor(s, ids["admin"]), "manager", "deal", "view", "none")
    with session_scope(db) as s:
        items.update_fields(s, _actor(s, ids["manager"]), "deal", colleague_deal, {"title": "Исправлено"})
    with session_scope(db) as s:
        assert s.get(Deal, colleague_deal).title == "Исправлено"
        actor = _actor(s, ids["manager"])
        with pytest.raises(AccessDenied):
            cards.open_card(s, actor, "deal", own_deal)
        assert listing.count(s, actor, "deal", {}) == 0
        assert admin.permission_matrix(s)["manager"]["deal"]["view"] == "none"
        assert admin.permission_matrix(s)["manager"]["lead"]["view"] == "department"  # only that cell
    # Back to the defaults: the colleague's deal is read-only again.
    with session_scope(db) as s:
        assert admin.reset_permissions_to_defaults(s, _actor(s, ids["admin"])) == 2
    with session_scope(db) as s:
        actor = _actor(s, ids["manager"])
        cards.open_card(s, actor, "deal", own_deal)
        with pytest.raises(AccessDenied):
            items.update_fields(s, actor, "deal", colleague_deal, {"title": "x"})


def test_director_cannot_write_anything(world):
    """Director: all view + export, no add/edit/delete — every write service refuses."""
    db, ids = world
    with session_scope(db) as s:
        m = s.get(User, ids["manager"])
        contact = f.contact(s, "Иванов", "Пётр", phones=["+7 900 000-00-01"], responsible=m)
        deal_id = f.deal(s, "Сделка менеджера", m, contact_=contact).id
        closed_id = f.deal(s, "Проигранная", m, stage_code="LOST").id
        lead_id = f.lead(s, "Лид менеджера", m, last="Иванов", phones=["+7 900 000-00-02"]).id
        contact_id = contact.id
        next_stage = f.stage(s, "dpo", "REGISTRATION").id
        lead_stage = f.stage(s, "leads", "ACQUAINTANCE").id
        dpo = f.pipeline(s, "dpo").id
    ops = {
        "move deal": lambda s, a: items.move_stage(s, a, "deal", deal_id, next_stage),
        "move lead": lambda s, a: items.move_stage(s, a, "lead", lead_id, lead_stage),
        "update": lambda s, a: items.update_fields(s, a, "deal", deal_id, {"title": "x"}),
        "delete": lambda s, a: items.delete_item(s, a, "deal", deal_id),
        "bulk delete": lambda s, a: _raise_if_refused(items.bulk_delete(s, a, "deal", [deal_id])),
        "convert": lambda s, a: conversion.convert_lead(s, a, lead_id, mode="deal"),
        "junk": lambda s, a: conversion.junk_lead(s, a, lead_id, reason="спам"),
        "close won": lambda s, a: conversion.close_deal(s, a, deal_id, won=True),
        "close lost": lambda s, a: conversion.close_deal(s, a, deal_id, won=False, reason="дорого"),
        "reopen": lambda s, a: conversion.reopen(s, a, "deal", closed_id),
        "create deal": lambda s, a: create.create_deal(s, a, pipeline_id=dpo, title="Новая"),
        "create lead": lambda s, a: create.create_lead(s, a, title="Новый", last_name="Петров"),
        "create contact": lambda s, a: create.create_contact(s, a, last_name="Петров", first_name="Иван"),
        "create company": lambda s, a: create.create_company(s, a, title="ООО Ромашка"),
        "link contact": lambda s, a: create.link_contact(s, a, "lead", lead_id, contact_id),
        "unlink contact": lambda s, a: create.unlink_contact(s, a, "deal", deal_id),
        "plan activity": lambda s, a: activities.plan_activity(
            s, a, "deal", deal_id, kind="call", subject="Позвонить", start_at=utcnow() + timedelta(hours=1),
            duration_min=15),
        "comment": lambda s, a: activities.add_comment(s, a, "deal", deal_id, "Привет"),
    }
    allowed = []
    for name, op in ops.items():
        try:
            with session_scope(db) as s:
                op(s, _actor(s, ids["director"]))
            allowed.append(name)
        except AccessDenied:
            pass
    assert allowed == []
    # …but the director sees and exports everything.
    with session_scope(db) as s:
        actor = _actor(s, ids["director"])
        assert cards.open_card(s, actor, "deal", deal_id)["editable"] is False
        assert listing.count(s, actor, "deal", {}) == 2


def _raise_if_refused(res):
    if res.refused:
        raise AccessDenied(res.refused[0]["reason"])
