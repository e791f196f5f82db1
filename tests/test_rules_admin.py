"""Editable rules (services/rules_admin.py): the declarations are written into
automation_rule once, admins switch, add and delete rules, the engine applies only the
active rows — on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import Activity, AuditRecord, AutomationRule, Deal, Notification, Stage, User
from rxcrm.rules import automation, stage_requirements
from rxcrm.services import auth, items, rules_admin
from rxcrm.services.auth import actor_for
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.services.errors import AccessDenied, NotFound, ValidationFailed

from . import factories as f

DOCS_RULE = "Документы получены → Регистрация"


@pytest.fixture
def w(db):
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        adm = f.user(s, "admin1", role="admin", dept_code=None, full_name="Админов Админ")
        d1 = f.deal(s, "Python — Иванов", m1)
        ids = dict(m1=m1.id, d1=d1.id)
        a = {u.login: actor_for(u) for u in (m1, adm)}
    return db, a, ids


def stage_code(s, deal_id: int) -> str:
    return s.get(Stage, s.get(Deal, deal_id).stage_id).code


def rule_id(s, name: str) -> int:
    return s.exec(select(AutomationRule).where(AutomationRule.name == name)).one().id


def test_declarations_written_once_per_kind(w):
    db, a, _ = w
    with session_scope(db) as s:
        rows = s.exec(select(AutomationRule)).all()
        by_kind = {k: [r for r in rows if r.kind == k] for k in ("required", "trigger", "on_enter")}
        assert len(by_kind["required"]) == len(stage_requirements.REQUIRED_FIELDS)
        assert {r.name for r in by_kind["trigger"]} == {r["name"] for r in automation.FIELD_TRIGGERS}
        assert {r.name for r in by_kind["on_enter"]} == {r["name"] for r in automation.ON_ENTER}
        assert all(r.is_active for r in rows)
        rules_admin.delete_rule(s, a["admin1"], rule_id(s, DOCS_RULE))
        ensure_defaults(s)  # a restart: the triggers that are left stay as they are
        assert len(s.exec(select(AutomationRule)).all()) == len(rows) - 1
    with session_scope(db) as s:
        listed = rules_admin.list_rules(s)
        assert [r["kind"] for r in listed][:1] == ["required"] and len(listed) == len(rows) - 1
        contract = next(r for r in listed if r["kind"] == "required" and r["stage_code"] == "CONTRACT")
        assert contract["name"].endswith(" · Договор") and contract["text"] == "Заполнить: «Номер договора»"


def test_disabling_the_docs_received_trigger_stops_the_move(w):
    db, a, ids = w
    with session_scope(db) as s:
        assert rules_admin.set_active(s, a["admin1"], rule_id(s, DOCS_RULE), False) is True
        assert rules_admin.set_active(s, a["admin1"], rule_id(s, DOCS_RULE), False) is False
    with session_scope(db) as s:
        items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_docs_received": "Да"})
    with session_scope(db) as s:
        assert stage_code(s, ids["d1"]) == "INTEREST"
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "rule_update")).all()
        assert len(rec) == 1 and rec[0].entity_type == "rule" and rec[0].details["op"] == "deactivate"
        assert not next(r for r in rules_admin.list_rules(s) if r["name"] == DOCS_RULE)["is_active"]
        # switched back on, the same change moves it
        rules_admin.set_active(s, a["admin1"], rule_id(s, DOCS_RULE), True)
        items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_docs_received": "Нет"})
        items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_docs_received": "Да"})
        assert stage_code(s, ids["d1"]) == "REGISTRATION"


def test_a_new_trigger_rule_moves_the_item(w):
    db, a, ids = w
    with session_scope(db) as s:
        rules_admin.set_active(s, a["admin1"], rule_id(s, DOCS_RULE), False)
        rule = rules_admin.save_trigger(s, a["admin1"], None, "  Документы → Договор ", "dpo", "INTEREST",
                                        "custom.dpo_docs_received", "Да", "CONTRACT")
        assert (rule.name, rule.stage_code, rule.config) == (
            "Документы → Договор", "INTEREST",
            {"field": "custom.dpo_docs_received", "equals": "Да", "to_stage": "CONTRACT"})
    with session_scope(db) as s:
        items.update_fields(s, a["manager1"], "deal", ids["d1"], {"custom.dpo_contract_number": "Д-1",
                                                                   "custom.dpo_docs_received": "Да"})
    with session_scope(db) as s:
        assert stage_code(s, ids["d1"]) == "CONTRACT"


def test_adding_a_required_field_refuses_the_move_naming_it(w):
    db, a, ids = w
    with session_scope(db) as s:
        rule = rules_admin.save_required(s, a["admin1"], None, "dpo", "REGISTRATION",
                                         "custom.dpo_contract_number, custom.dpo_contract_paid")
        assert rule.config == {"fields": ["custom.dpo_contract_number", "custom.dpo_contract_paid"]}
        reg = f.stage(s, "dpo", "REGISTRATION").id
    with session_scope(db) as s:
        with pytest.raises(ValidationFailed) as exc:
            items.move_stage(s, a["manager1"], "deal", ids["d1"], reg)
        assert "Номер договора" in exc.value.message and "Договор оплачен" in exc.value.message
    with session_scope(db) as s:
        assert stage_code(s, ids["d1"]) == "INTEREST"
        # narrowed to one field, then switched off: the move goes through
        rules_admin.save_required(s, a["admin1"], rule.id, "dpo", "REGISTRATION", ["custom.dpo_contract_paid"])
        with pytest.raises(ValidationFailed) as exc:
            items.move_stage(s, a["manager1"], "deal", ids["d1"], reg)
        assert "Договор оплачен" in exc.value.message and "Номер договора" not in exc.value.message
    with session_scope(db) as s:
        rules_admin.set_active(s, a["admin1"], rule.id, False)
        items.move_stage(s, a["manager1"], "deal", ids["d1"], reg)
        assert stage_code(s, ids["d1"]) == "REGISTRATION"
        ops = [r.details["op"] for r in s.exec(select(AuditRecord).where(AuditRecord.action == "rule_update")
                                                 .order_by(AuditRecord.id)).all()]
        assert ops == ["create", "update", "deactivate"]


def test_non_admin_is_refused(w):
    db, a, _ = w
    with session_scope(db) as s:
        rid = rule_id(s, DOCS_RULE)
        for call in (lambda: rules_admin.set_active(s, a["manager1"], rid, False),
                     lambda: rules_admin.delete_rule(s, a["manager1"], rid),
                     lambda: rules_admin.save_required(s, a["manager1"], None, "dpo", "CONTRACT", "amount"),
                     lambda: rules_admin.save_trigger(s, a["manager1"], None, "X", "dpo", "INTEREST",
                                                      "custom.dpo_docs_received", "Да", "CONTRACT"),
                     lambda: rules_admin.set_active(s, None, rid, False)):
            with pytest.raises(AccessDenied):
                call()
    with session_scope(db) as s:
        assert s.get(AutomationRule, rid).is_active
        assert not s.exec(select(AuditRecord).where(AuditRecord.action == "rule_update")).all()


def test_bad_pipeline_stage_or_field_is_refused(w):
    db, a, _ = w
    adm = a["admin1"]
    with session_scope(db) as s:
        before = len(s.exec(select(AutomationRule)).all())
        with pytest.raises(ValidationFailed, match="нет стадии «NOPE»"):
            rules_admin.save_required(s, adm, None, "dpo", "NOPE", "amount")
        with pytest.raises(ValidationFailed, match="Воронка «nope» не найдена"):
            rules_admin.save_required(s, adm, None, "nope", "CONTRACT", "amount")
        with pytest.raises(ValidationFailed, match="custom.nope"):
            rules_admin.save_required(s, adm, None, "dpo", "CONTRACT", "amount, custom.nope")
        with pytest.raises(ValidationFailed, match="custom.masters_exam_score"):  # another pipeline's field
            rules_admin.save_required(s, adm, None, "dpo", "CONTRACT", "custom.masters_exam_score")
        with pytest.raises(ValidationFailed, match="хотя бы одно поле"):
            rules_admin.save_required(s, adm, None, "dpo", "CONTRACT", " , ")
        with pytest.raises(ValidationFailed, match="нет стадии «EXAMS_PASSED»"):
            rules_admin.save_trigger(s, adm, None, "X", "dpo", "INTEREST", "custom.dpo_docs_received", "Да",
                                     "EXAMS_PASSED")
        with pytest.raises(ValidationFailed, match="custom.nope"):
            rules_admin.save_trigger(s, adm, None, "X", "dpo", "INTEREST", "custom.nope", "Да", "CONTRACT")
        with pytest.raises(ValidationFailed, match="совпадает"):
            rules_admin.save_trigger(s, adm, None, "X", "dpo", "INTEREST", "custom.dpo_docs_received", "Да",
                                     "INTEREST")
        with pytest.raises(ValidationFailed, match="Название"):
            rules_admin.save_trigger(s, adm, None, " ", "dpo", "INTEREST", "custom.dpo_docs_received", "Да",
                                     "CONTRACT")
        required = s.exec(select(AutomationRule).where(AutomationRule.kind == "required")).first()
        with pytest.raises(ValidationFailed, match="другого вида"):
            rules_admin.save_trigger(s, adm, required.id, "X", "dpo", "INTEREST", "custom.dpo_docs_received",
                                     "Да", "CONTRACT")
        with pytest.raises(NotFound):
            rules_admin.set_active(s, adm, 999999, False)
        assert len(s.exec(select(AutomationRule)).all()) == before


def test_a_new_on_enter_rule_acts_on_entry(w):
    """Admins create on-enter rules (plan an activity / set a field / notify); the engine runs them
    on the next entry into the stage."""
    from rxcrm.models import Activity, Notification
    db, a, ids = w
    with session_scope(db) as s:
        r1 = rules_admin.save_on_enter(s, a["admin1"], None, " Регистрация: письмо ", "dpo", "REGISTRATION",
                                       [{"type": "activity", "kind": "email", "subject": "Отправить программу",
                                         "in_hours": "2"}])
        assert (r1.kind, r1.name, r1.config["actions"]) == (
            "on_enter", "Регистрация: письмо",
            [{"type": "activity", "kind": "email", "subject": "Отправить программу", "in_hours": 2}])
        rules_admin.save_on_enter(s, a["admin1"], None, "Регистрация: тип", "dpo", "REGISTRATION",
                                  [{"type": "set", "field": "deal_type", "value": "Повторная продажа"}])
        rules_admin.save_on_enter(s, a["admin1"], None, "Регистрация: сообщить", "dpo", "REGISTRATION",
                                  [{"type": "notify", "to": "responsible", "text": "«{title}» на регистрации"}])
        texts = {r["name"]: r["text"] for r in rules_admin.list_rules(s)}
        assert texts["Регистрация: письмо"] == "запланировать письмо «Отправить программу» через 2 ч"
        assert texts["Регистрация: сообщить"] == "уведомить ответственного: ««{title}» на регистрации»"
    with session_scope(db) as s:
        items.move_stage(s, a["manager1"], "deal", ids["d1"], f.stage(s, "dpo", "REGISTRATION").id)
    with session_scope(db) as s:
        subjects = set(s.exec(select(Activity.subject).where(Activity.entity_id == ids["d1"])).all())
        assert "Отправить программу" in subjects
        assert s.get(Deal, ids["d1"]).deal_type == "Повторная продажа"
        notes = s.exec(select(Notification.text).where(Notification.user_id == ids["m1"])).all()
        assert "«Python — Иванов» на регистрации" in notes


@pytest.mark.parametrize("stage,action,field", [
    ("WON", {"type": "activity", "kind": "call", "subject": "x"}, "stage_code"),  # not a working stage
    ("REGISTRATION", {"type": "activity", "kind": "fax", "subject": "x"}, "kind"),
    ("REGISTRATION", {"type": "activity", "kind": "call", "subject": "  "}, "subject"),
    ("REGISTRATION", {"type": "activity", "kind": "call", "subject": "x", "in_hours": "завтра"}, "in_hours"),
    ("REGISTRATION", {"type": "activity", "kind": "call", "subject": "x", "duration_min": 90}, "duration_min"),
    ("REGISTRATION", {"type": "set", "field": "nope", "value": "1"}, "fields"),
    ("REGISTRATION", {"type": "set", "field": "created_at", "value": "2026-01-01"}, "field"),
    ("REGISTRATION", {"type": "set", "field": "probability", "value": "много"}, "probability"),
    ("REGISTRATION", {"type": "notify", "to": "everyone", "text": "x"}, "to"),
    ("REGISTRATION", {"type": "notify", "to": "responsible", "text": ""}, "text"),
    ("REGISTRATION", {"type": "explode"}, "action"),
])
def test_bad_on_enter_rule_is_refused_and_nothing_saved(w, stage, action, field):
    db, a, _ = w
    with session_scope(db) as s:
        before = len(s.exec(select(AutomationRule)).all())
        with pytest.raises(ValidationFailed) as exc:
            rules_admin.save_on_enter(s, a["admin1"], None, "Плохое правило", "dpo", stage, [action])
        assert field in (exc.value.fields or {}), exc.value.fields
        assert len(s.exec(select(AutomationRule)).all()) == before
        with pytest.raises(AccessDenied):
            rules_admin.save_on_enter(s, a["manager1"], None, "Моё", "dpo", "REGISTRATION",
                                      [{"type": "notify", "to": "responsible", "text": "x"}])


def test_field_choices_name_each_pipelines_fillable_fields_with_their_values(w):
    """The rules editor offers these instead of raw codes."""
    db, a, ids = w
    with session_scope(db) as s:
        choices = rules_admin.field_choices(s)
    assert set(choices) >= {"leads", "dpo", "masters"}
    dpo = {r["key"]: r for r in choices["dpo"]}
    assert dpo["custom.dpo_contract_number"]["label"] == "Номер договора"
    assert dpo["custom.dpo_contract_signed"]["options"] == ["Да", "Нет"]
    assert dpo["program_id"] == {"key": "program_id", "label": "Образовательная программа", "kind": "program",
                                 "options": []}
    assert dpo["is_repeat"]["options"] == ["Да", "Нет"]
    assert "custom.masters_exam_score" not in dpo and "custom.masters_exam_score" in {r["key"] for r in choices["masters"]}
    # only what a person (or a rule) can fill: no computed columns, no ids, no stage
    assert not {"id", "stage_id", "created_at", "next_activity_at", "phone"} & set(dpo)
    # every offered field is accepted by the rule it is offered for
    with session_scope(db) as s:
        rule = rules_admin.save_required(s, a["admin1"], None, "dpo", "CONTRACT", list(dpo))
        assert rule.config["fields"] == list(dpo)


def test_an_action_is_one_plug_in(db, monkeypatch):
    """Adding an on-enter action = one class: the admin validates and describes it through
    the plug-in, the engine runs it, the /settings form reads its fields — nothing else
    names it."""
    from rxcrm.rules import actions
    from rxcrm.rules.actions.base import FormField, RuleAction, clean_text

    class Comment(RuleAction):
        code, label, order = "comment", "Оставить комментарий", 9
        form = (FormField("text", "Текст комментария"),)

        def validate(self, ctx, raw):
            return {"type": self.code, "text": clean_text(raw.get("text"), "text", "Текст комментария")}

        def describe(self, config, names):
            return f"оставить комментарий «{config['text']}»"

        def run(self, ctx, config):
            ctx.notify("responsible", "Комментарий правила: " + config["text"])

    monkeypatch.setitem(actions.ACTIONS, "comment", Comment())
    with session_scope(db) as s:
        admin = f.user(s, "plugadmin", role="admin", dept_code=None)
        m = f.user(s, "plugmgr")
        deal = f.deal(s, "Плагин", m)
        rules_admin.save_on_enter(s, auth.actor_for(admin), None, "Регистрация: комментарий", "dpo",
                                  "REGISTRATION", [{"type": "comment", "text": "  проверить   документы "}])
        assert [x["key"] for x in rules_admin.action_form("comment")] == ["text"]
        assert rules_admin.action_form("comment")[0]["label_en"] == "Текст комментария"  # no English: the Russian
        assert ("comment", "Оставить комментарий", "Оставить комментарий") in rules_admin.action_choices()
        rows = {r["name"]: r["text"] for r in rules_admin.list_rules(s)}
        assert rows["Регистрация: комментарий"] == "оставить комментарий «проверить документы»"
        with pytest.raises(ValidationFailed, match="Текст комментария"):
            rules_admin.save_on_enter(s, auth.actor_for(admin), None, "Пусто", "dpo", "REGISTRATION",
                                      [{"type": "comment", "text": ""}])
        ids = deal.id, m.id
    with session_scope(db) as s:
        items.move_stage(s, auth.actor_for(s.get(User, ids[1])), "deal", ids[0], f.stage(s, "dpo", "REGISTRATION").id)
    with session_scope(db) as s:
        assert "Комментарий правила: проверить документы" in s.exec(
            select(Notification.text).where(Notification.user_id == ids[1])).all()
