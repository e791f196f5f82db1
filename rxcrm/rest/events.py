"""event.bind / event.get / event.unbind: outbound events registered by an integration
through an admin's webhook (services/outbound.py delivers them as Bitrix24 does)."""
from __future__ import annotations

from rxcrm.services import outbound

from . import wire
from .methods import Call, method


def _require_admin(call: Call) -> None:
    if call.user.role != "admin":
        raise wire.RestError("Access denied! Admin permissions are required", "ACCESS_DENIED", 403)


@method("event.bind", scope="", write=True)
def event_bind(call: Call) -> bool:
    _require_admin(call)
    event, handler = str(call.p("event") or ""), str(call.p("handler") or "")
    if not event or not handler:
        raise wire.RestError("Handler and event are required", "ERROR_ARGUMENT", argument="handler")
    outbound.bind(call.session, call.actor, event, handler, name=call.hook.name, webhook_id=call.hook.id)
    return True


@method("event.get", scope="")
def event_get(call: Call) -> list:
    _require_admin(call)
    return [{"event": b["event"], "handler": b["handler"], "auth_type": "0", "offline": 0}
            for b in outbound.bindings(call.session, call.actor) if b["active"]]


@method("event.unbind", scope="", write=True)
def event_unbind(call: Call) -> dict:
    _require_admin(call)
    event = str(call.p("event") or "")
    if not event:
        raise wire.RestError("Event is required", "ERROR_ARGUMENT", argument="event")
    return {"count": outbound.unbind(call.session, call.actor, event=event, handler=str(call.p("handler") or ""))}


__all__ = ["event_bind", "event_get", "event_unbind"]
