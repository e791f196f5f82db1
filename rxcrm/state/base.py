"""The boundary between the browser and the services — every event handler passes here.

- `@event` (instead of `@rx.event`) declares a handler. It runs the handler and turns
  whatever goes wrong into the person's message, so no handler ever ends in Reflex's
  generic "An error occurred":
    · `NotLoggedIn` (no live session: expired, revoked, logged out elsewhere) → /login;
    · a `ServiceError` (refusal, validation, conflict) → a toast with its message;
    · a database that stayed busy through every retry → "повторите через несколько секунд";
    · anything else is a bug: logged with an incident code, the toast names the code.
- `AppState._call(fn, …)` (state/app.py) is the one way a handler reaches the services:
  one unit of work (`db.transact`: BEGIN IMMEDIATE on SQLite, re-run on transient
  conflicts) with the actor resolved from the session.
- Client-supplied ids and values are parsed with the functions below, which raise
  `ValidationFailed` with a clear message — never with a bare `int()`."""
from __future__ import annotations

import functools
import inspect
import logging
import secrets
from collections.abc import Callable, Iterable

import reflex as rx

from rxcrm import i18n
from rxcrm.db import is_transient
from rxcrm.services.errors import ServiceError, ValidationFailed

log = logging.getLogger("rxcrm.state")

BAD_INPUT = "Неверные данные запроса"
BUSY = "База данных сейчас занята — повторите действие через несколько секунд"
UNEXPECTED = ("Не удалось выполнить действие. Попробуйте ещё раз; если ошибка повторится, "
              "сообщите администратору код {code}")
MAX_ID = 2 ** 63 - 1


class NotLoggedIn(Exception):
    """The handler needs a live session and there is none."""


# ---- parsing what the browser sent -------------------------------------------------------

def _bad(what: str) -> ValidationFailed:
    return ValidationFailed(f"{BAD_INPUT}: {what}" if what else BAD_INPUT, code="bad_input")


def to_id(value, what: str = "номер") -> int:
    """A positive integer id from an int or a string of digits; anything else is refused."""
    if isinstance(value, bool):
        raise _bad(what)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value) <= 19:
        number = int(value.strip())
    else:
        raise _bad(what)
    if not 0 < number <= MAX_ID:
        raise _bad(what)
    return number


def opt_id(value, what: str = "номер") -> int | None:
    """Like `to_id`, but empty ("", None, 0, "all") means "none"."""
    if value in (None, "", 0, "0", "all"):
        return None
    return to_id(value, what)


def id_or_none(value) -> int | None:
    """An id from a URL parameter, or None when it is missing or malformed (a link may be
    old or edited by hand: the page then falls back to its default silently)."""
    try:
        return to_id(value)
    except ValidationFailed:
        return None


def to_ids(values, what: str = "номер") -> list[int]:
    if not isinstance(values, (list, tuple)):
        raise _bad(what)
    return [to_id(v, what) for v in values]


def to_int(value, what: str, lo: int, hi: int) -> int:
    """An integer in [lo, hi] from an int or a string (a page number, minutes…)."""
    if isinstance(value, bool):
        raise _bad(what)
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.lstrip("-").isdigit() and len(text) <= 19):
            raise _bad(what)
        value = int(text)
    if not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(what)
    return value


def to_text(value, what: str = "текст", max_len: int = 20000) -> str:
    """A string; None is ""; numbers become their text; anything else is refused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise _bad(what)
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise _bad(what)
    if len(value) > max_len:
        raise ValidationFailed(f"Слишком длинный текст: {what} (не больше {max_len} символов)", code="bad_input")
    return value


def to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, "", 0):
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes", "да")
    raise _bad("да/нет")


def to_form(value) -> dict[str, object]:
    """A submitted form: a dict with string keys (values are parsed field by field)."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _bad("форма")
    return value


def field(form, key: str, what: str = "", max_len: int = 20000) -> str:
    """One text field of a submitted form, stripped of nothing (as typed)."""
    return to_text(to_form(form).get(key), what or key, max_len)


def choice(value, allowed: Iterable[str], what: str = "значение") -> str:
    """One of the allowed strings; a one-element list (what segmented controls send) is
    accepted too."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str) or value not in set(allowed):
        raise _bad(what)
    return value


# ---- the handler boundary ----------------------------------------------------------------

def report_unexpected(state, fn: Callable, exc: BaseException) -> str:
    """Log a bug met by a handler; returns the incident code shown to the person.
    (Tests replace this to fail on any handler that reaches it.)"""
    code = secrets.token_hex(3).upper()
    log.error("handler %s failed [incident %s]", getattr(fn, "__qualname__", fn), code, exc_info=exc)
    return code


def answer(state, fn: Callable, exc: BaseException):
    """The event(s) that tell the person what happened instead of an exception."""
    lang = getattr(state, "lang", i18n.DEFAULT_LANG) or i18n.DEFAULT_LANG
    if isinstance(exc, NotLoggedIn):
        to_login = getattr(state, "_login_redirect", None)
        return to_login() if to_login else rx.redirect("/login", replace=True)
    if isinstance(exc, ServiceError):
        return rx.toast.error(i18n.message(exc.message, lang), duration=7000)
    if is_transient(exc):
        log.warning("handler %s: database busy after retries: %s", fn.__qualname__, exc)
        return rx.toast.error(i18n.message(BUSY, lang), duration=7000)
    code = report_unexpected(state, fn, exc)
    return rx.toast.error(i18n.message(UNEXPECTED, lang).format(code=code), duration=10000)


def _checked(fn: Callable) -> Callable:
    """`fn` behind a check that the arguments fit its signature (a crafted event may send
    too few or unknown ones): a mismatch is bad input, not a bug."""
    signature = inspect.signature(fn)

    def check(self, args, kwargs) -> None:
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError:
            raise _bad("аргументы") from None
    return check


def guard(fn: Callable) -> Callable:
    """Wrap a handler (plain, generator, coroutine or async generator) so that an
    exception becomes `answer(...)` — the same kind of callable, the same signature."""
    check = _checked(fn)
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def agen(self, *args, **kwargs):
            try:
                check(self, args, kwargs)
                async for item in fn(self, *args, **kwargs):
                    yield item
            except Exception as exc:  # noqa: BLE001 - the boundary: every failure becomes a message
                yield answer(self, fn, exc)
        return agen
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def coro(self, *args, **kwargs):
            try:
                check(self, args, kwargs)
                return await fn(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                return answer(self, fn, exc)
        return coro
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(self, *args, **kwargs):
            try:
                check(self, args, kwargs)
                yield from fn(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001
                yield answer(self, fn, exc)
        return gen

    @functools.wraps(fn)
    def plain(self, *args, **kwargs):
        try:
            check(self, args, kwargs)
            return fn(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            return answer(self, fn, exc)
    return plain


def event(fn: Callable | None = None, **options):
    """`@event` / `@event(background=True)`: `rx.event` behind the guard above."""
    def decorate(f: Callable):
        return rx.event(guard(f), **options)
    return decorate(fn) if fn is not None else decorate


def backend_exception_handler(exception: Exception):
    """The app's last net (rx.App(backend_exception_handler=…)) for anything outside a
    guarded handler: a Russian message with an incident code, never Reflex's English one."""
    return answer(None, backend_exception_handler, exception)


__all__ = ["BAD_INPUT", "BUSY", "NotLoggedIn", "answer", "backend_exception_handler", "choice", "event", "field",
           "guard", "id_or_none", "opt_id", "report_unexpected", "to_bool", "to_form", "to_id", "to_ids", "to_int", "to_text"]
