"""/settings — Сотрудники, Отделы, Права доступа (admins), Корзина (admins and heads).
On a phone the tabs scroll sideways and each table scrolls sideways inside its own box."""
from __future__ import annotations

import reflex as rx

from rxcrm.components import theme
from rxcrm.components.forms import form_dialog, option_select
from rxcrm.components.responsive import NOWRAP_TABLE, WIDE_TABLE
from rxcrm.components.shell import layout
from rxcrm.state.settings import (BinRow, DeptRow, EventRow, MatrixCell, MatrixRow, RuleRow, SettingsState,
                                  TokenRow, UserRow)


def _th(*labels: str) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(lab, font_size="12px", color="#4a5563")
                                          for lab in labels]))


def _user_row(u: UserRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(u.full_name, weight="medium", size="2"), rx.text(u.login, size="1", color=theme.TEXT_MUTED)),
        rx.table.cell(u.role_label),
        rx.table.cell(u.department),
        rx.table.cell(rx.cond(u.is_active, rx.badge("активен", color_scheme="green", variant="soft"),
                              rx.badge("отключён", color_scheme="gray", variant="soft"))),
        rx.table.cell(u.last_login),
        rx.table.cell(rx.hstack(
            rx.cond(~u.is_self,
                    rx.button(rx.cond(u.is_active, "Отключить", "Включить"), size="1", variant="soft",
                              color_scheme=rx.cond(u.is_active, "red", "green"),
                              on_click=SettingsState.toggle_active(u.id, u.is_active), data_testid="user-toggle")),
            rx.button("Пароль", size="1", variant="soft", on_click=SettingsState.open_password(u.id, u.full_name)),
            rx.button("Передать дела", size="1", variant="ghost", on_click=SettingsState.open_reassign(u.id, u.full_name)),
            spacing="2")),
        data_testid="user-row",
    )


def _opt_select(name: str, options, placeholder: str) -> rx.Component:
    return option_select(options, placeholder, name=name)


def _dialog(open_var, on_open, title: str, body: rx.Component, on_submit, submit: str) -> rx.Component:
    return form_dialog(title, body, on_submit=on_submit, open_var=open_var, on_open_change=on_open, submit=submit)


def _users_tab() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.spacer(), rx.button(rx.icon("user-plus", size=14), "Добавить сотрудника", size="2",
                                         on_click=SettingsState.set_user_dialog(True)), width="100%"),
        rx.table.root(_th("Сотрудник", "Роль", "Отдел", "Статус", "Последний вход", ""),
                      rx.table.body(rx.foreach(SettingsState.users, _user_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        _dialog(SettingsState.user_dialog, SettingsState.set_user_dialog, "Новый сотрудник", rx.vstack(
            rx.input(name="full_name", placeholder="ФИО", width="100%"),
            rx.input(name="login", placeholder="Логин (латиница)", width="100%"),
            rx.input(name="email", placeholder="E-mail", width="100%"),
            rx.input(name="password", type="password", placeholder="Пароль (не короче 8 символов)", width="100%"),
            _opt_select("role", SettingsState.role_options, "Роль"),
            _opt_select("department", SettingsState.dept_options, "Отдел"),
            spacing="2", width="100%"), SettingsState.create_user, "Добавить"),
        _dialog(SettingsState.password_dialog, SettingsState.set_password_dialog,
                "Новый пароль", rx.vstack(rx.text(SettingsState.target_user_name, size="2"),
                                          rx.input(name="password", type="password", placeholder="Новый пароль",
                                                   width="100%"), width="100%"),
                SettingsState.reset_password, "Сохранить"),
        _dialog(SettingsState.reassign_dialog, SettingsState.set_reassign_dialog, "Передать элементы",
                rx.vstack(rx.text("От: ", rx.text.strong(SettingsState.target_user_name), size="2"),
                          _opt_select("to", SettingsState.user_options, "Кому"),
                          rx.checkbox("Только в работе", name="only_open", default_checked=True),
                          width="100%", spacing="2"),
                SettingsState.reassign, "Передать"),
        width="100%", spacing="3",
    )


def _dept_row(d: DeptRow) -> rx.Component:
    return rx.table.row(rx.table.cell(rx.text(d.name, weight="medium")), rx.table.cell(d.head),
                        rx.table.cell(d.users))


def _depts_tab() -> rx.Component:
    return rx.vstack(
        rx.form(rx.hstack(rx.input(name="name", placeholder="Название отдела", width="320px",
                                   max_width="100%"),
                          rx.button("Добавить отдел", type="submit", size="2"), spacing="2", flex_wrap="wrap"),
                on_submit=SettingsState.create_department, reset_on_submit=True),
        rx.table.root(_th("Отдел", "Руководитель", "Сотрудников"),
                      rx.table.body(rx.foreach(SettingsState.depts, _dept_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        width="100%", spacing="3",
    )


def _cell(c: MatrixCell) -> rx.Component:
    return rx.table.cell(
        rx.select.root(
            rx.select.trigger(variant="ghost"),
            rx.select.content(rx.foreach(SettingsState.level_options,
                                         lambda o: rx.select.item(o.label, value=o.value))),
            value=c.level, on_change=lambda v: SettingsState.set_level(c.role, c.entity, c.action, v), size="1",
        ),
    )


def _matrix_row(r: MatrixRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(r.role_label, weight="medium", size="2")),
        rx.table.cell(r.entity_label),
        rx.foreach(r.cells, _cell),
        data_testid="matrix-row",
    )


def _matrix_tab() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text("Уровни: нет доступа · свои · отдела · все. Проверяются на сервере для каждого запроса.",
                    size="2", color=theme.TEXT_MUTED),
            rx.spacer(),
            rx.button("По умолчанию", variant="soft", size="2", on_click=SettingsState.reset_matrix),
            width="100%", align="center", style=theme.phone(flex_wrap="wrap", row_gap="8px"),
        ),
        rx.table.root(
            rx.table.header(rx.table.row(
                rx.table.column_header_cell("Роль"), rx.table.column_header_cell("Раздел"),
                rx.foreach(SettingsState.action_labels, lambda a: rx.table.column_header_cell(a, font_size="12px")))),
            rx.table.body(rx.foreach(SettingsState.matrix, _matrix_row)),
            variant="surface", size="1", style=NOWRAP_TABLE, width="100%",
        ),
        width="100%", spacing="3",
    )


def _bin_row(b: BinRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(b.entity_label), rx.table.cell(rx.text(b.title, weight="medium")),
        rx.table.cell(b.department), rx.table.cell(b.deleted_at), rx.table.cell(b.deleted_by),
        rx.table.cell(rx.button("Восстановить", size="1", variant="soft",
                                on_click=SettingsState.restore(b.entity, b.id), data_testid="restore")),
    )


def _bin_tab() -> rx.Component:
    return rx.vstack(
        rx.text("Удалено элементов: ", rx.text.strong(SettingsState.bin_total), size="2"),
        rx.table.root(_th("Раздел", "Название", "Отдел", "Удалено", "Кем", ""),
                      rx.table.body(rx.foreach(SettingsState.bin_rows, _bin_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        width="100%", spacing="3",
    )


def _token_row(t: TokenRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(t.label), rx.table.cell(t.name), rx.table.cell(t.created_at),
        rx.table.cell(rx.cond(t.active, rx.badge("действует", color_scheme="green", variant="soft"),
                              rx.badge("отозван", color_scheme="gray", variant="soft"))),
        rx.table.cell(rx.cond(t.active, rx.button("Отозвать", size="1", variant="soft", color_scheme="red",
                                                  on_click=SettingsState.revoke_token(t.id)))),
    )


def _event_row(e: EventRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(e.received_at), rx.table.cell(e.integration), rx.table.cell(e.event_type),
        rx.table.cell(e.event_id),
        rx.table.cell(rx.badge(e.status, color_scheme=rx.match(e.status, ("processed", "green"), ("failed", "red"),
                                                               "gray"), variant="soft")),
        rx.table.cell(rx.text(e.error, size="1", color=theme.DANGER)),
        rx.table.cell(rx.cond(e.status != "processed",
                              rx.button("Повторить", size="1", variant="soft", on_click=SettingsState.replay(e.id)))),
    )


def _integrations_tab() -> rx.Component:
    return rx.vstack(
        rx.text("Интеграции присылают события на POST /api/intake/marketplace | landing | education "
                "с заголовком Authorization: Bearer <токен>.", size="2", color=theme.TEXT_MUTED),
        rx.form(rx.hstack(
            rx.select.root(rx.select.trigger(width="200px"),
                           rx.select.content(rx.foreach(SettingsState.integration_options,
                                                        lambda o: rx.select.item(o.label, value=o.value))),
                           name="integration", default_value="marketplace", size="2"),
            rx.input(name="name", placeholder="Название (например, сайт программ)", width="300px",
                     max_width="100%"),
            rx.button("Выпустить токен", type="submit", size="2"), spacing="2", flex_wrap="wrap"),
            on_submit=SettingsState.create_token, reset_on_submit=True),
        rx.cond(SettingsState.new_token != "",
                rx.callout(rx.text("Новый токен (показывается один раз): ", rx.code(SettingsState.new_token)),
                           icon="key", color_scheme="green", size="1")),
        rx.table.root(_th("Интеграция", "Название", "Выпущен", "Статус", ""),
                      rx.table.body(rx.foreach(SettingsState.tokens, _token_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        rx.text("Последние события", weight="bold", size="3", padding_top="8px"),
        rx.text("Ожидают обработки: ", SettingsState.intake_waiting, size="2", color=theme.TEXT_MUTED),
        rx.table.root(_th("Получено", "Интеграция", "Событие", "ID события", "Статус", "Ошибка", ""),
                      rx.table.body(rx.foreach(SettingsState.intake_events, _event_row)), variant="surface",
                      size="1", width="100%", style=NOWRAP_TABLE),
        width="100%", spacing="3",
    )


def _rule_row(r: RuleRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.badge(r.kind, variant="soft")),
        rx.table.cell(rx.text(r.name, weight="medium", color=rx.cond(r.active, "inherit", theme.TEXT_MUTED))),
        rx.table.cell(rx.text(r.text, color=rx.cond(r.active, "inherit", theme.TEXT_MUTED))),
        rx.table.cell(rx.cond(r.id > 0, rx.switch(checked=r.active, size="1", data_testid="rule-toggle",
                                                  on_change=lambda v: SettingsState.set_rule_active(r.id, v)))),
        rx.table.cell(rx.cond(r.id > 0, rx.button("Удалить", size="1", variant="soft", color_scheme="red",
                                                  on_click=SettingsState.delete_rule(r.id),
                                                  data_testid="rule-delete"))),
        data_testid="rule-row",
    )


def _stage_select(name: str, placeholder: str, width: str = "260px", value=None, on_change=None,
                  options=None, testid: str | None = None) -> rx.Component:
    """A stage from the list «Воронка · Стадия» (the value "pipeline:STAGE" never shows)."""
    props = {"value": value, "on_change": on_change} if value is not None else {}
    return rx.box(option_select(options if options is not None else SettingsState.stage_options, placeholder,
                                name=name, trigger_props={"data_testid": testid} if testid else None, **props),
                  width=width)


def _field_select(options, value, on_change, placeholder: str, testid: str, width: str = "240px",
                  name: str | None = None) -> rx.Component:
    """A field of the chosen stage's pipeline, by its label (custom fields too)."""
    props = {"name": name} if name else {}
    return rx.box(option_select(options, placeholder, value=value, on_change=on_change,
                                trigger_props={"data_testid": testid}, **props), width=width)


def _value_input(name: str, options, placeholder: str, width: str = "160px") -> rx.Component:
    """The value a rule compares or sets: a list when the field has one (enum, Да/Нет), else typed."""
    return rx.cond(
        options.length() > 0,
        rx.box(rx.select(options, name=name, placeholder="Значение", width="100%",
                         data_testid=f"rule-{name}-select"), width=width),
        rx.input(name=name, placeholder=placeholder, width=width, data_testid=f"rule-{name}-input"),
    )


def _chip(o) -> rx.Component:
    return rx.badge(
        o.label,
        rx.icon("x", size=12, cursor="pointer", on_click=SettingsState.remove_req_field(o.value),
                data_testid="rule-field-remove"),
        variant="soft", size="2", data_testid="rule-field-chip",
    )


def _hint(text: str) -> rx.Component:
    return rx.text(text, size="1", color=theme.TEXT_MUTED)


def _rules_tab() -> rx.Component:
    no_stage = "Сначала выберите стадию"
    return rx.vstack(
        rx.text("Правила хранятся в базе (первоначально — из объявлений rxcrm/rules/); один движок применяет "
                "включённые правила при любом изменении (интерфейс, массовые действия, интеграции).",
                size="2", color=theme.TEXT_MUTED),
        rx.table.root(_th("Вид", "Правило", "Что делает", "Вкл.", ""),
                      rx.table.body(rx.foreach(SettingsState.rules, _rule_row)), variant="surface", size="1",
                      width="100%", style=WIDE_TABLE),
        rx.text("Обязательные поля стадии", weight="bold", size="3", padding_top="8px"),
        rx.form(rx.vstack(
            rx.hstack(
                _stage_select("stage", "Стадия", value=SettingsState.req_stage, on_change=SettingsState.set_req_stage,
                              testid="rule-req-stage"),
                rx.cond(SettingsState.req_stage != "",
                        _field_select(SettingsState.req_field_options, "", SettingsState.add_req_field,
                                      "Добавить поле…", "rule-req-field"),
                        _hint(no_stage)),
                rx.el.input(type="hidden", name="fields", value=SettingsState.req_fields_csv),
                rx.button("Добавить правило", type="submit", size="2", data_testid="rule-req-add",
                          disabled=SettingsState.req_fields.length() == 0),
                spacing="2", align="center", wrap="wrap"),
            rx.cond(SettingsState.req_fields.length() > 0,
                    rx.hstack(rx.foreach(SettingsState.req_field_chips, _chip), spacing="2", wrap="wrap")),
            spacing="2", width="100%"),
            on_submit=SettingsState.add_required_rule, reset_on_submit=False),
        rx.text("Перевод по полю", weight="bold", size="3", padding_top="8px"),
        rx.form(rx.hstack(
            rx.input(name="name", placeholder="Название правила", width="240px"),
            _stage_select("from_stage", "Из стадии", "230px", value=SettingsState.trig_stage,
                          on_change=SettingsState.set_trig_stage, options=SettingsState.trig_from_options,
                          testid="rule-trig-from"),
            rx.cond(SettingsState.trig_stage != "",
                    rx.hstack(
                        _field_select(SettingsState.trig_field_options, SettingsState.trig_field,
                                      SettingsState.set_trig_field, "Поле", "rule-trig-field", "220px", name="field"),
                        rx.text("=", size="2"),
                        _value_input("equals", SettingsState.trig_value_options, "Значение"),
                        _stage_select("to_stage", "В стадию", "220px", options=SettingsState.trig_to_options,
                                      testid="rule-trig-to"),
                        spacing="2", align="center", wrap="wrap"),
                    _hint(no_stage)),
            rx.button("Добавить", type="submit", size="2", data_testid="rule-trig-add"),
            spacing="2", align="center", wrap="wrap"),
            on_submit=SettingsState.add_trigger_rule, reset_on_submit=True),
        rx.text("При входе на стадию", weight="bold", size="3", padding_top="8px"),
        rx.form(rx.hstack(
            rx.input(name="name", placeholder="Название правила", width="240px"),
            _stage_select("stage", "Стадия", "220px", value=SettingsState.enter_stage,
                          on_change=SettingsState.set_enter_stage, testid="rule-enter-stage"),
            rx.box(option_select(SettingsState.rule_action_options, "Действие", value=SettingsState.rule_action,
                                 on_change=SettingsState.set_rule_action,
                                 trigger_props={"data_testid": "rule-action"}), width="200px"),
            rx.match(
                SettingsState.rule_action,
                ("set", rx.cond(SettingsState.enter_stage != "",
                                rx.hstack(_field_select(SettingsState.enter_field_options, SettingsState.enter_field,
                                                        SettingsState.set_enter_field, "Поле", "rule-enter-field",
                                                        "220px", name="field"),
                                          _value_input("value", SettingsState.enter_value_options, "Значение"),
                                          spacing="2", align="center", flex_wrap="wrap"),
                                _hint(no_stage))),
                ("notify", rx.hstack(rx.box(_opt_select("to", SettingsState.recipient_options, "Кому"), width="200px"),
                                     rx.input(name="text", placeholder="Текст ({title} — название)", width="280px",
                                              max_width="100%"),
                                     spacing="2", flex_wrap="wrap")),
                rx.hstack(rx.box(_opt_select("kind", SettingsState.activity_kind_options, "Вид дела"), width="140px"),
                          rx.input(name="subject", placeholder="Тема дела", width="220px"),
                          rx.input(name="in_hours", placeholder="Через, ч", width="90px", type="number"),
                          spacing="2", flex_wrap="wrap"),
            ),
            rx.button("Добавить", type="submit", size="2", data_testid="rule-on-enter-add"),
            spacing="2", align="center", wrap="wrap"),
            on_submit=SettingsState.add_on_enter_rule, reset_on_submit=True),
        width="100%", spacing="3",
    )


def settings_page() -> rx.Component:
    return layout(
        "/settings",
        SettingsState.t["page.settings.title"],
        rx.cond(
            SettingsState.settings_error != "",
            rx.callout(SettingsState.settings_error, icon="shield-alert", color_scheme="amber",
                       data_testid="settings-denied"),
            rx.tabs.root(
                rx.tabs.list(
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger("Сотрудники", value="users")),
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger("Отделы", value="depts")),
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger("Права доступа", value="matrix")),
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger("Интеграции", value="integrations")),
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger("Правила", value="rules")),
                    rx.tabs.trigger("Корзина", value="bin"),
                ),
                rx.tabs.content(rx.box(_integrations_tab(), padding_top="14px"), value="integrations"),
                rx.tabs.content(rx.box(_rules_tab(), padding_top="14px"), value="rules"),
                rx.tabs.content(rx.box(_users_tab(), padding_top="14px"), value="users"),
                rx.tabs.content(rx.box(_depts_tab(), padding_top="14px"), value="depts"),
                rx.tabs.content(rx.box(_matrix_tab(), padding_top="14px"), value="matrix"),
                rx.tabs.content(rx.box(_bin_tab(), padding_top="14px"), value="bin"),
                value=SettingsState.settings_tab, on_change=SettingsState.set_settings_tab, width="100%",
            ),
        ),
    )
