"""Small form building blocks shared by pages: a select over Option rows and a dialog
holding a form with «Отмена» / submit buttons."""
from __future__ import annotations

import reflex as rx


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
                    rx.hstack(rx.dialog.close(rx.button("Отмена", type="button", variant="soft", color_scheme="gray")),
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
