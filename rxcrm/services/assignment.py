"""Who gets a new item that an integration created (round robin within the department, or the head above a sum).

The declarations below are data: per integration, the department whose people receive
the items and the mode:

- ``round_robin`` — strictly cyclic over the department's active managers ordered by id.
  The cursor is the last intake assignment recorded in the audit trail (action
  ``intake_assign``, source ``intake``) whose assignee is still in the pool: the next
  manager after that one gets the item (the first manager when there is none). This is
  deterministic, survives restarts and needs no extra table; two requests processed at
  the very same moment may pick the same manager (acceptable for a spread, not a lock).
- ``threshold`` — items whose amount is above ``threshold`` go to the department head
  (``department.head_id`` when active, else the first active head of the department);
  the others are assigned by the ``below`` mode (round robin).

When nobody can be found the item stays unassigned and the caller says so."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session

from rxcrm.models import AuditRecord, Department, User

from . import audit
from .context import Actor

ASSIGNMENT: dict[str, dict] = {
    "marketplace": {"department": "dpo", "mode": "round_robin"},
    "landing": {"department": "dpo", "mode": "round_robin"},
    "education": {"department": "dpo", "mode": "round_robin"},
}
# The amount-threshold option (use it as an ASSIGNMENT value), e.g. for big contracts:
THRESHOLD_EXAMPLE = {"department": "dpo", "mode": "threshold", "threshold": 150000, "above": "head",
                     "below": "round_robin"}

ASSIGN_ACTION = "intake_assign"
_CURSOR_SCAN = 200  # how many recent intake assignments to look through for the cursor


def _department(session: Session, code: str) -> Department | None:
    return session.execute(select(Department).where(Department.code == code)).scalars().first()


def managers(session: Session, department_id: int) -> list[int]:
    """Active managers of the department, ordered by id (the round robin's cycle)."""
    return list(session.execute(
        select(User.id).where(User.department_id == department_id, User.role == "manager",
                              User.is_active.is_(True)).order_by(User.id)).scalars())


def head_of(session: Session, dept: Department) -> int | None:
    if dept.head_id:
        user = session.get(User, dept.head_id)
        if user is not None and user.is_active:
            return user.id
    return session.execute(select(User.id).where(User.department_id == dept.id, User.role == "head",
                                                 User.is_active.is_(True)).order_by(User.id)).scalars().first()


def _round_robin(session: Session, dept: Department) -> int | None:
    pool = managers(session, dept.id)
    if not pool:
        return head_of(session, dept)
    session.flush()  # assignments made earlier in this transaction count for the cursor
    recent = session.execute(
        select(AuditRecord.details).where(AuditRecord.action == ASSIGN_ACTION, AuditRecord.source == "intake")
        .order_by(AuditRecord.id.desc()).limit(_CURSOR_SCAN)).scalars()
    last = next((d.get("user_id") for d in recent if isinstance(d, dict) and d.get("user_id") in pool), None)
    if last is None:
        return pool[0]
    return pool[(pool.index(last) + 1) % len(pool)]


def pick(session: Session, integration: str, amount=None) -> tuple[int | None, str]:
    """(user id or None, how it was chosen) by the integration's declaration."""
    rule = ASSIGNMENT.get(integration) or {"department": "dpo", "mode": "round_robin"}
    dept = _department(session, rule.get("department", "dpo"))
    if dept is None:
        return None, "нет отдела"
    mode = rule.get("mode", "round_robin")
    if mode == "threshold":
        threshold = Decimal(str(rule.get("threshold", 0)))
        if amount is not None and Decimal(str(amount)) > threshold and rule.get("above", "head") == "head":
            head = head_of(session, dept)
            if head is not None:
                return head, f"сумма больше {threshold:f} — руководитель отдела"
        return _round_robin(session, dept), "по очереди"
    return _round_robin(session, dept), "по очереди"


def assign(session: Session, integration: str, amount=None) -> int | None:
    """The user id a new item from `integration` goes to (None: nobody available)."""
    return pick(session, integration, amount)[0]


def record(session: Session, actor: Actor, integration: str, entity: str, item, how: str) -> None:
    """Log the assignment (the round robin's cursor). The responsible hears of the new item
    through its ITEM_CREATED event (notifications.on_item_created)."""
    audit.record(session, actor, ASSIGN_ACTION, entity, item.id,
                 {"integration": integration, "user_id": item.responsible_id, "how": how})


__all__ = ["ASSIGNMENT", "THRESHOLD_EXAMPLE", "assign", "head_of", "managers", "pick", "record"]
