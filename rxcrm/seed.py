"""Demo data: a year of realistic work of the ДПО and admissions offices.

    python -m rxcrm.seed [--leads 2000] [--deals 1000] [--seed 42] [--db-url URL] [--if-empty]

Creates users (password "demo"), educational programs, companies, contacts, leads and
deals with their phones/emails, product rows, stage history, timeline, activities and
comments. It only ever adds rows to a database that has no users, leads or deals;
anything else is refused ("База уже содержит данные — демо-данные не загружаются").

The same seed gives the same data (names, titles, stages, amounts, ...) on any backend
and any day; only timestamps move with "now". Speed: rows come from pools pre-built with
Faker (seeded) and are drawn with random.Random; they are written in chunks of 5000 with
SQLAlchemy Core executemany (SQLite) or COPY (PostgreSQL), all in one transaction, with
primary keys assigned here and sequences reset afterwards. 100k leads + 100k deals is
≈ 3.1M rows: about 80 s on SQLite and 85 s on PostgreSQL on a 2-core machine."""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any, NamedTuple

import sqlalchemy as sa
from faker import Faker
from sqlalchemy.engine import Connection
from sqlmodel import select

from rxcrm.db import db_url, get_engine, migrate, optimize, session_scope
from rxcrm.models import (
    Activity, Comment, Communication, Company, Contact, CustomField, Deal, DealProduct,
    Department, Lead, Pipeline, Product, Stage, StageHistory, TimelineEvent, User,
)
from rxcrm.rules import defaults
from rxcrm.seed_data import (  # the vocabulary of the demo data
    MAG, ACTIVITY_SUBJECTS, ADMISSION_MANAGERS, CALL_RESULTS, CAMPAIGNS_BY_WORD, CITIES, CITY_CODES, COMMENTS,
    COMPANY_WORDS_A, COMPANY_WORDS_B, DEAL_SOURCE_WEIGHTS, DPO_MANAGERS, DPO_PROGRAMS, DUPLICATE_REASONS,
    EDUCATION_LEVELS, EMAIL_DOMAIN_WEIGHTS, FEMALE_FIRST, INDUSTRIES, INTEGRATION_SOURCES, INTEREST_AREAS,
    JUNK_REASONS, LANDING_QUESTIONS, LOST_REASONS_DPO, LOST_REASONS_MASTERS, MALE_FIRST, MARKETPLACE_ACTIONS,
    MASTER_PROGRAMS, MOBILE_CODES, OTHER_RESULTS, PATRONYMIC_ROOTS, PHONE_STYLE_WEIGHTS, PREVIOUS_SCHOOLS,
    PUBLIC_ORGS, SOURCE_WEIGHTS, USERS, UTM_CAMPAIGNS, UTM_CONTENT, UTM_SOURCES, format_phone, inn, translit,
)
from rxcrm.services.auth import hash_password
from rxcrm.services.bootstrap import ensure_defaults
from rxcrm.services.phones import comm_row, search_text
from rxcrm.settings import TZ

NOT_EMPTY = "База уже содержит данные — демо-данные не загружаются"
DEMO_PASSWORD = "demo"
CHUNK = 5000


class SeedRefused(RuntimeError):
    """The database already has users, leads or deals: demo data is not loaded."""

    def __init__(self) -> None:
        super().__init__(NOT_EMPTY)



# --------------------------------------------------------------------------- writer

class _Writer:
    """Buffered inserts with ids assigned here, on one connection (one transaction):
    SQLAlchemy Core executemany, or on PostgreSQL with `copy` the COPY protocol."""

    def __init__(self, conn: Connection, chunk: int = CHUNK, copy: bool = False) -> None:
        self.conn, self.chunk = conn, chunk
        self.copy = copy and conn.dialect.name == "postgresql"
        self.buf: dict[str, list[dict]] = {}
        self.tables: dict[str, sa.Table] = {}
        self.next_ids: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def register(self, model: Any) -> None:
        table = model.__table__
        self.tables[table.name] = table
        self.buf[table.name] = []
        self.counts.setdefault(table.name, 0)
        top = self.conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
        self.next_ids[table.name] = (top or 0) + 1

    def new_id(self, name: str) -> int:
        i = self.next_ids[name]
        self.next_ids[name] = i + 1
        return i

    def add(self, name: str, row: dict) -> None:
        buf = self.buf[name]
        buf.append(row)
        if len(buf) >= self.chunk:
            self.flush(name)

    def flush(self, name: str | None = None) -> None:
        for n in [name] if name else list(self.buf):
            rows = self.buf[n]
            if rows:
                if self.copy:
                    self._copy(self.tables[n], rows)
                else:
                    self.conn.execute(sa.insert(self.tables[n]), rows)
                self.counts[n] += len(rows)
                self.buf[n] = []

    def _copy(self, table: sa.Table, rows: list[dict]) -> None:
        """COPY ... FROM STDIN (text format) through the psycopg connection of `conn`."""
        cols = list(rows[0])
        json_at = [i for i, c in enumerate(cols) if isinstance(table.c[c].type, sa.JSON)]
        names = ", ".join(f'"{c}"' for c in cols)
        dumps = json.dumps
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as cp:
            for r in rows:
                vals = [r[c] for c in cols]
                for i in json_at:
                    vals[i] = dumps(vals[i])
                cp.write_row(vals)


# --------------------------------------------------------------------------- generator

class _St(NamedTuple):
    id: int
    code: str
    name: str
    semantic: str


class _Flow:
    """A pipeline as the generator sees it: ordered process stages, success, failures."""

    def __init__(self, pipe: Pipeline, stage_rows: list[Stage]) -> None:
        self.id = pipe.id
        self.code = pipe.code
        stages = [_St(s.id, s.code, s.name, s.semantic) for s in stage_rows]
        self.process = [s for s in stages if s.semantic == "process"]
        self.success = next(s for s in stages if s.semantic == "success")
        self.failures = [s for s in stages if s.semantic == "failure"]
        self.index = {s.code: i for i, s in enumerate(self.process)}

    def reached(self, code: str, idx: int) -> bool:
        """Did an item whose furthest process stage is `idx` pass stage `code`?"""
        i = self.index.get(code)
        return i is not None and idx >= i


class _Gen:
    def __init__(self, conn: Connection, session_data: dict, seed: int, now: datetime,
                 pg_copy: bool = True) -> None:
        self.conn = conn
        # Two streams: `rng` decides everything but the clock (names, stages, amounts, how
        # many of what), `trng` only places things in time. Branches on the clock (weekend,
        # working hours, "now") draw from `trng` alone, so the same seed gives the same data
        # whatever the day of the run.
        self.rng = random.Random(seed)
        self.trng = random.Random(f"{seed}:time")
        self.now = now.astimezone(UTC)
        # The offices' clock (settings.TZ, Moscow): working hours are 9:00–19:00 there.
        # Times are kept in UTC; `off` turns them into wall-clock time for hour checks.
        self.off = now.astimezone(TZ).utcoffset() or timedelta(0)
        local = self.now + self.off
        self.today0 = local.replace(hour=0, minute=0, second=0, microsecond=0) - self.off
        self.work_start = self.today0 + timedelta(hours=9)
        self.work_end = self.today0 + timedelta(hours=19)
        self.day_end = self.today0 + timedelta(days=1)
        self.today = local.date()
        self.d = session_data
        self.w = _Writer(conn, copy=pg_copy)
        for model in (User, Product, Company, Contact, Lead, Deal, DealProduct, Communication,
                      StageHistory, TimelineEvent, Activity, Comment):
            self.w.register(model)
        self._build_pools(seed)
        self.used_phones: set[str] = set()
        self.used_emails: set[str] = set()

    # ---- pools and small helpers

    def _build_pools(self, seed: int) -> None:
        fake = Faker("ru_RU")
        fake.seed_instance(seed)

        def pool(fn, n: int) -> list[str]:  # n draws, duplicates dropped, order kept
            return list(dict.fromkeys(fn() for _ in range(n)))

        self.last_m = pool(fake.last_name_male, 500)
        self.last_f = pool(fake.last_name_female, 500)
        self.cities = CITIES
        self.streets = pool(fake.street_address, 400)
        self.jobs = pool(fake.job, 200)
        self.brands = pool(fake.large_company, 300)
        roots, weights = zip(*PATRONYMIC_ROOTS, strict=True)
        self.patr_roots, self.patr_cum = list(roots), list(accumulate(weights))

    def pick(self, seq: Sequence, cum: list[int] | list[float] | None = None):
        if cum is None:
            return seq[int(self.rng.random() * len(seq))]
        return seq[bisect_right(cum, self.rng.random() * cum[-1])]

    def person(self) -> tuple[str, str, str, bool]:
        female = self.rng.random() < 0.58
        last = self.pick(self.last_f if female else self.last_m)
        first = self.pick(FEMALE_FIRST if female else MALE_FIRST)
        middle = ""
        if self.rng.random() < 0.95:
            middle = self.pick(self.patr_roots, self.patr_cum) + ("на" if female else "ич")
        return last, first, middle, female

    def phone_digits(self) -> str:
        while True:
            d = f"{self.pick(MOBILE_CODES)}{self.rng.randint(0, 9_999_999):07d}"
            if d not in self.used_phones:
                self.used_phones.add(d)
                return d

    def phone_value(self, d10: str) -> str:
        return format_phone(d10, bisect_right(PHONE_STYLE_WEIGHTS,
                                              self.rng.random() * PHONE_STYLE_WEIGHTS[-1]))

    def email(self, last: str, first: str, domain: str | None = None) -> str:
        rng = self.rng
        la, fi = translit(last), translit(first)
        style = rng.randint(0, 5)
        local = (f"{la}.{fi}", f"{fi}.{la}", f"{fi[0]}.{la}", f"{la}{rng.randint(1970, 2005)}",
                 f"{la}_{fi[0]}", f"{fi}{la[:3]}{rng.randint(1, 99)}")[style]
        if domain is None:
            domain = self.pick(*EMAIL_DOMAIN_WEIGHTS)
        addr = f"{local}@{domain}"
        while addr in self.used_emails:
            addr = f"{local}{rng.randint(1, 999)}@{domain}"
        self.used_emails.add(addr)
        return addr

    def campaign(self, program_title: str, masters: bool) -> str:
        if masters:
            return "masters_2026"
        if self.rng.random() < 0.6:
            for word, campaign in CAMPAIGNS_BY_WORD:
                if word in program_title:
                    return campaign
        return self.pick(UTM_CAMPAIGNS)

    def nominal_age(self, max_days: float = 365.0) -> float:
        """How many days ago something was created: the last year, recent days more likely."""
        return max_days * self.rng.random() ** 1.7

    def time_at_age(self, age_days: float) -> datetime:
        """The creation moment for a nominal age: that day (weekends mostly moved to
        Friday), in working hours, never in the future."""
        tr = self.trng
        day = self.today0 - timedelta(days=int(age_days))
        to_friday = tr.random() < 0.7
        weekday = (day + self.off).weekday()
        if weekday >= 5 and to_friday:
            day -= timedelta(days=weekday - 4)
        t = day + timedelta(seconds=tr.randint(9 * 3600, 20 * 3600 + 1800))  # 9:00–20:30
        if t >= self.now:
            t = self.now - timedelta(seconds=tr.randint(60, 4 * 3600))
        return t

    def work_time(self, day0: datetime) -> datetime:
        """A quarter-hour in working hours of the day starting at `day0` (local midnight)."""
        return day0 + timedelta(hours=self.trng.randint(9, 18),
                                minutes=self.trng.choice((0, 15, 30, 45)))

    def between(self, a: datetime, b: datetime) -> datetime:
        span = (b - a).total_seconds()
        return a + timedelta(seconds=self.trng.random() * span) if span > 0 else a

    def workify(self, t: datetime) -> datetime:
        """Move a moment outside 9:00–19:00 (local) to a working hour of the next working
        day part: later that morning, or the next day after 19:00."""
        local = t + self.off
        if 9 <= local.hour < 19:
            return t
        if local.hour >= 19:
            local += timedelta(days=1)
        return local.replace(hour=self.trng.randint(9, 18), minute=self.trng.randint(0, 59)) - self.off

    def work_between(self, a: datetime, b: datetime) -> datetime:
        """A moment in [a, b], in working hours when that fits."""
        t = self.between(a, b)
        w = self.workify(t)
        return w if w <= b else t

    def close_time(self, created: datetime, span_days: float) -> datetime:
        """When an item that took `span_days` was closed (working hours, never after now)."""
        t = self.workify(created + timedelta(days=span_days))
        return t if t < self.now else self.now - timedelta(seconds=self.trng.randint(60, 3600))

    # ---- the walk through stages (stage history + timeline)

    def walk(self, flow: _Flow, stages: list[_St], created: datetime, end: datetime,
             closed: bool) -> list[tuple[_St, datetime]]:
        """Entry times into each stage: the first at creation, the rest increasing up to
        `end`, which is the entry into the last stage for a closed item."""
        n = len(stages)
        if n == 1:
            return [(stages[0], created)]
        times = [created] + sorted(self.work_between(created, end) for _ in range(n - 2)) + [end]
        # Entries are strictly increasing even when the span is tiny.
        for i in range(1, n):
            if times[i] <= times[i - 1]:
                times[i] = times[i - 1] + timedelta(seconds=1)
        return list(zip(stages, times, strict=True))

    def emit_walk(self, entity: str, eid: int, flow: _Flow, entries: list[tuple[_St, datetime]],
                  resp_id: int, dept_id: int | None, creator_id: int | None, title: str,
                  source: str) -> None:
        w = self.w
        first_stage, t0 = entries[0]
        w.add("timeline_event", {"id": w.new_id("timeline_event"), "entity_type": entity,
                                 "entity_id": eid, "kind": "created", "created_at": t0,
                                 "user_id": creator_id, "rule": "",
                                 "data": {"title": title, "source": source,
                                          "stage_id": first_stage.id}})
        prev: _St | None = None
        prev_t: datetime | None = None
        for stage, t in entries:
            user = creator_id if prev is None else resp_id
            w.add("stage_history", {"id": w.new_id("stage_history"), "entity_type": entity,
                                    "entity_id": eid, "pipeline_id": flow.id, "stage_id": stage.id,
                                    "from_stage_id": prev.id if prev else None, "prev_at": prev_t,
                                    "semantic": stage.semantic, "created_at": t, "user_id": user,
                                    "responsible_id": resp_id, "department_id": dept_id})
            if prev is not None:
                w.add("timeline_event", {
                    "id": w.new_id("timeline_event"), "entity_type": entity, "entity_id": eid,
                    "kind": "stage_changed", "created_at": t, "user_id": resp_id, "rule": "",
                    "data": {"from_stage_id": prev.id, "to_stage_id": stage.id,
                             "from": prev.name, "to": stage.name}})
            prev, prev_t = stage, t

    # ---- activities and comments

    def activity(self, entity: str, eid: int, resp_id: int, kind: str, start: datetime,
                 created: datetime, done: bool) -> dict:
        rng = self.rng
        if kind == "call":
            dur = rng.choice((5, 10, 15))
        elif kind == "meeting":
            dur = rng.choice((30, 45, 60))
        elif kind == "task":
            dur = rng.choice((30, 60))
        else:
            dur = 15
        row = {"id": self.w.new_id("activity"), "entity_type": entity, "entity_id": eid,
               "kind": kind, "subject": self.pick(ACTIVITY_SUBJECTS[kind]), "description": "",
               "responsible_id": resp_id, "start_at": start, "duration_min": dur,
               "remind_before_min": None, "remind_at": None, "done": done, "done_at": None,
               "result": "", "created_at": min(created, start), "created_by_id": resp_id}
        if done:
            row["done_at"] = min(start + timedelta(minutes=dur), self.now)
            row["result"] = self.pick(CALL_RESULTS if kind == "call" else OTHER_RESULTS[kind])
        elif rng.random() < 0.5:
            row["remind_before_min"] = 15
            row["remind_at"] = start - timedelta(minutes=15)
        return row

    def done_kind(self) -> str:
        r = self.rng.random()
        return "call" if r < 0.72 else "email" if r < 0.84 else "meeting" if r < 0.93 else "task"

    def planned_kind(self) -> str:
        r = self.rng.random()
        return "call" if r < 0.6 else "meeting" if r < 0.75 else "task" if r < 0.9 else "email"

    def work(self, entity: str, eid: int, resp_id: int, created: datetime, last_move: datetime,
             closed_at: datetime | None) -> tuple[datetime | None, datetime | None, datetime]:
        """Done and planned activities and comments of one item.
        Returns (next_activity_at, last_contact_at, latest change time)."""
        rng, w = self.rng, self.w
        latest = last_move
        end = closed_at or self.now
        n_done = (rng.choice((0, 1, 1, 2)) if closed_at is None
                  else (1 if rng.random() < 0.5 else 0))
        last_contact: datetime | None = None
        starts = sorted(self.work_between(created, end - timedelta(minutes=20)) for _ in range(n_done))
        for start in starts:
            start = max(created, start.replace(second=0, microsecond=0))
            kind = self.done_kind()
            act = self.activity(entity, eid, resp_id, kind, start,
                                created=self.between(created, start), done=True)
            w.add("activity", act)
            w.add("timeline_event", {
                "id": w.new_id("timeline_event"), "entity_type": entity, "entity_id": eid,
                "kind": "activity_done", "created_at": act["done_at"], "user_id": resp_id,
                "rule": "", "data": {"activity_id": act["id"], "kind": kind,
                                     "subject": act["subject"], "result": act["result"]}})
            last_contact = act["done_at"] if last_contact is None else max(last_contact,
                                                                           act["done_at"])
        next_at: datetime | None = None
        if closed_at is None and rng.random() < 0.85:
            r = rng.random()
            if r < 0.15:  # overdue
                start = self.work_between(max(created, self.now - timedelta(days=4)),
                                          self.now - timedelta(minutes=30))
                start = max(start, created + timedelta(minutes=5))
            elif r < 0.35:  # due today (local day), and still ahead when the day allows
                if self.now < self.work_end - timedelta(minutes=30):
                    start = self.between(max(self.now, self.work_start), self.work_end)
                elif self.now < self.day_end - timedelta(minutes=20):
                    start = self.between(self.now + timedelta(minutes=5),
                                         self.day_end - timedelta(minutes=5))
                else:
                    start = self.between(self.work_start, self.work_end)
            else:  # in the next 5 days
                start = self.work_time(self.today0 + timedelta(days=rng.randint(1, 5)))
            start = max(start, created + timedelta(minutes=5)).replace(second=0, microsecond=0)
            kind = self.planned_kind()
            made = self.between(max(last_move, last_contact or created), self.now)
            act = self.activity(entity, eid, resp_id, kind, start, created=made, done=False)
            w.add("activity", act)
            next_at = start
            latest = max(latest, act["created_at"])
        if last_contact is not None:
            latest = max(latest, last_contact)
        if rng.random() < 0.3:
            for _ in range(1 if rng.random() < 0.8 else 2):
                t = self.work_between(created, end)
                text = self.pick(COMMENTS)
                cid = w.new_id("comment")
                w.add("comment", {"id": cid, "entity_type": entity, "entity_id": eid, "text": text,
                                  "author_id": resp_id, "created_at": t})
                w.add("timeline_event", {
                    "id": w.new_id("timeline_event"), "entity_type": entity, "entity_id": eid,
                    "kind": "comment", "created_at": t, "user_id": resp_id, "rule": "",
                    "data": {"comment_id": cid, "text": text}})
                latest = max(latest, t)
        return next_at, last_contact, min(latest, self.now)

    def add_comms(self, entity: str, eid: int, phones: list[tuple[str, str]],
                  emails: list[str]) -> None:
        w = self.w
        for value, vtype in phones:
            row = comm_row(entity, eid, "phone", value, vtype)
            row["id"] = w.new_id("communication")
            w.add("communication", row)
        for value in emails:
            row = comm_row(entity, eid, "email", value, "work")
            row["id"] = w.new_id("communication")
            w.add("communication", row)


def _weighted(d: dict[str, int], names: Sequence[str] | None = None) -> tuple[list[str], list[int]]:
    """(names, cumulative weights) for names present in `names` (default: all keys);
    unknown names get weight 2 so a source added by an admin still shows up."""
    keys = list(names) if names is not None else list(d)
    return keys, list(accumulate(d.get(k, 2) for k in keys))


# --------------------------------------------------------------------------- the seeding

def _is_empty(conn: Connection) -> bool:
    for table in (User.__table__, Lead.__table__, Deal.__table__):
        if conn.execute(sa.select(table.c.id).limit(1)).first() is not None:
            return False
    return True


def _load_config(url: str) -> dict:
    with session_scope(url) as s:
        ensure_defaults(s)
        depts = {d.code: d for d in s.exec(select(Department)).all()}
        pipes = {p.code: p for p in s.exec(select(Pipeline)).all()}
        flows = {}
        for code, pipe in pipes.items():
            stages = s.exec(select(Stage).where(Stage.pipeline_id == pipe.id)
                            .order_by(Stage.sort, Stage.id)).all()
            flows[code] = _Flow(pipe, list(stages))
        fields: dict[int, list[CustomField]] = {}
        for f in s.exec(select(CustomField).where(CustomField.entity == "deal")
                        .order_by(CustomField.sort, CustomField.id)).all():
            if f.pipeline_id is not None:
                fields.setdefault(f.pipeline_id, []).append(f)
    return {"depts": depts, "flows": flows, "fields": fields}


def seed_demo(url: str | None = None, leads: int = 2000, deals: int = 1000, seed: int = 42,
              *, if_empty: bool = False, verbose: bool = False,
              now: datetime | None = None, pg_copy: bool = True) -> dict[str, int]:
    """Load demo data into an empty database; returns the number of rows added per table.

    A database that already has users, leads or deals is never touched: SeedRefused is
    raised, or with if_empty=True nothing happens and {} is returned. Timestamps are
    relative to `now` (default: the current time; must be timezone-aware). On PostgreSQL
    rows go in with COPY unless pg_copy=False (then executemany, about twice as slow)."""
    url = url or db_url()
    migrate(url)
    engine = get_engine(url)
    with engine.connect() as conn:
        empty = _is_empty(conn)
    if not empty:
        if if_empty:
            return {}
        raise SeedRefused()
    config = _load_config(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        if not _is_empty(conn):  # somebody was faster
            if if_empty:
                return {}
            raise SeedRefused()
        gen = _Gen(conn, config, seed, now or datetime.now(UTC), pg_copy)
        _Seeder(gen, leads, deals, verbose).run()
        counts = {k: v for k, v in gen.w.counts.items() if v}
        if conn.dialect.name == "postgresql":
            for name in counts:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                    f"(SELECT MAX(id) FROM \"{name}\"))")
    optimize(url)  # fresh planner statistics for the board/list queries
    _demo_intake_tokens(url)
    if verbose:
        print(f"  готово за {time.perf_counter() - started:.1f} с", file=sys.stderr)
    return counts


def _demo_intake_tokens(url: str) -> None:
    """The integrations' demo token (demo-intake-token) and the demo REST webhooks
    (/rest/<id>/demo-rest-admin/, /rest/<id>/demo-rest-manager1/), for the demo database only."""
    from rxcrm.db import session_scope
    from rxcrm.services.intake import ensure_demo_tokens
    from rxcrm.services.webhooks import ensure_demo_webhooks
    with session_scope(url) as s:
        ensure_demo_tokens(s)
        ensure_demo_webhooks(s)


class _Seeder:
    def __init__(self, gen: _Gen, n_leads: int, n_deals: int, verbose: bool) -> None:
        self.g, self.n_leads, self.n_deals, self.verbose = gen, max(0, n_leads), max(0, n_deals), verbose
        self.rng = gen.rng
        self.w = gen.w
        self.flows: dict[str, _Flow] = gen.d["flows"]
        self.depts: dict[str, Department] = gen.d["depts"]
        self.t0 = time.perf_counter()

    def log(self, what: str) -> None:
        if self.verbose:
            print(f"  {time.perf_counter() - self.t0:6.1f} с  {what}", file=sys.stderr)

    def run(self) -> None:
        self.users()
        self.products()
        self.companies()
        self.w.flush()
        self.log("пользователи, программы, компании")
        lead_plans = self.plan_leads()
        self.log("лиды: история, дела, комментарии")
        deal_rows, contacts = self.plan_deals(lead_plans)
        self.log("сделки: история, дела, комментарии")
        self.finish_contacts_and_leads(lead_plans, contacts)
        self.log("контакты")
        for name, rows in (("contact", contacts), ("lead", [p["row"] for p in lead_plans]),
                           ("deal", deal_rows), ("deal_product", self.deal_products)):
            self.w.flush()  # anything buffered first (FK order: contact < lead < deal)
            for i in range(0, len(rows), self.w.chunk):
                self.w.buf[name] = rows[i:i + self.w.chunk]
                self.w.flush(name)
            rows.clear()
        self.w.flush()
        self.log("записано")

    # ---- users, programs, companies

    def users(self) -> None:
        g, w = self.g, self.w
        pw = hash_password(DEMO_PASSWORD)
        self.user_ids: dict[str, int] = {}
        self.user_dept: dict[int, int | None] = {}
        for login, role, dept_code, last, first, middle, _female in USERS:
            uid = w.new_id("crm_user")
            dept = self.depts.get(dept_code) if dept_code else None
            w.add("crm_user", {
                "id": uid, "login": login, "full_name": f"{last} {first} {middle}",
                "email": f"{translit(first)[0]}.{translit(last)}@univ.ru", "password_hash": pw,
                "role": role, "department_id": dept.id if dept else None, "is_active": True,
                "locale": "ru", "created_at": g.now - timedelta(days=400)})
            self.user_ids[login] = uid
            self.user_dept[uid] = dept.id if dept else None
        w.flush("crm_user")
        dpo = self.depts.get("dpo")
        if dpo is not None and dpo.head_id is None:
            w.conn.execute(sa.update(Department.__table__).where(Department.__table__.c.id == dpo.id)
                           .values(head_id=self.user_ids["head"]))
        self.dpo_mgr = _weighted({self.user_ids[k]: v for k, v in DPO_MANAGERS.items()})
        self.adm_mgr = _weighted({self.user_ids[k]: v for k, v in ADMISSION_MANAGERS.items()})

    def products(self) -> None:
        g, w = self.g, self.w
        self.programs: list[dict] = []
        for i, (title, cat, hours, price, form, pop) in enumerate(DPO_PROGRAMS):
            start = g.today + timedelta(days=14 + (i * 37) % 220)
            start = start.replace(day=1 if start.day < 15 else 15)
            self.programs.append({"id": w.new_id("product"), "title": title, "code": f"DPO-{i + 1:03d}",
                                  "price": Decimal(price), "currency": "RUB", "start_date": start,
                                  "hours": hours, "study_form": form, "category": cat,
                                  "is_active": True, "created_at": g.now - timedelta(days=400),
                                  "_pop": pop, "_masters": False})
        sept = date(g.today.year + (1 if g.today.month >= 9 else 0), 9, 1)
        for i, (title, hours, price, form, pop) in enumerate(MASTER_PROGRAMS):
            self.programs.append({"id": w.new_id("product"), "title": title, "code": f"MAG-{i + 1:02d}",
                                  "price": Decimal(price), "currency": "RUB", "start_date": sept,
                                  "hours": hours, "study_form": form, "category": MAG,
                                  "is_active": True, "created_at": g.now - timedelta(days=400),
                                  "_pop": pop, "_masters": True})
        for p in self.programs:
            w.add("product", {k: v for k, v in p.items() if not k.startswith("_")})
        dpo = [p for p in self.programs if not p["_masters"]]
        mag = [p for p in self.programs if p["_masters"]]
        self.dpo_programs = (dpo, list(accumulate(p["_pop"] for p in dpo)))
        self.mag_programs = (mag, list(accumulate(p["_pop"] for p in mag)))

    def companies(self) -> None:
        g, w, rng = self.g, self.w, self.rng
        n = max(20, self.n_leads // 20)
        self.company_rows: list[dict] = []
        titles: set[str] = set()
        used_domains: set[str] = set()
        dpo_dept = self.depts.get("dpo")
        for _ in range(n):
            for _attempt in range(20):
                r = rng.random()
                city = g.pick(g.cities)
                if r < 0.35:
                    tmpl, industry = g.pick(PUBLIC_ORGS)
                    title = tmpl.format(n=rng.randint(1, 180)) + f", г. {city}"
                    site = ""
                elif r < 0.6:
                    brand = g.pick(g.brands)
                    title = f"{rng.choice(('ООО', 'АО', 'ПАО'))} «{brand}»"
                    industry, site = g.pick(INDUSTRIES), translit(brand)[:20]
                else:
                    brand = g.pick(COMPANY_WORDS_A) + g.pick(COMPANY_WORDS_B).lower()
                    if rng.random() < 0.4:
                        brand += f"-{city}"
                    title = f"{rng.choice(('ООО', 'ООО', 'АО'))} «{brand}»"
                    industry, site = g.pick(INDUSTRIES), translit(brand)[:20]
                if title not in titles:
                    break
            titles.add(title)
            cid = w.new_id("company")
            resp = g.pick(*self.dpo_mgr)
            domain = f"{site}.ru" if site else ""
            emails = [f"info@{domain}"] if domain and domain not in used_domains else []
            created = g.time_at_age(g.nominal_age(400))
            row = {
                "id": cid, "title": title, "inn": inn(rng), "industry": industry,
                "address": f"г. {city}, {g.pick(g.streets)}",
                "website": f"https://{domain}" if domain else "",
                "responsible_id": resp, "department_id": dpo_dept.id if dpo_dept else None,
                "created_at": created, "created_by_id": resp, "updated_at": created,
                "updated_by_id": resp, "deleted_at": None, "version": 1, "custom": {},
                "search_text": search_text(title, *emails), "comment": ""}
            w.add("company", row)
            self.company_rows.append(row)
            phone = (f"+7 ({rng.choice(CITY_CODES)}) {rng.randint(200, 599)}-"
                     f"{rng.randint(10, 99)}-{rng.randint(10, 99)}")
            g.add_comms("company", cid, [(phone, "work")], emails)
            used_domains.add(domain)

    # ---- leads

    def lead_outcome(self, age_days: float, source: str) -> tuple[str, int]:
        """('process', stage index) or ('success'|'junk'|'dup', process stages walked)."""
        rng = self.rng
        n = len(self.flows["leads"].process)
        p_final = min(0.88, 0.03 + age_days / 170)
        if rng.random() < p_final:
            r = rng.random()
            dup = 0.35 if source == "Маркетплейс" else 0.2
            if r < 0.36:
                return "success", n
            if r < 0.36 + dup:
                return "dup", 1 if rng.random() < 0.7 else min(2, n)
            return "junk", 1 + int(n * rng.random() ** 1.6)
        progress = min(1.0, age_days / 12)
        idx = int(max(0.0, min(0.999, rng.gauss(progress * 0.8, 0.3))) * n)
        return "process", idx

    def plan_leads(self) -> list[dict]:
        g, rng, w = self.g, self.rng, self.w
        flow = self.flows["leads"]
        sources = _weighted(SOURCE_WEIGHTS, defaults.SOURCES)
        utm_src = (UTM_SOURCES, list(accumulate(x[2] for x in UTM_SOURCES)))
        ages = sorted((g.nominal_age() for _ in range(self.n_leads)), reverse=True)
        plans: list[dict] = []
        for age in ages:  # oldest first: ids follow creation
            lid = w.new_id("lead")
            created = g.time_at_age(age)
            source = g.pick(*sources)
            masters = rng.random() < 0.1
            program = g.pick(*(self.mag_programs if masters else self.dpo_programs))
            ptitle = program["title"]
            action, comment = "", ""
            if source == "Маркетплейс":
                action = MARKETPLACE_ACTIONS[0] if rng.random() < 0.62 else MARKETPLACE_ACTIONS[1]
                title = f"Заявка с маркетплейса: {ptitle}"
            elif source == "Лендинг":
                if rng.random() < 0.45:
                    title, comment = "Вопрос с лендинга", g.pick(LANDING_QUESTIONS)
                else:
                    title = f"Заявка с лендинга: {ptitle}"
            elif source == "Опросная форма":
                title = f"Опросная форма: {ptitle}"
            elif source == "Звонок":
                title = f"Звонок: {ptitle}" if rng.random() < 0.7 else "Входящий звонок"
            elif source == "Email":
                title = f"Письмо: вопрос о программе «{ptitle}»"
            elif source == "Вручную":
                title = f"Консультация: {ptitle}"
            elif source == "Импорт":
                title = f"Импорт из Excel: {ptitle}"
            elif source == "Рекомендация":
                title = f"Рекомендация выпускника: {ptitle}"
            elif source == "Выставка":
                title = f"Выставка «Образование и карьера»: {ptitle}"
            else:
                title = f"{source}: {ptitle}"
            utm = {"utm_source": "", "utm_medium": "", "utm_campaign": "", "utm_content": "",
                   "utm_term": ""}
            if source in ("Маркетплейс", "Лендинг"):
                us, um, _w = g.pick(*utm_src)
                utm = {"utm_source": us, "utm_medium": um,
                       "utm_campaign": g.campaign(ptitle, masters),
                       "utm_content": g.pick(UTM_CONTENT),
                       "utm_term": ptitle.lower() if um == "cpc" else ""}
            resp = g.pick(*self.dpo_mgr)
            dept = self.user_dept[resp]
            creator = None if source in INTEGRATION_SOURCES else resp
            outcome, k = self.lead_outcome(age, source)
            if outcome == "process":
                stages, closed = flow.process[:k + 1], False
                reached = k
            elif outcome == "success":
                stages, closed, reached = flow.process + [flow.success], True, len(flow.process)
            else:
                fail = flow.failures[0 if outcome == "junk" or len(flow.failures) == 1 else 1]
                stages, closed, reached = flow.process[:k] + [fail], True, k - 1
            close_age = age
            if closed:
                span = rng.expovariate(1 / 6) + 0.01
                close_age = max(0.0, age - span)
                end = g.close_time(created, span)
            elif len(stages) > 1:
                end = g.work_between(created, created + (g.now - created) * g.trng.uniform(0.05, 0.9))
            else:
                end = created
            entries = g.walk(flow, stages, created, end, closed)
            g.emit_walk("lead", lid, flow, entries, resp, dept, creator, title, source)
            stage, moved = entries[-1]
            closed_at = moved if closed else None
            next_at, last_contact, updated = g.work("lead", lid, resp, created, moved, closed_at)
            last, first, middle, female = g.person()
            row = {
                "id": lid, "title": title, "pipeline_id": flow.id, "stage_id": stage.id,
                "semantic": stage.semantic, "stage_changed_at": moved, "closed_at": closed_at,
                "source": source, "program_id": program["id"], "amount": program["price"],
                "currency": "RUB", "contact_id": None, "company_id": None, "is_repeat": False,
                "next_activity_at": next_at, "last_contact_at": last_contact,
                "responsible_id": resp, "department_id": dept, "created_at": created,
                "created_by_id": creator, "updated_at": max(updated, moved),
                "updated_by_id": resp, "deleted_at": None, "version": len(entries),
                "custom": {}, "search_text": "", "comment": comment, **utm,
                "last_name": last, "first_name": first, "middle_name": middle,
                "birthday": (date(rng.randint(1968, 2004), rng.randint(1, 12), rng.randint(1, 28))
                             if rng.random() < 0.25 else None),
                "position": "", "company_title": "", "marketplace_action": action,
                "education_level": (g.pick(EDUCATION_LEVELS)
                                    if flow.reached("EDUCATION_LEVEL", reached) else ""),
                "interest_area": (g.pick(INTEREST_AREAS)
                                  if flow.reached("INTERESTS", reached) else ""),
                "close_reason": (g.pick(JUNK_REASONS) if outcome == "junk" else
                                 g.pick(DUPLICATE_REASONS) if outcome == "dup" else ""),
                "deal_id": None,
            }
            if rng.random() < 0.15:
                row["company_title"] = g.pick(self.company_rows)["title"]
                row["position"] = g.pick(g.jobs)
            plans.append({"row": row, "age": age, "close_age": close_age,
                          "female": female, "masters": masters, "program": program,
                          "converted": outcome == "success", "phone": g.phone_digits(),
                          "phone2": g.phone_digits() if rng.random() < 0.2 else None,
                          "has_email": rng.random() < 0.55})
        return plans

    # ---- deals and contacts

    def deal_outcome(self, flow: _Flow, age_days: float) -> tuple[str, int]:
        rng = self.rng
        n = len(flow.process)
        p_final = min(0.9, 0.04 + age_days / 160)
        if rng.random() < p_final:
            if rng.random() < (0.48 if flow.code != "masters" else 0.42):
                return "won", n
            return "lost", 1 + int(n * rng.random() ** 1.8)
        progress = min(1.0, age_days / 75)
        return "process", int(max(0.0, min(0.999, rng.gauss(progress * 0.85, 0.28))) * n)

    def new_contact(self, created: datetime, age: float, resp: int, dept: int | None, source: str,
                    company: dict | None, person: tuple | None = None,
                    phones: list[str] | None = None) -> dict:
        g, rng = self.g, self.rng
        if person is None:
            person = g.person()
        last, first, middle, _female = person
        if phones is None:
            phones = [g.phone_digits()] + ([g.phone_digits()] if rng.random() < 0.3 else [])
        emails: list[str] = []
        for _ in range(rng.choice((0, 1, 1, 1, 2))):
            corp = company is not None and company["website"] and rng.random() < 0.5
            emails.append(g.email(last, first, company["website"][8:] if corp else None))
        return {
            "id": None, "last_name": last, "first_name": first, "middle_name": middle,
            "birthday": (date(rng.randint(1965, 2004), rng.randint(1, 12), rng.randint(1, 28))
                         if rng.random() < 0.5 else None),
            "position": g.pick(g.jobs) if company is not None or rng.random() < 0.2 else "",
            "full_name": " ".join(x for x in (last, first, middle) if x),
            "company_id": company["id"] if company else None, "source": source,
            "responsible_id": resp, "department_id": dept, "created_at": created,
            "created_by_id": resp, "updated_at": created, "updated_by_id": resp,
            "deleted_at": None, "version": 1, "custom": {},
            "search_text": search_text(" ".join((last, first, middle)),
                                       company["title"] if company else "", *emails),
            "comment": "", "_phones": phones, "_emails": emails, "_age": age,
        }

    def custom_values(self, flow: _Flow, reached: int, won: bool, amount: Decimal, discount: int,
                      created: datetime, did: int) -> dict:
        g, rng = self.g, self.rng
        fields = self.g.d["fields"].get(flow.id, [])
        idx = len(flow.process) if won else reached

        def yes(cond: bool) -> str:
            return "Да" if cond else "Нет"

        at = flow.reached
        prepay = rng.random() < 0.7
        out: dict[str, Any] = {}
        for f in fields:
            code = f.code.split("_", 1)[1] if f.code.startswith(f"{flow.code}_") else f.code
            v: Any = None
            if flow.code == "dpo":
                if code == "docs_received":
                    v = yes(at("REGISTRATION", idx) and rng.random() < 0.92)
                elif code == "contract_number":
                    v = f"ДПО-{created.year}/{did:06d}" if at("CONTRACT", idx) else None
                elif code == "contract_signed":
                    v = yes(at("PREPAYMENT", idx) or (at("CONTRACT", idx) and rng.random() < 0.4))
                elif code == "contract_paid":
                    v = yes(at("ENROLMENT", idx) if prepay else at("STUDY", idx))
                elif code == "prepayment_received":
                    v = yes(prepay and (at("ENROLMENT", idx)
                                        or (at("PREPAYMENT", idx) and rng.random() < 0.5)))
                elif code == "payment_scheme":
                    v = "Предоплата" if prepay else "Постоплата"
            elif flow.code == "masters":
                if code == "exam_score":
                    v = rng.randint(160, 300) if at("EXAMS_PASSED", idx) else None
                elif code == "discount_pct":
                    v = discount
                elif code == "exams_passed":
                    v = yes(at("EXAMS_PASSED", idx))
                elif code == "place_kind":
                    v = "Платное"
                elif code == "previous_school":
                    v = g.pick(PREVIOUS_SCHOOLS)
                elif code == "original_diploma":
                    v = yes(at("DOCUMENTS", idx) and rng.random() < 0.9)
                elif code == "consent":
                    v = yes(at("DOCUMENTS", idx))
                elif code == "consent_date":
                    if at("DOCUMENTS", idx):
                        v = (created + timedelta(days=rng.randint(10, 40))).date().isoformat()
                elif code == "yearly_cost":
                    v = int(amount)
                elif code == "contract_sent":
                    v = yes(at("DOCUMENTS", idx))
                elif code == "contract_paid":
                    v = yes(at("ENROLMENT", idx))
            if v is None and code not in ("contract_number", "exam_score", "consent_date"):
                # A field this generator does not know: a plausible value by type.
                if f.field_type == "enum" and f.options:
                    v = g.pick(f.options)
                elif f.field_type in ("number", "money"):
                    v = rng.randint(0, 100)
            if v is not None:
                out[f.code] = v
        return out

    def plan_deals(self, lead_plans: list[dict]) -> tuple[list[dict], list[dict]]:
        g, rng, w = self.g, self.rng, self.w
        n = self.n_deals
        dpo_flow, mag_flow = self.flows["dpo"], self.flows["masters"]
        converted = [p for p in lead_plans if p["converted"]]
        n_linked = min(len(converted), round(n * 0.4))
        linked = rng.sample(converted, n_linked) if n_linked else []
        n_mag_target = round(n * 0.25)
        n_mag_linked = sum(1 for p in linked if p["masters"])
        n_unlinked = n - n_linked
        mag_unlinked = max(0, min(n_unlinked, n_mag_target - n_mag_linked))
        unlinked_mag_flags = [True] * mag_unlinked + [False] * (n_unlinked - mag_unlinked)
        rng.shuffle(unlinked_mag_flags)
        # (-nominal age, order, lead plan or None, masters?): oldest first, ids follow creation
        seeds: list[tuple[float, int, dict | None, bool]] = []
        for i, p in enumerate(linked):
            seeds.append((-p["close_age"], i, p, p["masters"]))
        for j, mag in enumerate(unlinked_mag_flags):
            seeds.append((-g.nominal_age(), n_linked + j, None, mag))
        seeds.sort(key=lambda s: (s[0], s[1]))
        sources = _weighted(DEAL_SOURCE_WEIGHTS, defaults.SOURCES)
        utm_src = (UTM_SOURCES, list(accumulate(x[2] for x in UTM_SOURCES)))
        deal_rows: list[dict] = []
        self.deal_products: list[dict] = []
        contacts: list[dict] = []
        deal_contacts: list[dict] = []
        for neg_age, _order, plan, mag in seeds:
            did = w.new_id("deal")
            flow = mag_flow if mag else dpo_flow
            age = -neg_age
            if plan is not None:  # converted from the lead a few minutes after it was closed
                created = min(g.now - timedelta(seconds=30),
                              plan["row"]["closed_at"] + timedelta(minutes=g.trng.randint(1, 30)))
            else:
                created = g.time_at_age(age)
            if plan is not None:
                lrow = plan["row"]
                program = plan["program"]
                source = lrow["source"]
                resp = g.pick(*self.adm_mgr) if mag else lrow["responsible_id"]
                utm = {k: lrow[k] for k in ("utm_source", "utm_medium", "utm_campaign",
                                            "utm_content", "utm_term")}
            else:
                program = g.pick(*(self.mag_programs if mag else self.dpo_programs))
                source = g.pick(*sources)
                resp = g.pick(*(self.adm_mgr if mag else self.dpo_mgr))
                utm = {"utm_source": "", "utm_medium": "", "utm_campaign": "",
                       "utm_content": "", "utm_term": ""}
                if source in ("Маркетплейс", "Лендинг"):
                    us, um, _w = g.pick(*utm_src)
                    utm = {"utm_source": us, "utm_medium": um,
                           "utm_campaign": g.campaign(program["title"], mag),
                           "utm_content": g.pick(UTM_CONTENT), "utm_term": ""}
            dept = self.user_dept[resp]
            creator = None if plan is None and source in INTEGRATION_SOURCES else resp
            # The client: from the lead, a new person, or a returning contact.
            is_repeat = False
            company = None
            if plan is not None:
                lrow = plan["row"]
                if rng.random() < 0.2:
                    company = g.pick(self.company_rows)
                person = (lrow["last_name"], lrow["first_name"], lrow["middle_name"], plan["female"])
                phones = [plan["phone"]] + ([plan["phone2"]] if plan["phone2"] else [])
                contact = self.new_contact(created, age, resp, dept, source, company, person, phones)
                plan["contact"] = contact
                contacts.append(contact)
            elif contacts and rng.random() < 0.12:
                contact = g.pick(contacts)
                is_repeat = True
                if contact["company_id"] is not None:
                    company = self.company_rows[contact["company_id"] - self.company_rows[0]["id"]]
            else:
                if rng.random() < 0.3:
                    company = g.pick(self.company_rows)
                contact = self.new_contact(created, age, resp, dept, source, company)
                contacts.append(contact)
            deal_contacts.append(contact)
            outcome, k = self.deal_outcome(flow, age)
            if outcome == "process":
                stages, closed, reached = flow.process[:k + 1], False, k
            elif outcome == "won":
                stages, closed, reached = flow.process + [flow.success], True, len(flow.process)
            else:
                stages, closed, reached = flow.process[:k] + [flow.failures[0]], True, k - 1
            if closed:
                end = g.close_time(created, rng.expovariate(1 / (45 if mag else 25)) + 0.05)
            elif len(stages) > 1:
                end = g.work_between(created, created + (g.now - created) * g.trng.uniform(0.1, 0.9))
            else:
                end = created
            last, first = contact["last_name"], contact["first_name"]
            short = program["title"].removeprefix("Магистратура: ") if mag else program["title"]
            title = f"{'Магистратура: ' if mag else ''}{short} — {last} {first[:1]}."
            entries = g.walk(flow, stages, created, end, closed)
            g.emit_walk("deal", did, flow, entries, resp, dept, creator, title, source)
            stage, moved = entries[-1]
            closed_at = moved if closed else None
            if plan is not None:
                w.add("timeline_event", {
                    "id": w.new_id("timeline_event"), "entity_type": "lead",
                    "entity_id": plan["row"]["id"], "kind": "converted", "created_at": created,
                    "user_id": plan["row"]["responsible_id"], "rule": "",
                    "data": {"deal_id": did, "contact_title": contact["full_name"]}})
            next_at, last_contact, updated = g.work("deal", did, resp, created, moved, closed_at)
            price = program["price"]
            discount = rng.choice((0, 0, 0, 0, 0, 5, 5, 10, 10, 15))
            amount = (price * (100 - discount) / 100).quantize(Decimal("0.01"))
            won = outcome == "won"
            first_payment = None
            if plan is not None or (reached >= 3 or won) and rng.random() < 0.8:
                share = Decimal(rng.choice((25, 30, 50, 50, 100))) if not mag else Decimal(50)
                first_payment = (amount * share / 100).quantize(Decimal("1"))
            n_proc = len(flow.process)
            probability = (100 if won else 0 if outcome == "lost"
                           else min(90, 10 * round((10 + 80 * reached / max(1, n_proc - 1)) / 10)))
            row = {
                "id": did, "title": title, "pipeline_id": flow.id, "stage_id": stage.id,
                "semantic": stage.semantic, "stage_changed_at": moved, "closed_at": closed_at,
                "source": source, "program_id": program["id"], "amount": amount,
                "currency": "RUB", "contact_id": None, "company_id": company["id"] if company else None,
                "is_repeat": is_repeat, "next_activity_at": next_at, "last_contact_at": last_contact,
                "responsible_id": resp, "department_id": dept, "created_at": created,
                "created_by_id": creator, "updated_at": max(updated, moved), "updated_by_id": resp,
                "deleted_at": None, "version": len(entries),
                "custom": self.custom_values(flow, reached, won, amount, discount, created, did),
                "search_text": search_text(title, contact["full_name"],
                                           company["title"] if company else "", *contact["_emails"]),
                "comment": "", **utm,
                "lead_id": plan["row"]["id"] if plan is not None else None,
                "probability": probability,
                "deal_type": "Корпоративное обучение" if company else "Физическое лицо",
                "first_payment_amount": first_payment,
                "close_date": (closed_at.date() if closed_at else
                               (max(g.now, created + timedelta(days=rng.randint(30, 120)))).date()),
                "lost_reason": (g.pick(LOST_REASONS_MASTERS if mag else LOST_REASONS_DPO)
                                if outcome == "lost" else ""),
            }
            if plan is not None:
                plan["row"]["deal_id"] = did
            deal_rows.append(row)
            self.deal_products.append({"id": w.new_id("deal_product"), "deal_id": did,
                                   "product_id": program["id"], "title": program["title"],
                                   "price": price, "quantity": Decimal(1),
                                   "discount_pct": Decimal(discount), "sort": 10})
        # Contacts that came without a deal (events, old imports).
        for _ in range(max(10, self.n_leads // 25)):
            resp = g.pick(*self.dpo_mgr)
            company = g.pick(self.company_rows) if rng.random() < 0.25 else None
            age = g.nominal_age()
            contacts.append(self.new_contact(g.time_at_age(age), age, resp, self.user_dept[resp],
                                             g.pick(*sources), company))
        # Contact ids in creation order; then deals point at them.
        contacts.sort(key=lambda c: -c["_age"])
        for c in contacts:
            c["id"] = w.new_id("contact")
        for row, c in zip(deal_rows, deal_contacts, strict=True):
            row["contact_id"] = c["id"]
            if row["updated_at"] > c["updated_at"]:
                c["updated_at"] = row["updated_at"]
        return deal_rows, contacts

    def finish_contacts_and_leads(self, lead_plans: list[dict], contacts: list[dict]) -> None:
        """Phones/emails of contacts and leads; repeat leads point at an earlier contact."""
        g, rng = self.g, self.rng
        first_phone: list[str] = []
        neg_ages = [-c.pop("_age") for c in contacts]  # ascending: creation order
        for c in contacts:
            phones = c.pop("_phones")
            first_phone.append(phones[0])
            g.add_comms("contact", c["id"],
                        [(g.phone_value(p), "mobile" if i == 0 else "work")
                         for i, p in enumerate(phones)],
                        c.pop("_emails"))
        for plan in lead_plans:
            row = plan["row"]
            phones = [plan["phone"]] + ([plan["phone2"]] if plan["phone2"] else [])
            emails: list[str] = []
            contact = plan.get("contact")
            if contact is not None:  # converted into a deal: the contact came from this lead
                row["contact_id"] = contact["id"]
                row["company_id"] = contact["company_id"]
            elif contacts and rng.random() < 0.05:
                # A returning client: the phone matches a contact created earlier.
                hi = bisect_left(neg_ages, -plan["age"])  # contacts older than the lead
                if hi:
                    ci = rng.randrange(hi)
                    c = contacts[ci]
                    row.update(is_repeat=True, contact_id=c["id"], last_name=c["last_name"],
                               first_name=c["first_name"], middle_name=c["middle_name"])
                    phones = [first_phone[ci]]
            if plan["has_email"]:
                emails.append(g.email(row["last_name"], row["first_name"]))
            g.add_comms("lead", row["id"],
                        [(g.phone_value(p), "mobile" if i == 0 else "work")
                         for i, p in enumerate(phones)], emails)
            row["search_text"] = search_text(row["title"], row["last_name"], row["first_name"],
                                             row["middle_name"], *emails)


# --------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rxcrm.seed",
                                     description="Загрузка демо-данных в пустую базу rxcrm")
    parser.add_argument("--leads", type=int, default=2000, help="сколько лидов (по умолчанию 2000)")
    parser.add_argument("--deals", type=int, default=1000, help="сколько сделок (по умолчанию 1000)")
    parser.add_argument("--seed", type=int, default=42, help="зерно генератора (по умолчанию 42)")
    parser.add_argument("--db-url", default=None,
                        help="URL базы (по умолчанию REFLEX_DB_URL или sqlite:///rxcrm.db)")
    parser.add_argument("--if-empty", action="store_true",
                        help="если база не пуста — ничего не делать и выйти с кодом 0")
    parser.add_argument("-q", "--quiet", action="store_true", help="без хода работы")
    args = parser.parse_args(argv)
    url = args.db_url or db_url()
    started = time.perf_counter()
    try:
        counts = seed_demo(url, args.leads, args.deals, args.seed, if_empty=args.if_empty,
                           verbose=not args.quiet)
    except SeedRefused as exc:
        print(exc, file=sys.stderr)
        return 1
    if not counts:
        print(NOT_EMPTY)
        return 0
    total = sum(counts.values())
    print(f"Демо-данные загружены за {time.perf_counter() - started:.1f} с: "
          f"лидов {counts.get('lead', 0)}, сделок {counts.get('deal', 0)}, "
          f"контактов {counts.get('contact', 0)}, компаний {counts.get('company', 0)}; "
          f"всего строк {total}.")
    print(f"Пользователи: {', '.join(u[0] for u in USERS)} — пароль «{DEMO_PASSWORD}».")
    return 0


if __name__ == "__main__":
    sys.exit(main())
