"""The root app state: session (cookie), current user, language, UI text catalog,
navigation counters and the bell (notifications)."""
from __future__ import annotations

import dataclasses
import time
from urllib.parse import quote

import reflex as rx

from rxcrm import i18n
from rxcrm.db import session_scope
from rxcrm.services import activities, auth, notifications
from rxcrm.services.context import Actor
from rxcrm.services.errors import AuthError

SESSION_COOKIE = "rxcrm_session"
PUBLIC_ROUTES = ("/login",)
BELL_LIMIT = 20  # unread notifications listed in the bell (the badge counts all of them)
POLL_MIN_S = 20  # the shell's timer skips a refresh made less than this long ago


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

    session_token: str = rx.Cookie("", name=SESSION_COOKIE, max_age=int(auth.SESSION_TTL.total_seconds()),
                                   same_site="lax")
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
    _badges_at: float = 0.0  # time.time() of the last refresh (throttles the timer)

    @rx.var
    def t(self) -> dict[str, str]:
        return i18n.catalog(self.lang)

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

    def _client(self) -> str:
        return self.router.session.client_ip or ""

    def actor(self) -> Actor | None:
        """The acting user for service calls, re-checked against the session store."""
        with session_scope() as s:
            user = auth.resolve(s, self.session_token)
            return auth.actor_for(user, client=self._client()) if user else None

    def _set_user(self, user) -> None:
        self.user_id, self.user_login = user.id, user.login
        self.user_name, self.user_role = user.full_name, user.role

    def _clear_user(self) -> None:
        self.user_id, self.user_login, self.user_name, self.user_role = 0, "", "", ""

    @rx.event
    def check_login(self):
        """on_load of every protected page: no live session → /login; otherwise the
        navigation counters and the bell are refreshed (one cheap round per page load)."""
        actor = None
        with session_scope() as s:
            user = auth.resolve(s, self.session_token)
            if user is not None:
                self._set_user(user)
                actor = auth.actor_for(user, client=self._client())
        self.auth_checked = True
        if actor is not None:
            self._badges(actor)
        else:
            had_session = bool(self.session_token)
            self._clear_user()
            self._clear_badges()
            self.session_token = ""
            path = self.router.url.path or "/"
            target = "/login" + (f"?next={path}" if path not in ("/", *PUBLIC_ROUTES) else "")
            if had_session:
                target += ("&" if "?" in target else "?") + "expired=1"
            return rx.redirect(target, replace=True)

    # ---- navigation counters and the bell ---------------------------------------------
    def _badges(self, actor: Actor | None = None) -> None:
        """Fill `counters`, `unread_count` and `notifications` for the logged-in user."""
        actor = actor or self.actor()
        if actor is None:
            return
        with session_scope() as s:
            self.counters = activities.nav_counters(s, actor)
            self.unread_count = notifications.unread_count(s, actor)
            rows = notifications.unread(s, actor, limit=BELL_LIMIT)
        self.notifications = [NotificationRow(n["id"], n["text"], n.get("href") or "", n["at"], n["kind"])
                              for n in rows]
        self._badges_at = time.time()

    def _clear_badges(self) -> None:
        self.counters = {"leads": 0, "deals": 0, "activities": 0}
        self.unread_count, self.notifications, self.bell_open = 0, [], False

    @rx.event
    def refresh_badges(self):
        """Re-read the navigation counters and the bell.

        Every page load does it (end of `check_login`) and the shell's timer every minute.
        After a change that moves a counter (an activity planned/done/rescheduled, an item
        assigned, closed or moved) another state asks for it with
        `yield AppState.refresh_badges` (or `return AppState.refresh_badges`); a state
        derived from AppState may also call `self._badges()` directly."""
        if self.user_id:
            self._badges()

    @rx.event
    def poll_badges(self, _tick: str = ""):
        """The shell's timer (rx.moment, every 60 s and on mount): a refresh unless one was
        made in the last POLL_MIN_S seconds (check_login has just made one on page load)."""
        if self.user_id and time.time() - self._badges_at >= POLL_MIN_S:
            self._badges()

    @rx.event
    def set_bell_open(self, value: bool):
        """Opening the bell re-reads it, so the list is fresh."""
        self.bell_open = bool(value)
        if self.bell_open and self.user_id:
            self._badges()

    @rx.event
    def open_notification(self, notification_id: int, href: str):
        """A click on a notification: mark it read, close the bell, go to its item."""
        actor = self.actor()
        if actor is None:
            return
        with session_scope() as s:
            notifications.mark_read(s, actor, [int(notification_id)])
        self._badges(actor)
        self.bell_open = False
        if href and href.startswith("/") and not href.startswith("//"):
            return rx.redirect(href)

    @rx.event
    def mark_all_read(self):
        actor = self.actor()
        if actor is None:
            return
        with session_scope() as s:
            notifications.mark_read(s, actor, None)
        self._badges(actor)

    @rx.event
    def go_home(self):
        if self.user_id:
            return rx.redirect("/leads", replace=True)

    @rx.event
    def global_search(self, form: dict):
        q = (form.get("q") or "").strip()
        return rx.redirect(f"/leads?q={quote(q)}" if q else "/leads")

    @rx.event
    def set_lang(self, lang: str):
        if lang not in i18n.CATALOGS:
            return
        self.lang = lang
        if self.user_id:
            from rxcrm.services import users
            with session_scope() as s:
                users.set_locale(s, self.user_id, lang)

    @rx.event
    def logout(self):
        if self.session_token:
            with session_scope() as s:
                auth.logout(s, self.session_token)
        self.session_token = ""
        self._clear_user()
        self._clear_badges()
        return rx.redirect("/login", replace=True)


class LoginState(AppState):
    error: str = ""
    info: str = ""
    submitting: bool = False

    @rx.event
    def on_load(self):
        """Already logged in → go to the work page; otherwise show the form."""
        self.error, self.submitting = "", False
        params = self.router.url.query_parameters
        self.info = self.t["login.expired"] if params.get("expired") else ""
        with session_scope() as s:
            user = auth.resolve(s, self.session_token)
            if user is not None:
                self._set_user(user)
                return rx.redirect(self._next_path(), replace=True)

    def _next_path(self) -> str:
        nxt = self.router.url.query_parameters.get("next", "") or "/leads"
        # Only local paths: never an open redirect.
        return nxt if nxt.startswith("/") and not nxt.startswith("//") else "/leads"

    @rx.event
    def submit(self, form: dict):
        self.error, self.info = "", ""
        try:
            with session_scope() as s:
                token, user = auth.login(s, form.get("login", ""), form.get("password", ""),
                                         client=self._client())
                self._set_user(user)
                if user.locale in i18n.CATALOGS and user.locale != self.lang:
                    self.lang = user.locale
        except AuthError as exc:
            self.error = i18n.message(exc.message, self.lang)
            return
        self.session_token = token
        return rx.redirect(self._next_path(), replace=True)
