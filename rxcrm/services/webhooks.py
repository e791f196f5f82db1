"""Inbound REST webhooks (Bitrix24's «входящий вебхук»), for administrators.

A webhook belongs to a user: `/rest/<user_id>/<code>/<method>` runs as that user — the role
matrix scopes every read, rules and required fields apply to every write — within the
webhook's scopes (`crm`, `user`). The code is generated here and returned once (the caller
shows the URL once); the database keeps its SHA-256 only. A revoked webhook, or one of a
deactivated user, no longer answers. Changes made through it carry the source
«REST: <name>» (timeline, stage history, audit)."""
from __future__ import annotations

import hashlib
import secrets
import string

from sqlmodel import Session, select

from rxcrm.models import RestWebhook, User, utcnow
from rxcrm.models.rest import SCOPES

from . import audit, auth
from .access import require_admin
from .context import Actor
from .errors import NotFound, ValidationFailed

CODE_ALPHABET = string.ascii_lowercase + string.digits
CODE_LEN = 16  # like Bitrix24's codes: 16 characters of [a-z0-9]
NAME_MAX = 120
SOURCE_PREFIX = "REST: "


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LEN))


def _clean_scopes(scopes) -> list[str]:
    chosen = [s for s in SCOPES if s in set(scopes or ())]
    unknown = sorted(set(scopes or ()) - set(SCOPES))
    if unknown:
        raise ValidationFailed(f"Неизвестные права вебхука: {', '.join(unknown)}",
                               fields={"scopes": "crm, user"})
    if not chosen:
        raise ValidationFailed("Выберите права вебхука: crm, user", fields={"scopes": "crm, user"})
    return chosen


def create(session: Session, actor: Actor, *, user_id: int, name: str, scopes=SCOPES,
           code: str | None = None) -> tuple[RestWebhook, str]:
    """A new webhook for `user_id` and its code (shown once). `code` is for demo data only."""
    require_admin(session, actor, "webhook_create")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Укажите название вебхука", fields={"name": "обязательно"})
    if len(name) > NAME_MAX:
        raise ValidationFailed(f"Название вебхука — не длиннее {NAME_MAX} символов",
                               fields={"name": f"≤ {NAME_MAX}"})
    user = session.get(User, int(user_id)) if str(user_id or "").strip().isdigit() else None
    if user is None or not user.is_active:
        raise NotFound("Сотрудник не найден или отключён")
    code = code or new_code()
    hook = RestWebhook(user_id=user.id, name=name, code_hash=code_hash(code), scopes=_clean_scopes(scopes),
                       created_by_id=actor.user_id)
    session.add(hook)
    session.flush()
    audit.record(session, actor, "webhook_create", "webhook", hook.id,
                 {"name": name, "user": user.login, "scopes": hook.scopes})
    return hook, code


def revoke(session: Session, actor: Actor, webhook_id: int) -> RestWebhook:
    require_admin(session, actor, "webhook_revoke")
    hook = session.get(RestWebhook, int(webhook_id))
    if hook is None:
        raise NotFound("Вебхук не найден")
    if hook.revoked_at is None:
        hook.revoked_at = utcnow()
        session.add(hook)
        audit.record(session, actor, "webhook_revoke", "webhook", hook.id, {"name": hook.name})
    return hook


def listing(session: Session, actor: Actor) -> list[dict]:
    """Every webhook, newest first: name, whose, scopes, the URL without its code, dates."""
    require_admin(session, actor, "webhook_list")
    rows = session.exec(select(RestWebhook, User).join(User, User.id == RestWebhook.user_id)
                        .order_by(RestWebhook.id.desc())).all()
    return [{"id": h.id, "name": h.name, "user_id": u.id, "user": u.full_name, "login": u.login,
             "scopes": list(h.scopes or []), "path": f"/rest/{u.id}/…/", "created_at": h.created_at,
             "last_used_at": h.last_used_at, "revoked_at": h.revoked_at, "active": h.revoked_at is None}
            for h, u in rows]


def resolve(session: Session, user_id: str | int, code: str) -> tuple[RestWebhook, User] | None:
    """The live webhook of this URL and its user, or None (a wrong code, a revoked webhook,
    another user's id, a deactivated user)."""
    if not code or len(code) > 200 or not str(user_id).isdigit():
        return None
    hook = session.exec(select(RestWebhook).where(RestWebhook.code_hash == code_hash(code))).first()
    if hook is None or hook.revoked_at is not None or hook.user_id != int(user_id):
        return None
    user = session.get(User, hook.user_id)
    if user is None or not user.is_active:
        return None
    return hook, user


# The demo database's webhooks (`make run` prints them): fixed codes, for trying the API.
DEMO_WEBHOOKS = (("admin", "demo-rest-admin", "Демо: администратор"),
                 ("manager1", "demo-rest-manager1", "Демо: менеджер"))


def ensure_demo_webhooks(session: Session) -> None:
    """Create the demo webhooks whose users exist (idempotent; demo data only)."""
    for login, code, name in DEMO_WEBHOOKS:
        user = session.exec(select(User).where(User.login == login)).first()
        exists = session.exec(select(RestWebhook.id).where(RestWebhook.code_hash == code_hash(code))).first()
        if user is not None and exists is None:
            create(session, Actor.system(), user_id=user.id, name=name, code=code)


def demo_urls(session: Session, base: str) -> list[tuple[str, str]]:
    """[(login, URL)] of the demo webhooks present and live."""
    out = []
    for login, code, _ in DEMO_WEBHOOKS:
        user = session.exec(select(User).where(User.login == login)).first()
        if user is not None and resolve(session, user.id, code) is not None:
            out.append((login, f"{base.rstrip('/')}/rest/{user.id}/{code}/"))
    return out


def actor(hook: RestWebhook, user: User, client: str = "") -> Actor:
    """The acting user of a call through `hook`: the webhook's user, source «REST: <name>»."""
    return auth.actor_for(user, source=SOURCE_PREFIX + hook.name, client=client)


__all__ = ["CODE_LEN", "DEMO_WEBHOOKS", "SOURCE_PREFIX", "actor", "code_hash", "create", "demo_urls",
           "ensure_demo_webhooks", "listing", "new_code", "resolve", "revoke"]
