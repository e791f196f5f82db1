"""Read side of the work surfaces: list pages, counts, board columns and cards.

Every query goes through `_scoped` = not deleted + the actor's access scope + the
filters, so lists, boards, counts, sums and exports can never disagree or leak."""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, case, func, select, union_all
from sqlmodel import Session

from rxcrm.models import Activity, Communication, Company, Contact, Pipeline, Product, Stage, User, utcnow
from rxcrm.models.pipeline import PROCESS
from rxcrm.settings import TZ

from . import access, changes, fmt
from .context import Actor
from .errors import ValidationFailed
from .fields import MODELS, FieldDef, field_map
from .filters import conditions, day_bounds
from .shared import Recent, SharedAnswers
from . import queue

PAGE_SIZES = (10, 20, 50, 100)
BOARD_PAGE = 20


def _scoped(session: Session, actor: Actor, entity: str, filters: dict, now: datetime,
            pipeline_id: int | None = None, action: str = "view"):
    model = MODELS[entity]
    fmap = field_map(session, entity, pipeline_id)
    conds = [model.deleted_at.is_(None), access.scope(session, actor, model, entity, action)]
    conds += conditions(model, entity, filters, fmap, now)
    return model, fmap, conds


def count(session: Session, actor: Actor, entity: str, filters: dict, now: datetime | None = None,
          pipeline_id: int | None = None) -> int:
    model, _, conds = _scoped(session, actor, entity, filters, now or utcnow(), pipeline_id)
    return session.execute(select(func.count()).select_from(model).where(*conds)).scalar_one()


DEFAULT_SORT = ("created_at", True)  # newest first


def _sort_expr(model, entity: str, fmap: dict[str, FieldDef], sort: str):
    """(joins, expression) to order `entity` by field `sort`, or None when it cannot sort."""
    fd = fmap.get(sort)
    if fd is None or not fd.sortable:
        return None
    if fd.key.startswith("custom."):
        return [], model.custom[fd.key.split(".", 1)[1]].as_string()
    if fd.kind == "stage":
        return [(Stage, Stage.id == model.stage_id)], Stage.sort
    if fd.kind == "user":
        return [(User, User.id == getattr(model, fd.column))], User.full_name
    if fd.kind == "program":
        return [(Product, Product.id == model.program_id)], Product.title
    if fd.key == "name":
        return [], model.last_name
    if fd.column is None:
        return None
    return [], getattr(model, fd.column)


def can_sort(session: Session, entity: str, sort: str, pipeline_id: int | None = None) -> bool:
    """Whether a list of `entity` (in `pipeline_id`) can be ordered by `sort`."""
    if sort == "queue":
        return entity == "lead"
    return _sort_expr(MODELS[entity], entity, field_map(session, entity, pipeline_id), sort) is not None


def sort_or_default(session: Session, entity: str, sort: str, desc: bool,
                    pipeline_id: int | None = None) -> tuple[str, bool]:
    """`(sort, desc)` when the list can be ordered so, else the default order (a sort from an
    old link, another page or another pipeline's field falls back silently)."""
    return (sort, bool(desc)) if can_sort(session, entity, sort, pipeline_id) else DEFAULT_SORT


def _order(model, entity: str, fmap: dict[str, FieldDef], sort: str, desc: bool):
    if sort == "queue":  # the work queue of /leads (services/queue.py); fixed order
        return queue.order_expression(model, entity)
    found = _sort_expr(model, entity, fmap, sort)
    if found is None:
        fd = fmap.get(sort)
        raise ValidationFailed(f"Нельзя сортировать по полю «{fd.label if fd else sort}»")
    joins, expr = found
    order = [expr.desc() if desc else expr.asc(), model.id.desc() if desc else model.id.asc()]
    return joins, order


@dataclass
class ListPage:
    rows: list[dict]
    total: int
    page: int
    page_size: int
    columns: list[FieldDef] = field(default_factory=list)


def query_items(session: Session, actor: Actor, entity: str, filters: dict, sort: str = "created_at",
                desc: bool = True, offset: int = 0, limit: int | None = 20, now: datetime | None = None,
                pipeline_id: int | None = None, action: str = "view"):
    """The items of a filtered, sorted view (ORM objects), a window of it."""
    model, fmap, conds = _scoped(session, actor, entity, filters, now or utcnow(), pipeline_id, action)
    joins, order = _order(model, entity, fmap, sort, desc)
    stmt = select(model)
    for target, on in joins:
        stmt = stmt.outerjoin(target, on)
    stmt = stmt.where(*conds).order_by(*order).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.execute(stmt).scalars().all()), fmap


def ordered_ids(session: Session, actor: Actor, entity: str, filters: dict, sort: str = "created_at",
                desc: bool = True, now: datetime | None = None, pipeline_id: int | None = None,
                action: str = "view") -> list[int]:
    """The ids of the same rows in the same order as `query_items(..., limit=None)`, in one
    statement: the export reads them once, then loads the items in chunks by id, so rows
    added or re-sorted meanwhile can neither repeat nor go missing at chunk borders."""
    model, fmap, conds = _scoped(session, actor, entity, filters, now or utcnow(), pipeline_id, action)
    joins, order = _order(model, entity, fmap, sort, desc)
    stmt = select(model.id)
    for target, on in joins:
        stmt = stmt.outerjoin(target, on)
    return list(session.execute(stmt.where(*conds).order_by(*order)).scalars().all())


def list_page(session: Session, actor: Actor, entity: str, filters: dict, columns: list[str],
              sort: str = "created_at", desc: bool = True, page: int = 1, page_size: int = 20,
              now: datetime | None = None, pipeline_id: int | None = None, lang: str = "ru") -> ListPage:
    now = now or utcnow()
    if page_size not in PAGE_SIZES:
        page_size = 20
    total = count(session, actor, entity, filters, now, pipeline_id)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    items, fmap = query_items(session, actor, entity, filters, sort, desc, (page - 1) * page_size,
                              page_size, now, pipeline_id)
    cols = [fmap[c] for c in columns if c in fmap]
    values = resolve(session, entity, items, [c.key for c in cols])
    rows = []
    for item, vals in zip(items, values):
        row = {"id": item.id}
        for c in cols:
            row[c.key] = display(vals[c.key], c, now)
        if "next_activity_at" in vals:
            nxt = vals["next_activity_at"]
            row["_overdue"] = bool(nxt and nxt < now)
        rows.append(row)
    return ListPage(rows, total, page, page_size, cols)


def matching_ids(session: Session, actor: Actor, entity: str, filters: dict, action: str = "view",
                 pipeline_id: int | None = None, limit: int = 100_000) -> list[int]:
    model, _, conds = _scoped(session, actor, entity, filters, utcnow(), pipeline_id, action)
    stmt = select(model.id).where(*conds).order_by(model.id).limit(limit)
    return list(session.execute(stmt).scalars().all())


# ---- values ---------------------------------------------------------------------------

def _lookup(session: Session, model, ids, attr: str) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    rows = session.execute(select(model.id, getattr(model, attr)).where(model.id.in_(ids))).all()
    return dict(rows)


def _comms(session: Session, entity_type: str, ids, kind: str) -> dict[int, list[str]]:
    ids = {i for i in ids if i}
    out: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return out
    stmt = select(Communication.entity_id, Communication.value).where(
        Communication.entity_type == entity_type, Communication.kind == kind,
        Communication.entity_id.in_(ids)).order_by(Communication.id)
    for eid, value in session.execute(stmt).all():
        out[eid].append(fmt.phone(value) if kind == "phone" else value)
    return out


def resolve(session: Session, entity: str, items: list, keys: list[str]) -> list[dict]:
    """Typed values of `keys` for `items`, with ids turned into names (batched lookups)."""
    need = set(keys)
    stages = {s.id: s for s in session.execute(select(Stage)).scalars()} if need & {"stage_id"} else {}
    pipes = dict(session.execute(select(Pipeline.id, Pipeline.name)).all()) if "pipeline_id" in need else {}
    users = _lookup(session, User, [getattr(i, "responsible_id", None) for i in items], "full_name") \
        if "responsible_id" in need else {}
    programs = _lookup(session, Product, [getattr(i, "program_id", None) for i in items], "title") \
        if "program_id" in need else {}
    contacts = _lookup(session, Contact, [getattr(i, "contact_id", None) for i in items], "full_name") \
        if "contact_id" in need else {}
    companies = _lookup(session, Company, [getattr(i, "company_id", None) for i in items], "title") \
        if "company_id" in need else {}
    phone_owner = "contact" if entity == "deal" else entity
    owner_ids = [(i.contact_id if entity == "deal" else i.id) for i in items]
    phones = _comms(session, phone_owner, owner_ids, "phone") if "phone" in need else {}
    emails = _comms(session, phone_owner, owner_ids, "email") if "email" in need else {}
    out = []
    for item, owner in zip(items, owner_ids):
        vals: dict = {}
        for key in keys:
            if key.startswith("custom."):
                vals[key] = (item.custom or {}).get(key.split(".", 1)[1])
            elif key == "stage_id":
                st = stages.get(item.stage_id)
                vals[key] = st.name if st else None
            elif key == "pipeline_id":
                vals[key] = pipes.get(item.pipeline_id)
            elif key == "responsible_id":
                vals[key] = users.get(item.responsible_id)
            elif key == "program_id":
                vals[key] = programs.get(item.program_id)
            elif key == "contact_id":
                vals[key] = contacts.get(item.contact_id)
            elif key == "company_id":
                vals[key] = companies.get(item.company_id)
            elif key == "phone":
                vals[key] = ", ".join(phones.get(owner, []))
            elif key == "email":
                vals[key] = ", ".join(emails.get(owner, []))
            elif key == "name":
                vals[key] = " ".join(p for p in (item.last_name, item.first_name, item.middle_name) if p)
            else:
                vals[key] = getattr(item, key, None)
        out.append(vals)
    return out


def display(value, fd: FieldDef, now: datetime | None = None) -> str:
    """A value as the list shows it (Russian formats)."""
    if value is None or value == "":
        return "нет дел" if fd.kind == "activity" else ""
    if fd.kind == "money":
        return fmt.money(value)
    if fd.kind in ("datetime", "activity"):
        return fmt.dt_short(value, now)
    if fd.kind == "date":
        if isinstance(value, str):
            try:
                from datetime import date as _d
                value = _d.fromisoformat(value)
            except ValueError:
                return value
        return fmt.date_short(value)
    if fd.kind == "bool":
        return "Да" if value in (True, "Да") else ("Нет" if value in (False, "Нет") else str(value))
    if isinstance(value, Decimal):
        return fmt.number(value)
    return str(value)


# ---- board ----------------------------------------------------------------------------

def stages_of(session: Session, pipeline_id: int) -> list[Stage]:
    return list(session.execute(select(Stage).where(Stage.pipeline_id == pipeline_id)
                                .order_by(Stage.sort, Stage.id)).scalars())


# Shared answers (services/shared.py): people who see the same board — same scope and
# filter, in the same minute — get one answer while no change has been committed since
# (changes.version). A manager's own board is theirs alone; a department's is shared.
SUMMARIES = SharedAnswers(size=2048)
FIRST_CARDS = SharedAnswers(size=2048)
CHANGED_CARDS = SharedAnswers(size=1024)
RECENT = Recent()


def board_summary(session: Session, actor: Actor, entity: str, pipeline_id: int, filters: dict,
                  now: datetime | None = None) -> list[dict]:
    """Per process stage: count, amount sum and activity counters — one GROUP BY in SQL."""
    now = now or utcnow().replace(second=0, microsecond=0)
    model, _, conds = _scoped(session, actor, entity, filters, now, pipeline_id)
    return _summary(session, model, conds, pipeline_id, now, _question(session, actor, entity, pipeline_id, filters, now))


def _question(session: Session, actor: Actor, entity: str, pipeline_id: int, filters: dict, now: datetime) -> tuple:
    """What a board read asks, as a key of shared answers: the database, the board, who may
    see what (access.scope_key), the filter, the minute and the data version."""
    version = changes.version(session)
    scope = access.scope_key(session, actor, entity)
    if scope[0] == "department" and not _own_elsewhere(session, actor, entity, version):
        scope = scope[:2]  # "their department or their own" is just their department: shared
    prefix = (str(session.get_bind().url), entity, pipeline_id, scope,
              json.dumps(filters, sort_keys=True, default=str), now.isoformat())
    # a live refresh takes the newest answer that shows what it was told (changes.at_least)
    return (*prefix, RECENT.settle(prefix, version, changes.floor()))


_ELSEWHERE = SharedAnswers(size=4096)


def _own_elsewhere(session: Session, actor: Actor, entity: str, version: int) -> bool:
    """Is the person responsible for an item outside their department (which the
    department scope shows them too)? Usually not — then colleagues share their boards."""
    model = MODELS[entity]
    return _ELSEWHERE.get((str(session.get_bind().url), entity, actor.user_id, actor.department_id, version),
                          lambda: session.execute(select(model.id).where(
                              model.responsible_id == actor.user_id, model.deleted_at.is_(None),
                              (model.department_id != actor.department_id) | model.department_id.is_(None))
                              .limit(1)).first() is not None)


def _summary(session: Session, model, conds: list, pipeline_id: int, now: datetime, key: tuple) -> list[dict]:
    end_today = day_bounds(now.astimezone(TZ).date())[1]
    nxt = model.next_activity_at
    stmt = (select(model.stage_id, func.count(), func.coalesce(func.sum(model.amount), 0),
                   func.sum(case((nxt < now, 1), else_=0)),
                   func.sum(case((and_(nxt >= now, nxt < end_today), 1), else_=0)),
                   func.sum(case((nxt.is_(None), 1), else_=0)))
            .where(model.pipeline_id == pipeline_id, *conds).group_by(model.stage_id))
    agg = SUMMARIES.get(key,
                        lambda: {row[0]: tuple(row[1:]) for row in session.execute(stmt).all()})
    out = []
    for st in stages_of(session, pipeline_id):
        if st.semantic != PROCESS:
            continue
        cnt, total, overdue, today, none = agg.get(st.id, (0, 0, 0, 0, 0))
        out.append({"id": st.id, "name": st.name, "color": st.color, "count": int(cnt),
                    "amount": fmt.money(total or 0), "amount_value": float(total or 0),
                    "overdue": int(overdue or 0), "today": int(today or 0), "none": int(none or 0)})
    return out


def _columns(session: Session, actor: Actor, entity: str, pipeline_id: int, filters: dict, now: datetime):
    """A board's scoped model and conditions, its shared-answer key and its columns' summaries."""
    model, _, conds = _scoped(session, actor, entity, filters, now, pipeline_id)
    key = _question(session, actor, entity, pipeline_id, filters, now)
    return model, conds, key, _summary(session, model, conds, pipeline_id, now, key)


def board(session: Session, actor: Actor, entity: str, pipeline_id: int, filters: dict,
          now: datetime | None = None, limit: int | None = None) -> list[dict]:
    """The board as it opens: per process stage its summary (board_summary) and its first
    `limit` cards newest first (`cards`) — a handful of statements whatever the number of
    columns (the columns' first pages are one UNION ALL of indexed LIMIT reads, their cards
    one batch of lookups), shared among people who ask the same."""
    now = now or utcnow().replace(second=0, microsecond=0)
    limit = limit or BOARD_PAGE
    model, conds, key, columns = _columns(session, actor, entity, pipeline_id, filters, now)
    arms = [select(model.id).where(model.pipeline_id == pipeline_id, model.stage_id == c["id"], *conds)
            .order_by(model.created_at.desc(), model.id.desc()).limit(limit).subquery()
            for c in columns if c["count"]]
    found: list[dict] = []
    if arms:
        ids_stmt = union_all(*(select(a.c.id) for a in arms)) if len(arms) > 1 else select(arms[0].c.id)

        def first_pages() -> list[dict]:
            ids = [row[0] for row in session.execute(ids_stmt)]
            items = session.execute(select(model).where(model.id.in_(ids))
                                    .order_by(model.created_at.desc(), model.id.desc())).scalars().all()
            return cards(session, entity, list(items), now)
        found = FIRST_CARDS.get((*key, limit), first_pages)
    by_stage: dict[int, list[dict]] = defaultdict(list)
    for card in found:
        by_stage[card["stage_id"]].append(card)
    return [{**c, "cards": by_stage.get(c["id"], [])} for c in columns]


def board_changes(session: Session, actor: Actor, entity: str, pipeline_id: int, filters: dict,
                  ids: list[int], now: datetime | None = None) -> tuple[list[dict], list[dict]]:
    """What an open board needs after the items `ids` changed (a live refresh): the columns'
    summaries (shared, like `board`'s) and the cards of those items as this person sees them
    now — an item that left the board (another pipeline or a closed stage, out of the filter or
    of the person's sight, deleted) has no card. One indexed read of a few ids instead of
    every column's first page."""
    now = now or utcnow().replace(second=0, microsecond=0)
    model, conds, key, columns = _columns(session, actor, entity, pipeline_id, filters, now)
    if not ids:
        return columns, []

    def changed_cards() -> list[dict]:
        found = session.execute(select(model).where(
            model.id.in_(ids), model.pipeline_id == pipeline_id, model.stage_id.in_([c["id"] for c in columns]),
            *conds)).scalars().all()
        return cards(session, entity, list(found), now)
    # the tabs of one scope refreshed in one round were told of the same rows: one read
    return columns, CHANGED_CARDS.get((*key, tuple(sorted(ids))), changed_cards)


def column_cards(session: Session, actor: Actor, entity: str, pipeline_id: int, stage_id: int,
                 filters: dict, offset: int = 0, limit: int | None = None,
                 now: datetime | None = None) -> list[dict]:
    """One page of cards of one column, newest first."""
    now = now or utcnow()
    limit = limit or BOARD_PAGE
    model, _, conds = _scoped(session, actor, entity, filters, now, pipeline_id)
    stmt = (select(model).where(model.pipeline_id == pipeline_id, model.stage_id == stage_id, *conds)
            .order_by(model.created_at.desc(), model.id.desc()).offset(offset).limit(limit))
    return cards(session, entity, list(session.execute(stmt).scalars()), now)


def cards(session: Session, entity: str, items: list, now: datetime | None = None) -> list[dict]:
    """Card dicts for the board: title, client, amount, responsible, next activity, repeat,
    version (the item's optimistic version, for the move's conflict check)."""
    now = now or utcnow()
    end_today = day_bounds(now.astimezone(TZ).date())[1]
    users = _lookup(session, User, [i.responsible_id for i in items], "full_name")
    contacts = _lookup(session, Contact, [i.contact_id for i in items], "full_name")
    companies = _lookup(session, Company, [i.company_id for i in items], "title")
    nxt: dict[int, Activity] = {}
    ids = [i.id for i in items]
    if ids:
        acts = session.execute(select(Activity).where(
            Activity.entity_type == entity, Activity.entity_id.in_(ids), Activity.done.is_(False))
            .order_by(Activity.start_at)).scalars()
        for a in acts:
            nxt.setdefault(a.entity_id, a)
    out = []
    for i in items:
        client = contacts.get(i.contact_id) or companies.get(i.company_id) or ""
        if not client and entity == "lead":
            client = " ".join(p for p in (i.last_name, i.first_name) if p) or i.company_title
        act = nxt.get(i.id)
        out.append({
            "id": i.id, "title": i.title, "client": client, "amount": fmt.money(i.amount or 0),
            "responsible": fmt.short_name(users.get(i.responsible_id, "")), "stage_id": i.stage_id,
            "activity": (act.subject or "Дело") if act else "",
            "activity_at": fmt.dt_short(act.start_at, now) if act else "",
            "overdue": bool(act and act.start_at < now),
            "repeat": bool(i.is_repeat),
            "version": i.version,  # a drag passes it to items.move_stage(expected_version=)
            "created": i.created_at.isoformat() if i.created_at else "",  # the column's order (newest first)
            "value": float(i.amount or 0),
            "due": _due(i.next_activity_at, now, end_today),  # which column counter it adds to
        })
    return out


def _due(nxt: datetime | None, now: datetime, end_today: datetime) -> str:
    """The card's share of its column's activity counters (as board_summary counts them)."""
    if nxt is None:
        return "none"
    if nxt.tzinfo is None:
        nxt = nxt.replace(tzinfo=now.tzinfo)
    return "overdue" if nxt < now else "today" if nxt < end_today else ""



__all__ = ["ListPage", "board", "board_changes", "board_summary", "cards", "column_cards", "count", "display", "list_page",
           "matching_ids", "ordered_ids", "query_items", "resolve", "stages_of"]


def scoped(session: Session, actor: Actor, entity: str, filters: dict, now: datetime,
           pipeline_id: int | None = None, action: str = "view"):
    """(model, field map, conditions) of `entity` as the lists see it (analytics reuses it)."""
    return _scoped(session, actor, entity, filters, now, pipeline_id, action)
