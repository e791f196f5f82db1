"""/settings — employees, departments, access permissions, integrations and rules (admins),
the recycle bin (admins and heads). Every label comes from the catalog (rxcrm/i18n/settings.py).
On a phone the tabs scroll sideways and each table scrolls sideways inside its own box.

The form of an on-enter rule is drawn from the chosen action plug-in's `form`
(`SettingsState.rule_form`): an input per field, by its kind — a new action module in
rxcrm/rules/actions/ needs no change here."""
from __future__ import annotations

import reflex as rx

from rxcrm.components import theme
from rxcrm.components.duplicates import duplicates_tab
from rxcrm.components.forms import form_dialog, option_select
from rxcrm.components.import_wizard import imports_tab
from rxcrm.components.responsive import NOWRAP_TABLE, WIDE_TABLE
from rxcrm.components.shell import layout
from rxcrm.state.duplicates import DuplicatesState
from rxcrm.state.imports import ImportsListState
from rxcrm.state.settings import (INTEGRATIONS, BindingRow, BinRow, DeliveryRow, DeptRow, EventRow, FormRow, HookRow,
                                  MatrixCell, MatrixRow,
                                  RuleRow, SettingsState, TokenRow, UserRow)

t = SettingsState.t


def _th(*labels) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(lab, font_size="12px", color="#4a5563")
                                          for lab in labels]))


def _user_row(u: UserRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(u.full_name, weight="medium", size="2"),
                      rx.text(u.login, size="1", color=theme.TEXT_MUTED)),
        rx.table.cell(u.role_label),
        rx.table.cell(u.department),
        rx.table.cell(rx.cond(u.is_active, rx.badge(t["settings.users.active"], color_scheme="green", variant="soft"),
                              rx.badge(t["settings.users.inactive"], color_scheme="gray", variant="soft"))),
        rx.table.cell(u.last_login),
        rx.table.cell(rx.hstack(
            rx.cond(~u.is_self,
                    rx.button(rx.cond(u.is_active, t["settings.users.deactivate"], t["settings.users.activate"]),
                              size="1", variant="soft",
                              color_scheme=rx.cond(u.is_active, "red", "green"),
                              on_click=SettingsState.toggle_active(u.id, u.is_active), data_testid="user-toggle")),
            rx.button(t["settings.users.password"], size="1", variant="soft",
                      on_click=SettingsState.open_password(u.id, u.full_name)),
            rx.button(t["settings.users.reassign"], size="1", variant="ghost", margin="0",
                      on_click=SettingsState.open_reassign(u.id, u.full_name)),
            spacing="2", align="center")),
        data_testid="user-row",
    )


def _opt_select(name: str, options, placeholder) -> rx.Component:
    return option_select(options, placeholder, name=name)


def _dialog(open_var, on_open, title, body: rx.Component, on_submit, submit) -> rx.Component:
    return form_dialog(title, body, on_submit=on_submit, open_var=open_var, on_open_change=on_open, submit=submit)


def _users_tab() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.spacer(), rx.button(rx.icon("user-plus", size=14), t["settings.users.add"], size="2",
                                         on_click=SettingsState.set_user_dialog(True)), width="100%"),
        rx.table.root(_th(t["settings.users.col.user"], t["settings.users.role"], t["settings.users.department"],
                          t["settings.users.col.status"], t["settings.users.col.last_login"], ""),
                      rx.table.body(rx.foreach(SettingsState.users, _user_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        _dialog(SettingsState.user_dialog, SettingsState.set_user_dialog, t["settings.users.new"], rx.vstack(
            rx.input(name="full_name", placeholder=t["settings.users.full_name"], width="100%"),
            rx.input(name="login", placeholder=t["settings.users.login"], width="100%"),
            rx.input(name="email", placeholder="E-mail", width="100%"),
            rx.input(name="password", type="password", placeholder=t["settings.users.password_hint"], width="100%"),
            _opt_select("role", SettingsState.role_options, t["settings.users.role"]),
            _opt_select("department", SettingsState.dept_options, t["settings.users.department"]),
            spacing="2", width="100%"), SettingsState.create_user, t["settings.add"]),
        _dialog(SettingsState.password_dialog, SettingsState.set_password_dialog,
                t["settings.users.new_password"],
                rx.vstack(rx.text(SettingsState.target_user_name, size="2"),
                          rx.input(name="password", type="password", placeholder=t["settings.users.new_password"],
                                   width="100%"), width="100%"),
                SettingsState.reset_password, t["settings.save"]),
        _dialog(SettingsState.reassign_dialog, SettingsState.set_reassign_dialog, t["settings.users.reassign_title"],
                rx.vstack(rx.text(t["settings.users.from"], rx.text.strong(SettingsState.target_user_name), size="2"),
                          _opt_select("to", SettingsState.user_options, t["settings.users.to"]),
                          rx.checkbox(t["settings.users.only_open"], name="only_open", default_checked=True),
                          width="100%", spacing="2"),
                SettingsState.reassign, t["settings.users.reassign_submit"]),
        width="100%", spacing="3",
    )


def _dept_row(d: DeptRow) -> rx.Component:
    return rx.table.row(rx.table.cell(rx.text(d.name, weight="medium")), rx.table.cell(d.head),
                        rx.table.cell(d.users))


def _depts_tab() -> rx.Component:
    return rx.vstack(
        rx.form(rx.hstack(rx.input(name="name", placeholder=t["settings.depts.name"], width="320px",
                                   max_width="100%"),
                          rx.button(t["settings.depts.add"], type="submit", size="2"), spacing="2", flex_wrap="wrap"),
                on_submit=SettingsState.create_department, reset_on_submit=True),
        rx.table.root(_th(t["settings.depts.col.name"], t["settings.depts.col.head"], t["settings.depts.col.users"]),
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
            rx.text(t["settings.matrix.hint"], size="2", color=theme.TEXT_MUTED),
            rx.spacer(),
            rx.button(t["settings.matrix.reset"], variant="soft", size="2", on_click=SettingsState.reset_matrix),
            width="100%", align="center", style=theme.phone(flex_wrap="wrap", row_gap="8px"),
        ),
        rx.table.root(
            rx.table.header(rx.table.row(
                rx.table.column_header_cell(t["settings.matrix.col.role"], font_size="12px", color="#4a5563"),
                rx.table.column_header_cell(t["settings.matrix.col.section"], font_size="12px", color="#4a5563"),
                rx.foreach(SettingsState.action_labels, lambda a: rx.table.column_header_cell(a, font_size="12px", color="#4a5563")))),
            rx.table.body(rx.foreach(SettingsState.matrix, _matrix_row)),
            variant="surface", size="1", style=NOWRAP_TABLE, width="100%",
        ),
        width="100%", spacing="3",
    )


def _bin_row(b: BinRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(b.entity_label), rx.table.cell(rx.text(b.title, weight="medium")),
        rx.table.cell(b.department), rx.table.cell(b.deleted_at), rx.table.cell(b.deleted_by),
        rx.table.cell(rx.button(t["settings.bin.restore"], size="1", variant="soft",
                                on_click=SettingsState.restore(b.entity, b.id), data_testid="restore")),
    )


def _bin_tab() -> rx.Component:
    return rx.vstack(
        rx.text(t["settings.bin.total"], rx.text.strong(SettingsState.bin_total), size="2"),
        rx.table.root(_th(t["settings.bin.col.section"], t["settings.bin.col.title"], t["settings.bin.col.department"],
                          t["settings.bin.col.deleted"], t["settings.bin.col.by"], ""),
                      rx.table.body(rx.foreach(SettingsState.bin_rows, _bin_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        rx.cond(SettingsState.bin_rows.length() == 0, _hint(t["settings.bin.empty"])),
        width="100%", spacing="3",
    )


def _token_row(tok: TokenRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(tok.label), rx.table.cell(tok.name), rx.table.cell(tok.created_at),
        rx.table.cell(rx.cond(tok.active, rx.badge(t["settings.tokens.active"], color_scheme="green", variant="soft"),
                              rx.badge(t["settings.tokens.revoked"], color_scheme="gray", variant="soft"))),
        rx.table.cell(rx.cond(tok.active, rx.button(t["settings.tokens.revoke"], size="1", variant="soft",
                                                    color_scheme="red", on_click=SettingsState.revoke_token(tok.id)))),
    )


def _event_row(e: EventRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(e.received_at),
        rx.table.cell(rx.match(e.integration,
                               *[(code, t[f"settings.integration.{code}"]) for code in INTEGRATIONS], e.integration)),
        rx.table.cell(e.event_type),
        rx.table.cell(e.event_id),
        rx.table.cell(rx.badge(rx.match(e.status, ("processed", t["settings.events.status.processed"]),
                                        ("failed", t["settings.events.status.failed"]),
                                        ("received", t["settings.events.status.received"]), e.status),
                               color_scheme=rx.match(e.status, ("processed", "green"), ("failed", "red"), "gray"),
                               variant="soft")),
        rx.table.cell(rx.text(e.error, size="1", color=theme.DANGER)),
        rx.table.cell(rx.cond(e.status != "processed",
                              rx.button(t["settings.events.replay"], size="1", variant="soft",
                                        on_click=SettingsState.replay(e.id)))),
    )


def _hook_row(h: HookRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(h.name), rx.table.cell(h.user), rx.table.cell(h.scopes),
        rx.table.cell(rx.code(h.path, variant="ghost")), rx.table.cell(h.created_at),
        rx.table.cell(rx.cond(h.used_at != "", h.used_at,
                              rx.text(t["settings.hooks.never"], color=theme.TEXT_MUTED))),
        rx.table.cell(rx.cond(h.active, rx.badge(t["settings.tokens.active"], color_scheme="green", variant="soft"),
                              rx.badge(t["settings.tokens.revoked"], color_scheme="gray", variant="soft"))),
        rx.table.cell(rx.cond(h.active, rx.button(t["settings.tokens.revoke"], size="1", variant="soft",
                                                  color_scheme="red", on_click=SettingsState.revoke_hook(h.id),
                                                  data_testid="hook-revoke"))),
        data_testid="hook-row",
    )


def _hooks() -> rx.Component:
    """Bitrix24's «Входящий вебхук»: an employee, a name, scopes → the address, shown once."""
    return rx.vstack(
        rx.text(t["settings.hooks.title"], weight="bold", size="3", padding_top="8px"),
        rx.text(t["settings.hooks.hint"], size="2", color=theme.TEXT_MUTED),
        rx.form(rx.hstack(
            rx.select.root(rx.select.trigger(placeholder=t["settings.hooks.user"], width="240px", data_testid="hook-user"),
                           rx.select.content(rx.foreach(SettingsState.user_options,
                                                        lambda o: rx.select.item(o.label, value=o.value))),
                           name="user_id", size="2", required=True),
            rx.input(name="name", placeholder=t["settings.hooks.name"], width="300px", max_width="100%",
                     required=True, data_testid="hook-name"),
            rx.checkbox(t["settings.hooks.scope.crm"], name="scope_crm", default_checked=True),
            rx.checkbox(t["settings.hooks.scope.user"], name="scope_user", default_checked=True),
            rx.button(t["settings.hooks.create"], type="submit", size="2", data_testid="hook-create"),
            spacing="3", flex_wrap="wrap", align="center"),
            on_submit=SettingsState.create_hook, reset_on_submit=True),
        rx.cond(SettingsState.new_hook_url != "",
                rx.callout(rx.text(t["settings.hooks.new"], rx.code(SettingsState.new_hook_url, data_testid="hook-url")),
                           icon="key", color_scheme="green", size="1")),
        rx.table.root(_th(t["settings.hooks.col.name"], t["settings.hooks.col.user"], t["settings.hooks.col.scopes"],
                          t["settings.hooks.col.path"], t["settings.hooks.col.created"], t["settings.hooks.col.used"],
                          t["settings.tokens.col.status"], ""),
                      rx.table.body(rx.foreach(SettingsState.hooks, _hook_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        rx.cond(SettingsState.hooks.length() == 0, _hint(t["settings.hooks.none"])),
        width="100%", spacing="3",
    )


def _binding_row(b: BindingRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(b.event, variant="ghost")), rx.table.cell(b.handler), rx.table.cell(b.name),
        rx.table.cell(b.created_at), rx.table.cell(b.pending),
        rx.table.cell(rx.cond(b.active, rx.badge(t["settings.tokens.active"], color_scheme="green", variant="soft"),
                              rx.badge(t["settings.tokens.revoked"], color_scheme="gray", variant="soft"))),
        rx.table.cell(rx.cond(b.active, rx.button(t["settings.out.unbind"], size="1", variant="soft", color_scheme="red",
                                                  on_click=SettingsState.unbind_event(b.id)))),
        data_testid="binding-row",
    )


def _delivery_row(d: DeliveryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(d.at), rx.table.cell(rx.code(d.event, variant="ghost")), rx.table.cell(d.item),
        rx.table.cell(rx.badge(rx.match(d.status, ("delivered", t["settings.out.status.delivered"]),
                                        ("failed", t["settings.out.status.failed"]), t["settings.out.status.pending"]),
                               color_scheme=rx.match(d.status, ("delivered", "green"), ("failed", "red"), "gray"),
                               variant="soft")),
        rx.table.cell(d.attempts), rx.table.cell(rx.text(d.error, size="1", color=theme.DANGER)),
        rx.table.cell(rx.cond(d.status == "failed", rx.button(t["settings.out.retry"], size="1", variant="soft",
                                                              on_click=SettingsState.retry_delivery(d.id)))),
        data_testid="delivery-row",
    )


def _outbound() -> rx.Component:
    """Bitrix24's outgoing webhooks: an event → a receiver's URL; the latest deliveries."""
    return rx.vstack(
        rx.text(t["settings.out.title"], weight="bold", size="3", padding_top="8px"),
        rx.text(t["settings.out.hint"], size="2", color=theme.TEXT_MUTED),
        rx.form(rx.hstack(
            rx.select.root(rx.select.trigger(placeholder=t["settings.out.event"], width="220px",
                                             data_testid="binding-event"),
                           rx.select.content(rx.foreach(SettingsState.outbound_events,
                                                        lambda e: rx.select.item(e, value=e))),
                           name="event", size="2", required=True),
            rx.input(name="handler", placeholder=t["settings.out.handler"], width="340px", max_width="100%",
                     required=True, data_testid="binding-handler"),
            rx.input(name="name", placeholder=t["settings.out.name"], width="200px", max_width="100%"),
            rx.button(t["settings.out.bind"], type="submit", size="2", data_testid="binding-create"),
            spacing="2", flex_wrap="wrap", align="center"),
            on_submit=SettingsState.create_binding, reset_on_submit=True),
        rx.table.root(_th(t["settings.out.event"], t["settings.out.col.handler"], t["settings.out.name"],
                          t["settings.hooks.col.created"], t["settings.out.col.pending"],
                          t["settings.tokens.col.status"], ""),
                      rx.table.body(rx.foreach(SettingsState.event_bindings, _binding_row)), variant="surface",
                      size="1", width="100%", style=NOWRAP_TABLE),
        rx.cond(SettingsState.event_bindings.length() == 0, _hint(t["settings.out.none"])),
        rx.cond(SettingsState.deliveries.length() > 0, rx.vstack(
            rx.text(t["settings.out.deliveries"], weight="medium", size="2"),
            rx.table.root(_th(t["settings.out.col.at"], t["settings.out.event"], t["settings.out.col.item"],
                              t["settings.tokens.col.status"], t["settings.out.col.attempts"],
                              t["settings.events.col.error"], ""),
                          rx.table.body(rx.foreach(SettingsState.deliveries, _delivery_row)), variant="surface",
                          size="1", width="100%", style=NOWRAP_TABLE),
            width="100%", spacing="2")),
        width="100%", spacing="3",
    )


def _integrations_tab() -> rx.Component:
    return rx.vstack(
        rx.text(t["settings.integrations.hint"], size="2", color=theme.TEXT_MUTED),
        rx.form(rx.hstack(
            rx.select.root(rx.select.trigger(width="200px"),
                           rx.select.content(rx.foreach(SettingsState.integration_options,
                                                        lambda o: rx.select.item(o.label, value=o.value))),
                           name="integration", default_value="marketplace", size="2"),
            rx.input(name="name", placeholder=t["settings.tokens.name"], width="300px",
                     max_width="100%"),
            rx.button(t["settings.tokens.issue"], type="submit", size="2"), spacing="2", flex_wrap="wrap"),
            on_submit=SettingsState.create_token, reset_on_submit=True),
        rx.cond(SettingsState.new_token != "",
                rx.callout(rx.text(t["settings.tokens.new"], rx.code(SettingsState.new_token)),
                           icon="key", color_scheme="green", size="1")),
        rx.table.root(_th(t["settings.tokens.col.integration"], t["settings.tokens.col.name"],
                          t["settings.tokens.col.issued"], t["settings.tokens.col.status"], ""),
                      rx.table.body(rx.foreach(SettingsState.tokens, _token_row)), variant="surface", size="1",
                      width="100%", style=NOWRAP_TABLE),
        rx.text(t["settings.events.title"], weight="bold", size="3", padding_top="8px"),
        rx.text(t["settings.events.waiting"], SettingsState.intake_waiting, size="2", color=theme.TEXT_MUTED),
        rx.table.root(_th(t["settings.events.col.received"], t["settings.tokens.col.integration"],
                          t["settings.events.col.event"], t["settings.events.col.event_id"],
                          t["settings.tokens.col.status"], t["settings.events.col.error"], ""),
                      rx.table.body(rx.foreach(SettingsState.intake_events, _event_row)), variant="surface",
                      size="1", width="100%", style=NOWRAP_TABLE),
        rx.cond(SettingsState.intake_events.length() == 0, _hint(t["settings.events.none"])),
        _hooks(),
        _outbound(),
        width="100%", spacing="3",
    )


def _rule_row(r: RuleRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.badge(r.kind, variant="soft")),
        rx.table.cell(rx.text(r.name, weight="medium", color=rx.cond(r.active, "inherit", theme.TEXT_MUTED))),
        rx.table.cell(rx.text(r.text, color=rx.cond(r.active, "inherit", theme.TEXT_MUTED))),
        rx.table.cell(rx.cond(r.id > 0, rx.switch(checked=r.active, size="1", data_testid="rule-toggle",
                                                  on_change=lambda v: SettingsState.set_rule_active(r.id, v)))),
        rx.table.cell(rx.cond(r.id > 0, rx.button(t["settings.rules.delete"], size="1", variant="soft",
                                                  color_scheme="red", on_click=SettingsState.delete_rule(r.id),
                                                  data_testid="rule-delete"))),
        data_testid="rule-row",
    )


def _stage_select(name: str, placeholder, width: str = "260px", value=None, on_change=None,
                  options=None, testid: str | None = None) -> rx.Component:
    """A stage from the list «Pipeline · Stage» (the value "pipeline:STAGE" never shows)."""
    props = {"value": value, "on_change": on_change} if value is not None else {}
    return rx.box(option_select(options if options is not None else SettingsState.stage_options, placeholder,
                                name=name, trigger_props={"data_testid": testid} if testid else None, **props),
                  width=width)


def _field_select(options, value, on_change, placeholder, testid: str, width="240px",
                  name=None) -> rx.Component:
    """A field of the chosen stage's pipeline, by its label (custom fields too)."""
    props = {"name": name} if name is not None else {}
    return rx.box(option_select(options, placeholder, value=value, on_change=on_change,
                                trigger_props={"data_testid": testid}, **props), width=width)


def _value_input(name, options, placeholder, width="160px") -> rx.Component:
    """The value a rule compares or sets: a list when the field has one (enum, yes/no), else typed."""
    return rx.cond(
        options.length() > 0,
        rx.box(rx.select(options, name=name, placeholder=t["settings.rules.value"], width="100%",
                         data_testid="rule-" + name + "-select"), width=width),
        rx.input(name=name, placeholder=placeholder, width=width, max_width="100%",
                 data_testid="rule-" + name + "-input"),
    )


def _chip(o) -> rx.Component:
    return rx.badge(
        o.label,
        rx.icon("x", size=12, cursor="pointer", on_click=SettingsState.remove_req_field(o.value),
                data_testid="rule-field-remove"),
        variant="soft", size="2", data_testid="rule-field-chip",
    )


def _hint(text) -> rx.Component:
    return rx.text(text, size="1", color=theme.TEXT_MUTED)


def _action_input(f: FormRow) -> rx.Component:
    """One input of the chosen action's form, by its kind; its name is the form key the
    plug-in reads. A field (and the field's value) is offered once a stage is chosen: the
    fields are those of the stage's pipeline."""
    control = rx.match(
        f.kind,
        ("choice", rx.box(option_select(f.options, f.placeholder, name=f.key, default_value=f.default,
                                        trigger_props={"data_testid": "rule-form-" + f.key}), width=f.width)),
        ("field", _field_select(SettingsState.enter_field_options, SettingsState.enter_field,
                                SettingsState.set_enter_field, f.placeholder, "rule-enter-field", f.width, name=f.key)),
        ("field_value", _value_input(f.key, SettingsState.enter_value_options, f.placeholder, f.width)),
        ("int", rx.input(name=f.key, type="number", placeholder=f.placeholder, default_value=f.default,
                         width=f.width, data_testid="rule-form-" + f.key)),
        rx.input(name=f.key, placeholder=f.placeholder, default_value=f.default, width=f.width, max_width="100%",
                 data_testid="rule-form-" + f.key),
    )
    labelled = rx.vstack(rx.text(f.label, size="1", color=theme.TEXT_MUTED, white_space="nowrap"), control,
                         spacing="1", max_width="100%")
    needs_stage = (f.kind == "field") | (f.kind == "field_value")
    return rx.cond(needs_stage & (SettingsState.enter_stage == ""),
                   rx.cond(f.kind == "field", _hint(t["settings.rules.no_stage"])),
                   labelled)


def _rules_tab() -> rx.Component:
    no_stage = t["settings.rules.no_stage"]
    return rx.vstack(
        rx.text(t["settings.rules.intro"], size="2", color=theme.TEXT_MUTED),
        rx.table.root(_th(t["settings.rules.col.kind"], t["settings.rules.col.rule"], t["settings.rules.col.does"],
                          t["settings.rules.col.on"], ""),
                      rx.table.body(rx.foreach(SettingsState.rules, _rule_row)), variant="surface", size="1",
                      width="100%", style=WIDE_TABLE),
        rx.text(t["settings.rules.required.title"], weight="bold", size="3", padding_top="8px"),
        rx.form(rx.vstack(
            rx.hstack(
                _stage_select("stage", t["settings.rules.stage"], value=SettingsState.req_stage,
                              on_change=SettingsState.set_req_stage, testid="rule-req-stage"),
                rx.cond(SettingsState.req_stage != "",
                        _field_select(SettingsState.req_field_options, "", SettingsState.add_req_field,
                                      t["settings.rules.add_field"], "rule-req-field"),
                        _hint(no_stage)),
                rx.el.input(type="hidden", name="fields", value=SettingsState.req_fields_csv),
                rx.button(t["settings.rules.add_rule"], type="submit", size="2", data_testid="rule-req-add",
                          disabled=SettingsState.req_fields.length() == 0),
                spacing="2", align="center", wrap="wrap"),
            rx.cond(SettingsState.req_fields.length() > 0,
                    rx.hstack(rx.foreach(SettingsState.req_field_chips, _chip), spacing="2", wrap="wrap")),
            spacing="2", width="100%"),
            on_submit=SettingsState.add_required_rule, reset_on_submit=False),
        rx.text(t["settings.rules.trigger.title"], weight="bold", size="3", padding_top="8px"),
        rx.form(rx.hstack(
            rx.input(name="name", placeholder=t["settings.rules.name"], width="240px"),
            _stage_select("from_stage", t["settings.rules.from_stage"], "230px", value=SettingsState.trig_stage,
                          on_change=SettingsState.set_trig_stage, options=SettingsState.trig_from_options,
                          testid="rule-trig-from"),
            rx.cond(SettingsState.trig_stage != "",
                    rx.hstack(
                        _field_select(SettingsState.trig_field_options, SettingsState.trig_field,
                                      SettingsState.set_trig_field, t["settings.rules.field"], "rule-trig-field",
                                      "220px", name="field"),
                        rx.text("=", size="2"),
                        _value_input("equals", SettingsState.trig_value_options, t["settings.rules.value"]),
                        _stage_select("to_stage", t["settings.rules.to_stage"], "220px",
                                      options=SettingsState.trig_to_options, testid="rule-trig-to"),
                        spacing="2", align="center", wrap="wrap"),
                    _hint(no_stage)),
            rx.button(t["settings.add"], type="submit", size="2", data_testid="rule-trig-add"),
            spacing="2", align="center", wrap="wrap"),
            on_submit=SettingsState.add_trigger_rule, reset_on_submit=True),
        rx.text(t["settings.rules.on_enter.title"], weight="bold", size="3", padding_top="8px"),
        rx.form(rx.vstack(
            rx.hstack(
                rx.input(name="name", placeholder=t["settings.rules.name"], width="240px",
                         data_testid="rule-enter-name"),
                _stage_select("stage", t["settings.rules.stage"], "220px", value=SettingsState.enter_stage,
                              on_change=SettingsState.set_enter_stage, testid="rule-enter-stage"),
                rx.box(option_select(SettingsState.rule_action_options, t["settings.rules.action"],
                                     value=SettingsState.rule_action, on_change=SettingsState.set_rule_action,
                                     trigger_props={"data_testid": "rule-action"}), width="220px"),
                spacing="2", align="center", wrap="wrap"),
            # the action's own inputs, keyed by the action: another action's start fresh with their defaults
            rx.hstack(rx.hstack(rx.foreach(SettingsState.rule_form, _action_input), key=SettingsState.rule_action,
                                spacing="2", align="end", wrap="wrap", data_testid="rule-action-form"),
                      rx.button(t["settings.add"], type="submit", size="2", data_testid="rule-on-enter-add"),
                      spacing="2", align="end", wrap="wrap"),
            spacing="2", width="100%"),
            on_submit=SettingsState.add_on_enter_rule, reset_on_submit=True),
        width="100%", spacing="3",
    )


def settings_page() -> rx.Component:
    return layout(
        "/settings",
        t["page.settings.title"],
        rx.cond(
            SettingsState.settings_error != "",
            rx.callout(SettingsState.settings_error, icon="shield-alert", color_scheme="amber",
                       data_testid="settings-denied"),
            rx.tabs.root(
                rx.tabs.list(
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger(t["settings.tab.users"], value="users")),
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger(t["settings.tab.depts"], value="depts")),
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger(t["settings.tab.matrix"], value="matrix")),
                    rx.cond(SettingsState.is_admin,
                            rx.tabs.trigger(t["settings.tab.integrations"], value="integrations")),
                    rx.cond(SettingsState.is_admin, rx.tabs.trigger(t["settings.tab.rules"], value="rules")),
                    rx.tabs.trigger(t["settings.tab.bin"], value="bin"),
                    rx.cond(SettingsState.can_clean, rx.tabs.trigger(t["dups.tab"], value="dups", data_testid="tab-dups")),
                    rx.cond(SettingsState.can_clean, rx.tabs.trigger(t["settings.tab.imports"], value="imports",
                                                                    data_testid="tab-imports")),
                ),
                rx.tabs.content(rx.box(_integrations_tab(), padding_top="14px"), value="integrations"),
                rx.tabs.content(rx.box(_rules_tab(), padding_top="14px"), value="rules"),
                rx.tabs.content(rx.box(_users_tab(), padding_top="14px"), value="users"),
                rx.tabs.content(rx.box(_depts_tab(), padding_top="14px"), value="depts"),
                rx.tabs.content(rx.box(_matrix_tab(), padding_top="14px"), value="matrix"),
                rx.tabs.content(rx.box(_bin_tab(), padding_top="14px"), value="bin"),
                rx.tabs.content(rx.box(duplicates_tab(), padding_top="14px", on_mount=DuplicatesState.on_load),
                                value="dups"),
                rx.tabs.content(rx.box(imports_tab(), padding_top="14px", on_mount=ImportsListState.on_load),
                                value="imports"),
                value=SettingsState.settings_tab, on_change=SettingsState.set_settings_tab, width="100%",
            ),
        ),
    )
