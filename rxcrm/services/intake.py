"""Integration intake: the marketplace, the landing forms and
the education system (УС ДПО) push JSON events; `rxcrm/api.py` serves
``POST /api/intake/{integration}`` and calls `accept`.

Guarantees:
- a per-integration secret (``Authorization: Bearer …``); only ``sha256(integration:token)``
  is stored, so the same demo token can serve all three integrations;
- `validate` checks the body and raises `IntakeError(status, field, message)` naming the
  field path (``client.phone``); nothing is stored for an invalid body;
- every valid event is stored raw (`IntakeEvent`, its own committed transaction) before
  processing, so a failure loses nothing and `replay` can run it again;
- idempotent by (integration, event_id): a processed event answers its stored answer again
  and changes nothing; a failed one is processed again when re-sent;
- processing runs in a savepoint of the caller's session: all or nothing; the event row is
  locked (``FOR UPDATE``; SQLite's write lock) and its status checked first, so two
  workers never process one event twice;
- `handle` (the HTTP endpoint's path) stores and processes in separate units of work, each
  re-run on a transient database conflict (`db.transact`); when processing still cannot
  run, a transient failure never marks the event failed: it stays ``received`` and the
  sender gets 202 "stored, will be processed". `reprocess_pending` (a lifespan task in
  rxcrm/tasks.py) finishes such events — and those of a crashed worker — after a grace
  period, at most MAX_ATTEMPTS times; then the event is failed with the reason, for a
  person to replay;
- each integration touches only what its declared `SCOPE` maps it to (pipelines per
  entity): an event naming another item is refused with 422 and the reason;
- concurrent events of one client (phone/e-mail), or creating the same new program, wait
  for each other on PostgreSQL (transaction advisory locks), so a burst never duplicates
  a contact or a program; on SQLite writers are serialised by the write lock anyway;
- items are created through services.create (repeat detection) and moved through
  items.move_stage; new items are assigned by services.assignment and the responsible is
  notified; every timeline event written carries ``rule`` = "<Интеграция>: <event>";
- a stage whose required fields the event cannot fill: the item lands on the furthest
  stage it may enter and a timeline event says what is missing."""
from __future__ import annotations

import hashlib
import logging
import secrets
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import event as sa_event
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from rxcrm.db import is_transient, transact
from rxcrm.models import (
    Communication, Contact, Deal, IntakeEvent, IntegrationToken, Lead, Pipeline, Product, Stage, TimelineEvent,
    utcnow,
)
from rxcrm.models.integration import FAILED, INTEGRATIONS, PROCESSED, RECEIVED
from rxcrm.models.pipeline import PROCESS

from . import access, assignment, audit, catalogs, conversion, create, items, records
from .context import Actor
from .errors import AccessDenied, NotFound, ServiceError, ValidationFailed  # noqa: F401 (AccessDenied: re-exported)
from .intake_validation import EDUCATION_STAGES, IntakeError, validate  # noqa: F401 (re-exported)
from .phones import normalize_email, normalize_phone

log = logging.getLogger(__name__)

DEMO_TOKEN = "demo-intake-token"
LABEL = {"marketplace": "Маркетплейс", "landing": "Лендинг", "education": "УС ДПО"}
SOURCE = {"marketplace": "Маркетплейс", "landing": "Лендинг", "education": "Вручную"}
DEAL_PIPELINE = "dpo"
LEAD_PIPELINE = "leads"

# What each integration may touch: entity → codes of the pipelines whose items it may find
# and change. Anything else named by an event (a deal_id of another pipeline) is a 422.
SCOPE: dict[str, dict[str, tuple[str, ...]]] = {
    "marketplace": {"lead": (LEAD_PIPELINE,), "deal": (DEAL_PIPELINE,)},
    "landing": {"lead": (LEAD_PIPELINE,), "deal": (DEAL_PIPELINE,)},
    "education": {"deal": (DEAL_PIPELINE,)},
}

MAX_ATTEMPTS = 5                        # automatic processing attempts of one event, then failed
REPROCESS_AFTER = timedelta(seconds=60)  # a `received` event younger than this may be in work now

MARKETPLACE_ACTION = {"favorite_added": "Добавлено в избранное", "compare_added": "Добавлено в сравнение"}


# ---- tokens ---------------------------------------------------------------------------

def _hash(integration: str, token: str) -> str:
    return hashlib.sha256(f"{integration}:{token}".encode("utf-8", "surrogatepass")).hexdigest()


TOKENS_ADMIN_ONLY = "Токены интеграций настраивает администратор"


def _require_admin(session: Session, actor: Actor, action: str, **details) -> None:
    access.require_admin(session, actor, action, TOKENS_ADMIN_ONLY, **details)


def create_token(session: Session, actor: Actor, integration: str, name: str = "") -> str:
    """A new secret token for the integration; the plain value is shown once (returned)."""
    _require_admin(session, actor, "token_create", integration=str(integration)[:50])
    if integration not in INTEGRATIONS:
        raise ValidationFailed("Неизвестная интеграция", fields={"integration": "Неизвестная интеграция"})
    plain = "rxi_" + secrets.token_urlsafe(32)
    tok = IntegrationToken(integration=integration, name=(name or "").strip()[:200] or LABEL[integration],
                           token_hash=_hash(integration, plain))
    session.add(tok)
    session.flush()
    audit.record(session, actor, "token_create", "", None,
                 {"integration": integration, "token_id": tok.id, "name": tok.name})
    return plain


def revoke_token(session: Session, actor: Actor, token_id: int) -> None:
    _require_admin(session, actor, "token_revoke", token_id=token_id)
    tok = session.get(IntegrationToken, token_id)
    if tok is None:
        raise NotFound("Токен не найден")
    if tok.revoked_at is None:
        tok.revoked_at = utcnow()
        session.add(tok)
        audit.record(session, actor, "token_revoke", "", None,
                     {"integration": tok.integration, "token_id": tok.id, "name": tok.name})


def list_tokens(session: Session, actor: Actor) -> list[dict]:
    _require_admin(session, actor, "token_list")
    rows = session.execute(select(IntegrationToken).order_by(IntegrationToken.integration,
                                                             IntegrationToken.id)).scalars()
    return [{"id": t.id, "integration": t.integration, "label": LABEL.get(t.integration, t.integration),
             "name": t.name, "created_at": t.created_at, "revoked_at": t.revoked_at} for t in rows]


def check_token(session: Session, integration: str, bearer: str | None) -> bool:
    if integration not in INTEGRATIONS or not bearer or len(bearer) > 500:
        return False
    found = session.execute(select(IntegrationToken.id).where(
        IntegrationToken.token_hash == _hash(integration, bearer), IntegrationToken.integration == integration,
        IntegrationToken.revoked_at.is_(None))).first()
    return found is not None


def ensure_demo_tokens(session: Session) -> None:
    """The demo token `demo-intake-token` for every integration (demo seeder only)."""
    for integration in INTEGRATIONS:
        h = _hash(integration, DEMO_TOKEN)
        if session.execute(select(IntegrationToken.id).where(IntegrationToken.token_hash == h)).first() is None:
            session.add(IntegrationToken(integration=integration, name="Демо", token_hash=h))
    session.flush()


def has_demo_token(session: Session) -> bool:
    """Whether the demo token is active (then `manage accounts` prints it)."""
    return check_token(session, INTEGRATIONS[0], DEMO_TOKEN)


# ---- accept / replay ------------------------------------------------------------------

def intake_actor(integration: str) -> Actor:
    return Actor(user_id=None, login=f"intake:{integration}", full_name=LABEL.get(integration, integration),
                 role="admin", department_id=None, source="intake")


def rule_name(integration: str, event: str) -> str:
    return f"{LABEL.get(integration, integration)}: {event}"


@contextmanager
def _rule_on_timeline(session: Session, rule: str):
    """Every timeline event written meanwhile names the rule (unless it names one)."""
    def before_flush(sess, _ctx, _instances):
        for obj in sess.new:
            if isinstance(obj, TimelineEvent) and not obj.rule:
                obj.rule = rule
    sa_event.listen(session, "before_flush", before_flush)
    try:
        yield
        session.flush()
    finally:
        sa_event.remove(session, "before_flush", before_flush)


def store(session: Session, integration: str, data: dict, body: dict) -> tuple[int, str]:
    """Store the raw event in the caller's unit of work (commit it before processing);
    (id, status). A re-sent event that is not processed yet keeps what came this time."""
    event_id, event_type = data["event_id"], data["event"]
    for _ in range(2):
        ev = session.execute(select(IntakeEvent).where(IntakeEvent.integration == integration,
                                                       IntakeEvent.event_id == event_id)).scalars().first()
        if ev is not None:
            if ev.status != PROCESSED:
                ev.payload, ev.event_type = body, event_type
                session.add(ev)
            return ev.id, ev.status
        ev = IntakeEvent(integration=integration, event_id=event_id, event_type=event_type, payload=body,
                         status=RECEIVED)
        try:
            with conversion.atomic(session):
                session.add(ev)
        except IntegrityError:  # the same event arrived concurrently and is stored now
            log.info("intake %s event %s arrived twice at once", integration, event_id)
            if ev in session:
                session.expunge(ev)
            continue
        return ev.id, ev.status
    raise ServiceError("Не удалось сохранить событие")


def _store_raw(session: Session, integration: str, data: dict, body: dict) -> tuple[int, str]:
    """Store the raw event in its own committed transaction (beside the caller's); (id, status)."""
    with Session(session.get_bind(), expire_on_commit=False) as raw:
        try:
            out = store(raw, integration, data, body)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        return out


def accept(session: Session, integration: str, body) -> tuple[int, dict]:
    """Validate, store raw, process (idempotent by event id). Returns (HTTP status, answer).

    Validation errors raise IntakeError (nothing stored); processing failures are stored on
    the event (status "failed") and answered; a transient database error is raised (the
    event stays "received"). `handle` is the same with its own, retried units of work."""
    data = validate(integration, body)
    ev_id, _status = _store_raw(session, integration, data, body)
    return process(session, ev_id, data)


def pending_answer(event_id: str, intake_event_id: int) -> dict:
    return {"event_id": event_id, "status": RECEIVED, "intake_event_id": intake_event_id,
            "message": "Событие сохранено и будет обработано автоматически в ближайшие минуты"}


def handle(integration: str, body, url: str | None = None) -> tuple[int, dict]:
    """What ``POST /api/intake/{integration}`` does, unit of work by unit of work:
    validate (IntakeError raised: nothing stored), store raw (own unit), process (own unit);
    both units are re-run on a transient conflict. When processing still cannot run, the
    stored event stays "received" and the answer is 202 — `reprocess_pending` finishes it.
    An exception from here means the event was NOT stored (the sender must retry)."""
    data = validate(integration, body)
    ev_id, _status = transact(lambda s: store(s, integration, data, body), url)
    try:
        return transact(lambda s: process(s, ev_id, data), url)
    except Exception as exc:  # noqa: BLE001  (stored: it will be processed later)
        if is_transient(exc):
            log.warning("intake %s event %s: processing postponed (%s)", integration, data["event_id"],
                        str(exc).splitlines()[0][:200])
        else:
            log.exception("intake %s event %s: processing postponed", integration, data["event_id"])
        return 202, pending_answer(data["event_id"], ev_id)


def process(session: Session, ev_id: int, data: dict | None = None, *, count_attempt: bool = True
            ) -> tuple[int, dict]:
    """Process a stored event in the caller's unit of work (its row locked first): a
    processed one answers its stored answer; handler failures are stored (status failed) and
    answered; a transient database error is raised so the unit can be run again."""
    ev = session.get(IntakeEvent, ev_id, with_for_update=True, populate_existing=True)
    if ev is None:
        raise NotFound("Событие не найдено")
    if ev.status == PROCESSED:
        return 200, dict(ev.result or {})
    if count_attempt:
        ev.attempts = (ev.attempts or 0) + 1
    integration = ev.integration
    actor = intake_actor(integration)
    try:
        if data is None:
            data = validate(integration, ev.payload)
        _one_client_at_a_time(session, data.get("client"))
        with conversion.atomic(session), _rule_on_timeline(session, rule_name(integration, data["event"])):
            answer = HANDLERS[integration](session, actor, data)
    except IntakeError as exc:
        return _failed(session, ev, exc.message, exc.status, exc.field)
    except ServiceError as exc:
        field = next(iter(getattr(exc, "fields", None) or {}), None)
        return _failed(session, ev, exc.message, 422, field)
    except Exception as exc:  # noqa: BLE001  (stored for replay; the sender gets a plain answer)
        if is_transient(exc):  # not the event's fault: the unit is run again, or later
            raise
        log.exception("intake %s event %s failed", integration, ev.event_id)
        return _failed(session, ev, f"{type(exc).__name__}: {exc}"[:2000], 202, None)
    answer = {"event_id": ev.event_id, "status": PROCESSED, **answer}
    ev.status, ev.result, ev.error, ev.processed_at = PROCESSED, answer, "", utcnow()
    session.add(ev)
    return 200, answer


_process = process  # the former private name


def _failed(session: Session, ev: IntakeEvent, message: str, status: int, field: str | None) -> tuple[int, dict]:
    ev.status, ev.error, ev.processed_at = FAILED, message, utcnow()
    ev.result = {}
    session.add(ev)
    answer = {"event_id": ev.event_id, "status": FAILED, "intake_event_id": ev.id, "error": message,
              "field": field}
    return status, answer


def replay(session: Session, actor: Actor, intake_event_id: int) -> tuple[int, dict]:
    """Process a stored (failed or never processed) event again — admins only."""
    _require_admin(session, actor, "intake_replay", intake_event_id=intake_event_id)
    ev = session.get(IntakeEvent, intake_event_id)
    if ev is None:
        raise NotFound("Событие не найдено")
    if ev.status == PROCESSED:
        raise ValidationFailed("Событие уже обработано", code="already_processed")
    audit.record(session, actor, "intake_replay", "", None,
                 {"intake_event_id": ev.id, "integration": ev.integration, "event_id": ev.event_id})
    return process(session, ev.id, None)


# ---- events left "received" (a crash, a restart, a transient error) -------------------

def _claim(session: Session, ev_id: int, cutoff: datetime, max_attempts: int) -> str:
    """Count one automatic attempt (committed before processing, so a crash counts too):
    "process", "skip" (processed meanwhile, or too young) or "exhausted" (now failed)."""
    ev = session.execute(select(IntakeEvent).where(
        IntakeEvent.id == ev_id, IntakeEvent.status == RECEIVED, IntakeEvent.received_at <= cutoff)
        .with_for_update().execution_options(populate_existing=True)).scalars().first()
    if ev is None:  # processed (or failed) meanwhile, or too young
        return "skip"
    if (ev.attempts or 0) >= max_attempts:
        last = f" Последняя ошибка: {ev.error}" if ev.error else ""
        ev.status, ev.processed_at, ev.result = FAILED, utcnow(), {}
        ev.error = (f"Не удалось обработать автоматически за {ev.attempts} попыток.{last} "
                    f"Повторите событие вручную: Настройки → Интеграции → «Повторить»")[:2000]
        session.add(ev)
        log.error("intake event %s (%s %s) failed after %d attempts", ev.id, ev.integration, ev.event_id,
                  ev.attempts)
        return "exhausted"
    ev.attempts = (ev.attempts or 0) + 1
    session.add(ev)
    return "process"


def _process_received(session: Session, ev_id: int) -> dict | None:
    """Process the event if it is still "received" (its row locked); else None."""
    ev = session.get(IntakeEvent, ev_id, with_for_update=True, populate_existing=True)
    if ev is None or ev.status != RECEIVED:
        return None
    return process(session, ev_id, None, count_attempt=False)[1]


def _note_error(ev_id: int, message: str, url: str | None) -> None:
    """Best effort: the last error of a still-received event (shown on /settings)."""
    try:
        transact(lambda s: s.execute(update(IntakeEvent).where(
            IntakeEvent.id == ev_id, IntakeEvent.status == RECEIVED).values(error=message[:2000])), url, attempts=2)
    except Exception:  # noqa: BLE001
        log.warning("could not note the error of intake event %s", ev_id)


def reprocess_pending(url: str | None = None, *, older_than: timedelta = REPROCESS_AFTER, limit: int = 100,
                      max_attempts: int = MAX_ATTEMPTS, now: datetime | None = None) -> dict[str, int]:
    """Process stored events still "received" (their processing was interrupted) that were
    received more than `older_than` ago, oldest first, at most `limit`, each in its own units
    of work. Safe with several workers at once: the claim and the processing lock the row
    and check its status, so an event is processed once. After `max_attempts` automatic
    attempts an event becomes failed with the reason (a person replays it).
    Returns {"processed", "failed", "postponed", "skipped", "exhausted"} counts."""
    cutoff = (now or utcnow()) - older_than
    ids = transact(lambda s: list(s.execute(
        select(IntakeEvent.id).where(IntakeEvent.status == RECEIVED, IntakeEvent.received_at <= cutoff)
        .order_by(IntakeEvent.received_at, IntakeEvent.id).limit(max(1, limit))).scalars()), url, write=False)
    done = {"processed": 0, "failed": 0, "postponed": 0, "skipped": 0, "exhausted": 0}
    for ev_id in ids:
        try:
            claim = transact(lambda s, ev_id=ev_id: _claim(s, ev_id, cutoff, max_attempts), url)
        except Exception:  # noqa: BLE001  (the database is busy or gone: next round)
            log.warning("intake event %s: could not be claimed, next round", ev_id, exc_info=True)
            done["postponed"] += 1
            continue
        if claim != "process":
            done["skipped" if claim == "skip" else "exhausted"] += 1
            continue
        try:
            answer = transact(lambda s, ev_id=ev_id: _process_received(s, ev_id), url)
        except Exception as exc:  # noqa: BLE001  (stays received; tried again next round)
            log.warning("intake event %s: processing postponed (%s)", ev_id, str(exc).splitlines()[0][:200])
            _note_error(ev_id, f"{type(exc).__name__}: {exc}", url)
            done["postponed"] += 1
            continue
        if answer is None:  # another worker (or the sender's retry) finished it meanwhile
            done["skipped"] += 1
        else:
            done["processed" if answer.get("status") == PROCESSED else "failed"] += 1
    if ids:
        log.info("intake re-processing: %s", done)
    return done


def pending_count(session: Session) -> int:
    """How many stored events wait for processing (status "received")."""
    return session.execute(select(func.count()).select_from(IntakeEvent)
                           .where(IntakeEvent.status == RECEIVED)).scalar_one()


def events(session: Session, actor: Actor, status: str | None = None, limit: int = 50) -> list[IntakeEvent]:
    """The latest stored events (for the settings page), newest first."""
    _require_admin(session, actor, "intake_events")
    stmt = select(IntakeEvent).order_by(IntakeEvent.id.desc()).limit(max(1, min(limit, 500)))
    if status:
        stmt = stmt.where(IntakeEvent.status == status)
    return list(session.execute(stmt).scalars())


# ---- shared processing helpers -------------------------------------------------------

def _stage(session: Session, pipe_code: str, stage_code: str) -> Stage:
    pipe = next((p for p in catalogs.pipelines(session, "lead") + catalogs.pipelines(session, "deal")
                 if p.code == pipe_code), None)
    if pipe is None:
        raise ServiceError(f"Воронка «{pipe_code}» не настроена")
    st = next((s for s in catalogs.stages(session, pipe.id) if s.code == stage_code), None)
    if st is None:
        raise ServiceError(f"В воронке «{pipe.name}» нет стадии {stage_code}")
    return st


_ENTITY_WORDS = {"lead": ("Лид", "лиды"), "deal": ("Сделка", "сделки")}


def _scope_pipelines(session: Session, integration: str, entity: str) -> list[int]:
    """Ids of the pipelines whose items of this entity the integration may touch (SCOPE)."""
    codes = SCOPE.get(integration, {}).get(entity, ())
    if not codes:
        return []
    return list(session.execute(select(Pipeline.id).where(Pipeline.entity == entity, Pipeline.code.in_(codes))
                                .order_by(Pipeline.id)).scalars())


def _require_scope(session: Session, integration: str, entity: str, item, field: str) -> None:
    """An item named by an event must be inside the integration's SCOPE, else a 422 saying why."""
    if item.pipeline_id in _scope_pipelines(session, integration, entity):
        return
    codes = SCOPE.get(integration, {}).get(entity, ())
    allowed = [p.name for p in session.execute(select(Pipeline).where(
        Pipeline.entity == entity, Pipeline.code.in_(codes)).order_by(Pipeline.id)).scalars()] if codes else []
    pipe = session.get(Pipeline, item.pipeline_id)
    one, many = _ENTITY_WORDS.get(entity, ("Запись", "записи"))
    where = f" в воронке «{pipe.name}»" if pipe is not None else ""
    may = (f"может менять только {many} воронки " + ", ".join(f"«{n}»" for n in allowed) if allowed
           else f"не может менять {many}")
    raise IntakeError(422, field, f"{one} №{item.id}{where} вне области интеграции: "
                                  f"«{LABEL.get(integration, integration)}» {may}")


def _lead_stage(session: Session, code: str) -> Stage:
    pipe = catalogs.default_pipeline(session, "lead")
    if pipe is None:
        raise ServiceError("Воронка лидов не настроена")
    st = next((s for s in catalogs.stages(session, pipe.id) if s.code == code), None)
    if st is None:
        raise ServiceError(f"В воронке лидов нет стадии {code}")
    return st


def _wait_for_others(session: Session, keys) -> None:
    """Concurrent events about the same client or the same new program wait for each other
    (PostgreSQL: transaction advisory locks, taken in sorted order). On SQLite the unit of
    work already holds the database's write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def _one_client_at_a_time(session: Session, client: dict | None) -> None:
    phones, emails = _norms(client)
    _wait_for_others(session, [f"rxcrm.intake.client:{v}" for v in phones + emails if v])


def _find_program(session: Session, prog: dict) -> Product | None:
    found = None
    if prog.get("code"):
        found = session.execute(select(Product).where(Product.code == prog["code"])
                                .order_by(Product.id)).scalars().first()
    if found is None:
        found = session.execute(select(Product).where(func.lower(Product.title) == prog["title"].lower())
                                .order_by(Product.id)).scalars().first()
    return found


def find_program(session: Session, prog: dict) -> Product:
    """By code, else by title (case-insensitive); a program not known yet is created (once,
    even when a burst of events names it at the same moment)."""
    found = _find_program(session, prog)
    if found is None:
        _wait_for_others(session, [f"rxcrm.intake.program:{prog['title'].lower()}"]
                         + ([f"rxcrm.intake.program-code:{prog['code']}"] if prog.get("code") else []))
        found = _find_program(session, prog)  # created by the event we waited for?
    if found is not None:
        return found
    found = Product(title=prog["title"], code=prog.get("code") or "",
                    price=Decimal(str(prog["price"])) if prog.get("price") is not None else Decimal(0),
                    start_date=date.fromisoformat(prog["start_date"]) if prog.get("start_date") else None)
    session.add(found)
    session.flush()
    return found


def _norms(client: dict | None) -> tuple[list[str], list[str]]:
    if not client:
        return [], []
    phones = [normalize_phone(client["phone"])] if client.get("phone") else []
    emails = [normalize_email(client["email"])] if client.get("email") else []
    return phones, emails


def _ids_by_comms(session: Session, entity: str, client: dict | None) -> list[int]:
    phones, emails = _norms(client)
    conds = []
    if phones:
        conds.append((Communication.kind == "phone") & Communication.norm.in_(phones))
    if emails:
        conds.append((Communication.kind == "email") & Communication.norm.in_(emails))
    if not conds:
        return []
    return list(session.execute(select(Communication.entity_id).where(
        Communication.entity_type == entity, or_(*conds)).distinct()).scalars())


def _client_contact(session: Session, actor: Actor, client: dict, source: str, responsible_id,
                    position: str = "", comment: str = "") -> Contact:
    """The existing contact with the client's phone/email, else a new one."""
    phones = [client["phone"]] if client.get("phone") else []
    emails = [client["email"]] if client.get("email") else []
    hit = create.find_contact(session, phones, emails)
    if hit is not None:
        return hit[0]
    last, first = client.get("last_name", ""), client.get("first_name", "")
    if not last and not first:
        first = client.get("middle_name") or (phones[0] if phones else emails[0])
    return create.create_contact(session, actor, last_name=last, first_name=first,
                                 middle_name=client.get("middle_name", ""), phones=phones, emails=emails,
                                 source=source, responsible_id=responsible_id, position=position,
                                 comment=comment)


def _name(client: dict | None) -> str:
    if not client:
        return ""
    return " ".join(p for p in (client.get("last_name"), client.get("first_name"), client.get("middle_name"))
                    if p) or client.get("phone") or client.get("email") or ""


def _note(session: Session, actor: Actor, entity: str, item_id: int, text: str, **extra) -> None:
    records.timeline(session, actor, entity, item_id, "intake", {"text": text, **extra})


def _lead_repeat_by_leads(session: Session, lead: Lead, client: dict) -> None:
    """Besides the contact match of create.detect_repeat: an earlier live lead with the same
    phone/email also makes the new lead a repeat one (the client wrote to us before)."""
    if lead.is_repeat:
        return
    ids = [i for i in _ids_by_comms(session, "lead", client) if i != lead.id]
    if not ids:
        return
    earlier = session.execute(select(Lead).where(Lead.id.in_(ids), Lead.deleted_at.is_(None), Lead.id < lead.id)
                              .order_by(Lead.id)).scalars().first()
    if earlier is None:
        return
    lead.is_repeat = True
    if lead.contact_id is None and earlier.contact_id:
        lead.contact_id = earlier.contact_id
    session.add(lead)
    session.add(TimelineEvent(entity_type="lead", entity_id=lead.id, kind="repeat_detected", user_id=None,
                              data={"text": f"Повторный лид: клиент уже обращался (лид №{earlier.id})",
                                    "lead_id": earlier.id, "by": "lead"}))


def _new_lead(session: Session, actor: Actor, integration: str, data: dict, *, program: Product | None,
              stage_code: str | None, title: str, amount=None, marketplace_action: str = "",
              comment: str = "") -> Lead:
    client = data["client"]
    resp, how = assignment.pick(session, integration, amount)
    lead = create.create_lead(
        session, actor, title=title, last_name=client.get("last_name", ""), first_name=client.get("first_name", ""),
        middle_name=client.get("middle_name", ""), phones=[client["phone"]] if client.get("phone") else [],
        emails=[client["email"]] if client.get("email") else [], source=SOURCE[integration],
        program_id=program.id if program else None, amount=amount, comment=comment, utm=data.get("utm"),
        marketplace_action=marketplace_action, responsible_id=resp, stage_code=stage_code)
    _lead_repeat_by_leads(session, lead, client)
    if lead.responsible_id:
        assignment.record(session, actor, integration, "lead", lead, how)
    return lead


def _new_deal(session: Session, actor: Actor, integration: str, data: dict, *, program: Product | None,
              stage_code: str, title: str, contact: Contact, price=None, lead: Lead | None = None,
              responsible_id: int | None = None, comment: str = "") -> Deal:
    how = "ответственный лида"
    amount = price if price is not None else (float(program.price) if program and program.price else None)
    if responsible_id is None:
        responsible_id, how = assignment.pick(session, integration, amount)
    products = None
    if program is not None:
        products = [{"product_id": program.id, "title": program.title,
                     "price": price if price is not None else program.price, "quantity": 1}]
    deal = create.create_deal(
        session, actor, pipeline_id=_stage(session, DEAL_PIPELINE, stage_code).pipeline_id, title=title,
        contact_id=contact.id, program_id=program.id if program else None, source=SOURCE[integration],
        utm=data.get("utm"), responsible_id=responsible_id,
        stage_id=_stage(session, DEAL_PIPELINE, stage_code).id, lead_id=lead.id if lead else None,
        comment=comment, products=products)
    if deal.responsible_id:
        assignment.record(session, actor, integration, "deal", deal, how)
    return deal


def _answer(lead: Lead | None = None, deal: Deal | None = None, stage: str = "", duplicate: bool = False,
            **extra) -> dict:
    item = deal or lead
    return {"lead_id": lead.id if lead else None, "deal_id": deal.id if deal else None, "stage": stage,
            "duplicate": duplicate, "repeat": bool(item.is_repeat) if item is not None else False,
            "responsible_id": item.responsible_id if item is not None else None, **extra}


def _stage_name(session: Session, item) -> str:
    st = session.get(Stage, item.stage_id)
    return st.name if st else ""


# ---- marketplace ----------------------------------------------------------------------

def _marketplace_lead(session: Session, client: dict, program: Product) -> Lead | None:
    """The client's latest marketplace lead for this program (by phone or email)."""
    ids = _ids_by_comms(session, "lead", client)
    if not ids:
        return None
    return session.execute(select(Lead).where(
        Lead.id.in_(ids), Lead.program_id == program.id, Lead.source == SOURCE["marketplace"],
        Lead.pipeline_id.in_(_scope_pipelines(session, "marketplace", "lead")),
        Lead.deleted_at.is_(None)).order_by(Lead.id.desc())).scalars().first()


def _marketplace(session: Session, actor: Actor, data: dict) -> dict:
    event, client = data["event"], data["client"]
    program = find_program(session, data["program"])
    price = data["program"].get("price")
    if price is None and program.price:
        price = float(program.price)
    lead = _marketplace_lead(session, client, program)
    if event in ("favorite_added", "compare_added"):
        return _mp_added(session, actor, data, program, price, lead)
    if event in ("favorite_removed", "compare_removed"):
        return _mp_removed(session, actor, lead, event)
    return _mp_cart(session, actor, data, program, price, lead)


def _mp_added(session, actor, data, program, price, lead) -> dict:
    action = MARKETPLACE_ACTION[data["event"]]
    program_stage = _lead_stage(session, "PROGRAM")
    if lead is not None and lead.stage_id == _lead_stage(session, "DUPLICATE").id:
        items.move_stage(session, actor, "lead", lead.id, program_stage.id)
        lead.close_reason = ""
        if lead.marketplace_action != action:
            _set_action(session, actor, lead, action)
        session.add(lead)
        _note(session, actor, "lead", lead.id, f"Программа снова на Маркетплейсе: {action.lower()}")
        return _answer(lead, stage=program_stage.name, duplicate=True, changed=True)
    if lead is not None and lead.semantic == PROCESS:
        if lead.marketplace_action != action:
            _set_action(session, actor, lead, action)
        return _answer(lead, stage=_stage_name(session, lead), duplicate=True, changed=False)
    name = _name(data["client"])
    lead = _new_lead(session, actor, "marketplace", data, program=program, stage_code="PROGRAM",
                     title=f"{program.title} — {name}" if name else program.title, amount=price,
                     marketplace_action=action)
    return _answer(lead, stage=program_stage.name, duplicate=False, changed=True)


def _set_action(session: Session, actor: Actor, lead: Lead, action: str) -> None:
    old = lead.marketplace_action
    lead.marketplace_action = action
    records.touch(lead, actor)
    session.add(lead)
    records.timeline(session, actor, "lead", lead.id, "field_changed",
                    {"field": "marketplace_action", "label": "Действие на Маркетплейсе", "old": old, "new": action})


def _mp_removed(session, actor, lead, event) -> dict:
    dup = _lead_stage(session, "DUPLICATE")
    if lead is None:
        return _answer(None, stage="", duplicate=False, changed=False, note="Лид по этому клиенту и программе не найден")
    if lead.semantic != PROCESS:
        return _answer(lead, stage=_stage_name(session, lead), duplicate=True, changed=False)
    items.move_stage(session, actor, "lead", lead.id, dup.id, allow_final=True)
    what = "избранного" if event == "favorite_removed" else "сравнения"
    lead.close_reason = f"Программа удалена из {what} на Маркетплейсе"
    session.add(lead)
    return _answer(lead, stage=dup.name, duplicate=True, changed=True)


def _mp_cart(session, actor, data, program, price, lead) -> dict:
    client = data["client"]
    converted = _lead_stage(session, "CONVERTED")
    responsible = lead.responsible_id if lead is not None and lead.responsible_id else None
    contact = (session.get(Contact, lead.contact_id) if lead is not None and lead.contact_id else None)
    if contact is None or contact.deleted_at is not None:
        contact = _client_contact(session, actor, client, SOURCE["marketplace"], responsible)
    # Already in a cart: an open deal of this contact for this program.
    open_deal = session.execute(select(Deal).where(
        Deal.contact_id == contact.id, Deal.program_id == program.id, Deal.semantic == PROCESS,
        Deal.pipeline_id.in_(_scope_pipelines(session, "marketplace", "deal")),
        Deal.deleted_at.is_(None)).order_by(Deal.id.desc())).scalars().first()
    if open_deal is not None:
        return _answer(lead, open_deal, stage=_stage_name(session, open_deal), duplicate=True, changed=False)
    name = _name(client) or contact.full_name
    deal = _new_deal(session, actor, "marketplace", data, program=program, stage_code="INTEREST",
                     title=f"{program.title} — {name}", contact=contact, price=price, lead=lead,
                     responsible_id=responsible)
    if lead is not None:
        if lead.semantic == PROCESS or lead.stage_id != converted.id:
            items.move_stage(session, actor, "lead", lead.id, converted.id, allow_final=True)
        lead.deal_id, lead.contact_id = deal.id, lead.contact_id or contact.id
        session.add(lead)
        records.timeline(session, actor, "lead", lead.id, "converted",
                        {"text": f"Программа в корзине: создана сделка №{deal.id}", "deal_id": deal.id,
                         "contact_id": contact.id})
    return _answer(lead, deal, stage=_stage_name(session, deal), duplicate=False, changed=True,
                   lead_stage=converted.name if lead is not None else None, contact_id=contact.id)


# ---- landing --------------------------------------------------------------------------

def _landing(session: Session, actor: Actor, data: dict) -> dict:
    client = data["client"]
    program = find_program(session, data["program"]) if data.get("program") else None
    if data["event"] == "question":
        lead = _new_lead(session, actor, "landing", data, program=program, stage_code=None,
                         title=f"Вопрос с лендинга — {_name(client)}", comment=data.get("question", ""))
        if data.get("question"):
            _note(session, actor, "lead", lead.id, f"Вопрос: {data['question']}")
        return _answer(lead, stage=_stage_name(session, lead), duplicate=False)
    extra = "; ".join(p for p in (f"Должность: {client['position']}" if client.get("position") else "",
                                  f"Место работы: {client['workplace']}" if client.get("workplace") else "") if p)
    contact = _client_contact(session, actor, client, SOURCE["landing"], None, position=client.get("position", ""),
                              comment=extra)
    title = f"{program.title} — {contact.full_name}" if program else f"Заявка с лендинга — {contact.full_name}"
    deal = _new_deal(session, actor, "landing", data, program=program, stage_code="REGISTRATION", title=title,
                     contact=contact, comment=extra)
    if contact.responsible_id is None and deal.responsible_id:
        contact.responsible_id, contact.department_id = deal.responsible_id, deal.department_id
        session.add(contact)
    return _answer(None, deal, stage=_stage_name(session, deal), duplicate=False, contact_id=contact.id)


# ---- education ------------------------------------------------------------------------

def _education_deal(session: Session, data: dict, program: Product | None) -> Deal | None:
    if data.get("deal_id"):
        deal = session.get(Deal, data["deal_id"])
        if deal is None or deal.deleted_at is not None:
            raise IntakeError(422, "deal_id", f"Сделка №{data['deal_id']} не найдена")
        _require_scope(session, "education", "deal", deal, "deal_id")
        return deal
    contact_ids = _ids_by_comms(session, "contact", data.get("client"))
    if not contact_ids or program is None:
        return None
    stmt = select(Deal).where(Deal.contact_id.in_(contact_ids), Deal.program_id == program.id,
                              Deal.pipeline_id.in_(_scope_pipelines(session, "education", "deal")),
                              Deal.deleted_at.is_(None))
    return (session.execute(stmt.where(Deal.semantic == PROCESS).order_by(Deal.id.desc())).scalars().first()
            or session.execute(stmt.order_by(Deal.id.desc())).scalars().first())


def _education(session: Session, actor: Actor, data: dict) -> dict:
    program = find_program(session, data["program"]) if data.get("program") else None
    deal = _education_deal(session, data, program)
    created = False
    if deal is None:
        client = data["client"]
        contact = _client_contact(session, actor, client, SOURCE["education"], None)
        deal = _new_deal(session, actor, "education", data, program=program, stage_code="REGISTRATION",
                         title=f"{program.title} — {contact.full_name}" if program else contact.full_name,
                         contact=contact, price=data.get("amount"))
        created = True
    if deal.semantic != PROCESS:
        _note(session, actor, "deal", deal.id, f"Событие «{data['event']}» пропущено: сделка уже закрыта")
        return _answer(None, deal, stage=_stage_name(session, deal), duplicate=not created, changed=False,
                       created=created, missing=[])
    values = {}
    if data.get("contract_number"):
        values[f"custom.{DEAL_PIPELINE}_contract_number"] = data["contract_number"]
    if data.get("first_payment_amount") is not None:
        values["first_payment_amount"] = data["first_payment_amount"]
    if data.get("amount") is not None and not created:
        values["amount"] = data["amount"]
    if values:
        items.update_fields(session, actor, "deal", deal.id, values)
    target = _stage(session, DEAL_PIPELINE, EDUCATION_STAGES[data["event"]])
    reached, missing = _advance(session, actor, deal, target, data["event"])
    session.refresh(deal)
    return _answer(None, deal, stage=_stage_name(session, deal), duplicate=False, changed=reached is not None,
                   created=created, target_stage=target.name, missing=missing)


def _advance(session: Session, actor: Actor, item, target: Stage, event: str) -> tuple[Stage | None, list[str]]:
    """Move the deal forward to `target`, or — when the target's required fields are not
    filled — to the furthest stage before it that it may enter, with a timeline note saying
    what is missing. Never moves backwards. (reached stage or None, missing labels)."""
    stages = [s for s in catalogs.stages(session, item.pipeline_id) if s.semantic == PROCESS]
    current = session.get(Stage, item.stage_id)
    order = {s.id: i for i, s in enumerate(stages)}
    if target.id not in order or current.id not in order:
        return None, []
    if order[current.id] >= order[target.id]:
        if order[current.id] > order[target.id]:
            _note(session, actor, "deal", item.id,
                  f"Событие «{event}»: сделка уже на стадии «{current.name}», дальше «{target.name}» — не перемещена")
        return None, []
    missing_labels: list[str] = []
    for st in reversed(stages[order[current.id] + 1: order[target.id] + 1]):
        try:
            with conversion.atomic(session):
                items.move_stage(session, actor, "deal", item.id, st.id)
        except items.MissingFields as exc:
            if st.id == target.id:
                missing_labels = [m["label"] for m in exc.details.get("missing", [])]
            continue
        if st.id != target.id:
            _note(session, actor, "deal", item.id,
                  f"Событие «{event}»: стадия «{target.name}» требует полей: {', '.join(missing_labels)}. "
                  f"Сделка переведена на «{st.name}» — заполните поля, чтобы продолжить",
                  target_stage=target.name, missing=missing_labels)
        return st, missing_labels
    _note(session, actor, "deal", item.id,
          f"Событие «{event}»: стадия «{target.name}» требует полей: {', '.join(missing_labels)}. "
          f"Сделка осталась на «{current.name}»", target_stage=target.name, missing=missing_labels)
    return None, missing_labels


HANDLERS = {"marketplace": _marketplace, "landing": _landing, "education": _education}

__all__ = ["DEMO_TOKEN", "HANDLERS", "MAX_ATTEMPTS", "SCOPE", "IntakeError", "accept", "check_token", "create_token",
           "ensure_demo_tokens", "events", "find_program", "handle", "has_demo_token", "list_tokens",
           "pending_count", "process", "replay", "reprocess_pending", "revoke_token", "store", "validate"]
