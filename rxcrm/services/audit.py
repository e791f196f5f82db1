"""Writing the audit trail (История). Services record what they do with `record`; the
item lifecycle (created, changed, moved, deleted) is recorded by the event subscribers at
the end of this module (wired in rxcrm/hooks.py)."""
from __future__ import annotations

import logging

from sqlalchemy import event
from sqlmodel import Session

from rxcrm.db import READONLY, open_session
from rxcrm.models import AuditRecord, utcnow
from rxcrm.models.base import new_row

from .context import IMPORT_SOURCE, Actor

log = logging.getLogger(__name__)

DENIED = "denied"  # the audit action of a refused attempt (see `refused`)
_PENDING = "rxcrm_pending_refusals"  # session.info key: refusals waiting for the caller's transaction


def record(session: Session, actor: Actor | None, action: str, entity_type: str = "",
           entity_id: int | None = None, details: dict | None = None, *,
           client: str | None = None) -> None:
    """`client` overrides the actor's (a failed login has no actor but a client address)."""
    session.add(new_row(  # new_row: one of the most frequent rows (≈ 5 µs instead of ≈ 50 µs)
        AuditRecord, user_id=actor.user_id if actor else None,
        action=action, entity_type=entity_type, entity_id=entity_id,
        source=actor.source if actor else "system",
        details=details or {},
        client=(client if client is not None else (actor.client if actor else ""))[:200],
    ))


def _plain(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def refused(session: Session, actor: Actor | None, action: str, reason: str = "",
            details: dict | None = None, *, entity_type: str = "", entity_id: int | None = None) -> None:
    """Record that `actor` tried `action` (e.g. "user_create") and was refused: an audit row
    with action "denied" and details {"action": action, "reason": reason, **details}.

    The row must outlive the refusal, so it is NOT written in the caller's transaction (whose
    rollback would undo it, and which may be read-only): it is committed at once in its own
    short unit of work on the same database. Only when the caller's unit already holds
    SQLite's write lock (a write unit that has begun) would that wait for the caller itself;
    then the row is committed right after the caller's transaction ends (commit, rollback or
    close). A failure to write it is logged; it never replaces the refusal itself.
    Call it just before raising the refusal (see admin.require_admin)."""
    row = {"created_at": utcnow(), "user_id": actor.user_id if actor else None, "action": DENIED,
           "entity_type": entity_type, "entity_id": entity_id, "source": actor.source if actor else "system",
           "client": (actor.client if actor else "")[:200],
           "details": {"action": action, "reason": reason,
                       **{str(k): _plain(v) for k, v in (details or {}).items()}}}
    bind = session.get_bind()
    bind = getattr(bind, "engine", bind)  # (a session bound to a connection: its engine)
    if bind.dialect.name == "sqlite" and not session.info.get(READONLY) and session.in_transaction():
        pending = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = []
            event.listen(session, "after_transaction_end", _flush_pending)
        pending.append((bind, row))
        return
    _write(bind, row)


def _flush_pending(session: Session, transaction) -> None:
    if transaction.parent is not None:  # a savepoint ended; the caller's transaction goes on
        return
    pending = session.info.get(_PENDING) or []
    while pending:
        bind, row = pending.pop(0)
        _write(bind, row)


def _write(bind, row: dict) -> None:
    try:
        with open_session(bind) as s:
            s.add(AuditRecord(**row))
            s.commit()
    except Exception:  # noqa: BLE001 — the refusal stands even if its record cannot be written
        log.exception("could not record the refused action %r of user %s", row["details"].get("action"),
                      row["user_id"])


# ---- event subscribers (wired in rxcrm/hooks.py) --------------------------------------------

def on_item_created(session: Session, *, actor: Actor, entity: str, item, stage, details: dict) -> None:
    if actor.source != IMPORT_SOURCE:
        record(session, actor, "create", entity, item.id, details)


def on_fields_changed(session: Session, *, actor: Actor, entity: str, item, changes: dict) -> None:
    record(session, actor, "update", entity, item.id,
           {"changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}})


def on_stage_changed(session: Session, *, actor: Actor, entity: str, item, old, new) -> None:
    record(session, actor, "move", entity, item.id, {"from": old.name, "to": new.name})


def on_item_deleted(session: Session, *, actor: Actor, entity: str, item) -> None:
    record(session, actor, "delete", entity, item.id, {"title": getattr(item, "title", "")})
