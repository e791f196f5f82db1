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
- **No handler blocks the event loop.** A plain or generator handler (all of ours: they
  call the services synchronously) runs on a bounded pool of worker threads
  (`HANDLER_THREADS`, sized to the database pool) when Reflex calls it on the event loop;
  the loop meanwhile serves everyone else. A generator's steps run there one by one, so its
  `yield`s still reach the browser at once. Called without a running loop (tests, scripts)
  a handler runs as written.
- Client-supplied ids and values are parsed with the functions below, which raise
  `ValidationFailed` with a clear message — never with a bare `int()`. Their `what` (what
  the value was meant to be) is a key of the UI catalog (`common.what.number`,
  `work.what.stage`…); the message is composed from the catalog in the person's language
  when it is shown (`describe`). A `what` that is no key is shown as it is."""
from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import reflex as rx

from rxcrm import i18n
from rxcrm.db import is_transient
from rxcrm.services.errors import ServiceError, ValidationFailed
from rxcrm.services.fields import is_yes

log = logging.getLogger("rxcrm.state")

BAD_INPUT = i18n.RU["common.bad_input"]
BUSY = i18n.RU["common.busy"]
MAX_ID = 2 ** 63 - 1
# Threads that run handlers (their database work) off the event loop. SQLite serializes
# writers anyway and its readers do not wait; PostgreSQL's pool (db.get_engine) holds as many.
HANDLER_THREADS = int(os.environ.get("RXCRM_HANDLER_THREADS", "8"))
_POOL = ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="rxcrm-handler")


class NotLoggedIn(Exception):
    """The handler needs a live session and there is none."""


# ---- parsing what the browser sent -------------------------------------------------------

def _what(what: str, lang: str) -> str:
    """A parser's `what` in `lang`: a catalog key's label, any other text as it is."""
    return i18n.text(lang, what) if what in i18n.RU else what


def _refusal(key: str, **values) -> ValidationFailed:
    """A parser's refusal: its Russian message, and the catalog key and values `describe`
    composes it from in another language."""
    ru = i18n.text("ru", key, **{k: _what(v, "ru") if k == "what" else v for k, v in values.items()})
    return ValidationFailed(ru, code="bad_input", details={"i18n": (key, values)})


def _bad(what: str) -> ValidationFailed:
    return _refusal("common.bad_input_what", what=what) if what else _refusal("common.bad_input")


def describe(exc: ServiceError, lang: str) -> str:
    """A refusal's message in `lang`: a parser's from the catalog, a service's (Russian)
    through the known translations of i18n.MESSAGES_EN."""
    composed = exc.details.get("i18n") if isinstance(exc.details, dict) else None
    if composed:
        key, values = composed
        return i18n.text(lang, key, **{k: _what(v, lang) if k == "what" else v for k, v in values.items()})
    return i18n.message(exc.message, lang)


def to_id(value, what: str = "common.what.number") -> int:
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


def opt_id(value, what: str = "common.what.number") -> int | None:
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


def to_ids(values, what: str = "common.what.number") -> list[int]:
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


def to_text(value, what: str = "common.what.text", max_len: int = 20000) -> str:
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
        raise _refusal("common.too_long", what=what, max_len=max_len)
    return value


def to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if value in (None, "", 0):
        return False
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        return is_yes(value)
    raise _bad("common.what.yes_no")


def to_uploads(value, what: str = "common.what.value") -> list:
    """The files of an upload (rx.UploadFile: a name and `read`); anything else is refused."""
    if not isinstance(value, list) or not all(hasattr(v, "read") and hasattr(v, "filename") for v in value):
        raise _bad(what)
    return value


def to_form(value) -> dict[str, object]:
    """A submitted form: a dict with string keys (values are parsed field by field)."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _bad("common.what.form")
    return value


def field(form, key: str, what: str = "", max_len: int = 20000) -> str:
    """One text field of a submitted form, stripped of nothing (as typed)."""
    return to_text(to_form(form).get(key), what or key, max_len)


def choice(value, allowed: Iterable[str], what: str = "common.what.value") -> str:
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
        return rx.toast.error(describe(exc, lang), duration=7000)
    if is_transient(exc):
        log.warning("handler %s: database busy after retries: %s", fn.__qualname__, exc)
        return rx.toast.error(i18n.text(lang, "common.busy"), duration=7000)
    code = report_unexpected(state, fn, exc)
    return rx.toast.error(i18n.text(lang, "common.unexpected", code=code), duration=10000)


def _checked(fn: Callable) -> Callable:
    """`fn` behind a check that the arguments fit its signature (a crafted event may send
    too few or unknown ones): a mismatch is bad input, not a bug."""
    signature = inspect.signature(fn)

    def check(self, args, kwargs) -> None:
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError:
            raise _bad("common.what.arguments") from None
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


def _step(gen) -> tuple[bool, object]:
    """One step of a generator: (finished, the yielded or returned value)."""
    try:
        return False, next(gen)
    except StopIteration as stop:
        return True, stop.value


async def _in_worker(fn: Callable, generator: bool, self, args, kwargs):
    """Run the (guarded, never raising) handler `fn` on the handler threads, handing each
    of its results to Reflex as an async generator's items."""
    loop = asyncio.get_running_loop()

    def worker(call, *a):
        return loop.run_in_executor(_POOL, contextvars.copy_context().run, call, *a)

    if not generator:
        yield await worker(functools.partial(fn, self, *args, **kwargs))
        return
    gen = fn(self, *args, **kwargs)  # creating a generator runs none of its body
    while True:
        finished, item = await worker(_step, gen)
        if finished:
            if item is not None:
                yield item
            return
        yield item


def off_loop(fn: Callable) -> Callable:
    """A plain or generator handler that, called on a running event loop, runs in a worker
    thread instead (returns an async generator Reflex drives); otherwise runs in place."""
    generator = inspect.isgeneratorfunction(fn)

    @functools.wraps(fn)
    def handler(self, *args, **kwargs):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(self, *args, **kwargs)
        return _in_worker(fn, generator, self, args, kwargs)
    return handler


def event(fn: Callable | None = None, **options):
    """`@event` / `@event(background=True)`: `rx.event` behind the guard above; plain and
    generator handlers run off the event loop (see the module doc)."""
    def decorate(f: Callable):
        guarded = guard(f)
        if not (inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f)):
            guarded = off_loop(guarded)
        return rx.event(guarded, **options)
    return decorate(fn) if fn is not None else decorate


def backend_exception_handler(exception: Exception):
    """The app's last net (rx.App(backend_exception_handler=…)) for anything outside a
    guarded handler: a message with an incident code (Russian: there is no state to know the
    person's language), never Reflex's generic one."""
    return answer(None, backend_exception_handler, exception)


__all__ = ["BAD_INPUT", "BUSY", "NotLoggedIn", "answer", "backend_exception_handler", "choice", "describe", "event",
           "field", "guard", "id_or_none", "off_loop", "opt_id", "report_unexpected", "to_bool", "to_form", "to_id", "to_ids", "to_int", "to_text", "to_uploads"]
