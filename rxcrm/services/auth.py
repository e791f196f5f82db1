"""Login, sessions and passwords (argon2). Tokens are random; only their hash is stored."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_
from sqlmodel import Session, select

from rxcrm.models import AuditRecord, User, UserSession, utcnow

from . import audit
from .context import Actor
from .errors import AuthError

SESSION_TTL = timedelta(hours=12)
_hasher = PasswordHasher()
# A valid hash of a random password: verifying against it when the login is unknown
# keeps the answer time the same as for a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))

BAD_CREDENTIALS = "Неверный логин или пароль"
INACTIVE = "Учётная запись отключена. Обратитесь к администратору"
RATE_LIMITED = "Слишком много неудачных попыток. Попробуйте через 15 минут"

# Login rate limit: failed attempts (audit "login_failed") within RATE_WINDOW, per account
# (the login as typed) and per client (its address). Refusals for the limit itself are
# recorded but not counted, so the lock ends RATE_WINDOW after the last real failure.
RATE_WINDOW = timedelta(minutes=15)
MAX_FAILED_PER_LOGIN = 5
MAX_FAILED_PER_CLIENT = 20


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def actor_for(user: User, source: str = "ui", client: str = "") -> Actor:
    return Actor(user_id=user.id, login=user.login, full_name=user.full_name, role=user.role,
                 department_id=user.department_id, source=source, client=client)


def _refuse(session: Session, user: User | None, login_name: str, client: str, reason: str,
            message: str) -> None:
    """Record the failed attempt (committed: it must outlive the refusal) and refuse."""
    audit.record(session, None, "login_failed", "user", user.id if user else None,
                 {"login": login_name, "reason": reason, "client": client}, client=client)
    session.commit()
    raise AuthError(message, code=reason)


def failed_attempts(session: Session, login_name: str, client: str = "",
                    now: datetime | None = None) -> tuple[int, int]:
    """(failed logins for this account, failed logins from this client) within RATE_WINDOW.

    Both are range scans of the (action, created_at) / (action, client, created_at)
    indexes; attempts refused by the limit itself are not counted."""
    since = (now or utcnow()) - RATE_WINDOW
    reason = AuditRecord.details["reason"].as_string()
    base = [AuditRecord.action == "login_failed", AuditRecord.created_at >= since,
            or_(reason.is_(None), reason != "rate_limited")]
    per_login = session.execute(select(func.count()).select_from(AuditRecord).where(
        *base, AuditRecord.details["login"].as_string() == login_name)).scalar_one()
    per_client = 0
    if client:
        per_client = session.execute(select(func.count()).select_from(AuditRecord).where(
            *base, AuditRecord.client == client[:200])).scalar_one()
    return int(per_login), int(per_client)


def login(session: Session, login_name: str, password: str, client: str = "",
          now: datetime | None = None) -> tuple[str, User]:
    """Check the password and open a session. Returns (token for the browser, user).

    Refused without checking the password when the account had MAX_FAILED_PER_LOGIN or the
    client MAX_FAILED_PER_CLIENT failed attempts within RATE_WINDOW (code "rate_limited")."""
    login_name = (login_name or "").strip().lower()[:100]
    client = (client or "").strip()[:200]
    if not login_name or not password:
        raise AuthError("Введите логин и пароль", code="empty")
    user = session.exec(select(User).where(User.login == login_name)).first()
    per_login, per_client = failed_attempts(session, login_name, client, now)
    if per_login >= MAX_FAILED_PER_LOGIN or per_client >= MAX_FAILED_PER_CLIENT:
        _refuse(session, user, login_name, client, "rate_limited", RATE_LIMITED)
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if not user or not ok:
        _refuse(session, user, login_name, client, "bad_password" if user else "unknown_login",
                BAD_CREDENTIALS)
    if not user.is_active:
        _refuse(session, user, login_name, client, "inactive", INACTIVE)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(UserSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                            expires_at=now + SESSION_TTL, last_seen_at=now, client=client))
    audit.record(session, actor_for(user, client=client), "login", "user", user.id)
    return token, user


def resolve(session: Session, token: str) -> User | None:
    """The user of a live session token, or None (unknown, expired, revoked, inactive)."""
    if not token:
        return None
    row = session.exec(select(UserSession).where(UserSession.token_hash == _token_hash(token))).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if (now - row.last_seen_at) > timedelta(minutes=5):
        row.last_seen_at = now
        session.add(row)
    return user


def logout(session: Session, token: str) -> None:
    row = session.exec(select(UserSession).where(UserSession.token_hash == _token_hash(token))).first()
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        user = session.get(User, row.user_id)
        audit.record(session, actor_for(user) if user else None, "logout", "user", row.user_id)


def revoke_user_sessions(session: Session, user_id: int) -> int:
    rows = session.exec(select(UserSession).where(UserSession.user_id == user_id,
                                                  UserSession.revoked_at.is_(None))).all()
    now = utcnow()
    for row in rows:
        row.revoked_at = now
        session.add(row)
    return len(rows)


def create_user(session: Session, login_name: str, full_name: str, password: str, role: str,
                department_id: int | None, email: str = "") -> User:
    user = User(login=login_name.strip().lower(), full_name=full_name, email=email,
                password_hash=hash_password(password), role=role, department_id=department_id)
    session.add(user)
    session.flush()
    return user
