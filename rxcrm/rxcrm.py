"""The Reflex app: routes → pages. Startup migrates the database and writes defaults."""
from __future__ import annotations

import reflex as rx
from starlette.applications import Starlette

from rxcrm import api
from rxcrm.tasks import reminders_task

from rxcrm.db import migrate, session_scope
from rxcrm.pages.login import login_page
from rxcrm.pages.activities import activities_page
from rxcrm.pages.analytics import analytics_page
from rxcrm.pages.card import card_page
from rxcrm.pages.history import history_page
from rxcrm.pages.settings import settings_page
from rxcrm.pages.sections import SECTIONS, index_page, section_page
from rxcrm.pages.work import ROUTES as WORK_ROUTES, work_page
from rxcrm.state.activities import ActivitiesState
from rxcrm.state.analytics import AnalyticsState
from rxcrm.state.card import CardState
from rxcrm.state.history import HistoryState
from rxcrm.state.settings import SettingsState
from rxcrm.state.work import WorkState
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.state.app import AppState, LoginState


def startup() -> None:
    migrate()
    with session_scope() as s:
        ensure_defaults(s)


startup()

app = rx.App(
    theme=rx.theme(appearance="light", accent_color="blue", gray_color="slate", radius="medium",
                   scaling="100%"),
    html_lang="ru",
    api_transformer=Starlette(routes=api.routes),
)
app.register_lifespan_task(reminders_task)
app.add_page(login_page, route="/login", title="Вход — rxcrm", on_load=LoginState.on_load)
app.add_page(index_page, route="/", title="rxcrm", on_load=[AppState.check_login, AppState.go_home])
for _route in WORK_ROUTES:
    app.add_page(work_page(_route), route=_route, title="rxcrm", on_load=[AppState.check_login, WorkState.on_load])
app.add_page(activities_page, route="/activities", title="rxcrm",
             on_load=[AppState.check_login, ActivitiesState.on_load])
app.add_page(settings_page, route="/settings", title="rxcrm",
             on_load=[AppState.check_login, SettingsState.on_load])
app.add_page(history_page, route="/history", title="rxcrm",
             on_load=[AppState.check_login, HistoryState.on_load])
app.add_page(analytics_page, route="/analytics", title="rxcrm",
             on_load=[AppState.check_login, AnalyticsState.on_load])
for _route in SECTIONS:
    if _route not in WORK_ROUTES and _route not in ("/activities", "/settings", "/history", "/analytics"):
        app.add_page(section_page(_route), route=_route, title="rxcrm", on_load=AppState.check_login)
for _route, _param in [("/leads", "lead_id"), ("/deals", "deal_id"), ("/contacts", "contact_id"),
                       ("/companies", "company_id")]:
    app.add_page(card_page(_route), route=f"{_route}/[{_param}]", title="rxcrm",
                 on_load=[AppState.check_login, CardState.load_card])
