"""Writing the audit trail (История). Every service that changes or shows data calls it."""
from __future__ import annotations

from sqlmodel import Session

from rxcrm.models import AuditRecord

from .context import Actor


def record(session: Session, actor: Actor | None, action: str, entity_type: str = "",
           entity_id: int | None = None, details: dict | None = None, *,
           client: str | None = None) -> None:
    """`client` overrides the actor's (a failed login has no actor but a client address)."""
    session.add(AuditRecord(
        user_id=actor.user_id if actor else None,
        action=action, entity_type=entity_type, entity_id=entity_id,
        source=actor.source if actor else "system",
        details=details or {},
        client=(client if client is not None else (actor.client if actor else ""))[:200],
    ))
