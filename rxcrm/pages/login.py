"""/login — the sign-in form."""
from __future__ import annotations

import reflex as rx

from rxcrm import i18n
from rxcrm.components import theme
from rxcrm.state.app import AppState, LoginState

# Reflex forms always prevent the browser's own submit; form.submit() sends it natively.
SUBMIT_NATIVELY = "document.getElementById('login-form').submit()"


def login_page() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.hstack(
                rx.box(rx.icon("graduation-cap", size=22, color="white"), background=theme.ACCENT,
                       border_radius="10px", padding="8px", line_height="0"),
                rx.vstack(
                    rx.heading(LoginState.t["login.title"], size="5"),
                    rx.text(LoginState.t["login.subtitle"], size="2", color=theme.TEXT_MUTED),
                    spacing="0",
                ),
                spacing="3", align="center",
            ),
            rx.cond(
                LoginState.info != "",
                rx.callout(LoginState.info, icon="clock", color_scheme="amber", size="1", width="100%"),
            ),
            # A native POST to /api/session (rxcrm/web.py): the HttpOnly session cookie can only
            # be set by an HTTP response, and the password check runs on a worker thread there.
            rx.el.form(
                rx.vstack(
                    rx.text(LoginState.t["login.login"], size="2", weight="medium"),
                    rx.input(name="login", default_value=LoginState.login_value, auto_focus=True, size="3",
                             width="100%", auto_complete="username", data_testid="login-input"),
                    rx.text(LoginState.t["login.password"], size="2", weight="medium", padding_top="6px"),
                    rx.input(name="password", type="password", size="3", width="100%",
                             auto_complete="current-password", data_testid="password-input"),
                    rx.el.input(type="hidden", name="next", value=LoginState.next_path),
                    rx.cond(
                        LoginState.error != "",
                        rx.callout(LoginState.error, icon="triangle-alert", color_scheme="red", size="1",
                                   width="100%", data_testid="login-error"),
                    ),
                    rx.button(LoginState.t["login.submit"], type="submit", size="3", width="100%",
                              margin_top="8px", data_testid="login-submit"),
                    spacing="2", width="100%",
                ),
                id="login-form",
                action="/api/session",
                method="post",
                on_submit=rx.call_script(SUBMIT_NATIVELY),
                width="100%",
            ),
            rx.hstack(
                rx.link(i18n.LANGS["ru"], on_click=AppState.set_lang("ru"), size="1", cursor="pointer",
                        weight=rx.cond(AppState.lang == "ru", "bold", "regular")),
                rx.text("·", size="1", color=theme.TEXT_MUTED),
                rx.link(i18n.LANGS["en"], on_click=AppState.set_lang("en"), size="1", cursor="pointer",
                        weight=rx.cond(AppState.lang == "en", "bold", "regular")),
                justify="center", width="100%",
            ),
            spacing="4",
            width="380px",
            max_width="calc(100vw - 24px)",
            padding=rx.breakpoints(initial="24px 20px", sm="32px"),
            background="white",
            border_radius="14px",
            border=f"1px solid {theme.BORDER}",
            box_shadow="0 8px 30px rgba(16, 24, 40, 0.08)",
        ),
        height="100vh",
        background=f"linear-gradient(160deg, {theme.SIDEBAR_BG} 0%, #2b4a6f 100%)",
        font_family=theme.FONT,
    )
