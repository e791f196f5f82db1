"""State handler tests for /settings: admin sees everything, a manager is refused,
tokens can be issued and revoked, rules are listed and switched/added/deleted by admins."""
from __future__ import annotations

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


@pytest.fixture(scope="module")
def tokens():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "sadmin")).first():
            f.user(s, "sadmin", role="admin", dept_code=None, full_name="Админ Настроек")
            f.user(s, "smanager", full_name="Менеджер Настроек")
    import rxcrm.rxcrm  # noqa: F401
    out = {}
    with session_scope() as s:
        for login in ("sadmin", "smanager"):
            out[login], _ = auth.login(s, login, "demo")
    return out


def _state(token):
    from rxcrm.state.settings import SettingsState
    st = f.logged_in(SettingsState, token)
    st.check_login()
    return st


def test_admin_sees_users_matrix_rules_and_issues_a_token(tokens):
    st = _state(tokens["sadmin"])
    st.on_load()
    assert st.settings_error == ""
    assert any(u.login == "smanager" for u in st.users)
    assert len(st.matrix) == 16 and all(len(r.cells) == 6 for r in st.matrix)
    assert any(r.kind == "Перевод по полю" for r in st.rules)
    st.create_token({"integration": "landing", "name": "Сайт"})
    assert len(st.new_token) > 20
    row = next(t for t in st.tokens if t.name == "Сайт")
    assert row.active
    st.revoke_token(row.id)
    assert not next(t for t in st.tokens if t.id == row.id).active


def test_manager_is_refused(tokens):
    st = _state(tokens["smanager"])
    st.on_load()
    assert "администратору" in st.settings_error and st.users == []


def test_admin_switches_adds_and_deletes_rules(tokens):
    st = _state(tokens["sadmin"])
    st.on_load()
    docs = next(r for r in st.rules if r.name == "Документы получены → Регистрация")
    assert docs.id > 0 and docs.active
    assert any(o.value == "dpo:REGISTRATION" for o in st.stage_options)
    st.set_rule_active(docs.id, False)
    assert not next(r for r in st.rules if r.id == docs.id).active
    st.set_rule_active(docs.id, True)
    assert next(r for r in st.rules if r.id == docs.id).active
    n = len(st.rules)
    st.add_required_rule({"stage": "dpo:REGISTRATION", "fields": "custom.nope"})
    assert len(st.rules) == n
    st.add_required_rule({"stage": "dpo:REGISTRATION", "fields": "custom.dpo_contract_paid"})
    new = next(r for r in st.rules if r.kind == "Обязательные поля" and r.text == "Заполнить: «Договор оплачен»")
    st.add_trigger_rule({"name": "Оплачен → Предоплата", "from_stage": "dpo:CONTRACT",
                         "field": "custom.dpo_contract_paid", "equals": "Да", "to_stage": "dpo:PREPAYMENT"})
    trig = next(r for r in st.rules if r.name == "Оплачен → Предоплата")
    st.set_rule_action("notify")
    st.add_on_enter_rule({"name": "Договор: сообщить", "stage": "dpo:CONTRACT", "to": "department_head",
                          "text": "Сделка «{title}» на договоре", "subject": "ignored for notify"})
    enter = next(r for r in st.rules if r.name == "Договор: сообщить")
    assert enter.kind == "При входе на стадию" and "руководителя отдела" in enter.text
    st.set_rule_action("activity")
    st.add_on_enter_rule({"name": "Без темы", "stage": "dpo:CONTRACT", "kind": "call", "subject": ""})
    assert not any(r.name == "Без темы" for r in st.rules)  # refused with a toast, nothing saved
    st.delete_rule(new.id)
    st.delete_rule(trig.id)
    st.delete_rule(enter.id)
    assert len(st.rules) == n


def test_manager_cannot_switch_rules(tokens):
    st = _state(tokens["sadmin"])
    st.on_load()
    rid = next(r.id for r in st.rules if r.id > 0)
    mgr = _state(tokens["smanager"])
    mgr.set_rule_active(rid, False)
    st.on_load()
    assert next(r for r in st.rules if r.id == rid).active


def test_rules_editor_offers_stages_and_fields_from_lists_not_codes(tokens):
    """The editor names fields by their labels, per the chosen stage's pipeline, and
    values from the field's own list; no raw code like custom.dpo_contract_number is typed."""
    st = _state(tokens["sadmin"])
    st.on_load()
    dpo = {o.value: o.label for o in st.rule_fields["dpo"]}
    assert dpo["custom.dpo_contract_number"] == "Номер договора" and dpo["program_id"] == "Образовательная программа"
    assert "custom.masters_exam_score" not in dpo
    # required fields: pick the stage, then fields by name
    assert st.req_field_options == []
    st.set_req_stage("dpo:REGISTRATION")
    labels = [o.label for o in st.req_field_options]
    assert "Номер договора" in labels and "Сумма баллов" not in labels
    st.add_req_field("custom.dpo_contract_number")
    st.add_req_field("custom.masters_exam_score")  # not a field of this pipeline: refused
    assert [c.label for c in st.req_field_chips] == ["Номер договора"]
    assert "Номер договора" not in [o.label for o in st.req_field_options]
    n = len(st.rules)
    st.add_required_rule({"stage": st.req_stage, "fields": st.req_fields_csv})
    assert len(st.rules) == n + 1 and st.req_fields == []
    new = next(r for r in st.rules if r.text == "Заполнить: «Номер договора»" and r.name.endswith("· Регистрация"))
    # a trigger: from any stage of a pipeline, a yes/no field offers Да/Нет, targets of that pipeline only
    st.set_trig_stage("dpo:")
    assert {o.value.split(":")[0] for o in st.trig_to_options} == {"dpo"} and len(st.trig_to_options) > 3
    assert "Воронка ДПО 2 часть · любая стадия" in [o.label for o in st.trig_from_options]
    st.set_trig_field("custom.dpo_contract_signed")
    assert st.trig_value_options == ["Да", "Нет"]
    st.add_trigger_rule({"name": "Подписан → Аванс", "from_stage": "dpo:", "field": st.trig_field,
                         "equals": "Да", "to_stage": "dpo:PREPAYMENT"})
    trig = next(r for r in st.rules if r.name == "Подписан → Аванс")
    assert "любая стадия" in trig.text and "«Договор подписан» = «Да»" in trig.text
    # on entering a stage, set a field: the field's values are offered
    st.set_enter_stage("masters:REGISTRATION")
    st.set_enter_field("custom.masters_place_kind")
    assert st.enter_value_options == ["Платное", "Бюджетное"]
    st.set_enter_stage("dpo:CONTRACT")  # another pipeline: the field choice is dropped
    assert st.enter_field == "" and st.enter_value_options == []
    st.delete_rule(new.id)
    st.delete_rule(trig.id)


def test_the_on_enter_form_is_drawn_from_the_action_plug_in(tokens, monkeypatch):
    """An action is one plug-in: registered, it is offered in the picker and its `form` becomes
    the inputs of /settings → Правила «При входе на стадию» (labels, kinds, options, defaults —
    in the person's language); what is submitted under its keys reaches its `validate`."""
    from rxcrm.rules import actions
    from rxcrm.rules.actions.base import FormField, RuleAction, choice, clean_text, int_in

    levels = (("low", "Обычная"), ("high", "Высокая"))

    class Comment(RuleAction):
        code, label, label_en, order = "comment", "Оставить комментарий", "Leave a comment", 9
        form = (FormField("text", "Текст комментария", placeholder="Например: проверить документы",
                          label_en="Comment text", placeholder_en="E.g. check the documents"),
                FormField("level", "Важность", "choice", levels, default="high", label_en="Priority",
                          options_en=(("low", "Normal"), ("high", "High"))),
                FormField("hours", "Через, ч", "int", default="2", required=False))

        def validate(self, ctx, raw):
            return {"type": self.code, "text": clean_text(raw.get("text"), "text", "Текст комментария"),
                    "level": choice(raw.get("level"), levels, "level", "Важность"),
                    "hours": int_in(raw.get("hours") or 0, 0, 48, "hours", "Через, ч")}

        def describe(self, config, names):
            return f"комментарий «{config['text']}» ({config['level']}, {config['hours']} ч)"

        def run(self, ctx, config):
            pass

    monkeypatch.setitem(actions.ACTIONS, "comment", Comment())
    st = _state(tokens["sadmin"])
    st.lang = "ru"
    st.on_load()
    assert ("comment", "Оставить комментарий") in [(o.value, o.label) for o in st.rule_action_options]
    assert [r.key for r in st.rule_form] == ["kind", "subject", "in_hours", "duration_min"]  # the default action
    st.set_rule_action("comment")
    rows = st.rule_form
    assert [(r.key, r.kind, r.label) for r in rows] == [
        ("text", "text", "Текст комментария"), ("level", "choice", "Важность"), ("hours", "int", "Через, ч")]
    assert rows[0].placeholder == "Например: проверить документы"
    assert [(o.value, o.label) for o in rows[1].options] == list(levels) and rows[1].default == "high"
    assert rows[2].default == "2" and len({r.uid for r in rows}) == 3
    st.lang = "en"
    rows = st.rule_form
    assert [r.label for r in rows] == ["Comment text", "Priority", "Через, ч"]  # no English label: the Russian one
    assert rows[0].placeholder == "E.g. check the documents"
    assert [o.label for o in rows[1].options] == ["Normal", "High"]
    assert ("comment", "Leave a comment") in [(o.value, o.label) for o in st.rule_action_options]
    st.lang = "ru"
    n = len(st.rules)
    st.add_on_enter_rule({"name": "Регистрация: комментарий", "stage": "dpo:REGISTRATION",
                          "text": "  проверить   документы ", "level": "low", "hours": "3"})
    added = next(r for r in st.rules if r.name == "Регистрация: комментарий")
    assert added.text == "комментарий «проверить документы» (low, 3 ч)" and len(st.rules) == n + 1
    st.delete_rule(added.id)
    st.set_rule_action("activity")


def test_switching_to_english_relabels_the_settings_lists(tokens):
    st = _state(tokens["sadmin"])
    st.lang = "ru"
    st.on_load()
    assert {o.label for o in st.role_options} >= {"Менеджер", "Администратор"}
    assert st.level_options[0].label == "Нет доступа" and st.action_labels[0] == "Просмотр"
    assert {r.kind for r in st.rules} >= {"Перевод по полю", "Дисциплина дел"}
    assert [o.label for o in st.rule_action_options] == ["Запланировать дело", "Заполнить поле", "Уведомить"]
    assert [r.label for r in st.rule_form][:2] == ["Вид дела", "Тема дела"]
    st.lang = "en"
    assert {o.label for o in st.role_options} >= {"Manager", "Administrator"}
    assert st.level_options[0].label == "No access" and st.action_labels[0] == "View"
    assert {r.kind for r in st.rules} >= {"Move by field value", "Activity discipline"}
    texts = [r.text for r in st.rules]
    assert any(t.startswith("Fill in: “") for t in texts)
    assert any(t.startswith("When “") for t in texts) and any(t.startswith("plan a call “") for t in texts)
    assert next(r for r in st.matrix if r.entity == "deal").entity_label == "Deals"
    assert next(u for u in st.users if u.login == "smanager").role_label == "Manager"
    assert [o.label for o in st.rule_action_options] == ["Plan an activity", "Set a field", "Notify"]
    assert [r.label for r in st.rule_form][:2] == ["Activity type", "Subject"]
    assert [o.label for o in st.rule_form[0].options] == ["Call", "Meeting", "Task", "E-mail"]
    assert "Воронка ДПО 2 часть · any stage" in [o.label for o in st.trig_from_options]  # a pipeline is data
    st.lang = "ru"


def test_admin_creates_a_webhook_sees_its_address_once_and_revokes_it(tokens):
    from rxcrm.rest import methods
    st = _state(tokens["sadmin"])
    st.on_load()
    manager = next(u for u in st.users if u.login == "smanager")
    st.create_hook({"user_id": str(manager.id), "name": "Сервис рассылок", "scope_crm": "on"})
    url = st.new_hook_url
    assert f"/rest/{manager.id}/" in url and url.endswith("/")
    code = url.rstrip("/").rsplit("/", 1)[1]
    row = next(h for h in st.hooks if h.name == "Сервис рассылок")
    assert row.active and row.scopes == "crm" and row.user == manager.full_name
    assert code not in row.path and row.path == f"/rest/{manager.id}/…/"
    assert methods.authenticate(str(manager.id), code).user_id == manager.id  # the address works
    st.on_load()
    assert code not in str([h.__dict__ for h in st.hooks])  # shown once: the list never has it
    st.revoke_hook(row.id)
    assert not next(h for h in st.hooks if h.id == row.id).active
    with pytest.raises(Exception):
        methods.authenticate(str(manager.id), code)


def test_a_webhook_needs_a_name_and_a_scope(tokens):
    st = _state(tokens["sadmin"])
    st.on_load()
    manager = next(u for u in st.users if u.login == "smanager")
    before = len(st.hooks)
    for form, reason in (({"user_id": str(manager.id), "name": "", "scope_crm": "on"}, "название"),
                         ({"user_id": str(manager.id), "name": "Без прав"}, "Выберите права вебхука")):
        out = st.create_hook(form)
        assert reason in str(out) and len(st.hooks) == before and st.new_hook_url == ""


def test_admin_subscribes_a_url_to_an_event_and_sees_the_deliveries(tokens):
    from rxcrm.services import create
    st = _state(tokens["sadmin"])
    st.on_load()
    st.create_binding({"event": "ONCRMDEALADD", "handler": "http://127.0.0.1:9/receiver", "name": "Аналитика"})
    row = next(b for b in st.event_bindings if b.name == "Аналитика")
    assert row.active and row.event == "ONCRMDEALADD" and row.pending == 0
    with session_scope() as s:
        manager = s.exec(select(User).where(User.login == "smanager")).one()
        create.create_deal(s, auth.actor_for(manager), pipeline_id=f.pipeline(s, "dpo").id, title="Событие")
    st.on_load()
    assert next(b for b in st.event_bindings if b.id == row.id).pending == 1
    delivery = st.deliveries[0]
    assert delivery.event == "ONCRMDEALADD" and delivery.item.startswith("Сделка №") and delivery.status == "pending"
    out = st.create_binding({"event": "ONCRMDEALADD", "handler": "not a url"})
    assert "Адрес обработчика" in str(out)
    st.unbind_event(row.id)
    assert not next(b for b in st.event_bindings if b.id == row.id).active
