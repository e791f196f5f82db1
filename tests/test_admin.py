"""Administration: users, departments, the access matrix, bulk reassignment — on SQLite
and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import (
    Activity, AuditRecord, Deal, Department, Lead, Notification, RolePermission, TimelineEvent, User, utcnow,
)
from rxcrm.services import activities, admin, auth, cards, items, rules_admin
from rxcrm.services.errors import AccessDenied, AuthError, NotFound, ValidationFailed

from . import factories as f


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        boss = f.user(s, "admin", role="admin", dept_code=None, full_name="Админов Админ")
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        adm = f.user(s, "adm1", dept_code="admissions", full_name="Орлова Мария")
        head = f.user(s, "head1", role="head", full_name="Волков Олег")
        ids = {u.login: u.id for u in (boss, m1, m2, adm, head)}
        ids["dpo"] = f.dept(s, "dpo").id
        ids["admissions"] = f.dept(s, "admissions").id
    return db, ids


def actor(s, uid):
    return auth.actor_for(s.get(User, uid))


def audit_actions(s, entity_type=None):
    stmt = select(AuditRecord.action).order_by(AuditRecord.id)
    if entity_type:
        stmt = stmt.where(AuditRecord.entity_type == entity_type)
    return list(s.exec(stmt).all())


# ---- only admins --------------------------------------------------------------------------

def _admin_calls(ids):
    """(what the refusal's audit row names, the call) for every admin-only operation."""
    return [
        ("user_list", lambda s, a: admin.list_users(s, a)),
        ("user_create", lambda s, a: admin.create_user(s, a, login="newbie", full_name="Новый", password="password1",
                                                       role="manager", department_id=ids["dpo"])),
        ("user_update", lambda s, a: admin.update_user(s, a, ids["manager2"], full_name="X")),
        ("user_deactivate", lambda s, a: admin.deactivate_user(s, a, ids["manager2"])),
        ("user_activate", lambda s, a: admin.activate_user(s, a, ids["manager2"])),
        ("password_reset", lambda s, a: admin.reset_password(s, a, ids["manager2"], "password123")),
        ("reassign", lambda s, a: admin.reassign_items(s, a, ids["manager2"], ids["manager1"])),
        ("user_item_counts", lambda s, a: admin.user_item_counts(s, a, ids["manager2"])),
        ("department_list", lambda s, a: admin.list_departments(s, a)),
        ("department_create", lambda s, a: admin.create_department(s, a, "Новый отдел")),
        ("department_update", lambda s, a: admin.rename_department(s, a, ids["dpo"], "ДПО-2")),
        ("department_update", lambda s, a: admin.set_department_head(s, a, ids["dpo"], ids["head1"])),
        ("permission_matrix", lambda s, a: admin.permission_matrix(s, a)),
        ("permission_set", lambda s, a: admin.set_permission(s, a, "manager", "deal", "edit", "all")),
        ("permissions_reset", lambda s, a: admin.reset_permissions_to_defaults(s, a)),
        ("rule_update", lambda s, a: rules_admin.set_active(s, a, 1, False)),
        ("rule_update", lambda s, a: rules_admin.save_required(s, a, None, "dpo", "CONTRACT", "amount")),
        ("rule_update", lambda s, a: rules_admin.save_trigger(s, a, None, "Т", "dpo", "", "amount", "1",
                                                              "CONTRACT")),
        ("rule_update", lambda s, a: rules_admin.save_on_enter(s, a, None, "Т", "dpo", "CONTRACT",
                                                               [{"type": "notify", "to": "responsible",
                                                                 "text": "Привет"}])),
        ("rule_update", lambda s, a: rules_admin.delete_rule(s, a, 1)),
    ]


@pytest.mark.parametrize("login", ["manager1", "head1"])
def test_every_function_is_for_admins_only(world, login):
    db, ids = world
    for _action, call in _admin_calls(ids):
        with session_scope(db) as s, pytest.raises(AccessDenied) as err:
            call(s, actor(s, ids[login]))
        assert err.value.message == "Только администратор"
    with session_scope(db) as s:
        assert s.exec(select(User).where(User.login == "newbie")).first() is None
        assert s.get(User, ids["manager2"]).is_active


def test_every_refused_admin_action_is_audited_with_who_and_what(world):
    """A manager trying each admin operation: AccessDenied, and one "denied" audit row per
    attempt naming the manager and what was tried — it stays although the unit of work
    that raised rolls back."""
    db, ids = world
    calls = _admin_calls(ids)
    for _action, call in calls:
        with session_scope(db) as s, pytest.raises(AccessDenied):
            call(s, actor(s, ids["manager1"]))
    with session_scope(db) as s:
        rows = list(s.exec(select(AuditRecord).where(AuditRecord.action == "denied").order_by(AuditRecord.id)))
        assert [r.details["action"] for r in rows] == [a for a, _ in calls]
        assert {r.user_id for r in rows} == {ids["manager1"]}
        assert {r.details["reason"] for r in rows} == {"Только администратор"}
        pw = next(r for r in rows if r.details["action"] == "password_reset")
        assert pw.details["user_id"] == ids["manager2"] and "password123" not in str(pw.details)
        assert audit_actions(s, "user") == []  # nothing else was written
        assert s.exec(select(func.count()).select_from(AuditRecord)).one() == len(calls)


def test_a_refusal_is_recorded_whatever_the_callers_unit_of_work(world):
    """The caller had already written (SQLite: holds the write lock) or reads only: the
    refusal's row is still there afterwards, and the caller's own writes are rolled back."""
    db, ids = world
    with pytest.raises(AccessDenied):
        with session_scope(db) as s:
            s.get(User, ids["manager2"]).full_name = "Переименована"
            s.flush()
            admin.create_department(s, actor(s, ids["manager1"]), "Теневой отдел")
    with pytest.raises(AccessDenied):
        with session_scope(db, write=False) as s:
            admin.list_users(s, actor(s, ids["head1"]))
    with session_scope(db) as s:
        with pytest.raises(AccessDenied):
            admin.list_departments(s, actor(s, ids["manager2"]))
        # the caller caught the refusal and carried on: its own work commits, the row is there too
        s.get(User, ids["manager2"]).email = "anna@example.com"
    with session_scope(db) as s:
        rows = list(s.exec(select(AuditRecord).where(AuditRecord.action == "denied").order_by(AuditRecord.id)))
        assert [(r.user_id, r.details["action"]) for r in rows] == [
            (ids["manager1"], "department_create"), (ids["head1"], "user_list"), (ids["manager2"], "department_list")]
        assert rows[0].details["name"] == "Теневой отдел"
        assert s.get(User, ids["manager2"]).full_name == "Сидорова Анна"
        assert s.get(User, ids["manager2"]).email == "anna@example.com"


# ---- users ----------------------------------------------------------------------------------

def test_create_user_and_log_in(world):
    db, ids = world
    with session_scope(db) as s:
        u = admin.create_user(s, actor(s, ids["admin"]), login=" New.User ", full_name="  Новикова   Ольга ",
                              password="s3cret-pass", role="manager", department_id=ids["dpo"],
                              email="olga@example.com")
        new_id = u.id
    with session_scope(db) as s:
        token, user = auth.login(s, "new.user", "s3cret-pass")
        assert user.id == new_id and user.full_name == "Новикова Ольга" and user.role == "manager"
        rows = {r["login"]: r for r in admin.list_users(s, actor(s, ids["admin"]))}
        assert rows["new.user"]["department"] == "ДПО" and rows["new.user"]["role_label"] == "Менеджер"
        assert rows["new.user"]["last_login"] != "" and rows["admin"]["is_self"]
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "user_create")).one()
        assert rec.entity_id == new_id and rec.user_id == ids["admin"]
        assert "s3cret" not in str(rec.details)


@pytest.mark.parametrize("kw,field", [
    ({"login": "ab"}, "login"),
    ({"login": "Иван"}, "login"),
    ({"login": "a" * 41}, "login"),
    ({"login": "with space"}, "login"),
    ({"login": "manager1"}, "login"),          # taken
    ({"login": "MANAGER1"}, "login"),          # taken, any case
    ({"password": "short7!"}, "password"),
    ({"role": "boss"}, "role"),
    ({"full_name": "  "}, "full_name"),
    ({"email": "not-an-email"}, "email"),
    ({"department_id": None}, "department_id"),  # a manager needs a department
])
def test_create_user_validation(world, kw, field):
    db, ids = world
    args = dict(login="newbie", full_name="Новый Сотрудник", password="password1", role="manager",
                department_id=ids["dpo"])
    args.update(kw)
    with session_scope(db) as s, pytest.raises(ValidationFailed) as err:
        admin.create_user(s, actor(s, ids["admin"]), **args)
    assert field in err.value.fields and err.value.message


def test_director_and_admin_may_have_no_department(world):
    db, ids = world
    with session_scope(db) as s:
        u = admin.create_user(s, actor(s, ids["admin"]), login="dir", full_name="Директор", password="password1",
                              role="director", department_id=None)
        assert u.department_id is None


def test_deactivate_ends_sessions_and_login_keeps_history(world):
    db, ids = world
    with session_scope(db) as s:
        token, _ = auth.login(s, "manager2", "demo")
        deal_id = f.deal(s, "Сделка Сидоровой", s.get(User, ids["manager2"])).id
    with session_scope(db) as s:
        assert admin.deactivate_user(s, actor(s, ids["admin"]), ids["manager2"]) == 1
    with session_scope(db) as s:
        assert auth.resolve(s, token) is None
        with pytest.raises(AuthError) as err:
            auth.login(s, "manager2", "demo")
        assert err.value.code == "inactive"
    with session_scope(db) as s:
        # Their items stay, with their responsible and history.
        card = cards.open_card(s, actor(s, ids["admin"]), "deal", deal_id)
        assert card["responsible_id"] == ids["manager2"]
        assert "user_deactivate" in audit_actions(s, "user")
        assert not [r for r in admin.list_users(s, actor(s, ids["admin"])) if r["login"] == "manager2"][0]["is_active"]
        # Again: nothing more to do.
        assert admin.deactivate_user(s, actor(s, ids["admin"]), ids["manager2"]) == 0
    with session_scope(db) as s:
        admin.activate_user(s, actor(s, ids["admin"]), ids["manager2"])
    with session_scope(db) as s:
        auth.login(s, "manager2", "demo")
        assert "user_activate" in audit_actions(s, "user")


def test_admin_cannot_deactivate_or_demote_themselves(world):
    db, ids = world
    with session_scope(db) as s, pytest.raises(ValidationFailed):
        admin.deactivate_user(s, actor(s, ids["admin"]), ids["admin"])
    with session_scope(db) as s, pytest.raises(ValidationFailed):
        admin.update_user(s, actor(s, ids["admin"]), ids["admin"], role="manager")
    with session_scope(db) as s, pytest.raises(NotFound):
        admin.deactivate_user(s, actor(s, ids["admin"]), 99999)


def test_deactivating_a_head_clears_the_department_head(world):
    db, ids = world
    with session_scope(db) as s:
        admin.set_department_head(s, actor(s, ids["admin"]), ids["dpo"], ids["head1"])
    with session_scope(db) as s:
        assert s.get(Department, ids["dpo"]).head_id == ids["head1"]
        admin.deactivate_user(s, actor(s, ids["admin"]), ids["head1"])
    with session_scope(db) as s:
        assert s.get(Department, ids["dpo"]).head_id is None


def test_reset_password(world):
    db, ids = world
    with session_scope(db) as s:
        token, _ = auth.login(s, "manager1", "demo")
    with session_scope(db) as s, pytest.raises(ValidationFailed):
        admin.reset_password(s, actor(s, ids["admin"]), ids["manager1"], "1234567")
    with session_scope(db) as s:
        assert admin.reset_password(s, actor(s, ids["admin"]), ids["manager1"], "новый-пароль") == 1
    with session_scope(db) as s:
        assert auth.resolve(s, token) is None
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "password_reset")).one()
        assert "новый" not in str(rec.details)
    with session_scope(db) as s, pytest.raises(AuthError):
        auth.login(s, "manager1", "demo")
    with session_scope(db) as s:
        auth.login(s, "manager1", "новый-пароль")


def test_update_user(world):
    db, ids = world
    with session_scope(db) as s:
        admin.set_department_head(s, actor(s, ids["admin"]), ids["dpo"], ids["head1"])
    with session_scope(db) as s:
        ch = admin.update_user(s, actor(s, ids["admin"]), ids["head1"], full_name="Волков Олег Петрович",
                               department_id=ids["admissions"])
        assert set(ch) == {"full_name", "department_id"}
        assert admin.update_user(s, actor(s, ids["admin"]), ids["head1"], full_name="Волков Олег Петрович") == {}
    with session_scope(db) as s:
        u = s.get(User, ids["head1"])
        assert u.department_id == ids["admissions"] and u.full_name == "Волков Олег Петрович"
        assert s.get(Department, ids["dpo"]).head_id is None
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "user_update")).one()
        assert rec.details["changes"]["department_id"] == {"old": ids["dpo"], "new": ids["admissions"]}
    with session_scope(db) as s, pytest.raises(ValidationFailed):
        admin.update_user(s, actor(s, ids["admin"]), ids["manager1"], role="manager", department_id=None)


# ---- reassignment -------------------------------------------------------------------------------

def test_reassign_items_writes_timeline_and_audit_per_item(world):
    db, ids = world
    with session_scope(db) as s:
        m2 = s.get(User, ids["manager2"])
        open_deals = [f.deal(s, f"Сделка {i}", m2, amount=1000 * i).id for i in range(1, 4)]
        won = f.deal(s, "Выигранная", m2, stage_code="WON").id
        lead = f.lead(s, "Лид Сидоровой", m2).id
        contact = f.contact(s, "Клиентова", "Ирина", responsible=m2).id
        other = f.deal(s, "Сделка Петрова", s.get(User, ids["manager1"])).id
        act = activities.plan_activity(s, actor(s, ids["manager2"]), "deal", open_deals[0], kind="call",
                                       subject="Позвонить", start_at=utcnow() + timedelta(hours=2), duration_min=15).id
        s.get(Deal, open_deals[0])  # loaded in the session: must not stay stale
        admin.deactivate_user(s, actor(s, ids["admin"]), ids["manager2"])
    with session_scope(db) as s:
        assert admin.user_item_counts(s, actor(s, ids["admin"]), ids["manager2"]) == {
            "lead": 1, "lead_open": 1, "deal": 4, "deal_open": 3, "contact": 1, "company": 0, "activities": 1}
    with session_scope(db) as s:
        loaded = s.get(Deal, open_deals[0])
        assert loaded.responsible_id == ids["manager2"]
        versions = {did: s.get(Deal, did).version for did in open_deals}
        counts = admin.reassign_items(s, actor(s, ids["admin"]), ids["manager2"], ids["adm1"])
        assert counts == {"lead": 1, "deal": 3, "contact": 1, "company": 0, "activities": 1}
        assert loaded.responsible_id == ids["adm1"]  # the session's copy was refreshed
    with session_scope(db) as s:
        adm_dept = ids["admissions"]
        for did in open_deals:
            d = s.get(Deal, did)
            assert (d.responsible_id, d.department_id, d.version) == (ids["adm1"], adm_dept, versions[did] + 1)
            ev = s.exec(select(TimelineEvent).where(TimelineEvent.entity_type == "deal",
                                                    TimelineEvent.entity_id == did,
                                                    TimelineEvent.kind == "field_changed")).one()
            assert ev.data["old"] == ids["manager2"] and ev.data["new"] == ids["adm1"]
            rec = s.exec(select(AuditRecord).where(AuditRecord.entity_type == "deal",
                                                   AuditRecord.entity_id == did,
                                                   AuditRecord.action == "update")).one()
            assert rec.details["changes"]["responsible_id"] == {"old": ids["manager2"], "new": ids["adm1"]}
            assert rec.user_id == ids["admin"]
        assert s.get(Deal, won).responsible_id == ids["manager2"]  # closed: left as it was (only_open)
        assert s.get(Deal, other).responsible_id == ids["manager1"]
        assert s.get(Lead, lead).responsible_id == ids["adm1"]
        assert s.get(Activity, act).responsible_id == ids["adm1"]
        note = s.exec(select(Notification).where(Notification.user_id == ids["adm1"])).one()
        assert "Сидорова Анна" in note.text and "сделки: 3" in note.text
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "reassign")).one()
        assert rec.entity_id == ids["manager2"] and rec.details["counts"]["deal"] == 3
        # The card's timeline shows the change.
        tl, _ = cards.timeline(s, actor(s, ids["admin"]), "deal", open_deals[0])
        assert tl[0]["kind"] == "field_changed"
    with session_scope(db) as s:
        counts = admin.reassign_items(s, actor(s, ids["admin"]), ids["manager2"], ids["adm1"], entities=("deal",),
                                      only_open=False)
        assert counts["deal"] == 1
        assert s.get(Deal, won).responsible_id == ids["adm1"]


def test_reassign_validation(world):
    db, ids = world
    with session_scope(db) as s:
        a = actor(s, ids["admin"])
        with pytest.raises(ValidationFailed):
            admin.reassign_items(s, a, ids["manager1"], ids["manager1"])
        with pytest.raises(ValidationFailed):
            admin.reassign_items(s, a, ids["manager1"], ids["manager2"], entities=("product",))
        admin.deactivate_user(s, a, ids["manager2"])
        with pytest.raises(ValidationFailed):
            admin.reassign_items(s, a, ids["manager1"], ids["manager2"])


def test_reassign_a_few_thousand_items(world):
    db, ids = world
    with session_scope(db) as s:
        m2 = s.get(User, ids["manager2"])
        st = f.stage(s, "dpo", "INTEREST")
        s.add_all([Deal(title=f"Сделка {i}", pipeline_id=st.pipeline_id, stage_id=st.id, responsible_id=m2.id,
                        department_id=m2.department_id) for i in range(2500)])
    with session_scope(db) as s:
        counts = admin.reassign_items(s, actor(s, ids["admin"]), ids["manager2"], ids["manager1"])
        assert counts["deal"] == 2500
    with session_scope(db) as s:
        assert s.exec(select(func.count()).select_from(Deal).where(Deal.responsible_id == ids["manager1"])).one() == 2500
        assert s.exec(select(func.count()).select_from(TimelineEvent)).one() == 2500
        assert s.exec(select(func.count()).select_from(AuditRecord).where(AuditRecord.action == "update")).one() == 2500


# ---- departments --------------------------------------------------------------------------------

def test_departments(world):
    db, ids = world
    with session_scope(db) as s:
        a = actor(s, ids["admin"])
        d = admin.create_department(s, a, "  Аспирантура ")
        assert d.name == "Аспирантура"
        with pytest.raises(ValidationFailed):
            admin.create_department(s, a, "аспирантура")  # same name, any case
        with pytest.raises(ValidationFailed):
            admin.create_department(s, a, "X")
        with pytest.raises(ValidationFailed):
            admin.rename_department(s, a, d.id, "ДПО")
        admin.rename_department(s, a, d.id, "Отдел аспирантуры")
        with pytest.raises(ValidationFailed):  # not of this department
            admin.set_department_head(s, a, ids["dpo"], ids["adm1"])
        admin.set_department_head(s, a, ids["dpo"], ids["head1"])
        rows = {r["name"]: r for r in admin.list_departments(s, a)}
        assert rows["ДПО"]["head"] == "Волков Олег" and rows["ДПО"]["users"] == 3
        assert rows["Отдел аспирантуры"]["users"] == 0
        admin.set_department_head(s, a, ids["dpo"], None)
        assert s.get(Department, ids["dpo"]).head_id is None
        assert audit_actions(s, "department") == ["department_create", "department_update",
                                                  "department_update", "department_update"]


# ---- the matrix ----------------------------------------------------------------------------------

def test_permission_matrix_edit_validate_and_audit(world):
    db, ids = world
    with session_scope(db) as s:
        a = actor(s, ids["admin"])
        m = admin.permission_matrix(s, a)
        assert set(m) == {"manager", "head", "director", "admin"}
        assert m["manager"]["deal"] == {"view": "department", "add": "own", "edit": "own", "delete": "own",
                                        "export": "department", "import": "none"}
        for bad in (("boss", "deal", "edit", "all"), ("manager", "product", "edit", "all"),
                    ("manager", "deal", "fly", "all"), ("manager", "deal", "edit", "everything"),
                    ("admin", "deal", "edit", "none")):
            with pytest.raises(ValidationFailed):
                admin.set_permission(s, a, *bad)
        assert admin.set_permission(s, a, "director", "lead", "edit", "all") is True
        assert admin.set_permission(s, a, "director", "lead", "edit", "all") is False  # no change, no audit
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "permission_set")).one()
        assert rec.details == {"role": "director", "entity": "lead", "action": "edit", "old": "none", "new": "all"}
    with session_scope(db) as s:
        lead_id = f.lead(s, "Лид", s.get(User, ids["manager1"])).id
    with session_scope(db) as s:
        items.update_fields(s, auth.actor_for(_director(s)), "lead", lead_id, {"title": "Правка директора"})
    with session_scope(db) as s:
        assert admin.reset_permissions_to_defaults(s, actor(s, ids["admin"])) == 1
        assert s.exec(select(RolePermission).where(RolePermission.role_code == "director",
                                                   RolePermission.entity == "lead",
                                                   RolePermission.action == "edit")).one().level == "none"
        labels = admin.matrix_labels()
        assert labels["levels"][0] == ("none", "Нет доступа") and len(labels["actions"]) == 6


def _director(s):
    u = s.exec(select(User).where(User.role == "director")).first()
    if u is None:
        u = f.user(s, "director", role="director", dept_code=None)
    return u
