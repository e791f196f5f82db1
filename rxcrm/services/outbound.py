"""Outbound events: Bitrix24's outgoing webhooks (`ONCRMDEALADD`, `ONCRMDEALUPDATE`,
`ONCRMDEALDELETE`, … for leads, deals, contacts and companies).

- A **binding** is a URL that receives one event. An admin registers it on /settings, or an
  integration registers it with `event.bind` through an admin's webhook.
- The write services publish ITEM_CREATED / FIELDS_CHANGED / STAGE_CHANGED / ITEM_DELETED.
  For each live binding of the matching event, the listeners here (wired in rxcrm/hooks.py)
  write an **outbox row in the same transaction as the change**. A change that rolls back
  announces nothing; a committed one is never lost, whatever restarts.
- One unit of work announces an item's update once, however many fields, moves and rules it
  went through (as one Bitrix24 `update` call does).
- `deliver_due` posts the due rows. The app's outbound task (rxcrm/tasks.py) runs it in one
  worker at a time. The body is form-encoded as Bitrix24 sends it: `event`,
  `event_handler_id`, `data[FIELDS][ID]`, `ts`, `auth[…]` including `application_token`.
- A delivery that fails waits RETRY_DELAYS_S before the next try. After MAX_ATTEMPTS the row
  is `failed`; /settings shows it and can send it again.
- Each row is marked delivered in its own transaction right after its receiver answered 2xx.
  A receiver therefore gets each event once, unless the process dies in the instant between
  the answer and that commit; then it gets the event again."""
from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlmodel import Session, func, select

from rxcrm.models import RestEventBinding, RestOutbox, utcnow
from rxcrm.models.rest import DELIVERED, FAILED, OUTBOUND_EVENTS, PENDING

from . import audit
from .access import require_admin
from .context import Actor
from .errors import NotFound, ValidationFailed
from .shared import CONFIG, CONFIG_TTL_S, SharedAnswers, db_key

RETRY_DELAYS_S = (10, 30, 60, 300, 900, 3600, 3600, 3600, 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
DELIVERY_TIMEOUT_S = 10
BATCH = 50
_PENDING_KEY = "rxcrm_outbound_announced"  # session.info: (event, entity, id) already queued in this unit
_OPS = {"created": "ADD", "updated": "UPDATE", "deleted": "DELETE"}


def event_name(entity: str, op: str) -> str:
    return f"ONCRM{entity.upper()}{_OPS[op]}"


def public_url() -> str:
    """The portal's address as receivers see it (auth[domain], auth[client_endpoint])."""
    return os.environ.get("RXCRM_PUBLIC_URL", "http://localhost:3000").rstrip("/")


def member_id() -> str:
    return hashlib.sha256(public_url().encode()).hexdigest()[:32]


# ---- bindings ------------------------------------------------------------------------------------
def _check_handler(handler: str) -> str:
    handler = (handler or "").strip()
    parts = urlsplit(handler)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(handler) > 2000:
        raise ValidationFailed("Адрес обработчика: полный URL, начиная с http:// или https://",
                               fields={"handler": "URL"})
    return handler


def _check_event(event: str) -> str:
    event = (event or "").strip().upper()
    if event not in OUTBOUND_EVENTS:
        raise ValidationFailed(f"Событие «{event}» не поддерживается: {', '.join(OUTBOUND_EVENTS)}",
                               fields={"event": event})
    return event


def bind(session: Session, actor: Actor, event: str, handler: str, *, name: str = "",
         webhook_id: int | None = None) -> RestEventBinding:
    """Register `handler` for `event` (admins). Binding the same pair again keeps the first one."""
    require_admin(session, actor, "event_bind")
    event, handler = _check_event(event), _check_handler(handler)
    found = session.exec(select(RestEventBinding).where(RestEventBinding.event == event,
                                                        RestEventBinding.handler == handler,
                                                        RestEventBinding.revoked_at.is_(None))).first()
    if found is not None:
        return found
    binding = RestEventBinding(event=event, handler=handler, application_token=secrets.token_hex(16),
                               name=(name or "").strip()[:120], created_by_id=actor.user_id, webhook_id=webhook_id)
    session.add(binding)
    session.flush()
    audit.record(session, actor, "event_bind", "event_binding", binding.id, {"event": event, "handler": handler})
    return binding


def unbind(session: Session, actor: Actor, *, binding_id: int | None = None, event: str = "",
           handler: str = "") -> int:
    """Stop bindings (one by id, or by event and handler as event.unbind does); how many."""
    require_admin(session, actor, "event_unbind")
    q = select(RestEventBinding).where(RestEventBinding.revoked_at.is_(None))
    if binding_id is not None:
        q = q.where(RestEventBinding.id == int(binding_id))
    else:
        q = q.where(RestEventBinding.event == _check_event(event))
        if handler:
            q = q.where(RestEventBinding.handler == handler.strip())
    rows = session.exec(q).all()
    if binding_id is not None and not rows:
        raise NotFound("Подписка на событие не найдена")
    for b in rows:
        b.revoked_at = utcnow()
        session.add(b)
        audit.record(session, actor, "event_unbind", "event_binding", b.id, {"event": b.event, "handler": b.handler})
    return len(rows)


def bindings(session: Session, actor: Actor) -> list[dict]:
    require_admin(session, actor, "event_list")
    counts = dict(session.exec(select(RestOutbox.binding_id, func.count()).where(RestOutbox.status == PENDING)
                               .group_by(RestOutbox.binding_id)).all())
    return [{"id": b.id, "event": b.event, "handler": b.handler, "name": b.name, "created_at": b.created_at,
             "active": b.revoked_at is None, "pending": counts.get(b.id, 0)}
            for b in session.exec(select(RestEventBinding).order_by(RestEventBinding.id.desc())).all()]


def deliveries(session: Session, actor: Actor, limit: int = 30) -> list[RestOutbox]:
    require_admin(session, actor, "event_list")
    return list(session.exec(select(RestOutbox).order_by(RestOutbox.id.desc()).limit(limit)).all())


def retry(session: Session, actor: Actor, outbox_id: int) -> RestOutbox:
    """Send a failed delivery again (admins)."""
    require_admin(session, actor, "event_retry")
    row = session.get(RestOutbox, int(outbox_id))
    if row is None:
        raise NotFound("Доставка не найдена")
    row.status, row.next_at, row.attempts = PENDING, utcnow(), 0
    session.add(row)
    audit.record(session, actor, "event_retry", "event_binding", row.binding_id, {"outbox_id": row.id})
    return row


# ---- the listeners: an outbox row in the change's own transaction ---------------------------------
_BOUND = SharedAnswers(size=128, ttl=CONFIG_TTL_S)


def _bindings(session: Session, event: str) -> list[RestEventBinding]:
    """The live bindings of an event: which they are is kept per process with the
    configuration generation (a binding is configuration: changes.CONFIG_TABLES), so a write
    with no subscriber costs no query."""
    def read() -> tuple[int, ...]:
        return tuple(session.exec(select(RestEventBinding.id).where(RestEventBinding.event == event,
                                                                    RestEventBinding.revoked_at.is_(None))).all())
    found = [session.get(RestEventBinding, i) for i in _BOUND.get((db_key(session), CONFIG.value, event), read)]
    return [b for b in found if b is not None and b.revoked_at is None]


def _announce(session: Session, entity: str, item_id: int | None, op: str) -> None:
    if item_id is None:
        return
    event = event_name(entity, op)
    seen = session.info.setdefault(_PENDING_KEY, set())
    if (event, item_id) in seen or (op == "updated" and (event_name(entity, "created"), item_id) in seen):
        return  # an item created in this unit is announced once, as created
    seen.add((event, item_id))
    for b in _bindings(session, event):
        session.add(RestOutbox(binding_id=b.id, event=event, entity_type=entity, entity_id=item_id,
                               payload={"event": event, "event_handler_id": str(b.id),
                                        "data[FIELDS][ID]": str(item_id), "ts": str(int(time.time()))}))


def on_item_created(session: Session, *, entity: str, item, **_) -> None:
    _announce(session, entity, item.id, "created")


def on_fields_changed(session: Session, *, entity: str, item, **_) -> None:
    _announce(session, entity, item.id, "updated")


def on_stage_changed(session: Session, *, entity: str, item, **_) -> None:
    _announce(session, entity, item.id, "updated")


def on_item_deleted(session: Session, *, entity: str, item, **_) -> None:
    _announce(session, entity, item.id, "deleted")


# ---- delivery --------------------------------------------------------------------------------------
def body(row: RestOutbox, binding: RestEventBinding) -> dict[str, str]:
    """The form fields of a delivery, as Bitrix24 posts them."""
    base = public_url()
    return {**row.payload,
            "auth[domain]": urlsplit(base).netloc, "auth[client_endpoint]": f"{base}/rest/",
            "auth[server_endpoint]": f"{base}/rest/", "auth[member_id]": member_id(),
            "auth[application_token]": binding.application_token}


def _post(url: str, form: dict[str, str]) -> int:
    import httpx
    return httpx.post(url, data=form, timeout=DELIVERY_TIMEOUT_S, follow_redirects=False).status_code


def deliver_due(session_factory: Callable, now: datetime | None = None, limit: int = BATCH,
                post: Callable[[str, dict], int] = _post) -> dict[str, int]:
    """Post the due deliveries, oldest first; each row is settled in its own short unit of work
    right after its receiver answered. {"delivered": n, "retry": n, "failed": n}."""
    now = now or utcnow()
    with session_factory(write=False) as s:
        due = [(r.id, r.binding_id) for r in s.exec(
            select(RestOutbox).where(RestOutbox.status == PENDING, RestOutbox.next_at <= now)
            .order_by(RestOutbox.id).limit(limit)).all()]
    out = {"delivered": 0, "retry": 0, "failed": 0}
    for row_id, _binding_id in due:
        with session_factory() as s:
            row = s.get(RestOutbox, row_id)
            if row is None or row.status != PENDING:
                continue  # settled meanwhile (a retry from /settings, another round)
            binding = s.get(RestEventBinding, row.binding_id)
            if binding is None or binding.revoked_at is not None:
                row.status, row.last_error = FAILED, "подписка отменена"
                s.add(row)
                out["failed"] += 1
                continue
            url, form = binding.handler, body(row, binding)
        try:
            status = post(url, form)
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - any transport failure is a failed try
            error = f"{type(exc).__name__}: {exc}"[:500]
        with session_factory() as s:
            row = s.get(RestOutbox, row_id)
            row.attempts += 1
            if not error:
                row.status, row.delivered_at, row.last_error = DELIVERED, utcnow(), ""
                out["delivered"] += 1
            elif row.attempts >= MAX_ATTEMPTS:
                row.status, row.last_error = FAILED, error
                out["failed"] += 1
            else:
                row.next_at = utcnow() + timedelta(seconds=RETRY_DELAYS_S[row.attempts - 1])
                row.last_error = error
                out["retry"] += 1
            s.add(row)
    return out


__all__ = ["MAX_ATTEMPTS", "RETRY_DELAYS_S", "bind", "bindings", "body", "deliver_due", "deliveries", "event_name",
           "on_fields_changed", "on_item_created", "on_item_deleted", "on_stage_changed", "retry", "unbind"]
