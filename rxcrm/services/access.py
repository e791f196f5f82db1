"""Access levels from the role matrix (role × entity × action → none/own/department/all).

`scope(...)` gives the WHERE clause every read query of an entity must carry;
`require(...)` checks one item for a write. Issue 5 extends this to every service."""
from __future__ import annotations

from sqlalchemy import false, true
from sqlmodel import Session, select

from rxcrm.models import RolePermission

from . import audit
from .context import Actor
from .errors import AccessDenied
from .shared import CONFIG, CONFIG_TTL_S, SharedAnswers, db_key

ADMIN_ONLY = "Только администратор"


def require_admin(session: Session, actor: Actor | None, action: str, message: str = ADMIN_ONLY,
                  **details) -> None:
    """Refuse anyone but an administrator with AccessDenied(message). The refusal is written
    to the audit trail (action "denied", details {"action": action, "reason": message,
    **details}) and stays there although the caller's transaction rolls back
    (audit.refused). `action` names what was tried, like the audit action of its success."""
    if actor is None or actor.role != "admin":
        audit.refused(session, actor, action, message, details)
        raise AccessDenied(message)

NO_ACCESS = "Нет доступа: недостаточно прав для этого действия"


_LEVELS = SharedAnswers(size=4096, ttl=CONFIG_TTL_S)


def level(session: Session, actor: Actor, entity: str, action: str) -> str:
    """The role's level for an action (cached per process with the configuration)."""
    if actor.user_id is None and actor.source in ("system", "rule", "intake"):
        return "all"

    def read() -> str:
        return session.exec(select(RolePermission.level).where(
            RolePermission.role_code == actor.role, RolePermission.entity == entity,
            RolePermission.action == action)).first() or "none"
    return _LEVELS.get((db_key(session), CONFIG.value, actor.role, entity, action), read)


def scope(session: Session, actor: Actor, model, entity: str, action: str = "view"):
    """A SQL condition limiting `model` rows to those the actor may `action`."""
    lvl = level(session, actor, entity, action)
    if lvl == "all":
        return true()
    if lvl == "department":
        if actor.department_id is None:
            return model.responsible_id == actor.user_id
        return (model.department_id == actor.department_id) | (model.responsible_id == actor.user_id)
    if lvl == "own":
        return model.responsible_id == actor.user_id
    return false()


def scope_key(session: Session, actor: Actor, entity: str, action: str = "view") -> tuple:
    """Who `scope` lets see what, as a hashable key: equal keys mean equal conditions (so
    people with equal keys may share an answer)."""
    lvl = level(session, actor, entity, action)
    if lvl == "all" or lvl == "none":
        return (lvl,)
    if lvl == "department" and actor.department_id is not None:
        return (lvl, actor.department_id, actor.user_id)
    return ("own", actor.user_id)


def allowed(session: Session, actor: Actor, entity: str, action: str, item) -> bool:
    lvl = level(session, actor, entity, action)
    if lvl == "all":
        return True
    if lvl == "department":
        return (item.department_id is not None and item.department_id == actor.department_id) or \
            item.responsible_id == actor.user_id
    if lvl == "own":
        return item.responsible_id == actor.user_id
    return False


def require(session: Session, actor: Actor, entity: str, action: str, item) -> None:
    if not allowed(session, actor, entity, action, item):
        raise AccessDenied(NO_ACCESS)
