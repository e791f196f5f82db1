"""The Reflex app: routes → pages. Startup migrates the database and writes defaults.

The HTTP edge (rxcrm/web.py) wraps everything the app serves: the session cookie is
HttpOnly and reaches the app only as a hash, cross-site requests are refused, every
response carries the security headers. Handlers that fail anyway end in
state.base.backend_exception_handler (a Russian message), never Reflex's default."""
from __future__ import annotations

import os
import time

import reflex as rx
from starlette.applications import Starlette

from rxcrm import api, hooks, web
from rxcrm.rest import routes as rest
from rxcrm.state.base import backend_exception_handler
from rxcrm.state.live import live_task
from rxcrm.tasks import import_task, intake_task, outbound_task, reminders_task

from rxcrm.db import install_fork_hook, migrate, session_scope
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


def _private_state_dir() -> None:
    """Reflex keeps per-user state on disk (.states/*.pkl, incl. the connection's headers)
    when it runs without Redis: only the app's own user may read it."""
    try:
        from reflex.utils.prerequisites import get_states_dir
        states = get_states_dir()
        states.mkdir(parents=True, exist_ok=True)
        os.chmod(states, 0o700)
    except OSError:
        pass


STATE_PURGE = {"at": float("-inf")}  # when .states/ was last purged (time.monotonic())


def _purge_states_once_a_minute(every_s: float = 60.0) -> None:
    """Reflex's disk state manager looks at every file of .states/ (a stat each) every time
    its write queue runs — several times a second while a room of people works (~6% of the
    server's time with 50 people). Expired states are purged at most once a minute instead."""
    try:
        from reflex.istate.manager.disk import StateManagerDisk
    except ImportError:
        return
    original = StateManagerDisk._purge_expired_states
    if getattr(original, "rxcrm_throttled", False):
        return

    def purge(self):
        if time.monotonic() - STATE_PURGE["at"] >= every_s:
            STATE_PURGE["at"] = time.monotonic()
            original(self)
    purge.rxcrm_throttled = True
    StateManagerDisk._purge_expired_states = purge


def startup() -> None:
    # Reflex prod forks its workers from a supervisor that imported this module (and so
    # migrated through pooled connections): each child drops the inherited pools (rxcrm/db.py)
    install_fork_hook()
    hooks.wire()  # who reacts to what the services do: rxcrm/hooks.py
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
    _private_state_dir()
    _purge_states_once_a_minute()


startup()

app = rx.App(
    html_lang="ru",
    stylesheets=["/board.css"],  # the kanban card's classes (components/board.py)
    api_transformer=[Starlette(routes=[*web.routes, *api.routes, *rest.routes]), web.SecurityMiddleware],
    backend_exception_handler=backend_exception_handler,
)
# Every worker starts these loops; reminders, intake re-processing and outbound events run their rounds in ONE
# worker at a time (a leader lock per job, rxcrm.db.singleton; another takes over if it dies).
app.register_lifespan_task(reminders_task)
app.register_lifespan_task(intake_task)
app.register_lifespan_task(import_task)  # imports from CSV/Excel, their checks and undos, one worker
app.register_lifespan_task(outbound_task)  # outbound events (Bitrix24's outgoing webhooks), one worker
# live_task runs in EVERY worker, no leader lock: each worker refreshes the boards/cards whose
# tabs are connected to it (others' changes reach open boards/cards: state/live.py)
app.register_lifespan_task(live_task)
def _title(route: str):
    """The browser tab's title: the page's name in the person's language, «Сделки — rxcrm»."""
    return AppState.t[SECTIONS[route][0]] + " — " + AppState.t["app.name"]


app.add_page(login_page, route="/login", title=LoginState.t["title.login"] + " — rxcrm", on_load=LoginState.on_load)
app.add_page(index_page, route="/", title="rxcrm", on_load=[AppState.check_login, AppState.go_home])
for _route in WORK_ROUTES:
    app.add_page(work_page(_route), route=_route, title=_title(_route),
                 on_load=[AppState.check_login, WorkState.on_load])
app.add_page(activities_page, route="/activities", title=_title("/activities"),
             on_load=[AppState.check_login, ActivitiesState.on_load])
app.add_page(settings_page, route="/settings", title=_title("/settings"),
             on_load=[AppState.check_login, SettingsState.on_load])
app.add_page(history_page, route="/history", title=_title("/history"),
             on_load=[AppState.check_login, HistoryState.on_load])
app.add_page(analytics_page, route="/analytics", title=_title("/analytics"),
             on_load=[AppState.check_login, AnalyticsState.on_load])
for _route in SECTIONS:
    if _route not in WORK_ROUTES and _route not in ("/activities", "/settings", "/history", "/analytics"):
        app.add_page(section_page(_route), route=_route, title=_title(_route), on_load=AppState.check_login)
for _route, _param in [("/leads", "lead_id"), ("/deals", "deal_id"), ("/contacts", "contact_id"),
                       ("/companies", "company_id")]:
    # the card's own title: «Иванов Иван — Сделка — rxcrm» (CardState.page_title)
    app.add_page(card_page(_route), route=f"{_route}/[{_param}]", title=CardState.page_title,
                 on_load=[AppState.check_login, CardState.load_card])
