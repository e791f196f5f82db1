"""State of /settings: users, departments, the access matrix (admins) and the recycle bin
(admins; heads for their department)."""
from __future__ import annotations

import dataclasses

import reflex as rx
from sqlmodel import select

from rxcrm.models import Pipeline, Stage
from rxcrm.rules import automation
from rxcrm.services import admin, fmt, intake, recycle, rules_admin

from .app import AppState
from .base import choice, event, field, opt_id, to_bool, to_form, to_id, to_text
from .work import Option

SETTINGS_TABS = ("users", "depts", "matrix", "integrations", "rules", "bin")
ITEM_ENTITIES = ("lead", "deal", "contact", "company")


@dataclasses.dataclass
class UserRow:
    id: int = 0
    login: str = ""
    full_name: str = ""
    role_label: str = ""
    department: str = ""
    is_active: bool = True
    is_self: bool = False
    last_login: str = ""


@dataclasses.dataclass
class DeptRow:
    id: int = 0
    name: str = ""
    head: str = ""
    users: int = 0


@dataclasses.dataclass
class MatrixCell:
    role: str = ""
    entity: str = ""
    action: str = ""
    level: str = ""


@dataclasses.dataclass
class MatrixRow:
    role: str = ""
    role_label: str = ""
    entity: str = ""
    entity_label: str = ""
    cells: list[MatrixCell] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class BinRow:
    entity: str = ""
    entity_label: str = ""
    id: int = 0
    title: str = ""
    deleted_at: str = ""
    deleted_by: str = ""
    department: str = ""


@dataclasses.dataclass
class TokenRow:
    id: int = 0
    label: str = ""
    name: str = ""
    created_at: str = ""
    active: bool = True


@dataclasses.dataclass
class EventRow:
    id: int = 0
    integration: str = ""
    event_id: str = ""
    event_type: str = ""
    received_at: str = ""
    status: str = ""
    error: str = ""


@dataclasses.dataclass
class RuleRow:
    kind: str = ""
    name: str = ""
    text: str = ""
    id: int = 0  # 0 = not an automation_rule row (the activity discipline): not editable here
    active: bool = True


class SettingsState(AppState):
    settings_tab: str = "users"
    users: list[UserRow] = []
    depts: list[DeptRow] = []
    dept_options: list[Option] = []
    role_options: list[Option] = []
    user_options: list[Option] = []
    matrix: list[MatrixRow] = []
    action_labels: list[str] = []
    level_options: list[Option] = []
    bin_rows: list[BinRow] = []
    bin_total: int = 0
    settings_error: str = ""
    tokens: list[TokenRow] = []
    intake_events: list[EventRow] = []
    intake_waiting: int = 0  # stored events not processed yet (status "received")
    new_token: str = ""
    integration_options: list[Option] = [Option("marketplace", "Маркетплейс"), Option("landing", "Лендинг"),
                                         Option("education", "УС ДПО")]
    rules: list[RuleRow] = []
    stage_options: list[Option] = []  # "pipeline:STAGE" — every stage of every pipeline
    # the rules editor picks fields and values from lists (rules_admin.field_choices), by pipeline code
    rule_fields: dict[str, list[Option]] = {}      # pipeline code → fields a person can fill
    rule_field_values: dict[str, list[str]] = {}   # "pipeline:field" → its values (enum options, Да/Нет)
    req_stage: str = ""                            # «Обязательные поля»: the stage…
    req_fields: list[str] = []                     # …and the fields chosen so far
    trig_stage: str = ""                           # «Перевод по полю»: from stage ("pipeline:" = any)
    trig_field: str = ""
    enter_stage: str = ""                          # «При входе на стадию»
    enter_field: str = ""                          # (the field of a "set" action)
    rule_action: str = "activity"  # the action of a new on-enter rule
    rule_action_options: list[Option] = [Option(k, v) for k, v in rules_admin.ACTION_TYPES.items()]
    activity_kind_options: list[Option] = [Option(v, lab) for f in rules_admin.action_form("activity")
                                           if f["key"] == "kind" for v, lab in f["options"]]
    recipient_options: list[Option] = [Option(v, lab) for f in rules_admin.action_form("notify")
                                       if f["key"] == "to" for v, lab in f["options"]]
    user_dialog: bool = False
    password_dialog: bool = False
    reassign_dialog: bool = False
    target_user_id: int = 0
    target_user_name: str = ""

    @rx.var
    def is_admin(self) -> bool:
        return self.user_role == "admin"

    @event
    def on_load(self):
        actor = self._require_actor()
        self.settings_error = ""
        if actor.role not in ("admin", "head"):
            self.settings_error = "Настройки доступны администратору (корзина — также руководителю отдела)"
            return
        if actor.role != "admin":
            self.settings_tab = "bin"
        self._load()

    def _load(self) -> None:
        self._read(self._fill)

    def _fill(self, s, actor) -> None:
        if actor.role == "admin":
            self.users = [UserRow(u["id"], u["login"], u["full_name"], u["role_label"], u["department"],
                                  u["is_active"], u["is_self"], u["last_login"])
                          for u in admin.list_users(s, actor)]
            depts = admin.list_departments(s, actor)
            self.depts = [DeptRow(d["id"], d["name"], d["head"], d["users"]) for d in depts]
            self.dept_options = [Option(str(d["id"]), d["name"]) for d in depts]
            labels = admin.matrix_labels()
            self.role_options = [Option(c, lab) for c, lab in labels["roles"]]
            self.level_options = [Option(c, lab) for c, lab in labels["levels"]]
            self.action_labels = [lab for _, lab in labels["actions"]]
            self.user_options = [Option(str(u.id), u.full_name) for u in self.users if u.is_active]
            self.tokens = [TokenRow(tok["id"], tok["label"], tok["name"] or "—", fmt.dt_short(tok["created_at"]),
                                    tok["revoked_at"] is None) for tok in intake.list_tokens(s, actor)]
            self.intake_events = [EventRow(e.id, e.integration, e.event_id, e.event_type,
                                           fmt.dt_short(e.received_at), e.status, (e.error or "")[:200])
                                  for e in intake.events(s, actor, limit=30)]
            self.intake_waiting = intake.pending_count(s)
            self.rules = _rules(s)
            self.stage_options = _stage_options(s)
            choices = rules_admin.field_choices(s)
            self.rule_fields = {code: [Option(r["key"], r["label"]) for r in rows] for code, rows in choices.items()}
            self.rule_field_values = {f"{code}:{r['key']}": list(r["options"]) for code, rows in choices.items()
                                      for r in rows if r["options"]}
            m = admin.permission_matrix(s, actor)
            self.matrix = [MatrixRow(r, rl, e, el, [MatrixCell(r, e, a, m[r][e][a]) for a, _ in labels["actions"]])
                           for r, rl in labels["roles"] for e, el in labels["entities"]]
        if not recycle.can_view(actor):
            self.bin_rows, self.bin_total = [], 0
            return
        rows, total = recycle.deleted_items(s, actor, limit=100)
        self.bin_rows = [BinRow(r["entity"], r["entity_label"], r["id"], r["title"], r["deleted_at"],
                                r["deleted_by"], r["department"]) for r in rows]
        self.bin_total = total

    def _do(self, fn, ok: str):
        """One admin operation `fn(session, actor)`, then the page is read again."""
        self._call(fn)
        self._load()
        return rx.toast.success(ok)

    @event
    def set_settings_tab(self, tab: str | list[str]):
        self.settings_tab = choice(tab, SETTINGS_TABS, "вкладка")

    # users
    @event
    def set_user_dialog(self, value: bool):
        self.user_dialog = to_bool(value)

    @event
    def create_user(self, form: dict):
        form = to_form(form)
        login = field(form, "login", "логин", 100)
        result = self._do(lambda s, a: admin.create_user(
            s, a, login=login, full_name=field(form, "full_name", "ФИО", 200),
            password=field(form, "password", "пароль", 200), role=field(form, "role", "роль", 50) or "manager",
            department_id=opt_id(form.get("department"), "отдел"), email=field(form, "email", "e-mail", 200)),
            "Сотрудник добавлен")
        self.user_dialog = False
        return result

    @event
    def toggle_active(self, user_id: int, active: bool):
        user_id = to_id(user_id, "сотрудник")
        if to_bool(active):
            return self._do(lambda s, a: admin.deactivate_user(s, a, user_id), "Сотрудник отключён, сеансы завершены")
        return self._do(lambda s, a: admin.activate_user(s, a, user_id), "Сотрудник включён")

    @event
    def open_password(self, user_id: int, name: str):
        self.target_user_id, self.target_user_name = to_id(user_id, "сотрудник"), to_text(name, "имя", 200)
        self.password_dialog = True

    @event
    def set_password_dialog(self, value: bool):
        self.password_dialog = to_bool(value)

    @event
    def reset_password(self, form: dict):
        password = field(form, "password", "пароль", 200)
        res = self._do(lambda s, a: admin.reset_password(s, a, self.target_user_id, password),
                       "Пароль изменён, сеансы сотрудника завершены")
        self.password_dialog = False
        return res

    @event
    def open_reassign(self, user_id: int, name: str):
        self.target_user_id, self.target_user_name = to_id(user_id, "сотрудник"), to_text(name, "имя", 200)
        self.reassign_dialog = True

    @event
    def set_reassign_dialog(self, value: bool):
        self.reassign_dialog = to_bool(value)

    @event
    def reassign(self, form: dict):
        form = to_form(form)
        to = opt_id(form.get("to"), "сотрудник")
        if to is None:
            return rx.toast.error("Выберите, кому передать")
        counts = self._call(admin.reassign_items, self.target_user_id, to, only_open=to_bool(form.get("only_open")))
        self.reassign_dialog = False
        return rx.toast.success("Передано: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))

    # departments
    @event
    def create_department(self, form: dict):
        name = field(form, "name", "название", 200)
        return self._do(lambda s, a: admin.create_department(s, a, name), "Отдел добавлен")

    # matrix
    @event
    def set_level(self, role: str, entity: str, action: str, level: str):
        role, entity = to_text(role, "роль", 50), to_text(entity, "элемент", 50)
        action, level = to_text(action, "действие", 50), to_text(level, "уровень", 50)
        return self._do(lambda s, a: admin.set_permission(s, a, role, entity, action, level), "Права сохранены")

    @event
    def reset_matrix(self):
        return self._do(lambda s, a: admin.reset_permissions_to_defaults(s, a), "Права по умолчанию восстановлены")

    # integrations
    @event
    def create_token(self, form: dict):
        form = to_form(form)
        integration = choice(field(form, "integration", "интеграция", 50) or "marketplace",
                             intake.INTEGRATIONS, "интеграция")
        self.new_token = self._call(intake.create_token, integration, field(form, "name", "название", 200))
        self._load()

    @event
    def revoke_token(self, token_id: int):
        token_id = to_id(token_id, "токен")
        return self._do(lambda s, a: intake.revoke_token(s, a, token_id), "Токен отозван")

    @event
    def replay(self, event_id: int):
        event_id = to_id(event_id, "событие")
        return self._do(lambda s, a: intake.replay(s, a, event_id), "Событие обработано повторно")

    # rules
    @event
    def set_rule_active(self, rule_id: int, active: bool):
        rule_id, active = to_id(rule_id, "правило"), to_bool(active)
        return self._do(lambda s, a: rules_admin.set_active(s, a, rule_id, active),
                        "Правило включено" if active else "Правило отключено")

    @event
    def delete_rule(self, rule_id: int):
        rule_id = to_id(rule_id, "правило")
        return self._do(lambda s, a: rules_admin.delete_rule(s, a, rule_id), "Правило удалено")

    # ---- the editor's pickers: stages and fields from lists, never raw codes ----------------
    # (each var reads the state vars it depends on itself, so Reflex sees its dependencies)
    @rx.var
    def req_field_options(self) -> list[Option]:
        """Fields of the chosen stage's pipeline not chosen yet."""
        return [o for o in self.rule_fields.get(_pipe(self.req_stage), []) if o.value not in self.req_fields]

    @rx.var
    def req_field_chips(self) -> list[Option]:
        labels = {o.value: o.label for o in self.rule_fields.get(_pipe(self.req_stage), [])}
        return [Option(k, labels.get(k, k)) for k in self.req_fields]

    @rx.var
    def req_fields_csv(self) -> str:
        return ",".join(self.req_fields)

    @rx.var
    def trig_from_options(self) -> list[Option]:
        """Every stage, and per pipeline «любая стадия» ("pipeline:")."""
        out, seen = [], set()
        for o in self.stage_options:
            pipe = _pipe(o.value)
            if pipe not in seen:
                seen.add(pipe)
                out.append(Option(f"{pipe}:", o.label.split(" · ")[0] + " · любая стадия"))
            out.append(o)
        return out

    @rx.var
    def trig_to_options(self) -> list[Option]:
        """Stages of the same pipeline as the from-stage (a trigger moves within a pipeline)."""
        pipe = _pipe(self.trig_stage)
        return [o for o in self.stage_options if pipe and _pipe(o.value) == pipe and o.value != self.trig_stage]

    @rx.var
    def trig_field_options(self) -> list[Option]:
        return self.rule_fields.get(_pipe(self.trig_stage), [])

    @rx.var
    def trig_value_options(self) -> list[str]:
        return self.rule_field_values.get(f"{_pipe(self.trig_stage)}:{self.trig_field}", [])

    @rx.var
    def enter_field_options(self) -> list[Option]:
        return self.rule_fields.get(_pipe(self.enter_stage), [])

    @rx.var
    def enter_value_options(self) -> list[str]:
        return self.rule_field_values.get(f"{_pipe(self.enter_stage)}:{self.enter_field}", [])

    def _stage_value(self, value) -> str:
        value = to_text(value, "стадия", 200)
        allowed = {o.value for o in self.stage_options} | {f"{_pipe(o.value)}:" for o in self.stage_options}
        return choice(value, allowed, "стадия")

    def _field_key(self, stage_value: str, value) -> str:
        keys = [o.value for o in self.rule_fields.get(_pipe(stage_value), [])]
        return choice(to_text(value, "поле", 200), keys, "поле")

    @event
    def set_req_stage(self, value: str):
        """Another stage: its pipeline's fields are offered (those of another pipeline dropped)."""
        stage = self._stage_value(value)
        if _pipe(stage) != _pipe(self.req_stage):
            self.req_fields = []
        self.req_stage = stage

    @event
    def add_req_field(self, key: str):
        key = self._field_key(self.req_stage, key)
        if key not in self.req_fields:
            self.req_fields = [*self.req_fields, key]

    @event
    def remove_req_field(self, key: str):
        key = to_text(key, "поле", 200)
        self.req_fields = [k for k in self.req_fields if k != key]

    @event
    def set_trig_stage(self, value: str):
        stage = self._stage_value(value)
        if _pipe(stage) != _pipe(self.trig_stage):
            self.trig_field = ""
        self.trig_stage = stage

    @event
    def set_trig_field(self, key: str):
        self.trig_field = self._field_key(self.trig_stage, key)

    @event
    def set_enter_stage(self, value: str):
        stage = self._stage_value(value)
        if _pipe(stage) != _pipe(self.enter_stage):
            self.enter_field = ""
        self.enter_stage = stage

    @event
    def set_enter_field(self, key: str):
        self.enter_field = self._field_key(self.enter_stage, key)

    @event
    def add_required_rule(self, form: dict):
        form = to_form(form)
        pipe, _, stage = (field(form, "stage", "стадия", 200) or self.req_stage).partition(":")
        if not stage:
            return rx.toast.error("Выберите стадию")
        fields = field(form, "fields", "поля", 2000) or ",".join(self.req_fields)
        if not fields.strip():
            return rx.toast.error("Добавьте хотя бы одно поле")
        result = self._do(lambda s, a: rules_admin.save_required(s, a, None, pipe, stage, fields), "Правило добавлено")
        self.req_fields = []
        return result

    @event
    def add_trigger_rule(self, form: dict):
        form = to_form(form)
        pipe, _, src = field(form, "from_stage", "стадия", 200).partition(":")  # "pipeline:" = any stage
        to_pipe, _, dst = field(form, "to_stage", "стадия", 200).partition(":")
        if not pipe or not dst:
            return rx.toast.error("Выберите стадии")
        if to_pipe != pipe:
            return rx.toast.error("Стадии должны быть из одной воронки")
        name, fld = field(form, "name", "название", 200), field(form, "field", "поле", 200).strip()
        equals = field(form, "equals", "значение", 500)
        return self._do(lambda s, a: rules_admin.save_trigger(s, a, None, name, pipe, src, fld, equals, dst),
                        "Правило добавлено")

    @event
    def set_rule_action(self, value: str):
        self.rule_action = choice(value, rules_admin.ACTION_TYPES, "действие")

    @event
    def add_on_enter_rule(self, form: dict):
        form = to_form(form)
        pipe, _, stage = field(form, "stage", "стадия", 200).partition(":")
        if not stage:
            return rx.toast.error("Выберите стадию")
        kind = self.rule_action
        values = {f["key"]: field(form, f["key"], f["label"], 2000).strip() for f in rules_admin.action_form(kind)}
        action = {"type": kind, **{k: v for k, v in values.items() if v}}
        name = field(form, "name", "название", 200)
        return self._do(lambda s, a: rules_admin.save_on_enter(s, a, None, name, pipe, stage, [action]),
                        "Правило добавлено")

    # recycle bin
    @event
    def restore(self, entity: str, item_id: int):
        entity, item_id = choice(entity, ITEM_ENTITIES, "элемент"), to_id(item_id, "номер")
        return self._do(lambda s, a: recycle.restore(s, a, entity, item_id), "Восстановлено вместе с историей")


def _pipe(stage_value: str) -> str:
    """The pipeline code of a "pipeline:STAGE" option value."""
    return (stage_value or "").partition(":")[0]


def _rules(s) -> list[RuleRow]:
    """The rules (automation_rule rows, then the activity discipline of rules/automation.py)
    in words a supervisor reads."""
    out = [RuleRow(r["kind_label"], r["name"], r["text"], r["id"], r["is_active"])
           for r in rules_admin.list_rules(s)]
    d = automation.ACTIVITY_DISCIPLINE
    out.append(RuleRow("Дисциплина дел", "Срок следующего дела",
                       f"не позже {d.get('max_working_days_after_last_contact', 5)} рабочих дней после последнего контакта"))
    return out


def _stage_options(s) -> list[Option]:
    pipes = {p.id: p for p in s.exec(select(Pipeline).order_by(Pipeline.sort, Pipeline.id)).all()}
    stages = sorted((st for st in s.exec(select(Stage)).all() if st.pipeline_id in pipes),
                    key=lambda st: (pipes[st.pipeline_id].sort, st.pipeline_id, st.sort, st.id))
    return [Option(f"{pipes[st.pipeline_id].code}:{st.code}", f"{pipes[st.pipeline_id].name} · {st.name}")
            for st in stages]
