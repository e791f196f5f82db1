"""Small form building blocks shared by pages: a select over Option rows and a dialog
holding a form with «Отмена» / submit buttons."""
from __future__ import annotations

import reflex as rx

from rxcrm.services.fields import NO, YES
from rxcrm.state.app import AppState


def option_select(options, placeholder: str = "", width: str = "100%", trigger_props: dict | None = None,
                  **props) -> rx.Component:
    """A Radix select whose items come from a list var of Option(value, label)."""
    return rx.select.root(
        rx.select.trigger(placeholder=placeholder, width=width, **(trigger_props or {})),
        rx.select.content(rx.foreach(options, lambda o: rx.select.item(o.label, value=o.value))),
        size=props.pop("size", "2"),
        **props,
    )


def form_dialog(title, body: rx.Component, *, on_submit, open_var, on_open_change, submit: str,
                submit_testid: str | None = None, reset: bool = False, max_width: str = "460px") -> rx.Component:
    """A dialog with one form: `body`, then «Отмена» and the submit button."""
    submit_props = {"data_testid": submit_testid} if submit_testid else {}
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(title),
            rx.form(
                rx.vstack(
                    body,
                    rx.hstack(rx.dialog.close(rx.button(AppState.t["common.cancel"], type="button", variant="soft", color_scheme="gray")),
                              rx.button(submit, type="submit", **submit_props),
                              justify="end", width="100%", spacing="2"),
                    spacing="3", width="100%",
                ),
                on_submit=on_submit, reset_on_submit=reset,
            ),
            max_width=max_width,
        ),
        open=open_var, on_open_change=on_open_change,
    )


# ---- Russian date/time inputs and a searchable select (components/ru_inputs.jsx) ---------
# Chromium's <input type="date"> / "time" show the browser locale's format (11/24/2026,
# 02:30 PM in an English browser) and ignore lang="ru"; these are text inputs that show and
# submit ДД.ММ.ГГГГ and ЧЧ:ММ (the state parses them with services/fmt.parse_date/parse_time).

_RU_ASSET = rx.asset("ru_inputs.jsx", shared=True)


class _RuInput(rx.Component):
    library = f"$/public{_RU_ASSET}"
    name: rx.Var[str]
    default_value: rx.Var[str]
    placeholder: rx.Var[str]
    input_testid: rx.Var[str]
    size: rx.Var[str]
    width: rx.Var[str]


class RuDateInput(_RuInput):
    tag = "RuDateInput"
    on_value: rx.EventHandler[lambda value: [value]]  # the ISO date once whole, "" when cleared


class RuTimeInput(_RuInput):
    tag = "RuTimeInput"
    from_hour: rx.Var[int]
    to_hour: rx.Var[int]


class SearchSelect(_RuInput):
    tag = "SearchSelect"
    options: rx.Var[list]
    empty_text: rx.Var[str]
    max_shown: rx.Var[int]


def date_input(name: str, default_value="", testid: str | None = None, **props) -> rx.Component:
    """ДД.ММ.ГГГГ with a calendar; `default_value` ISO or Russian."""
    return RuDateInput.create(name=name, default_value=default_value, **({"input_testid": testid} if testid is not None else {}),
                              **props)


def time_input(name: str, default_value="", testid: str | None = None, **props) -> rx.Component:
    """ЧЧ:ММ (24 h) with half-hour slots."""
    return RuTimeInput.create(name=name, default_value=default_value, **({"input_testid": testid} if testid is not None else {}),
                              **props)


def search_select(name: str, options, default_value="", placeholder=None,
                  testid: str | None = None, **props) -> rx.Component:
    """A searchable list over Option(value, label) rows; submits the chosen value under `name`
    (the placeholder: «Начните вводить…» unless given)."""
    if placeholder is None:
        placeholder = AppState.t["common.start_typing"]
    return SearchSelect.create(name=name, options=options, default_value=default_value, placeholder=placeholder,
                               **({"input_testid": testid} if testid is not None else {}), **props)


def yes_no(name, value, testid=None) -> rx.Component:
    """A yes/no field as a switch that always submits «Да» or «Нет» (fields.YES/NO: a hidden
    «Нет» first; the checked switch's «Да» comes later in the form and wins)."""
    return rx.hstack(
        rx.el.input(type="hidden", name=name, value=NO),
        rx.switch(name=name, value=YES, default_checked=value == YES, size="2",
                  **({"data_testid": testid} if testid is not None else {})),
        align="center", spacing="2", min_height="32px",
    )


def field_control(f, text_testid, other_testid=None) -> rx.Component:
    """The control of one field a person fills in (`f`: a MissingField/EditField var — key,
    kind, value, options, choices): a program or a user from a searchable list, a date as
    ДД.ММ.ГГГГ with a calendar, yes/no as a switch, an enum from its options, numbers and
    text as text boxes. `text_testid` marks text boxes, `other_testid` the other controls."""
    other = other_testid if other_testid is not None else text_testid
    return rx.match(
        f.kind,
        ("program", search_select(f.key, f.choices, f.value, AppState.t["common.start_typing.program"], testid=other)),
        ("user", search_select(f.key, f.choices, f.value, AppState.t["common.start_typing.user"], testid=other)),
        ("date", date_input(f.key, f.value, testid=other)),
        ("bool", yes_no(f.key, f.value, other)),
        ("enum", rx.select(f.options, name=f.key, default_value=f.value, placeholder=AppState.t["common.choose"], width="100%",
                           data_testid=other)),
        ("money", "number", "int",
         rx.input(name=f.key, default_value=f.value, width="100%", input_mode="decimal", placeholder="0",
                  data_testid=text_testid)),
        rx.input(name=f.key, default_value=f.value, width="100%", data_testid=text_testid),
    )
