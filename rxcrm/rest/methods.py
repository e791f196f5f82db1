"""The REST methods: one registry (`METHODS`, filled by `@method`) of Bitrix24 method names,
each with its scope and whether it writes; `run` executes one call as the webhook's user in
one unit of work, through the same services as the UI; `batch` runs up to 50 calls with
`$result[…]` references between them.

Method names are case-insensitive (Bitrix24 lowercases them; b24pysdk sends `crm.lead.List`).
A service's refusal becomes Bitrix24's error answer (400 with an empty code and the message,
as Bitrix24's CRM handlers answer)."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlmodel import Session

from rxcrm.db import transact
from rxcrm.models import Department, RestWebhook, User, utcnow
from rxcrm.models.rest import SCOPES
from rxcrm.services import webhooks
from rxcrm.services.context import Actor
from rxcrm.services.errors import AccessDenied, NotFound, ServiceError

from . import wire


@dataclasses.dataclass
class Call:
    """One method call: its parameters and who makes it (the webhook's user)."""
    session: Session
    actor: Actor
    hook: RestWebhook
    user: User
    params: dict

    def p(self, name: str, default: Any = None) -> Any:
        return wire.param(self.params, name, default)


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    scope: str  # "" for the basic methods every webhook may call (profile, scope, methods…)
    fn: Callable[[Call], Any]
    write: bool = False
    in_batch: bool = True


METHODS: dict[str, Method] = {}


def method(name: str, scope: str = "crm", write: bool = False, in_batch: bool = True):
    """Register a REST method under its Bitrix24 name (case-insensitive)."""
    def register(fn: Callable[[Call], Any]) -> Callable[[Call], Any]:
        METHODS[name.lower()] = Method(name, scope, fn, write, in_batch)
        return fn
    return register


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who calls: the webhook and its user, resolved once per request."""
    hook_id: int
    user_id: int
    client: str = ""


def authenticate(user_id: str, code: str, client: str = "") -> Caller:
    def read(s: Session) -> Caller:
        found = webhooks.resolve(s, user_id, code)
        if found is None:
            raise wire.invalid_credentials()
        hook, user = found
        if hook.last_used_at is None or (utcnow() - hook.last_used_at).total_seconds() > 60:
            hook.last_used_at = utcnow()  # «последнее использование», to the minute
            s.add(hook)
        return Caller(hook.id, user.id, client)
    return transact(read)


def find(name: str) -> Method:
    m = METHODS.get((name or "").strip().lower())
    if m is None:
        raise wire.method_not_found()
    return m


def _service_error(exc: ServiceError) -> wire.RestError:
    if isinstance(exc, NotFound):
        return wire.not_found()
    if isinstance(exc, AccessDenied):
        return wire.access_denied()
    return wire.RestError(exc.message)


def run(caller: Caller, name: str, params: dict) -> wire.Answer:
    """One call, in one unit of work (re-run on a transient conflict), as the webhook's user:
    the method's answer, or a RestError."""
    m = find(name)
    return _run(caller, m, params)


def _run(caller: Caller, m: Method, params: dict) -> wire.Answer:
    def unit(s: Session) -> wire.Answer:
        hook, user = s.get(RestWebhook, caller.hook_id), s.get(User, caller.user_id)
        if hook is None or user is None or hook.revoked_at is not None or not user.is_active:
            raise wire.invalid_credentials()
        if m.scope and m.scope not in (hook.scopes or []):
            raise wire.insufficient_scope()
        call = Call(s, webhooks.actor(hook, user, caller.client), hook, user, params)
        answer = m.fn(call)
        return answer if isinstance(answer, wire.Answer) else wire.Answer(answer)
    try:
        return transact(unit, write=m.write)
    except ServiceError as exc:
        raise _service_error(exc) from exc


# ---- batch -----------------------------------------------------------------------------------
def batch(caller: Caller, params: dict) -> dict:
    """Up to 50 commands, in order; each like a call of its own (its own unit of work, its
    errors in `result_error`); `halt` stops after the first failure. `$result[key]…` in a
    command's parameters refers to what an earlier command answered. Always HTTP 200."""
    halt, commands = wire.batch_commands(params)
    results: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    nexts: dict[str, Any] = {}
    times: dict[str, Any] = {}
    refs = {"result": results, "error": errors, "total": totals, "next": nexts, "time": times}
    for n, (key, name, query) in enumerate(commands):
        started = time.time()
        try:
            if n >= wire.BATCH_MAX:
                raise wire.RestError("Max batch length exceeded", "ERROR_BATCH_LENGTH_EXCEEDED")
            m = find(name)
            if not m.in_batch:
                raise wire.RestError("Method is not allowed for batch usage", "ERROR_BATCH_METHOD_NOT_ALLOWED", 405)
            answer = _run(caller, m, wire.resolve_refs(wire.parse_query(query), refs))
        except wire.RestError as exc:
            errors[key] = exc.body()
            if halt:
                break
            continue
        results[key] = answer.result
        if answer.total is not None:
            totals[key] = answer.total
        if answer.next is not None:
            nexts[key] = answer.next
        times[key] = wire.time_block(started)
    return {"result": wire.php_section(results), "result_error": wire.php_section(errors),
            "result_total": wire.php_section(totals), "result_next": wire.php_section(nexts),
            "result_time": wire.php_section(times)}


@method("batch", scope="", in_batch=False)
def _batch_call(call: Call) -> None:
    """Listed by `methods`; the HTTP side runs `batch` itself (rest/routes.py)."""
    raise wire.RestError("Method is not allowed for batch usage", "ERROR_BATCH_METHOD_NOT_ALLOWED", 405)


# ---- the basic methods -------------------------------------------------------------------------
def _user_row(s: Session, u: User) -> dict:
    last, first, middle = (u.full_name.split() + ["", "", ""])[:3]
    return {"ID": str(u.id), "ACTIVE": bool(u.is_active), "NAME": first, "LAST_NAME": last, "SECOND_NAME": middle,
            "EMAIL": u.email or "", "LAST_LOGIN": "", "DATE_REGISTER": wire.iso(u.created_at), "TIME_ZONE": "",
            "IS_ONLINE": "N", "PERSONAL_GENDER": "", "PERSONAL_PHOTO": "", "WORK_PHONE": "", "WORK_POSITION": "",
            "UF_DEPARTMENT": [u.department_id] if u.department_id else [], "USER_TYPE": "employee"}


@method("profile", scope="")
def profile(call: Call) -> dict:
    row = _user_row(call.session, call.user)
    return {"ID": row["ID"], "ADMIN": call.user.role == "admin", "NAME": row["NAME"], "LAST_NAME": row["LAST_NAME"],
            "PERSONAL_GENDER": "", "PERSONAL_PHOTO": "", "TIME_ZONE": "", "TIME_ZONE_OFFSET": 10800}


@method("user.current", scope="user")
def user_current(call: Call) -> dict:
    return _user_row(call.session, call.user)


@method("user.get", scope="user")
def user_get(call: Call) -> wire.Answer:
    """Active and inactive employees; FILTER (or, without it, the top-level params) by ID,
    ACTIVE, EMAIL, UF_DEPARTMENT, NAME_SEARCH; ORM paging by `start`."""
    from sqlmodel import func, select
    flt = wire.param(call.params, "filter")
    flt = wire.as_map(flt, "filter") if flt is not None else call.params
    flt = {str(k).upper(): v for k, v in flt.items()}
    q = select(User)
    if "ID" in flt:
        ids = [int(x) for x in wire.as_list(flt["ID"]) if str(x).isdigit()]
        q = q.where(User.id.in_(ids))
    if "ACTIVE" in flt:
        q = q.where(User.is_active == (str(flt["ACTIVE"]).lower() in ("true", "y", "1")))
    if "EMAIL" in flt:
        q = q.where(User.email == str(flt["EMAIL"]))
    if "UF_DEPARTMENT" in flt:
        depts = [int(x) for x in wire.as_list(flt["UF_DEPARTMENT"]) if str(x).isdigit()]
        q = q.where(User.department_id.in_(depts))
    if "NAME_SEARCH" in flt:
        q = q.where(User.full_name.ilike(f"%{flt['NAME_SEARCH']}%"))
    total = call.session.exec(select(func.count()).select_from(q.subquery())).one()
    start = max(0, wire.as_start(call.p("start")))
    rows = call.session.exec(q.order_by(User.id).offset(start).limit(wire.PAGE)).all()
    return wire.Answer([_user_row(call.session, u) for u in rows], total=total,
                       next=start + len(rows) if start + len(rows) < total else None)


@method("department.get", scope="user")
def department_get(call: Call) -> wire.Answer:
    from sqlmodel import select
    rows = call.session.exec(select(Department).order_by(Department.id)).all()
    out = [{"ID": str(d.id), "NAME": d.name, "SORT": 500, "PARENT": "",
            "UF_HEAD": str(d.head_id) if getattr(d, "head_id", None) else ""} for d in rows]
    wanted = wire.param(call.params, "ID")
    if wanted not in (None, ""):
        out = [d for d in out if d["ID"] in {str(x) for x in wire.as_list(wanted)}]
    return wire.Answer(out, total=len(out))


@method("scope", scope="")
def scope(call: Call) -> list:
    return [s for s in SCOPES if s in (call.hook.scopes or [])]


@method("methods", scope="")
def methods(call: Call) -> list:
    wanted = call.p("scope")
    granted = set(call.hook.scopes or [])
    return sorted(m.name for m in METHODS.values()
                  if (not m.scope or m.scope in granted) and (not wanted or m.scope == wanted))


@method("method.get", scope="")
def method_get(call: Call) -> dict:
    m = METHODS.get(str(call.p("name") or "").lower())
    return {"isExisting": m is not None, "isAvailable": m is not None and (not m.scope or m.scope in (call.hook.scopes or []))}


@method("app.info", scope="")
def app_info(call: Call) -> dict:
    return {"SCOPE": scope(call), "LICENSE": "rxcrm", "LICENSE_TYPE": "selfhosted", "INSTALLED": True}


@method("server.time", scope="")
def server_time(call: Call) -> str:
    return wire.iso(datetime.now(timezone.utc))


__all__ = ["METHODS", "Call", "Caller", "Method", "authenticate", "batch", "find", "method", "run"]
