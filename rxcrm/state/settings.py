"""State of /settings: users, departments, the access matrix (admins) and the recycle bin
(admins; heads for their department)."""
from __future__ import annotations

import dataclasses

import reflex as rx
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import Pipeline, Stage
from rxcrm.rules import automation
from rxcrm.services import admin, fmt, intake, recycle, rules_admin
from rxcrm.services.errors import ServiceError

from .app import AppState
from .work import Option


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
    new_token: str = ""
    integration_options: list[Option] = [Option("marketplace", "Маркетплейс"), Option("landing", "Лендинг"),
                                         Option("education", "УС ДПО")]
    rules: list[RuleRow] = []
    stage_options: list[Option] = []  # "pipeline:STAGE" — every stage of every pipeline
    rule_action: str = "activity"  # the action of a new on-enter rule
    rule_action_options: list[Option] = [Option(k, v) for k, v in rules_admin.ACTION_TYPES.items()]
    activity_kind_options: list[Option] = [Option("call", "Звонок"), Option("meeting", "Встреча"),
                                           Option("task", "Задача"), Option("email", "Письмо")]
    recipient_options: list[Option] = [Option(k, v.capitalize()) for k, v in rules_admin.RECIPIENTS.items()]
    user_dialog: bool = False
    password_dialog: bool = False
    reassign_dialog: bool = False
    target_user_id: int = 0
    target_user_name: str = ""

    @rx.var
    def is_admin(self) -> bool:
        return self.user_role == "admin"

    @rx.event
    def on_load(self):
        actor = self.actor()
        if actor is None:
            return
        self.settings_error = ""
        if actor.role not in ("admin", "head"):
            self.settings_error = "Настройки доступны администратору (корзина — также руководителю отдела)"
            return
        if actor.role != "admin":
            self.settings_tab = "bin"
        self._load()

    def _load(self) -> None:
        actor = self.actor()
        with session_scope() as s:
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
                self.rules = _rules(s)
                self.stage_options = _stage_options(s)
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
        actor = self.actor()
        try:
            with session_scope() as s:
                fn(s, actor)
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self._load()
        return rx.toast.success(ok)

    @rx.event
    def set_settings_tab(self, tab: str | list[str]):
        if isinstance(tab, str):
            self.settings_tab = tab

    # users
    @rx.event
    def set_user_dialog(self, value: bool):
        self.user_dialog = value

    @rx.event
    def create_user(self, form: dict):
        dept = form.get("department") or ""
        result = self._do(lambda s, a: admin.create_user(
            s, a, login=form.get("login", ""), full_name=form.get("full_name", ""), password=form.get("password", ""),
            role=form.get("role") or "manager", department_id=int(dept) if dept.isdigit() else None,
            email=form.get("email", "")), "Сотрудник добавлен")
        if self.users and any(u.login == (form.get("login") or "").strip().lower() for u in self.users):
            self.user_dialog = False
        return result

    @rx.event
    def toggle_active(self, user_id: int, active: bool):
        if active:
            return self._do(lambda s, a: admin.deactivate_user(s, a, user_id), "Сотрудник отключён, сеансы завершены")
        return self._do(lambda s, a: admin.activate_user(s, a, user_id), "Сотрудник включён")

    @rx.event
    def open_password(self, user_id: int, name: str):
        self.target_user_id, self.target_user_name, self.password_dialog = user_id, name, True

    @rx.event
    def set_password_dialog(self, value: bool):
        self.password_dialog = value

    @rx.event
    def reset_password(self, form: dict):
        res = self._do(lambda s, a: admin.reset_password(s, a, self.target_user_id, form.get("password", "")),
                       "Пароль изменён, сеансы сотрудника завершены")
        self.password_dialog = False
        return res

    @rx.event
    def open_reassign(self, user_id: int, name: str):
        self.target_user_id, self.target_user_name, self.reassign_dialog = user_id, name, True

    @rx.event
    def set_reassign_dialog(self, value: bool):
        self.reassign_dialog = value

    @rx.event
    def reassign(self, form: dict):
        to = form.get("to") or ""
        if not to.isdigit():
            return rx.toast.error("Выберите, кому передать")
        actor = self.actor()
        try:
            with session_scope() as s:
                counts = admin.reassign_items(s, actor, self.target_user_id, int(to),
                                              only_open=bool(form.get("only_open")))
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self.reassign_dialog = False
        return rx.toast.success("Передано: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))

    # departments
    @rx.event
    def create_department(self, form: dict):
        return self._do(lambda s, a: admin.create_department(s, a, form.get("name", "")), "Отдел добавлен")

    # matrix
    @rx.event
    def set_level(self, role: str, entity: str, action: str, level: str):
        return self._do(lambda s, a: admin.set_permission(s, a, role, entity, action, level), "Права сохранены")

    @rx.event
    def reset_matrix(self):
        return self._do(lambda s, a: admin.reset_permissions_to_defaults(s, a), "Права по умолчанию восстановлены")

    # integrations
    @rx.event
    def create_token(self, form: dict):
        actor = self.actor()
        try:
            with session_scope() as s:
                self.new_token = intake.create_token(s, actor, form.get("integration") or "marketplace",
                                                     form.get("name", ""))
        except ServiceError as exc:
            return rx.toast.error(exc.message)
        self._load()

    @rx.event
    def revoke_token(self, token_id: int):
        return self._do(lambda s, a: intake.revoke_token(s, a, token_id), "Токен отозван")

    @rx.event
    def replay(self, event_id: int):
        return self._do(lambda s, a: intake.replay(s, a, event_id), "Событие обработано повторно")

    # rules
    @rx.event
    def set_rule_active(self, rule_id: int, active: bool):
        return self._do(lambda s, a: rules_admin.set_active(s, a, rule_id, bool(active)),
                        "Правило включено" if active else "Правило отключено")

    @rx.event
    def delete_rule(self, rule_id: int):
        return self._do(lambda s, a: rules_admin.delete_rule(s, a, rule_id), "Правило удалено")

    @rx.event
    def add_required_rule(self, form: dict):
        pipe, _, stage = (form.get("stage") or "").partition(":")
        if not stage:
            return rx.toast.error("Выберите стадию")
        return self._do(lambda s, a: rules_admin.save_required(s, a, None, pipe, stage, form.get("fields", "")),
                        "Правило добавлено")

    @rx.event
    def add_trigger_rule(self, form: dict):
        pipe, _, src = (form.get("from_stage") or "").partition(":")
        to_pipe, _, dst = (form.get("to_stage") or "").partition(":")
        if not src or not dst:
            return rx.toast.error("Выберите стадии")
        if to_pipe != pipe:
            return rx.toast.error("Стадии должны быть из одной воронки")
        return self._do(lambda s, a: rules_admin.save_trigger(
            s, a, None, form.get("name", ""), pipe, src, (form.get("field") or "").strip(), form.get("equals", ""),
            dst), "Правило добавлено")

    @rx.event
    def set_rule_action(self, value: str):
        if value in rules_admin.ACTION_TYPES:
            self.rule_action = value

    @rx.event
    def add_on_enter_rule(self, form: dict):
        pipe, _, stage = (form.get("stage") or "").partition(":")
        if not stage:
            return rx.toast.error("Выберите стадию")
        kind = self.rule_action
        fields = {"activity": ("kind", "subject", "in_hours", "duration_min"), "set": ("field", "value"),
                  "notify": ("to", "text")}[kind]
        action = {"type": kind, **{k: (form.get(k) or "").strip() for k in fields if (form.get(k) or "").strip()}}
        return self._do(lambda s, a: rules_admin.save_on_enter(s, a, None, form.get("name", ""), pipe, stage,
                                                               [action]), "Правило добавлено")

    # recycle bin
    @rx.event
    def restore(self, entity: str, item_id: int):
        return self._do(lambda s, a: recycle.restore(s, a, entity, item_id), "Восстановлено вместе с историей")


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
