"""The root app state: session, current user, language, UI text catalog, navigation
counters and the bell (notifications).

The session token lives in an HttpOnly cookie the page cannot read; rxcrm/web.py hands
the app only its hash (`x-rxcrm-session` on the websocket's request), so no state — nor
Reflex's stored copies of it — holds a usable secret. `_actor()` resolves that hash on each
event (a revoked session is refused at once); `_call()` is the one way handlers reach the
services (state/base.py)."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

import reflex as rx

from rxcrm import i18n
from rxcrm.db import transact
from rxcrm.services import activities, auth, changes, notifications, users
from rxcrm.services.context import Actor

from . import live
from .base import NotLoggedIn, event, field, id_or_none, to_id, to_text

PUBLIC_ROUTES = ("/login",)
BELL_LIMIT = 20  # unread notifications listed in the bell (the badge counts all of them)
POLL_MIN_S = 20  # the shell's timer skips a refresh made less than this long ago
T = TypeVar("T")

# Why a login was refused (the code /api/session puts in /login?error=…) → the service's
# message; an empty form is the page's own text (`login.empty`).
LOGIN_ERRORS = {"bad_password": auth.BAD_CREDENTIALS, "unknown_login": auth.BAD_CREDENTIALS,
                "inactive": auth.INACTIVE}
# The logout form: a POST to the route that revokes the session and clears the HttpOnly cookie.
LOGOUT_SCRIPT = ("(() => { const f = document.createElement('form'); f.method = 'post'; "
                 "f.action = '/api/session/logout'; document.body.appendChild(f); f.submit(); })()")


@dataclasses.dataclass
class NotificationRow:
    """One unread notification in the bell; `href` is the item's card ("" when none)."""
    id: int = 0
    text: str = ""
    href: str = ""
    at: str = ""
    kind: str = ""


class AppState(rx.State):
    """Every page state derives from this one."""

    lang: str = rx.Cookie(i18n.DEFAULT_LANG, name="rxcrm_lang", max_age=365 * 24 * 3600)
    user_id: int = 0
    user_login: str = ""
    user_name: str = ""
    user_role: str = ""
    auth_checked: bool = False
    # Navigation counters (overdue + today + without activity) and the bell's unread count.
    counters: dict[str, int] = {"leads": 0, "deals": 0, "activities": 0}
    unread_count: int = 0
    notifications: list[NotificationRow] = []
    bell_open: bool = False
    _own_version: int = 0  # the newest change feed row of this tab's own writes
    _badges_at: float = 0.0  # time.time() of the last refresh (throttles the timer)

    @rx.var
    def t(self) -> dict[str, str]:
        return i18n.catalog(self.lang)

    def _tr(self, key: str, **values) -> str:
        """A label of the catalog in this person's language (for toasts and texts a
        handler composes); pages read `AppState.t[<key>]` instead."""
        return i18n.text(self.lang, key, **values)

    @rx.var
    def is_authenticated(self) -> bool:
        return self.user_id > 0

    @rx.var
    def user_initials(self) -> str:
        parts = [p for p in self.user_name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"

    @rx.var
    def role_label(self) -> str:
        return i18n.catalog(self.lang).get(f"role.{self.user_role}", self.user_role)

    # ---- who is acting -------------------------------------------------------------------
    def _client(self) -> str:
        return self.router.session.client_ip or ""

    def _session_key(self) -> str:
        """The hash of this browser's session cookie (set by rxcrm/web.py), or ""."""
        return self.router.headers.raw_headers.get(auth.SESSION_HEADER, "")

    def _resolve(self):
        key = self._session_key()
        if not key:
            return None
        return transact(lambda s: auth.resolve_key(s, key), write=False)

    def _actor(self) -> Actor | None:
        """The acting user for service calls, re-checked against the session store."""
        user = self._resolve()
        return auth.actor_for(user, client=self._client()) if user else None

    def _require_actor(self) -> Actor:
        actor = self._actor()
        if actor is None:
            raise NotLoggedIn()
        return actor

    def _call(self, fn: Callable[..., T], *args, write: bool = True, actor: Actor | None = None, **kwargs) -> T:
        """`fn(session, actor, *args, **kwargs)` in one unit of work (re-run on a transient
        database conflict), as the logged-in user; NotLoggedIn when there is none.
        `write=False` for reads (on SQLite they never wait for writers)."""
        key = "" if actor is not None else self._session_key()

        def unit(s):
            who = actor
            if who is None:  # the session is resolved in the same unit of work, once per call
                user = auth.resolve_key(s, key) if key else None
                if user is None:
                    raise NotLoggedIn()
                who = auth.actor_for(user, client=self._client())
            result = fn(s, who, *args, **kwargs)
            if write:  # this tab's own writes: not refreshed for, and never shown older (state/live.py)
                mine = changes.written(s)
                if mine:
                    self._own_version = max(self._own_version, *mine)
                    live.mine(self.router.session.client_token, mine)
            return result
        return transact(unit, write=write)

    def _read(self, fn: Callable[..., T], *args, actor: Actor | None = None, **kwargs) -> T:
        return self._call(fn, *args, write=False, actor=actor, **kwargs)

    def _set_user(self, user) -> None:
        self.user_id, self.user_login = user.id, user.login
        self.user_name, self.user_role = user.full_name, user.role

    def _clear_user(self) -> None:
        self.user_id, self.user_login, self.user_name, self.user_role = 0, "", "", ""

    @event
    def check_login(self):
        """on_load of every protected page: no live session → /login; otherwise the
        navigation counters and the bell are refreshed (one cheap round per page load)."""
        user = self._resolve()
        self.auth_checked = True
        if user is not None:
            self._set_user(user)
            self._badges(auth.actor_for(user, client=self._client()))
            return
        self._clear_user()
        self._clear_badges()
        return self._login_redirect()

    def _login_redirect(self):
        """To /login, coming back here afterwards; `expired` when the browser had a session
        that is no longer valid (revoked, expired, the user switched off)."""
        path = (self.router.url.path or "/").rstrip("/") or "/"
        target = "/login" + (f"?next={quote(path)}" if path not in ("/", *PUBLIC_ROUTES) else "")
        if self._session_key():
            target += ("&" if "?" in target else "?") + "expired=1"
        return rx.redirect(target, replace=True)

    # ---- navigation counters and the bell ---------------------------------------------
    def _badges(self, actor: Actor | None = None) -> None:
        """Fill `counters`, `unread_count` and `notifications` for the logged-in user."""
        actor = actor or self._actor()
        if actor is None:
            return

        def read(s, a):
            return (activities.nav_counters(s, a), notifications.unread_count(s, a),
                    notifications.unread(s, a, limit=BELL_LIMIT))

        self.counters, self.unread_count, rows = self._read(read, actor=actor)
        self.notifications = [NotificationRow(n["id"], n["text"], n.get("href") or "", n["at"], n["kind"])
                              for n in rows]
        self._badges_at = time.time()

    def _clear_badges(self) -> None:
        self.counters = {"leads": 0, "deals": 0, "activities": 0}
        self.unread_count, self.notifications, self.bell_open = 0, [], False

    @event
    def refresh_badges(self):
        """Re-read the navigation counters and the bell.

        Every page load does it (end of `check_login`) and the shell's timer every minute.
        After a change that moves a counter (an activity planned/done/rescheduled, an item
        assigned, closed or moved) another state asks for it with
        `yield AppState.refresh_badges` (or `return AppState.refresh_badges`); a state
        derived from AppState may also call `self._badges()` directly."""
        if self.user_id:
            self._badges()

    @event
    def poll_badges(self, _tick: str = ""):
        """The shell's timer (rx.moment, every 60 s and on mount): a refresh unless one was
        made in the last POLL_MIN_S seconds (check_login has just made one on page load)."""
        if self.user_id and time.time() - self._badges_at >= POLL_MIN_S:
            self._badges()

    @event
    def set_tab_visible(self, visible: bool):
        """The browser tab was hidden or shown again (components/visibility.py): a hidden tab is
        not refreshed live; shown again, it catches up at the next round (state/live.py)."""
        live.visible(self.router.session.client_token, visible is True)

    @event
    def set_bell_open(self, value: bool):
        """Opening the bell re-reads it, so the list is fresh."""
        self.bell_open = value is True
        if self.bell_open and self.user_id:
            self._badges()

    @event
    def open_notification(self, notification_id: int, href: str):
        """A click on a notification: mark it read, close the bell, go to its item."""
        nid, href = to_id(notification_id, "common.what.notification"), to_text(href, "common.what.link", 500)
        actor = self._require_actor()
        self._call(notifications.mark_read, [nid], actor=actor)
        self._badges(actor)
        self.bell_open = False
        if href.startswith("/") and not href.startswith("//") and not href.startswith("/\\"):
            return rx.redirect(href)

    @event
    def mark_all_read(self):
        actor = self._require_actor()
        self._call(notifications.mark_read, None, actor=actor)
        self._badges(actor)

    @event
    def go_home(self):
        if self.user_id:
            return rx.redirect("/leads", replace=True)

    @event
    async def global_search(self, form: dict):
        """Enter in the top search: the card when exactly one item matches, else the list of
        the first kind with matches (leads, deals, contacts, companies) filtered by the text.
        The dropdown (state/search.py) closes and the box starts empty on the next page. The
        read runs on a worker thread, like the dropdown's."""
        from rxcrm.services import search

        from .search import SEARCH_WORKERS, SearchState
        q = search.clean(field(form, "q", "common.what.search", 1000))
        groups = []
        if len(q) >= search.MIN_LEN:
            actor = self._require_actor()
            groups = await asyncio.to_thread(
                transact, lambda s: search.search(s, actor, q, workers=SEARCH_WORKERS), write=False)
        return [SearchState.search_reset, rx.redirect(search.best_target(groups, q))]

    @event
    def set_lang(self, lang: str):
        if not isinstance(lang, str) or lang not in i18n.CATALOGS:
            return
        self.lang = lang
        if self.user_id:
            self._call(lambda s, a: users.set_locale(s, a.user_id, lang))

    @event
    def logout(self):
        """Revoke the session at once, then let the browser POST the logout form so the
        server clears the HttpOnly cookie and shows /login."""
        key = self._session_key()
        if key:
            transact(lambda s: auth.logout_key(s, key))
        self._clear_user()
        self._clear_badges()
        return rx.call_script(LOGOUT_SCRIPT)


class LoginState(AppState):
    """/login: the form posts to /api/session (rxcrm/web.py); this state shows why a
    previous attempt was refused and sends a logged-in person on."""
    error: str = ""
    info: str = ""
    login_value: str = ""
    next_path: str = ""

    @event
    def on_load(self):
        """Already logged in → go on to `next`; otherwise show the form (with the reason
        the last attempt was refused, from ?error=…)."""
        params = self.router.url.query_parameters
        self.info = self.t["login.expired"] if params.get("expired") else ""
        self.login_value = to_text(params.get("login", ""), "common.what.login", 100)
        self.next_path = self._next_path()
        self.error = self._error_text(params.get("error", ""), params.get("wait", ""))
        user = self._resolve()
        if user is not None:
            self._set_user(user)
            return rx.redirect(self.next_path, replace=True)

    def _error_text(self, code: str, wait: str) -> str:
        if not code:
            return ""
        if code == "rate_limited":
            return i18n.rate_limited(id_or_none(wait) or 60, self.lang)
        if code == "empty":
            return self._tr("login.empty")
        return i18n.message(LOGIN_ERRORS.get(code, auth.BAD_CREDENTIALS), self.lang)

    def _next_path(self) -> str:
        nxt = self.router.url.query_parameters.get("next", "") or "/leads"
        # Only local paths: never an open redirect.
        return nxt if isinstance(nxt, str) and nxt.startswith("/") and not nxt.startswith("//") \
            and not nxt.startswith("/login") else "/leads"
