"""Supervisor analytics: funnels, conversion, time in stage, dynamics, managers.

Everything is computed in SQL (aggregates only; never a table in memory) from the items and
their `stage_history`, through the same scoped conditions as the lists (`listing.scoped`):
not deleted + the viewer's access + the dashboard filters. A manager sees their own items,
a head their department, a director and an admin everything.

Definitions (the same words are on the page):
- **Funnel** (per pipeline): items with a stage-history entry in the period; an item counts at
  a process stage when, in the period, it entered that stage, a later one or a success stage
  (filters.reached_condition: the click-through list counts exactly the same items).
  Success and failure stages count items that entered them in the period.
- **Conversion by …**: items created in the period, grouped; conversion = won / created.
- **Time in stage**: stays that ended in the period (an entry with `from_stage_id`), from the
  previous entry of the item to this one; median and 90th percentile in days.
- **Dynamics**: new leads, new deals (created), won and lost (entries into success/failure
  stages) per week (periods up to a quarter) or month.
- **Managers**: items in work now, overdue activities and forgotten items (in work, nothing
  planned) now; created, won and won amount in the period."""
from __future__ import annotations

import calendar
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
from babel.dates import format_date
from sqlalchemy import and_, case, func, literal_column, select
from sqlmodel import Session

from rxcrm.db import open_session
from rxcrm.models import Department, Pipeline, Product, StageHistory, User, utcnow
from rxcrm.models.org import ROLE_MANAGER
from rxcrm.models.pipeline import PROCESS, SUCCESS, FAILURE
from rxcrm.settings import TZ

from . import audit, catalogs, fmt
from .context import Actor
from .errors import ValidationFailed
from .filters import day_bounds, encode
from .listing import scoped

PERIODS = (("month", "Этот месяц"), ("last_month", "Прошлый месяц"), ("quarter", "Этот квартал"),
           ("year", "Этот год"), ("custom", "Свой период"))
PERIOD_LABEL = dict(PERIODS)
DIMENSIONS = (("source", "Источник"), ("program", "Программа"), ("manager", "Менеджер"),
              ("utm", "UTM-кампания"))
DIMENSION_LABEL = dict(DIMENSIONS)
_DIM_FILTER = {"source": "source", "program": "program_id", "manager": "responsible_id", "utm": "utm_campaign"}
MAX_CUSTOM_DAYS = 3 * 366
_BEST_WON = 10 ** 9  # rank of a success stage: beyond every process stage


# ---- parameters -------------------------------------------------------------------------

@dataclass
class Params:
    """The dashboard filter; stored as a named view (FilterPreset page "analytics")."""
    period: str = "month"
    date_from: str = ""  # ISO dates, custom period only
    date_to: str = ""
    pipeline_id: int | None = None
    department_id: int | None = None
    responsible_id: int | None = None
    source: str = ""
    program_id: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _opt_int(raw, name: str, label: str) -> int | None:
    if raw in (None, "", "all", 0, "0"):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(f"Неверное значение фильтра «{label}»: {raw}", fields={name: "int"}) from None


def _opt_date(raw, name: str, label: str) -> str:
    if raw in (None, ""):
        return ""
    try:
        return date.fromisoformat(str(raw)[:10]).isoformat()
    except ValueError:
        raise ValidationFailed(f"Неверная дата «{label}»: {raw}", fields={name: "date"}) from None


def parse(raw: dict | None) -> Params:
    """Params from a JSON/URL dict; unknown keys or bad values raise ValidationFailed."""
    raw = dict(raw or {})
    known = set(Params.__dataclass_fields__)
    bad = sorted(k for k in raw if k not in known)
    if bad:
        raise ValidationFailed(f"Неизвестные параметры аналитики: {', '.join(bad)}",
                               fields={k: "unknown" for k in bad})
    period = str(raw.get("period") or "month")
    if period not in PERIOD_LABEL:
        raise ValidationFailed(f"Неизвестный период: {period}", fields={"period": "unknown"})
    p = Params(period=period,
               date_from=_opt_date(raw.get("date_from"), "date_from", "с"),
               date_to=_opt_date(raw.get("date_to"), "date_to", "по"),
               pipeline_id=_opt_int(raw.get("pipeline_id"), "pipeline_id", "Воронка"),
               department_id=_opt_int(raw.get("department_id"), "department_id", "Отдел"),
               responsible_id=_opt_int(raw.get("responsible_id"), "responsible_id", "Менеджер"),
               source=str(raw.get("source") or "").strip() if raw.get("source") != "all" else "",
               program_id=_opt_int(raw.get("program_id"), "program_id", "Программа"))
    if period == "custom":
        if not p.date_from or not p.date_to:
            raise ValidationFailed("Укажите начало и конец периода", fields={"date_from": "required"})
        d0, d1 = date.fromisoformat(p.date_from), date.fromisoformat(p.date_to)
        if d1 < d0:
            raise ValidationFailed("Конец периода раньше начала", fields={"date_to": "order"})
        if (d1 - d0).days > MAX_CUSTOM_DAYS:
            raise ValidationFailed("Период не длиннее трёх лет", fields={"date_to": "span"})
    return p


def period_dates(p: Params, today: date) -> tuple[date, date]:
    """First and last day (inclusive, Moscow) of the period."""
    if p.period == "custom":
        return date.fromisoformat(p.date_from), date.fromisoformat(p.date_to)
    if p.period == "month":
        return today.replace(day=1), today.replace(day=calendar.monthrange(today.year, today.month)[1])
    if p.period == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if p.period == "quarter":
        q0 = 3 * ((today.month - 1) // 3) + 1
        q1 = q0 + 2
        return date(today.year, q0, 1), date(today.year, q1, calendar.monthrange(today.year, q1)[1])
    return date(today.year, 1, 1), date(today.year, 12, 31)


@dataclass
class Ctx:
    """Resolved parameters: the period as dates and instants, pipelines, the viewer's limits."""
    params: Params
    d0: date
    d1: date
    start: datetime
    end: datetime
    now: datetime
    grain: str  # week | month
    deal_pipeline: Pipeline
    lead_pipeline: Pipeline | None
    responsible_id: int | None  # a manager always sees their own figures only

    @property
    def period(self) -> dict:
        return {"from": self.d0.isoformat(), "to": self.d1.isoformat()}

    def pipeline(self, entity: str) -> Pipeline | None:
        return self.lead_pipeline if entity == "lead" else self.deal_pipeline


def resolve(session: Session, actor: Actor, p: Params, now: datetime | None = None) -> Ctx:
    now = now or utcnow()
    d0, d1 = period_dates(p, now.astimezone(TZ).date())
    deal_pipes = catalogs.pipelines(session, "deal")
    if not deal_pipes:
        raise ValidationFailed("Нет ни одной воронки сделок")
    pipe = next((x for x in deal_pipes if x.id == p.pipeline_id), None)
    if p.pipeline_id is not None and pipe is None:
        raise ValidationFailed("Воронка не найдена", fields={"pipeline_id": "unknown"})
    if pipe is None:  # the viewer's department pipeline, else the default one
        pipe = next((x for x in deal_pipes if actor.department_id and x.department_id == actor.department_id),
                    None) or catalogs.default_pipeline(session, "deal")
    resp = actor.user_id if actor.role == ROLE_MANAGER else p.responsible_id
    return Ctx(params=p, d0=d0, d1=d1, start=day_bounds(d0)[0], end=day_bounds(d1)[1], now=now,
               grain="week" if (d1 - d0).days <= 92 else "month", deal_pipeline=pipe,
               lead_pipeline=catalogs.default_pipeline(session, "lead"), responsible_id=resp)


def item_filters(ctx: Ctx, entity: str, **extra) -> dict:
    """The list filter (services/filters.py) of the dashboard filter for `entity`: used for
    the figures and for the click-through links alike."""
    p = ctx.params
    f: dict = {}
    if ctx.responsible_id:
        f["responsible_id"] = [ctx.responsible_id]
    if p.department_id:
        f["department_id"] = [p.department_id]
    if p.source:
        f["source"] = [p.source]
    if p.program_id:
        f["program_id"] = [p.program_id]
    f.update(extra)
    return f


def list_href(ctx: Ctx, entity: str, **extra) -> str:
    """The /leads or /deals list (not the board) with the matching filter."""
    page = "leads" if entity == "lead" else "deals"
    pipe = ctx.pipeline(entity)
    head = f"/{page}?view=list" + (f"&pipeline={pipe.id}" if entity == "deal" and pipe else "")
    qs = encode(item_filters(ctx, entity, **extra))
    return head + ("&" + qs if qs else "")


def _conds(session: Session, actor: Actor, ctx: Ctx, entity: str, **extra):
    pipe = ctx.pipeline(entity)
    f = item_filters(ctx, entity, **extra)
    if pipe is not None:
        f["pipeline_id"] = [pipe.id]
    model, _, conds = scoped(session, actor, entity, f, ctx.now, pipe.id if pipe else None)
    return model, conds


# ---- dialect helpers --------------------------------------------------------------------

def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _local_day(session: Session, col):
    """The Moscow calendar day of a UTC timestamp column, as an ISO text."""
    if _is_pg(session):
        return func.to_char(func.timezone(str(TZ), col), "YYYY-MM-DD")
    offset = datetime(2020, 1, 1, tzinfo=TZ).utcoffset()  # Moscow: UTC+3 all year since 2014
    return func.date(col, f"+{int(offset.total_seconds() // 3600)} hours")


def _days_between(session: Session, later, earlier):
    if _is_pg(session):
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


# ---- funnels ------------------------------------------------------------------------------

@dataclass
class FunnelStage:
    stage_id: int
    name: str
    color: str
    semantic: str
    count: int = 0
    amount: Decimal = Decimal(0)
    conv_prev: float | None = None  # % of the previous process stage
    conv_first: float | None = None  # % of the first stage
    href: str = ""


@dataclass
class Funnel:
    entity: str
    pipeline_id: int
    pipeline_name: str
    stages: list[FunnelStage]  # process stages, then success stages
    lost: list[FunnelStage]  # failure stages
    entered: int = 0  # items in the funnel (first stage)
    won: int = 0
    won_amount: Decimal = Decimal(0)
    lost_count: int = 0
    conversion: float | None = None  # won / entered, %


def _history(ctx: Ctx, entity: str, pipe_id: int, *cols):
    """select(cols) of the pipeline's stage-history entries in the period (covering index)."""
    sh = StageHistory
    return select(*cols).where(sh.entity_type == entity, sh.pipeline_id == pipe_id, sh.created_at >= ctx.start,
                               sh.created_at < ctx.end)


def funnel(session: Session, actor: Actor, ctx: Ctx, entity: str) -> Funnel | None:
    pipe = ctx.pipeline(entity)
    if pipe is None:
        return None
    stages = catalogs.stages(session, pipe.id)
    model, conds = _conds(session, actor, ctx, entity)
    sh = StageHistory
    # best = the furthest a (not lost) item got in the period: a process stage's sort, or "won"
    rank = {st.id: (_BEST_WON if st.semantic == SUCCESS else st.sort) for st in stages if st.semantic != FAILURE}
    closing_ids = [st.id for st in stages if st.semantic != PROCESS]
    by_best: list = []
    if rank:
        inner = (_history(ctx, entity, pipe.id, sh.entity_id.label("eid"),
                          func.max(case(rank, value=sh.stage_id)).label("best"))
                 .where(sh.stage_id.in_(list(rank))).group_by(sh.entity_id).subquery())
        by_best = session.execute(select(inner.c.best, func.count(), func.sum(model.amount))
                                  .join(model, model.id == inner.c.eid).where(*conds).group_by(inner.c.best)).all()
    by_stage: dict[int, tuple[int, Decimal]] = {}
    if closing_ids:
        closing = (_history(ctx, entity, pipe.id, sh.stage_id.label("sid"), sh.entity_id.label("eid"))
                   .where(sh.stage_id.in_(closing_ids)).distinct().subquery())
        by_stage = {sid: (n, Decimal(amt or 0)) for sid, n, amt in session.execute(
            select(closing.c.sid, func.count(), func.sum(model.amount)).join(model, model.id == closing.c.eid)
            .where(*conds).group_by(closing.c.sid)).all()}

    out = Funnel(entity=entity, pipeline_id=pipe.id, pipeline_name=pipe.name, stages=[], lost=[])
    for st in stages:
        fs = FunnelStage(st.id, st.name, st.color, st.semantic)
        if st.semantic == PROCESS:
            hits = [(n, a) for b, n, a in by_best if b is not None and b >= st.sort]
            fs.count = sum(n for n, _ in hits)
            fs.amount = sum((Decimal(a or 0) for _, a in hits), Decimal(0))
        else:
            fs.count, fs.amount = by_stage.get(st.id, (0, Decimal(0)))
        fs.href = list_href(ctx, entity, reached_stage=[st.id], reached_at=ctx.period)
        (out.lost if st.semantic == FAILURE else out.stages).append(fs)
    out.stages.sort(key=lambda x: x.semantic != PROCESS)
    first = out.stages[0].count if out.stages else 0
    prev = None
    for fs in out.stages:
        fs.conv_first = _pct(fs.count, first)
        fs.conv_prev = _pct(fs.count, prev) if prev is not None else None
        prev = fs.count
    out.entered = first
    out.won = sum(fs.count for fs in out.stages if fs.semantic == SUCCESS)
    out.won_amount = sum((fs.amount for fs in out.stages if fs.semantic == SUCCESS), Decimal(0))
    out.lost_count = sum(fs.count for fs in out.lost)
    out.conversion = _pct(out.won, first)
    return out


# ---- conversion by dimension ---------------------------------------------------------------

@dataclass
class ConvRow:
    key: str
    label: str
    created: int = 0
    in_work: int = 0
    won: int = 0
    lost: int = 0
    won_amount: Decimal = Decimal(0)
    conversion: float | None = None
    href: str = ""


def conversion(session: Session, actor: Actor, ctx: Ctx, entity: str, dim: str) -> list[ConvRow]:
    """Items created in the period grouped by `dim`; biggest groups first."""
    return conversions(session, actor, ctx, entity, (dim,))[dim]


def conversions(session: Session, actor: Actor, ctx: Ctx, entity: str,
                dims=tuple(DIMENSION_LABEL)) -> dict[str, list[ConvRow]]:
    """`conversion` for several dimensions from one scan (grouped by all of them at once)."""
    bad = [d for d in dims if d not in DIMENSION_LABEL]
    if bad:
        raise ValidationFailed(f"Неизвестный разрез: {', '.join(bad)}", fields={"dim": "unknown"})
    model, conds = _conds(session, actor, ctx, entity, created_at=ctx.period)
    cols = [{"source": model.source, "program": model.program_id, "manager": model.responsible_id,
             "utm": model.utm_campaign}[d] for d in dims]
    sem = model.semantic
    rows = session.execute(
        select(*cols, func.count(), func.sum(case((sem == PROCESS, 1), else_=0)),
               func.sum(case((sem == SUCCESS, 1), else_=0)), func.sum(case((sem == FAILURE, 1), else_=0)),
               func.sum(case((sem == SUCCESS, model.amount), else_=0)))
        .where(*conds).group_by(*cols)).all()
    out: dict[str, list[ConvRow]] = {}
    for i, dim in enumerate(dims):
        acc: dict = {}
        for r in rows:
            a = acc.setdefault(r[i], [0, 0, 0, 0, Decimal(0)])
            for j in range(4):
                a[j] += int(r[len(dims) + j] or 0)
            a[4] += Decimal(r[len(dims) + 4] or 0)
        names = _names(session, dim, list(acc))
        keys = [str(v or "") for v in acc]
        result = []
        for value, (n, work, won, lost, amount) in acc.items():
            key = str(value or "")
            r = ConvRow(key=key, label=names.get(value) or _empty_label(dim), created=n, in_work=work,
                        won=won, lost=lost, won_amount=amount, conversion=_pct(won, n))
            if value not in (None, ""):
                # utm_campaign filters by "contains": link only when no other campaign contains it
                if dim != "utm" or not any(key != o and key.lower() in o.lower() for o in keys):
                    r.href = list_href(ctx, entity, created_at=ctx.period,
                                       **{_DIM_FILTER[dim]: value if dim == "utm" else [value]})
            result.append(r)
        result.sort(key=lambda r: (-r.created, r.label))
        out[dim] = result
    return out


def _empty_label(dim: str) -> str:
    return {"source": "Не указан", "program": "Без программы", "manager": "Без ответственного",
            "utm": "Без кампании"}[dim]


def _names(session: Session, dim: str, values: list) -> dict:
    ids = [v for v in values if v is not None]
    if dim == "program" and ids:
        return dict(session.execute(select(Product.id, Product.title).where(Product.id.in_(ids))).all())
    if dim == "manager" and ids:
        return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all())
    return {v: v for v in values if v}


# ---- time in stage ----------------------------------------------------------------------------

@dataclass
class StageTime:
    stage_id: int
    name: str
    color: str
    stays: int = 0
    median_days: float | None = None
    p90_days: float | None = None


def time_in_stage(session: Session, actor: Actor, ctx: Ctx, entity: str = "deal") -> list[StageTime]:
    """Median and 90th percentile of the stays that ended in the period, per stage. SQL
    counts stays per (stage, whole hours); the percentiles are taken from that histogram."""
    pipe = ctx.pipeline(entity)
    stages = [st for st in catalogs.stages(session, pipe.id) if st.semantic == PROCESS]
    model, conds = _conds(session, actor, ctx, entity)
    sh = StageHistory
    hours = func.round(_days_between(session, sh.created_at, sh.prev_at) * 24)
    stays = (_history(ctx, entity, pipe.id, sh.entity_id.label("eid"), sh.from_stage_id.label("sid"),
                      hours.label("hours"))
             .where(sh.from_stage_id.in_([st.id for st in stages]), sh.prev_at.is_not(None)).subquery())
    rows = session.execute(select(stays.c.sid, stays.c.hours, func.count()).join(model, model.id == stays.c.eid)
                           .where(*conds).group_by(stays.c.sid, stays.c.hours)).all()
    hist: dict[int, tuple[list[float], list[int]]] = {}
    for sid, h, n in rows:
        if h is not None:
            vals, counts = hist.setdefault(sid, ([], []))
            vals.append(max(0.0, float(h)) / 24.0)
            counts.append(int(n))
    out = []
    for st in stages:
        t = StageTime(st.id, st.name, st.color)
        if st.id in hist:
            values = np.repeat(np.array(hist[st.id][0]), np.array(hist[st.id][1]))
            t.stays = int(values.size)
            t.median_days = round(float(np.median(values)), 1)
            t.p90_days = round(float(np.quantile(values, 0.9)), 1)
        out.append(t)
    return out


# ---- dynamics ---------------------------------------------------------------------------------

def _bucket_start(d: date, grain: str) -> date:
    return d - timedelta(days=d.weekday()) if grain == "week" else d.replace(day=1)


def bucket_label(d: date, grain: str, locale: str = "ru_RU") -> str:
    """A dynamics bucket in words («3–9 нояб.», «Ноябрь 2026»); `locale` is Babel's."""
    if grain == "week":
        end = d + timedelta(days=6)
        if d.month == end.month:
            return f"{d.day}–{format_date(end, 'd MMM', locale=locale)}"
        return f"{format_date(d, 'd MMM', locale=locale)} – {format_date(end, 'd MMM', locale=locale)}"
    return format_date(d, "LLLL y", locale=locale).capitalize()


def dynamics(session: Session, actor: Actor, ctx: Ctx) -> pd.DataFrame:
    """Index: bucket start (date); columns new_leads, new_deals, won, lost."""
    series: dict[str, dict[str, int]] = {}
    for entity, name in (("lead", "new_leads"), ("deal", "new_deals")):
        if entity == "lead" and ctx.lead_pipeline is None:
            continue
        model, conds = _conds(session, actor, ctx, entity, created_at=ctx.period)
        day = _local_day(session, model.created_at)
        series[name] = dict(session.execute(select(day, func.count()).where(*conds).group_by(day)).all())
    model, conds = _conds(session, actor, ctx, "deal")
    sh = StageHistory
    semantic = {st.id: st.semantic for st in catalogs.stages(session, ctx.deal_pipeline.id)}
    closing = [sid for sid, sem in semantic.items() if sem != PROCESS]
    day = _local_day(session, sh.created_at)
    ended = (_history(ctx, "deal", ctx.deal_pipeline.id, day.label("day"), sh.stage_id.label("sid"),
                      sh.entity_id.label("eid")).where(sh.stage_id.in_(closing)).distinct().subquery())
    rows = session.execute(select(ended.c.day, ended.c.sid, func.count()).join(model, model.id == ended.c.eid)
                           .where(*conds).group_by(ended.c.day, ended.c.sid)).all() if closing else []
    for d, sid, cnt in rows:
        name = "won" if semantic[sid] == SUCCESS else "lost"
        per_day = series.setdefault(name, {})
        per_day[d] = per_day.get(d, 0) + cnt
    buckets = []
    b = _bucket_start(ctx.d0, ctx.grain)
    while b <= ctx.d1:
        buckets.append(b)
        b = b + timedelta(days=7) if ctx.grain == "week" else (b + timedelta(days=32)).replace(day=1)
    frame = pd.DataFrame(0, index=pd.Index(buckets, name="bucket"),
                         columns=["new_leads", "new_deals", "won", "lost"], dtype="int64")
    for name, per_day in series.items():
        for d, cnt in per_day.items():
            key = _bucket_start(date.fromisoformat(str(d)[:10]), ctx.grain)
            if key in frame.index:
                frame.loc[key, name] += int(cnt)
    return frame


NO_REASON = "Причина не указана"  # the group of lost deals without a reason


def lost_reasons(session: Session, actor: Actor, ctx: Ctx) -> list[tuple[str, int]]:
    """Deals lost in the period (entries into a failure stage) by their reason, most first."""
    model, conds = _conds(session, actor, ctx, "deal")
    sh = StageHistory
    failure = [st.id for st in catalogs.stages(session, ctx.deal_pipeline.id) if st.semantic == FAILURE]
    if not failure:
        return []
    lost = (_history(ctx, "deal", ctx.deal_pipeline.id, sh.entity_id.label("eid"))
            .where(sh.stage_id.in_(failure)).distinct().subquery())
    rows = session.execute(select(model.lost_reason, func.count()).select_from(lost).join(model, model.id == lost.c.eid)
                           .where(*conds).group_by(model.lost_reason)).all()
    merged: dict[str, int] = {}
    for reason, cnt in rows:
        label = (reason or "").strip() or NO_REASON
        merged[label] = merged.get(label, 0) + cnt
    return sorted(merged.items(), key=lambda x: (-x[1], x[0]))


# ---- managers ---------------------------------------------------------------------------------

@dataclass
class ManagerRow:
    user_id: int
    name: str
    leads_in_work: int = 0
    in_work: int = 0
    overdue: int = 0
    forgotten: int = 0
    created: int = 0
    won_created: int = 0
    conversion: float | None = None
    won: int = 0
    won_amount: Decimal = Decimal(0)
    href: str = ""
    overdue_href: str = ""
    forgotten_href: str = ""


def managers(session: Session, actor: Actor, ctx: Ctx) -> list[ManagerRow]:
    """The rating: by won amount in the period, then by conversion."""
    model, conds = _conds(session, actor, ctx, "deal")
    proc = model.semantic == PROCESS
    won = model.semantic == SUCCESS
    in_period = and_(model.created_at >= ctx.start, model.created_at < ctx.end)
    closed_in = and_(won, model.closed_at >= ctx.start, model.closed_at < ctx.end)
    one = literal_column("1")
    rows = session.execute(
        select(model.responsible_id,
               func.sum(case((proc, one), else_=0)),
               func.sum(case((and_(proc, model.next_activity_at < ctx.now), one), else_=0)),
               func.sum(case((and_(proc, model.next_activity_at.is_(None)), one), else_=0)),
               func.sum(case((in_period, one), else_=0)),
               func.sum(case((and_(in_period, won), one), else_=0)),
               func.sum(case((closed_in, one), else_=0)),
               func.sum(case((closed_in, model.amount), else_=0)))
        .where(*conds, model.responsible_id.is_not(None)).group_by(model.responsible_id)).all()
    leads: dict[int, int] = {}
    if ctx.lead_pipeline is not None:
        lmodel, lconds = _conds(session, actor, ctx, "lead", semantic=[PROCESS])
        leads = dict(session.execute(select(lmodel.responsible_id, func.count())
                                     .where(*lconds, lmodel.responsible_id.is_not(None))
                                     .group_by(lmodel.responsible_id)).all())
    ids = {r[0] for r in rows} | set(leads)
    names = dict(session.execute(select(User.id, User.full_name).where(User.id.in_(ids))).all()) if ids else {}
    by_user = {r[0]: r for r in rows}
    out = []
    for uid in ids:
        r = by_user.get(uid, (uid, 0, 0, 0, 0, 0, 0, 0))
        m = ManagerRow(user_id=uid, name=names.get(uid, "—"), leads_in_work=leads.get(uid, 0),
                       in_work=int(r[1] or 0), overdue=int(r[2] or 0), forgotten=int(r[3] or 0),
                       created=int(r[4] or 0), won_created=int(r[5] or 0), won=int(r[6] or 0),
                       won_amount=Decimal(r[7] or 0))
        m.conversion = _pct(m.won_created, m.created)
        base = dict(responsible_id=[uid], semantic=[PROCESS])
        m.href = list_href(ctx, "deal", **base)
        m.overdue_href = list_href(ctx, "deal", **base, activity="overdue")
        m.forgotten_href = list_href(ctx, "deal", **base, activity="none")
        out.append(m)
    out.sort(key=lambda m: (-m.won_amount, -(m.conversion or 0), m.name))
    return out


# ---- the whole dashboard ------------------------------------------------------------------------

@dataclass
class Dashboard:
    ctx: Ctx
    lead_funnel: Funnel | None
    deal_funnel: Funnel | None
    conversion: dict[str, list[ConvRow]] = field(default_factory=dict)
    lead_sources: list[ConvRow] = field(default_factory=list)
    stage_times: list[StageTime] = field(default_factory=list)
    dynamics: pd.DataFrame | None = None
    lost_reasons: list[tuple[str, int]] = field(default_factory=list)
    managers: list[ManagerRow] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """Nothing happened in the period (the managers' "now" figures may still exist)."""
        return not any([self.lead_funnel and self.lead_funnel.entered, self.deal_funnel and self.deal_funnel.entered,
                        self.dynamics is not None and int(self.dynamics.values.sum()) > 0])


def dashboard(session: Session, actor: Actor, params: Params | dict | None = None,
              now: datetime | None = None, workers: int = 2) -> Dashboard:
    """Every figure of the page. The widgets' queries are independent reads: with workers > 1
    they run on that many threads, each with its own session (the database works in parallel)."""
    p = params if isinstance(params, Params) else parse(params)
    ctx = resolve(session, actor, p, now)
    jobs = {  # longest first
        "deal_funnel": lambda s: funnel(s, actor, ctx, "deal"),
        "stage_times": lambda s: time_in_stage(s, actor, ctx),
        "lead_funnel": lambda s: funnel(s, actor, ctx, "lead"),
        "dynamics": lambda s: dynamics(s, actor, ctx),
        "managers": lambda s: managers(s, actor, ctx),
        "lost_reasons": lambda s: lost_reasons(s, actor, ctx),
        "conversion": lambda s: conversions(s, actor, ctx, "deal"),
        "lead_sources": lambda s: conversion(s, actor, ctx, "lead", "source") if ctx.lead_pipeline else [],
    }
    if workers <= 1:
        results = {k: fn(session) for k, fn in jobs.items()}
    else:
        bind = session.get_bind()

        def run(fn):
            with open_session(bind, write=False) as s:
                return fn(s)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {k: pool.submit(run, fn) for k, fn in jobs.items()}
            results = {k: f.result() for k, f in futures.items()}
    return Dashboard(ctx=ctx, **results)


def filter_options(session: Session, actor: Actor) -> dict:
    """Pickers of the dashboard filter, limited to what the viewer may pick."""
    depts = catalogs.departments(session)
    if actor.role in ("head", ROLE_MANAGER):
        depts = [d for d in depts if d.id == actor.department_id]
    users = catalogs.assignable_users(session)
    if actor.role == ROLE_MANAGER:
        users = [(i, n) for i, n in users if i == actor.user_id]
    elif actor.role == "head":
        mine = {i for (i,) in session.execute(select(User.id).where(User.department_id == actor.department_id))}
        users = [(i, n) for i, n in users if i in mine]
    return {"periods": list(PERIODS),
            "pipelines": [(x.id, x.name) for x in catalogs.pipelines(session, "deal")],
            "departments": [(d.id, d.name) for d in depts],
            "users": users, "sources": [(x, x) for x in catalogs.sources()],
            "programs": catalogs.programs(session)}


# ---- Excel -----------------------------------------------------------------------------------

def describe(session: Session, ctx: Ctx) -> list[tuple[str, str]]:
    """The filter in words (the first sheet of the workbook, the page subtitle)."""
    p = ctx.params
    out = [("Период", f"{fmt.date_short(ctx.d0)} — {fmt.date_short(ctx.d1)}"),
           ("Воронка", ctx.deal_pipeline.name)]
    if p.department_id:
        d = session.get(Department, p.department_id)
        out.append(("Отдел", d.name if d else "—"))
    if ctx.responsible_id:
        u = session.get(User, ctx.responsible_id)
        out.append(("Менеджер", u.full_name if u else "—"))
    if p.source:
        out.append(("Источник", p.source))
    if p.program_id:
        pr = session.get(Product, p.program_id)
        out.append(("Программа", pr.title if pr else "—"))
    return out


def _funnel_frame(f: Funnel | None) -> pd.DataFrame:
    rows = [] if f is None else f.stages + f.lost
    return pd.DataFrame([{"Стадия": s.name, "Количество": s.count, "Сумма, ₽": float(s.amount),
                          "Конверсия из предыдущей, %": s.conv_prev, "Конверсия от начала, %": s.conv_first}
                         for s in rows], columns=["Стадия", "Количество", "Сумма, ₽", "Конверсия из предыдущей, %",
                                                  "Конверсия от начала, %"])


def _conv_frame(rows: list[ConvRow], title: str) -> pd.DataFrame:
    return pd.DataFrame([{title: r.label, "Создано": r.created, "В работе": r.in_work, "Выиграно": r.won,
                          "Проиграно": r.lost, "Конверсия, %": r.conversion, "Сумма выигранных, ₽": float(r.won_amount)}
                         for r in rows],
                        columns=[title, "Создано", "В работе", "Выиграно", "Проиграно", "Конверсия, %",
                                 "Сумма выигранных, ₽"])


def workbook(session: Session, actor: Actor, dash: Dashboard) -> bytes:
    """Every table behind the dashboard, one sheet each, as .xlsx bytes."""
    sheets: list[tuple[str, pd.DataFrame]] = [
        ("Фильтр", pd.DataFrame(describe(session, dash.ctx), columns=["Параметр", "Значение"])),
        ("Воронка лидов", _funnel_frame(dash.lead_funnel)),
        ("Воронка сделок", _funnel_frame(dash.deal_funnel)),
        ("Лиды по источникам", _conv_frame(dash.lead_sources, "Источник")),
    ]
    for dim, label in DIMENSIONS:
        sheets.append((f"Сделки — {label}"[:31], _conv_frame(dash.conversion.get(dim, []), label)))
    sheets.append(("Время на стадиях", pd.DataFrame(
        [{"Стадия": t.name, "Переходов": t.stays, "Медиана, дней": t.median_days, "90-й перцентиль, дней": t.p90_days}
         for t in dash.stage_times], columns=["Стадия", "Переходов", "Медиана, дней", "90-й перцентиль, дней"])))
    dyn = dash.dynamics if dash.dynamics is not None else pd.DataFrame()
    sheets.append(("Динамика", pd.DataFrame(
        [{"Период": bucket_label(b, dash.ctx.grain), "Новые лиды": int(r.new_leads), "Новые сделки": int(r.new_deals),
          "Выиграно": int(r.won), "Проиграно": int(r.lost)} for b, r in dyn.iterrows()],
        columns=["Период", "Новые лиды", "Новые сделки", "Выиграно", "Проиграно"])))
    sheets.append(("Причины проигрыша", pd.DataFrame(dash.lost_reasons, columns=["Причина", "Сделок"])))
    sheets.append(("Менеджеры", pd.DataFrame(
        [{"Менеджер": m.name, "Лиды в работе": m.leads_in_work, "Сделки в работе": m.in_work,
          "Просроченные дела": m.overdue, "Забытые сделки": m.forgotten, "Новые сделки": m.created,
          "Конверсия новых, %": m.conversion, "Выиграно": m.won, "Сумма выигранных, ₽": float(m.won_amount)}
         for m in dash.managers],
        columns=["Менеджер", "Лиды в работе", "Сделки в работе", "Просроченные дела", "Забытые сделки",
                 "Новые сделки", "Конверсия новых, %", "Выиграно", "Сумма выигранных, ₽"])))
    buf = BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        for name, frame in sheets:
            frame.to_excel(xw, sheet_name=name, index=False)
            ws = xw.sheets[name]
            ws.freeze_panes = "A2"
            for i, col in enumerate(frame.columns, start=1):
                letter = ws.cell(row=1, column=i).column_letter
                width = max([len(str(col))] + [len(str(v)) for v in frame[col].head(200)])
                ws.column_dimensions[letter].width = min(60, max(10, width + 2))
                if "₽" in str(col):
                    for cell in ws[letter][1:]:
                        cell.number_format = '#,##0 "₽"'
    audit.record(session, actor, "export", "analytics", None,
                 {"filter": dash.ctx.params.as_dict(), "period": dash.ctx.period})
    return buf.getvalue()


def write_workbook(session: Session, actor: Actor, dash: Dashboard, dest: Path) -> None:
    dest.write_bytes(workbook(session, actor, dash))
