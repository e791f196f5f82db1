"""Administration (/settings): users, departments and the access matrix.

Every function here is for administrators only (`actor.role == "admin"`, else AccessDenied
«Только администратор»). Changes are written in the caller's transaction (never commits)
and audited (entity_type "user" / "department" / "permission"); passwords never reach the
audit trail. Deactivating a user or resetting a password ends their sessions.

Reassigning a user's items is one UPDATE per chunk of ids plus bulk inserts of the
timeline events and audit records (one of each per item, like `items.update_fields` would
write), so a few thousand items take well under a second."""
from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import false, func, insert, select, update
from sqlmodel import Session

from rxcrm.models import (
    Activity, AuditRecord, Department, RolePermission, TimelineEvent, User, UserSession, utcnow,
)
from rxcrm.models.org import LEVELS
from rxcrm.models.pipeline import PROCESS
from rxcrm.rules import defaults

from . import audit, auth, fmt, notifications
from .access import ADMIN_ONLY, require_admin
from .entities import ENTITIES, ITEM_ENTITIES
from .context import Actor
from .errors import NotFound, ValidationFailed
from .fields import MODELS

LOGIN_RE = re.compile(r"^[a-z0-9._-]{3,40}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
MIN_PASSWORD = 8
CHUNK = 500

ROLE_CODES = tuple(r["code"] for r in defaults.ROLES)
ROLE_LABEL = {r["code"]: r["name"] for r in defaults.ROLES}
ENTITY_LABEL = {code: e.plural for code, e in ENTITIES.items()}  # «Сделки»: the access matrix rows
ACTION_LABEL = {"view": "Просмотр", "add": "Добавление", "edit": "Изменение", "delete": "Удаление",
                "export": "Экспорт", "import": "Импорт"}
LEVEL_LABEL = {"none": "Нет доступа", "own": "Свои", "department": "Своего отдела", "all": "Все"}


def _user(session: Session, user_id) -> User:
    user = session.get(User, int(user_id)) if user_id not in (None, "") else None
    if user is None:
        raise NotFound("Сотрудник не найден")
    return user


def _department(session: Session, department_id) -> Department:
    dept = session.get(Department, int(department_id)) if department_id not in (None, "") else None
    if dept is None:
        raise NotFound("Отдел не найден")
    return dept


# ---- users ----------------------------------------------------------------------------

def list_users(session: Session, actor: Actor, *, include_inactive: bool = True) -> list[dict]:
    """All users with their role, department, head flag and last login (batched)."""
    require_admin(session, actor, "user_list")
    stmt = select(User).order_by(User.is_active.desc(), User.full_name, User.id)
    if not include_inactive:
        stmt = stmt.where(User.is_active.is_(True))
    users = list(session.execute(stmt).scalars())
    depts = {d.id: d for d in session.execute(select(Department)).scalars()}
    heads = {d.head_id for d in depts.values() if d.head_id}
    last = dict(session.execute(select(UserSession.user_id, func.max(UserSession.created_at))
                                .group_by(UserSession.user_id)).all())
    now = utcnow()
    out = []
    for u in users:
        d = depts.get(u.department_id)
        out.append({
            "id": u.id, "login": u.login, "full_name": u.full_name, "email": u.email or "",
            "role": u.role, "role_label": ROLE_LABEL.get(u.role, u.role),
            "department_id": u.department_id or 0, "department": d.name if d else "",
            "is_active": bool(u.is_active), "is_head": u.id in heads, "is_self": u.id == actor.user_id,
            "created_at": fmt.dt_short(u.created_at, now),
            "last_login": fmt.dt_short(last[u.id], now) if last.get(u.id) else "",
        })
    return out


def _clean_login(login: str) -> str:
    login = (login or "").strip().lower()
    if not LOGIN_RE.match(login):
        raise ValidationFailed("Логин: от 3 до 40 символов — латинские буквы, цифры, точка, дефис, подчёркивание",
                               fields={"login": "3–40 символов: a–z, 0–9, . _ -"})
    return login


def _clean_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"Пароль: не короче {MIN_PASSWORD} символов",
                               fields={"password": f"Не короче {MIN_PASSWORD} символов"})
    if len(password) > 200:
        raise ValidationFailed("Пароль слишком длинный", fields={"password": "Не длиннее 200 символов"})
    return password


def _clean_name(full_name: str) -> str:
    name = " ".join((full_name or "").split())
    if not name:
        raise ValidationFailed("Укажите ФИО сотрудника", fields={"full_name": "Обязательное поле"})
    if len(name) > 200:
        raise ValidationFailed("ФИО слишком длинное", fields={"full_name": "Не длиннее 200 символов"})
    return name


def _clean_email(email: str) -> str:
    email = (email or "").strip()
    if email and not EMAIL_RE.match(email):
        raise ValidationFailed(f"E-mail «{email}»: неверный адрес", fields={"email": "Неверный e-mail"})
    return email


def _clean_role(role: str) -> str:
    if role not in ROLE_CODES:
        raise ValidationFailed("Выберите роль: " + ", ".join(ROLE_LABEL.values()), fields={"role": "Выберите роль"})
    return role


def _clean_department(session: Session, role: str, department_id) -> int | None:
    if department_id in (None, "", 0, "0"):
        if role in ("manager", "head"):
            raise ValidationFailed("Менеджер и руководитель должны состоять в отделе",
                                   fields={"department_id": "Выберите отдел"})
        return None
    return _department(session, department_id).id


def create_user(session: Session, actor: Actor, *, login: str, full_name: str, password: str, role: str,
                department_id: int | None, email: str = "") -> User:
    """A new active user. The login is unique (3–40 chars a–z 0–9 . _ -), the password at
    least 8 characters (the demo seeder writes users directly and is not affected)."""
    require_admin(session, actor, "user_create", login=login, role=role)
    login = _clean_login(login)
    name = _clean_name(full_name)
    _clean_password(password)
    role = _clean_role(role)
    email = _clean_email(email)
    dept_id = _clean_department(session, role, department_id)
    if session.execute(select(User.id).where(func.lower(User.login) == login)).first() is not None:
        raise ValidationFailed(f"Логин «{login}» уже занят", fields={"login": "Уже занят"})
    user = auth.create_user(session, login, name, password, role, dept_id, email)
    audit.record(session, actor, "user_create", "user", user.id,
                 {"login": login, "full_name": name, "role": role, "department_id": dept_id, "email": email})
    return user


_KEEP = object()


def update_user(session: Session, actor: Actor, user_id: int, *, full_name: str | None = None,
                email: str | None = None, role: str | None = None, department_id=_KEEP) -> dict:
    """Change name, e-mail, role or department; returns {field: (old, new)}. An admin cannot
    change their own role. Moving a head out of a department clears that department's head."""
    require_admin(session, actor, "user_update", user_id=user_id)
    user = _user(session, user_id)
    new = {}
    if full_name is not None:
        new["full_name"] = _clean_name(full_name)
    if email is not None:
        new["email"] = _clean_email(email)
    if role is not None:
        new["role"] = _clean_role(role)
        if user.id == actor.user_id and new["role"] != user.role:
            raise ValidationFailed("Свою роль изменить нельзя", fields={"role": "Свою роль изменить нельзя"})
    if department_id is not _KEEP or "role" in new:
        dept = user.department_id if department_id is _KEEP else department_id
        new["department_id"] = _clean_department(session, new.get("role", user.role), dept)
    changes = {k: (getattr(user, k), v) for k, v in new.items() if getattr(user, k) != v}
    if not changes:
        return {}
    if "department_id" in changes:
        for d in session.execute(select(Department).where(Department.head_id == user.id)).scalars():
            if d.id != changes["department_id"][1]:
                d.head_id = None
                session.add(d)
    for k, (_old, v) in changes.items():
        setattr(user, k, v)
    session.add(user)
    audit.record(session, actor, "user_update", "user", user.id,
                 {"changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}})
    return changes


def deactivate_user(session: Session, actor: Actor, user_id: int) -> int:
    """Switch a user off: they cannot log in, their sessions end now (returns how many),
    they stop being a department head. Their items keep their history (see reassign_items)."""
    require_admin(session, actor, "user_deactivate", user_id=user_id)
    user = _user(session, user_id)
    if user.id == actor.user_id:
        raise ValidationFailed("Нельзя отключить собственную учётную запись")
    if not user.is_active:
        return 0
    user.is_active = False
    session.add(user)
    for d in session.execute(select(Department).where(Department.head_id == user.id)).scalars():
        d.head_id = None
        session.add(d)
    ended = auth.revoke_user_sessions(session, user.id)
    audit.record(session, actor, "user_deactivate", "user", user.id, {"login": user.login, "sessions": ended})
    return ended


def activate_user(session: Session, actor: Actor, user_id: int) -> None:
    require_admin(session, actor, "user_activate", user_id=user_id)
    user = _user(session, user_id)
    if user.is_active:
        return
    user.is_active = True
    session.add(user)
    audit.record(session, actor, "user_activate", "user", user.id, {"login": user.login})


def reset_password(session: Session, actor: Actor, user_id: int, new_password: str) -> int:
    """Set a new password (≥ 8 characters); every session of the user ends (returns how many)."""
    require_admin(session, actor, "password_reset", user_id=user_id)
    user = _user(session, user_id)
    _clean_password(new_password)
    user.password_hash = auth.hash_password(new_password)
    session.add(user)
    ended = auth.revoke_user_sessions(session, user.id)
    audit.record(session, actor, "password_reset", "user", user.id, {"login": user.login, "sessions": ended})
    return ended


def user_item_counts(session: Session, actor: Actor, user_id: int) -> dict[str, int]:
    """How many live items the user is responsible for: {"lead_open", "lead", "deal_open",
    "deal", "contact", "company", "activities"} (for the reassign dialog)."""
    require_admin(session, actor, "user_item_counts", user_id=user_id)
    out: dict[str, int] = {}
    for ent in ITEM_ENTITIES:
        model = MODELS[ent]
        conds = [model.responsible_id == user_id, model.deleted_at.is_(None)]
        if ent in ("lead", "deal"):
            total, open_ = session.execute(select(
                func.count(), func.count().filter(model.semantic == PROCESS)).where(*conds)).one()
            out[ent], out[f"{ent}_open"] = int(total), int(open_)
        else:
            out[ent] = int(session.execute(select(func.count()).select_from(model).where(*conds)).scalar_one())
    out["activities"] = int(session.execute(select(func.count()).select_from(Activity).where(
        Activity.responsible_id == user_id, Activity.done == false())).scalar_one())
    return out


def reassign_items(session: Session, actor: Actor, from_user_id: int, to_user_id: int,
                   entities: Iterable[str] = ITEM_ENTITIES, only_open: bool = True) -> dict[str, int]:
    """Hand all live items of one user to another (e.g. after deactivation).

    Leads and deals only while in work when `only_open`; contacts and companies always.
    The items take the new responsible's department; each gets a "field_changed" timeline
    event and an "update" audit record (as an edit would), the open activities of those
    items that were the old user's move too, and the new responsible gets one
    notification. Returns {"lead": n, "deal": n, "contact": n, "company": n, "activities": n}."""
    require_admin(session, actor, "reassign", from_user_id=from_user_id, to_user_id=to_user_id)
    entities = tuple(dict.fromkeys(entities))
    bad = [e for e in entities if e not in ITEM_ENTITIES]
    if bad or not entities:
        raise ValidationFailed("Выберите, что передать: лиды, сделки, контакты, компании")
    src = _user(session, from_user_id)
    dst = _user(session, to_user_id)
    if src.id == dst.id:
        raise ValidationFailed("Выберите другого сотрудника", fields={"to_user_id": "Тот же сотрудник"})
    if not dst.is_active:
        raise ValidationFailed("Новый ответственный отключён", fields={"to_user_id": "Отключён"})
    session.flush()
    now = utcnow()
    counts: dict[str, int] = {e: 0 for e in ITEM_ENTITIES}
    counts["activities"] = 0
    for ent in entities:
        model = MODELS[ent]
        conds = [model.responsible_id == src.id, model.deleted_at.is_(None)]
        if only_open and ent in ("lead", "deal"):
            conds.append(model.semantic == PROCESS)
        ids = list(session.execute(select(model.id).where(*conds).order_by(model.id)).scalars())
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            done = session.execute(
                update(model).where(model.id.in_(chunk), model.responsible_id == src.id)
                .values(responsible_id=dst.id, department_id=dst.department_id, updated_at=now,
                        updated_by_id=actor.user_id, version=model.version + 1)
                .returning(model.id), execution_options={"synchronize_session": False}).scalars().all()
            if not done:
                continue
            change = {"field": "responsible_id", "label": "Ответственный", "old": src.id, "new": dst.id,
                      "old_text": src.full_name, "new_text": dst.full_name, "bulk": "reassign"}
            session.execute(insert(TimelineEvent), [
                {"entity_type": ent, "entity_id": i, "kind": "field_changed", "created_at": now,
                 "user_id": actor.user_id, "rule": "", "data": change} for i in done])
            session.execute(insert(AuditRecord), [
                {"created_at": now, "user_id": actor.user_id, "action": "update", "entity_type": ent,
                 "entity_id": i, "source": actor.source, "client": actor.client or "",
                 "details": {"changes": {"responsible_id": {"old": src.id, "new": dst.id}}, "bulk": "reassign"}}
                for i in done])
            moved = session.execute(
                update(Activity).where(Activity.entity_type == ent, Activity.entity_id.in_(done),
                                       Activity.responsible_id == src.id, Activity.done == false())
                .values(responsible_id=dst.id), execution_options={"synchronize_session": False})
            counts["activities"] += moved.rowcount or 0
            counts[ent] += len(done)
    _expire(session, entities)
    total = sum(counts[e] for e in ITEM_ENTITIES)
    if total:
        parts = [f"{ENTITY_LABEL[e].lower()}: {counts[e]}" for e in ITEM_ENTITIES if counts[e]]
        notifications.notify(session, dst.id, notifications.ASSIGNED,
                             f"Вам переданы элементы сотрудника {src.full_name} — " + ", ".join(parts), now=now)
    audit.record(session, actor, "reassign", "user", src.id,
                 {"to_user_id": dst.id, "to": dst.full_name, "only_open": only_open, "counts": counts})
    return counts


def _expire(session: Session, entities: Iterable[str]) -> None:
    """Objects of these kinds loaded in the session now hold stale values: reload on access."""
    kinds = tuple(MODELS[e] for e in entities) + (Activity,)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, kinds):
            session.expire(obj)


# ---- departments ----------------------------------------------------------------------

def list_departments(session: Session, actor: Actor) -> list[dict]:
    require_admin(session, actor, "department_list")
    depts = list(session.execute(select(Department).order_by(Department.name)).scalars())
    sizes = dict(session.execute(select(User.department_id, func.count()).where(User.is_active.is_(True))
                                 .group_by(User.department_id)).all())
    heads = dict(session.execute(select(User.id, User.full_name).where(
        User.id.in_({d.head_id for d in depts if d.head_id}))).all()) if depts else {}
    return [{"id": d.id, "name": d.name, "code": d.code or "", "head_id": d.head_id or 0,
             "head": heads.get(d.head_id, ""), "users": int(sizes.get(d.id, 0))} for d in depts]


def _clean_department_name(session: Session, name: str, exclude_id: int | None = None) -> str:
    name = " ".join((name or "").split())
    if len(name) < 2 or len(name) > 100:
        raise ValidationFailed("Название отдела: от 2 до 100 символов", fields={"name": "2–100 символов"})
    stmt = select(Department.id).where(func.lower(Department.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Department.id != exclude_id)
    if session.execute(stmt).first() is not None:
        raise ValidationFailed(f"Отдел «{name}» уже есть", fields={"name": "Уже есть"})
    return name


def create_department(session: Session, actor: Actor, name: str, code: str = "") -> Department:
    require_admin(session, actor, "department_create", name=name)
    name = _clean_department_name(session, name)
    code = (code or "").strip().lower()
    if code and not LOGIN_RE.match(code):
        raise ValidationFailed("Код отдела: латинские буквы и цифры", fields={"code": "a–z, 0–9"})
    dept = Department(name=name, code=code)
    session.add(dept)
    session.flush()
    audit.record(session, actor, "department_create", "department", dept.id, {"name": name})
    return dept


def rename_department(session: Session, actor: Actor, department_id: int, name: str) -> Department:
    require_admin(session, actor, "department_update", department_id=department_id, name=name)
    dept = _department(session, department_id)
    name = _clean_department_name(session, name, exclude_id=dept.id)
    if name != dept.name:
        old, dept.name = dept.name, name
        session.add(dept)
        audit.record(session, actor, "department_update", "department", dept.id,
                     {"changes": {"name": {"old": old, "new": name}}})
    return dept


def set_department_head(session: Session, actor: Actor, department_id: int, user_id: int | None) -> Department:
    """The head of a department (an active user of that department), or None to clear."""
    require_admin(session, actor, "department_update", department_id=department_id, head_id=user_id)
    dept = _department(session, department_id)
    new_id = None
    if user_id not in (None, "", 0, "0"):
        user = _user(session, user_id)
        if not user.is_active:
            raise ValidationFailed("Сотрудник отключён", fields={"user_id": "Отключён"})
        if user.department_id != dept.id:
            raise ValidationFailed("Руководитель должен состоять в этом отделе", fields={"user_id": "Не из отдела"})
        new_id = user.id
    if dept.head_id != new_id:
        old, dept.head_id = dept.head_id, new_id
        session.add(dept)
        audit.record(session, actor, "department_update", "department", dept.id,
                     {"changes": {"head_id": {"old": old, "new": new_id}}})
    return dept


# ---- the access matrix ----------------------------------------------------------------

def permission_matrix(session: Session, actor: Actor | None = None) -> dict[str, dict[str, dict[str, str]]]:
    """{role: {entity: {action: level}}} for every role × entity × action (missing = none).
    With an actor, only for admins (the /settings page); without, for internal use."""
    if actor is not None:
        require_admin(session, actor, "permission_matrix")
    out = {r: {e: {a: "none" for a in defaults.ACTIONS} for e in defaults.ENTITIES} for r in ROLE_CODES}
    for p in session.execute(select(RolePermission)).scalars():
        if p.role_code in out and p.entity in out[p.role_code] and p.action in defaults.ACTIONS:
            out[p.role_code][p.entity][p.action] = p.level
    return out


def _set_cell(session: Session, role: str, entity: str, action: str, level: str) -> str | None:
    """Write one cell; returns the old level when it changed, else None."""
    row = session.execute(select(RolePermission).where(
        RolePermission.role_code == role, RolePermission.entity == entity,
        RolePermission.action == action)).scalars().first()
    if row is None:
        session.add(RolePermission(role_code=role, entity=entity, action=action, level=level))
        return "none" if level != "none" else None
    if row.level == level:
        return None
    old, row.level = row.level, level
    session.add(row)
    return old


def set_permission(session: Session, actor: Actor, role: str, entity: str, action: str, level: str) -> bool:
    """Change one cell of the matrix; returns whether it changed. The administrator role
    always has full access (its cells cannot be changed here)."""
    require_admin(session, actor, "permission_set", role=role, entity=entity, perm_action=action,
                      level=level)
    if role not in ROLE_CODES:
        raise ValidationFailed(f"Неизвестная роль «{role}»")
    if role == "admin":
        raise ValidationFailed("Права администратора изменить нельзя")
    if entity not in defaults.ENTITIES:
        raise ValidationFailed(f"Неизвестный раздел «{entity}»")
    if action not in defaults.ACTIONS:
        raise ValidationFailed(f"Неизвестное действие «{action}»")
    if level not in LEVELS:
        raise ValidationFailed(f"Неизвестный уровень доступа «{level}»")
    old = _set_cell(session, role, entity, action, level)
    if old is None:
        return False
    audit.record(session, actor, "permission_set", "permission", None,
                 {"role": role, "entity": entity, "action": action, "old": old, "new": level})
    return True


def reset_permissions_to_defaults(session: Session, actor: Actor) -> int:
    """Every cell back to rules/defaults.PERMISSIONS; returns how many cells changed."""
    require_admin(session, actor, "permissions_reset")
    changed = 0
    for role, actions in defaults.PERMISSIONS.items():
        for entity in defaults.ENTITIES:
            for action in defaults.ACTIONS:
                if _set_cell(session, role, entity, action, actions.get(action, "none")) is not None:
                    changed += 1
    audit.record(session, actor, "permissions_reset", "permission", None, {"changed": changed})
    return changed


def matrix_labels() -> dict:
    """Labels for the matrix editor: roles, entities, actions, levels — in display order."""
    return {"roles": [(r, ROLE_LABEL[r]) for r in ROLE_CODES],
            "entities": [(e, ENTITY_LABEL[e]) for e in defaults.ENTITIES],
            "actions": [(a, ACTION_LABEL[a]) for a in defaults.ACTIONS],
            "levels": [(lv, LEVEL_LABEL[lv]) for lv in LEVELS]}


__all__ = ["ACTION_LABEL", "ADMIN_ONLY", "ENTITY_LABEL", "LEVEL_LABEL", "MIN_PASSWORD", "ROLE_LABEL",
           "activate_user", "create_department", "create_user", "deactivate_user", "list_departments",
           "list_users", "matrix_labels", "permission_matrix", "reassign_items", "rename_department",
           "require_admin", "reset_password", "reset_permissions_to_defaults", "set_department_head",
           "set_permission", "update_user", "user_item_counts"]
