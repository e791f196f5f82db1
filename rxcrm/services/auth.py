"""Login, sessions and passwords (argon2). Tokens are random; only their hash is stored.

Login throttling. Every failed attempt is an audit row action="login_failed"
with details {"login" (as typed, stripped, lower-cased), "reason", "client"}; the policy
reads those rows, so it needs no table of its own and survives restarts.

- The throttle key is the pair (login, client address). A pair's failures are counted
  within PAIR_WINDOW and only since the pair's last successful login. The first
  FREE_FAILURES are free; after the n-th failure (n > FREE_FAILURES) the pair must wait
  FIRST_DELAY · 2^(n − FREE_FAILURES − 1), at most MAX_DELAY, since its last failure:
  2 s, 4 s, 8 s … 4 min 16 s, then 5 min per attempt. An attempt during the wait is refused
  with code "rate_limited" and a message naming the wait ("Попробуйте через 8 секунд"),
  even with the right password — for that pair only. Another client, or the same client on
  another login, is never refused because of it: a stranger cannot lock anybody out.
- Unknown logins (no such account) are also limited per address: an address with
  MAX_FAILED_PER_CLIENT unknown-login failures within RATE_WINDOW gets "rate_limited" for
  every further attempt that fails the password check. An existing account's right password
  from that address still logs in (unless that pair is throttled itself). The refusal is
  the same for a wrong password of an existing account from that address, so the answer
  never tells which logins exist; the row keeps the true reason and counts for its pair.
- Refusals by the throttle itself are recorded (reason "rate_limited") but not counted:
  the password is not even checked then. Every attempt that did check the password counts.
- Unknown logins are verified against a dummy hash, so they take as long as wrong passwords.

The queries read only the last minutes of one client's failures: range scans of the index
(action, client, created_at) of audit_record."""
from __future__ import annotations

import hashlib
import math
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, literal, or_
from sqlmodel import Session, select

from rxcrm import i18n
from rxcrm.db import READONLY
from rxcrm.models import AuditRecord, User, UserSession, utcnow

from . import audit
from .context import Actor
from .errors import AuthError

SESSION_TTL = timedelta(hours=12)
SESSION_COOKIE = "rxcrm_session"      # the HttpOnly cookie holding the token (set by /api/session)
SESSION_HEADER = "x-rxcrm-session"    # what the app receives instead: session_key(token)
_hasher = PasswordHasher()
# A valid hash of a random password: verifying against it when the login is unknown
# keeps the answer time the same as for a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))

BAD_CREDENTIALS = "Неверный логин или пароль"
INACTIVE = "Учётная запись отключена. Обратитесь к администратору"

# Per (login, client) pair: growing delays after a few free failures (see the docstring).
PAIR_WINDOW = timedelta(hours=1)      # a pair's failures are remembered this long …
FREE_FAILURES = 3                     # … the first ones cost nothing,
FIRST_DELAY = timedelta(seconds=2)    # then the wait doubles from this …
MAX_DELAY = timedelta(minutes=5)      # … up to this.
# Per client address, for unknown logins only.
RATE_WINDOW = timedelta(minutes=15)
MAX_FAILED_PER_CLIENT = 20

_NOT_THROTTLED = ("rate_limited",)  # reasons that do not count as failures


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def session_key(token: str) -> str:
    """What the database keeps of a session token, and all the app ever sees of it: the
    browser's HttpOnly cookie is replaced by this hash at the HTTP edge (rxcrm/web.py)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()



def actor_for(user: User, source: str = "ui", client: str = "") -> Actor:
    return Actor(user_id=user.id, login=user.login, full_name=user.full_name, role=user.role,
                 department_id=user.department_id, source=source, client=client)


def pair_delay(failures: int) -> timedelta:
    """How long a pair with `failures` counted failures waits after its last one."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - FREE_FAILURES - 1, 30), MAX_DELAY)


def wait_seconds(wait: timedelta | float) -> int:
    """A wait as whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait.total_seconds() if isinstance(wait, timedelta) else wait))


def wait_words(wait: timedelta | float) -> str:
    """The wait (a timedelta or seconds) in Russian, rounded up: "через 1 секунду",
    "через 8 секунд", "через 2 минуты" (whole minutes from one minute on)."""
    return i18n.wait_words(wait_seconds(wait), "ru")


def rate_limited_message(wait: timedelta | float) -> str:
    """"Слишком много неудачных попыток. Попробуйте через 30 секунд" (a timedelta or seconds)."""
    return i18n.rate_limited(wait_seconds(wait), "ru")


def _failed(session: Session, login_name: str, client: str, user: User | None, reason: str,
            at: datetime, answer: str | None = None) -> None:
    """Record a failed attempt at `at` (committed: it must outlive the refusal)."""
    details = {"login": login_name, "reason": reason, "client": client}
    if answer and answer != reason:
        details["answer"] = answer  # what the person was told, when it differs from the reason
    session.add(AuditRecord(created_at=at, user_id=None, action="login_failed", entity_type="user",
                            entity_id=user.id if user else None, source="system",
                            details=details, client=client))
    session.commit()


def _refuse(session: Session, login_name: str, client: str, user: User | None, reason: str,
            at: datetime, message: str, *, code: str | None = None, wait: timedelta | None = None):
    _failed(session, login_name, client, user, reason, at, answer=code)
    # details["wait_s"]: the wait in seconds, for callers that word the message themselves.
    details = {"wait_s": wait_seconds(wait)} if wait is not None else None
    raise AuthError(message, code=code or reason, details=details)


def pair_failures(session: Session, login_name: str, client: str, user_id: int | None,
                  now: datetime) -> tuple[int, datetime | None]:
    """(counted failures, time of the last one) of the pair (login, client): within
    PAIR_WINDOW and after the pair's last successful login; throttle refusals not counted.

    One statement; both parts are range scans of (action, client, created_at)."""
    since = now - PAIR_WINDOW
    last_success = select(func.max(AuditRecord.created_at)).where(
        AuditRecord.action == "login", AuditRecord.client == client,
        AuditRecord.created_at >= since, AuditRecord.entity_id == (user_id or 0)).scalar_subquery()
    reason = AuditRecord.details["reason"].as_string()
    count, last = session.execute(select(func.count(), func.max(AuditRecord.created_at)).where(
        AuditRecord.action == "login_failed", AuditRecord.client == client,
        AuditRecord.created_at >= since,
        AuditRecord.created_at > func.coalesce(
            last_success, literal(since - timedelta(microseconds=1), AuditRecord.created_at.type)),
        AuditRecord.details["login"].as_string() == login_name,
        or_(reason.is_(None), reason.not_in(_NOT_THROTTLED)))).one()
    return int(count or 0), last


def unknown_login_block(session: Session, client: str, now: datetime) -> timedelta | None:
    """None when the address may still try unknown logins; else how long it must wait.

    Blocked while it has MAX_FAILED_PER_CLIENT unknown-login failures within RATE_WINDOW.
    The wait counts the attempt being refused (it is recorded too), so trying again after
    it does get through. Reads at most MAX_FAILED_PER_CLIENT index entries, newest first."""
    if not client:
        return None
    times = session.execute(select(AuditRecord.created_at).where(
        AuditRecord.action == "login_failed", AuditRecord.client == client,
        AuditRecord.created_at >= now - RATE_WINDOW,
        AuditRecord.details["reason"].as_string() == "unknown_login",
    ).order_by(AuditRecord.created_at.desc()).limit(MAX_FAILED_PER_CLIENT)).scalars().all()
    if len(times) < MAX_FAILED_PER_CLIENT:
        return None
    # After this attempt the (MAX−1)-th newest earlier failure is the one that must age out.
    return max(times[-2] + RATE_WINDOW - now, timedelta(seconds=1))


def login(session: Session, login_name: str, password: str, client: str = "",
          now: datetime | None = None) -> tuple[str, User]:
    """Check the password and open a session. Returns (token for the browser, user).

    Throttled per (login, client) with growing delays and, for unknown logins, per client
    address (module docstring); a refusal by the throttle has code "rate_limited".
    `now` is the clock of the attempt (tests): the windows, the delays and the audit rows."""
    login_name = (login_name or "").strip().lower()[:100]
    client = (client or "").strip()[:200]
    if not login_name or not password:
        raise AuthError("Введите логин и пароль", code="empty")
    now = now or utcnow()
    user = session.exec(select(User).where(User.login == login_name)).first()
    failures, last = pair_failures(session, login_name, client, user.id if user else None, now)
    if failures > FREE_FAILURES and last is not None:
        wait = last + pair_delay(failures) - now
        if wait > timedelta(0):  # the password is not checked: this attempt does not count
            _refuse(session, login_name, client, user, "rate_limited", now,
                    rate_limited_message(wait), wait=wait)
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if not user or not ok:
        reason = "bad_password" if user else "unknown_login"
        # Same answer for known and unknown logins from a blocked address (no enumeration).
        blocked = unknown_login_block(session, client, now)
        if blocked is not None:
            _refuse(session, login_name, client, user, reason, now, rate_limited_message(blocked),
                    code="rate_limited", wait=blocked)
        _refuse(session, login_name, client, user, reason, now, BAD_CREDENTIALS)
    if not user.is_active:
        _refuse(session, login_name, client, user, "inactive", now, INACTIVE)
    token = secrets.token_urlsafe(32)
    opened = utcnow()  # the session lives on the real clock (resolve() checks it)
    session.add(UserSession(token_hash=session_key(token), user_id=user.id, created_at=opened,
                            expires_at=opened + SESSION_TTL, last_seen_at=opened, client=client))
    actor = actor_for(user, client=client)
    # Stamped with the attempt's clock: a success ends the pair's run of failures.
    session.add(AuditRecord(created_at=now, user_id=user.id, action="login", entity_type="user",
                            entity_id=user.id, source=actor.source, details={}, client=client))
    return token, user


def resolve(session: Session, token: str) -> User | None:
    """The user of a live session token, or None (unknown, expired, revoked, inactive)."""
    return resolve_key(session, session_key(token)) if token else None


def resolve_key(session: Session, key: str) -> User | None:
    """The user of the live session whose token hashes to `key`, or None."""
    if not key or len(key) != 64:
        return None
    row = session.exec(select(UserSession).where(UserSession.token_hash == key)).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if (now - row.last_seen_at) > timedelta(minutes=5) and not session.info.get(READONLY):
        row.last_seen_at = now
        session.add(row)
    return user


def logout(session: Session, token: str) -> None:
    logout_key(session, session_key(token))


def logout_key(session: Session, key: str) -> None:
    """Revoke the session whose token hashes to `key` (idempotent)."""
    row = session.exec(select(UserSession).where(UserSession.token_hash == key)).first()
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
