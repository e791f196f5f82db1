"""Login throttling (issue 11) on SQLite and PostgreSQL: growing delays per (login, client),
never a refusal for a client that has not failed, and the per-address limit for unknown
logins only. The clock is the `now` argument of `auth.login`, so no test sleeps."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, UserSession, utcnow
from rxcrm.services import auth
from rxcrm.services.errors import AuthError

from . import factories as f

S = timedelta(seconds=1)


@pytest.fixture
def users(db):
    with session_scope(db) as s:
        for login in ("manager1", "manager2", "manager3"):
            f.user(s, login)
    return db


@pytest.fixture
def t0() -> datetime:
    return utcnow().replace(microsecond=0)


def attempt(db, login, client, password="wrong", at=None) -> AuthError:
    with pytest.raises(AuthError) as err, session_scope(db) as s:
        auth.login(s, login, password, client=client, now=at)
    return err.value


def fail(db, login, client, password="wrong", at=None) -> str:
    return attempt(db, login, client, password, at).code


def ok(db, login, client, at=None) -> None:
    with session_scope(db) as s:
        token, user = auth.login(s, login, "demo", client=client, now=at)
    assert token and user.login == login.strip().lower()


def last_audit(db) -> AuditRecord:
    with session_scope(db) as s:
        return s.exec(select(AuditRecord).order_by(AuditRecord.id.desc())).first()


def test_delay_schedule():
    free = [auth.pair_delay(n) for n in range(auth.FREE_FAILURES + 1)]
    assert free == [timedelta(0)] * (auth.FREE_FAILURES + 1)
    growing = [auth.pair_delay(n).total_seconds() for n in range(4, 14)]
    assert growing == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert auth.pair_delay(10_000) == auth.MAX_DELAY


@pytest.mark.parametrize("seconds,words", [
    (0.2, "через 1 секунду"), (1, "через 1 секунду"), (2, "через 2 секунды"),
    (4, "через 4 секунды"), (5, "через 5 секунд"), (11, "через 11 секунд"),
    (21, "через 21 секунду"), (22, "через 22 секунды"), (30, "через 30 секунд"),
    (59.5, "через 1 минуту"), (60, "через 1 минуту"), (61, "через 2 минуты"),
    (256, "через 5 минут"), (300, "через 5 минут"), (14 * 60 + 1, "через 15 минут"),
    (21 * 60, "через 21 минуту"),
])
def test_the_wait_is_named_in_correct_russian(seconds, words):
    assert auth.wait_words(timedelta(seconds=seconds)) == words
    assert auth.wait_words(seconds) == words
    assert (auth.rate_limited_message(timedelta(seconds=seconds))
            == f"Слишком много неудачных попыток. Попробуйте {words}")


def test_a_stranger_cannot_lock_the_owner_out(users, t0):
    db = users
    at = t0
    for _ in range(10):  # ten real failures (each one after the pair's delay)
        assert fail(db, "manager1", "10.0.0.66", at=at) == "bad_password"
        at += auth.MAX_DELAY
    at -= auth.MAX_DELAY
    # The stranger's pair is throttled, even with the right password …
    assert fail(db, "manager1", "10.0.0.66", password="demo", at=at + S) == "rate_limited"
    # … the owner, at another client, is not.
    ok(db, "manager1", "10.0.0.5", at=at + S)
    with session_scope(db) as s:
        assert len(s.exec(select(UserSession)).all()) == 1


def test_many_failures_from_one_address_do_not_refuse_a_user_who_has_not_failed(users, t0):
    db = users
    codes = []
    for login in ["manager1"] * 3 + ["manager2"] * 2:
        codes.append(fail(db, login, "10.0.0.1", at=t0))
    for i in range(20):
        codes.append(fail(db, f"guess{i % 10}", "10.0.0.1", at=t0))
    assert codes == ["bad_password"] * 5 + ["unknown_login"] * 20  # 25 real failures
    ok(db, "manager3", "10.0.0.1", at=t0 + S)  # has not failed: never refused
    ok(db, "manager1", "10.0.0.1", at=t0 + S)  # 3 failures are free
    ok(db, "manager2", "10.0.0.1", at=t0 + S)


def test_delays_grow_refuse_the_right_password_and_end(users, t0):
    db = users
    for _ in range(auth.FREE_FAILURES + 1):
        assert fail(db, "manager1", "10.0.0.1", at=t0) == "bad_password"
    # 4 failures: 2 s since the last one, even for the right password.
    err = attempt(db, "manager1", "10.0.0.1", password="demo", at=t0 + S)
    assert err.code == "rate_limited" and err.details == {"wait_s": 1}
    assert err.message == "Слишком много неудачных попыток. Попробуйте через 1 секунду"
    rec = last_audit(db)  # the refusal is audited (and does not count as a failure)
    assert rec.action == "login_failed" and rec.details["reason"] == "rate_limited"
    assert rec.client == "10.0.0.1" and rec.details["login"] == "manager1"
    # The delay doubles with every further failure …
    at = t0
    for n, seconds in [(5, 4), (6, 8), (7, 16), (8, 32), (9, 64)]:
        at += auth.pair_delay(n - 1)
        assert fail(db, "manager1", "10.0.0.1", at=at) == "bad_password"
        early = attempt(db, "manager1", "10.0.0.1", password="demo", at=at + S)
        assert early.code == "rate_limited"
        assert early.details == {"wait_s": seconds - 1}
        assert early.message == auth.rate_limited_message(timedelta(seconds=seconds - 1))
    assert early.message == "Слишком много неудачных попыток. Попробуйте через 2 минуты"
    with session_scope(db) as s:
        assert auth.pair_failures(s, "manager1", "10.0.0.1", None, at + S) == (9, at)
        assert s.exec(select(UserSession)).all() == []
    # … and the pair gets in once it has passed.
    assert fail(db, "manager1", "10.0.0.1", password="demo", at=at + 63 * S) == "rate_limited"
    ok(db, "manager1", "10.0.0.1", at=at + 64 * S)


def test_a_success_ends_the_run_of_failures(users, t0):
    db = users
    for _ in range(auth.FREE_FAILURES + 1):
        assert fail(db, "manager1", "10.0.0.1", at=t0) == "bad_password"
    assert fail(db, "manager1", "10.0.0.1", password="demo", at=t0 + S) == "rate_limited"
    ok(db, "manager1", "10.0.0.1", at=t0 + 2 * S)
    # Failures before the success no longer count: the next ones are free again.
    for _ in range(auth.FREE_FAILURES):
        assert fail(db, "manager1", "10.0.0.1", at=t0 + 3 * S) == "bad_password"
    ok(db, "manager1", "10.0.0.1", at=t0 + 3 * S)


def test_the_delay_is_capped(users, t0):
    db = users
    at = t0
    for n in range(12):  # up to the longest delay
        at += auth.pair_delay(n)
        assert fail(db, "manager1", "10.0.0.1", at=at) == "bad_password"
    assert fail(db, "manager1", "10.0.0.1", password="demo",
                at=at + auth.MAX_DELAY - S) == "rate_limited"
    ok(db, "manager1", "10.0.0.1", at=at + auth.MAX_DELAY)


def test_failures_are_forgotten_after_the_window(users, t0):
    db = users
    for _ in range(auth.FREE_FAILURES + 1):
        assert fail(db, "manager1", "10.0.0.1", at=t0) == "bad_password"
    assert fail(db, "manager1", "10.0.0.1", password="demo", at=t0 + S) == "rate_limited"
    later = t0 + auth.PAIR_WINDOW + S
    for _ in range(auth.FREE_FAILURES):  # free again: the old failures are out of the window
        assert fail(db, "manager1", "10.0.0.1", at=later) == "bad_password"
    ok(db, "manager1", "10.0.0.1", at=later)


def test_case_and_spaces_of_the_login_do_not_bypass_the_throttle(users, t0):
    db = users
    for login in ("Manager1 ", "MANAGER1", " manager1", "mAnAgEr1"):
        assert fail(db, login, "10.0.0.1", at=t0) == "bad_password"
    assert fail(db, "manager1", "10.0.0.1", password="demo", at=t0 + S) == "rate_limited"
    assert fail(db, "Manager1 ", "10.0.0.1", password="demo", at=t0 + S) == "rate_limited"
    ok(db, "Manager1 ", "10.0.0.1", at=t0 + 2 * S)


def test_unknown_logins_are_limited_per_address(users, t0):
    db = users
    for i in range(auth.MAX_FAILED_PER_CLIENT):
        assert fail(db, f"guess{i}", "203.0.113.7", at=t0) == "unknown_login"
    err = attempt(db, "guess-next", "203.0.113.7", at=t0 + 60 * S)
    assert err.code == "rate_limited"
    assert err.message == "Слишком много неудачных попыток. Попробуйте через 14 минут"
    # A wrong password of an existing account gets the very same answer (no enumeration) …
    err = attempt(db, "manager2", "203.0.113.7", at=t0 + 60 * S)
    assert err.code == "rate_limited"
    assert err.message == "Слишком много неудачных попыток. Попробуйте через 14 минут"
    rec = last_audit(db)  # … but is recorded as what it was, and counts for its pair.
    assert rec.details["reason"] == "bad_password" and rec.details["answer"] == "rate_limited"
    # A known user's right password from the address still works.
    ok(db, "manager1", "203.0.113.7", at=t0 + 60 * S)
    # Other addresses are not limited.
    assert fail(db, "guess-next", "198.51.100.1", at=t0 + 60 * S) == "unknown_login"
    # The refused attempt counted as well, so after the window of the earlier ones has passed
    # the address may try again.
    assert fail(db, "guess-x", "203.0.113.7", at=t0 + auth.RATE_WINDOW - S) == "rate_limited"
    assert fail(db, "guess-y", "203.0.113.7",
                at=t0 + 60 * S + auth.RATE_WINDOW) == "unknown_login"


def test_unknown_logins_are_throttled_per_pair_like_known_ones(users, t0):
    db = users
    for _ in range(auth.FREE_FAILURES + 1):
        assert fail(db, "ghost", "10.0.0.1", at=t0) == "unknown_login"
    assert fail(db, "ghost", "10.0.0.1", at=t0 + S) == "rate_limited"
    assert fail(db, "ghost", "10.0.0.2", at=t0 + S) == "unknown_login"
