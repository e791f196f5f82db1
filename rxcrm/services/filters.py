"""Filters: one dict per view, JSON-able, the same for boards, lists, counts and exports.

Shape (every key optional):
    {"q": "text or phone",                          free text: title/names/emails/phones
     "stage_id": [3, 4], "source": ["Лендинг"], "responsible_id": [5], "program_id": [2],
     "pipeline_id": [2], "semantic": ["process"],   lists → IN
     "created_at": {"from": "2026-01-01", "to": "2026-01-31"},   dates (Moscow days, inclusive)
     "amount": {"from": 10000, "to": 50000},        number ranges
     "activity": "overdue" | "today" | "none",      state of the next planned activity
     "is_repeat": true, "title": "python",          bool / text contains
     "custom.dpo_docs_received": ["Да"],            custom fields, by their type
     "department_id": [1],                           the item's department
     "reached_stage": [7], "reached_at": {"from": "2026-11-01", "to": "2026-11-30"}}
                                                    analytics click-through: items that reached
                                                    stage 7 (or a later one, or won) in the period
`encode`/`decode` turn it into URL query parameters and back (so a link can be shared)."""
from __future__ import annotations

import json
import weakref
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from sqlalchemy import Boolean, Float, String, and_, bindparam, cast, event, false, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import visitors
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from rxcrm.db import READONLY
from rxcrm.models import Communication, Department, Stage, StageHistory
from rxcrm.models.pipeline import PROCESS, SUCCESS
from rxcrm.settings import TZ

from .errors import ValidationFailed
from .fields import FieldDef
from .phones import fold, normalize_email, phone_search_key, prefix_range

ACTIVITY_STATES = ("overdue", "today", "none")
LIST_KINDS = {"stage", "user", "program", "pipeline", "enum", "contact", "company"}
RANGE_KINDS = {"date", "datetime", "money", "number", "int"}
RESERVED = {"q", "activity", "semantic", "department_id", "reached_stage", "reached_at"}
INT_LIST_KEYS = ("department_id", "reached_stage")


def day_bounds(d: date) -> tuple[datetime, datetime]:
    start = datetime.combine(d, time.min, tzinfo=TZ)
    return start, start + timedelta(days=1)


def _parse_date(value, name: str) -> date:
    try:
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationFailed(f"Неверная дата в фильтре «{name}»: {value}", fields={name: "date"}) from None


def _parse_number(value, name: str) -> Decimal:
    try:
        return Decimal(str(value).replace(" ", "").replace("\u00a0", "").replace(",", "."))
    except InvalidOperation:
        raise ValidationFailed(f"Неверное число в фильтре «{name}»: {value}", fields={name: "number"}) from None


def _like(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


_PHONE_CHARS = set("0123456789+-() .")


def looks_like_phone(q: str) -> bool:
    return bool(q) and set(q) <= _PHONE_CHARS and phone_search_key(q) is not None


class InIds(ColumnElement):
    """`column IN (ids)` for a subquery of ids, so that it can be OR-ed with other indexed
    conditions: PostgreSQL cannot combine `IN (subquery)` with the rest of an OR (it scans
    the table and probes a hashed subplan per row), but it evaluates `= ANY(ARRAY(subquery))`
    once and ORs the index bitmaps; SQLite unions `IN (subquery)` terms by itself."""
    type = Boolean()
    _is_implicitly_boolean = True
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("ids", InternalTraversal.dp_clauseelement)]

    def __init__(self, column, ids):
        self.column, self.ids = column, ids.scalar_subquery()


@compiles(InIds)
def _in_ids(element, compiler, **kw):
    return f"{compiler.process(element.column, **kw)} IN {compiler.process(element.ids, **kw)}"


@compiles(InIds, "postgresql")
def _in_ids_pg(element, compiler, **kw):
    return f"{compiler.process(element.column, **kw)} = ANY(ARRAY{compiler.process(element.ids, **kw)})"


def _comm_ids(entity_type: str, q: str):
    """Subquery: ids of `entity_type` items whose phone ends with / email starts with q."""
    conds = []
    key = phone_search_key(q) if looks_like_phone(q) else None
    if key:
        lo, hi = prefix_range(key)
        conds.append(and_(Communication.kind == "phone", Communication.norm_rev >= lo, Communication.norm_rev < hi))
    em = normalize_email(q)
    if not key and len(em) >= 3 and " " not in em and em.isascii():
        lo, hi = prefix_range(em)
        conds.append(and_(Communication.kind == "email", Communication.norm >= lo, Communication.norm < hi))
    if not conds:
        return None
    return select(Communication.entity_id).where(Communication.entity_type == entity_type, or_(*conds))


# ---- free text ------------------------------------------------------------------------
# `search_text` (lead, deal, contact, company) is indexed for substrings of INDEX_MIN or more
# characters (migration 0011). PostgreSQL: a pg_trgm GIN index serves `LIKE '%q%'` as it
# stands, and its planner weighs the index against a scan by the pattern's statistics.
# SQLite: the FTS5 trigram table `<table>_fts` (kept by triggers) knows which rows hold the
# query's trigrams, but SQLite's planner cannot tell a rare text from a common one — reading
# half the table by id is far slower than scanning it. So before a statement runs in a
# Session, `_resolve_text_matches` asks the FTS table for at most `_index_limit` ids: when
# it has no more, the statement reads those rows by id; when it has more, it scans (as
# for 1–2 characters, which no trigram index can answer). The exact LIKE always decides.
INDEX_MIN = 3
INDEX_SHARE = 50     # SQLite: read rows by id when the text is in at most 1/50 of the table
INDEX_FLOOR = 2000   # … or in at most this many rows
FTS_TERMS = 5        # at most this many trigrams asked of the FTS table


def fts_query(needle: str) -> str:
    """An FTS5 query for the rows that may contain `needle` (≥ INDEX_MIN characters): all of
    a few of its trigrams — the start of each word, the next three characters of each word,
    …, and the end of the needle (at most FTS_TERMS). A superset of the rows that contain
    it (the LIKE decides), and far cheaper than its whole phrase, for which FTS5 reads every
    common trigram a name is made of («ова», «на », «вна»: 10× slower at 1M rows). Each
    trigram is a quoted string (quotes doubled): nothing in it is query syntax."""
    def cover(text: str) -> list[str]:  # trigrams side by side from the start, the last one
        grams = [text[i:i + 3] for i in range(0, len(text) - 2, 3)]
        return grams + [text[-3:]] if (len(text) - 3) % 3 else grams

    words = [cover(word) for word in needle.split() if len(word) >= 3]
    # the first trigram of every word, then the second of every word, …
    grams = [w[i] for i in range(max(map(len, words), default=0)) for w in words if i < len(w)]
    if not grams:  # no word of 3 characters: trigrams across the spaces
        grams = cover(needle)
    grams = list(dict.fromkeys(grams))[:FTS_TERMS - 1] + [needle[-3:]]
    return " ".join(dict.fromkeys('"' + g.replace('"', '""') + '"' for g in grams))


_UNRESOLVED: weakref.WeakSet = weakref.WeakSet()  # TextMatch nodes not yet resolved
_ANSWERS = "rxcrm.fts_answers"  # Session.info key: (table, FTS query) → ids as JSON, or None


class TextMatch(ColumnElement):
    """On SQLite: `<model>.id` is among the rows whose search_text may contain `needle`
    (folded, ≥ INDEX_MIN characters) by the FTS5 trigram table (`fts_query`: more rows than
    the exact LIKE), so `search_condition` pairs it with the LIKE. `how` is "fts"
    (the statement asks the FTS table), "ids" (the ids it gave, `_resolve_text_matches`) or
    "scan" (too many: nothing added, the LIKE scans). Elsewhere it adds nothing. Only for the
    item models themselves (the SQL names their table), not aliases."""
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: no "= 1" on SQLite
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("query", InternalTraversal.dp_clauseelement),
                           ("ids", InternalTraversal.dp_clauseelement),
                           ("how", InternalTraversal.dp_string)]

    def __init__(self, model, needle: str):
        self.column = model.__table__.c.search_text
        self.query = bindparam(None, fts_query(needle), unique=True)
        self.ids = bindparam(None, "[]", unique=True)
        self.how = "fts"
        _UNRESOLVED.add(self)


@compiles(TextMatch)
def _text_match(element, compiler, **kw):
    # PostgreSQL (and any other database): the LIKE it is paired with is the indexed
    # condition itself (trigram GIN); nothing to add.
    return "1 = 1"


@compiles(TextMatch, "sqlite")
def _text_match_sqlite(element, compiler, **kw):
    fts, rowid = f"{element.column.table.name}_fts", compiler.process(element.column.table.c.id, **kw)
    if element.how == "ids":
        return f"{rowid} IN (SELECT value FROM json_each({compiler.process(element.ids, **kw)}))"
    if element.how == "scan":
        return "1 = 1"
    return f"{rowid} IN (SELECT rowid FROM {fts} WHERE {fts} MATCH {compiler.process(element.query, **kw)})"


def _index_limit(conn, table: str) -> int:
    rows = conn.exec_driver_sql(f'SELECT max(rowid) FROM "{table}"').scalar() or 0
    return max(INDEX_FLOOR, rows // INDEX_SHARE)


@event.listens_for(Session, "do_orm_execute")
def _resolve_text_matches(state) -> None:
    """SQLite: before a statement with a TextMatch runs, ask its FTS table for the ids
    (a bounded read); few → the statement reads them by id, many → it scans."""
    if not _UNRESOLVED or not state.is_select:
        return
    nodes = [n for n in visitors.iterate(state.statement) if isinstance(n, TextMatch) and n in _UNRESOLVED]
    if not nodes:
        return
    conn = state.session.connection()
    # a read-only unit reads one snapshot and writes nothing: its answers can be reused (a
    # list asks the same for its count and its page)
    known = state.session.info.setdefault(_ANSWERS, {}) if state.session.info.get(READONLY) else {}
    for node in nodes:
        _UNRESOLVED.discard(node)
        if conn.dialect.name != "sqlite":
            continue
        table, query = node.column.table.name, node.query.value
        if (table, query) not in known:
            limit = _index_limit(conn, table)
            found, ids = conn.exec_driver_sql(
                f"SELECT count(*), json_group_array(rowid) FROM (SELECT rowid FROM {table}_fts "
                f"WHERE {table}_fts MATCH ? LIMIT ?)", (query, limit + 1)).one()
            known[(table, query)] = None if found > limit else ids
        ids = known[(table, query)]
        if ids is None:
            node.how = "scan"
        else:
            node.how, node.ids = "ids", bindparam(None, ids, unique=True)


def search_condition(model, text: str):
    """`search_text` contains `text` (folded: case, ё/е) — through the index when it is long
    enough; a plain LIKE (a scan) for one or two characters."""
    needle = fold(text.strip())
    like = model.search_text.like(_like(needle), escape="\\")
    return and_(TextMatch(model, needle), like) if len(needle) >= INDEX_MIN else like


def text_condition(model, entity: str, q: str):
    """Free text. A phone-like query matches phones by their tail (indexed); other text
    matches `search_text` (title, names, emails; folded) and, for ASCII, email prefixes."""
    q = (q or "").strip()
    if not q:
        return None
    conds = []
    if not looks_like_phone(q):
        conds.append(search_condition(model, q))
    if q.isdigit() and len(q) <= 9:
        conds.append(model.id == int(q))
    own = _comm_ids(entity, q)
    if own is not None:
        if entity in ("lead", "contact", "company"):
            conds.append(InIds(model.id, own))
        if entity in ("lead", "deal"):
            conds.append(InIds(model.contact_id, _comm_ids("contact", q)))
        if entity == "deal":
            conds.append(InIds(model.company_id, _comm_ids("company", q)))
    return or_(*conds) if conds else false()


def period_bounds(value: dict, name: str) -> tuple[datetime | None, datetime | None]:
    """{"from": day, "to": day} (Moscow days, inclusive) → [start, end) as aware datetimes."""
    if not isinstance(value, dict):
        raise ValidationFailed(f"Фильтр «{name}» ждёт диапазон «от — до»", fields={name: "range"})
    lo, hi = value.get("from"), value.get("to")
    return (day_bounds(_parse_date(lo, name))[0] if lo else None,
            day_bounds(_parse_date(hi, name))[1] if hi else None)


def reached_expr():
    """(k, st, condition): which stage-history entries (stage `st`) count as "reached stage k":
    for a process stage, entering k, any later process stage (by sort) or a success stage;
    for a success/failure stage, entering exactly it. Join k to the pipeline yourself."""
    k, st = aliased(Stage), aliased(Stage)
    reached = or_(and_(k.semantic == PROCESS,
                       or_(st.semantic == SUCCESS, and_(st.semantic == PROCESS, st.sort >= k.sort))),
                  and_(k.semantic != PROCESS, st.id == k.id))
    return k, st, reached


def reached_condition(model, entity: str, stage_ids: list[int], period: dict | None):
    """Items with a stage-history entry in `period` that reached one of `stage_ids`
    (see reached_expr); the analytics funnel counts exactly these."""
    k, st, reached = reached_expr()
    lo, hi = period_bounds(period or {}, "Период")
    sub = (select(StageHistory.entity_id)
           .join(st, st.id == StageHistory.stage_id)
           .join(k, and_(k.id.in_(stage_ids), k.pipeline_id == StageHistory.pipeline_id))
           .where(StageHistory.entity_type == entity, reached))
    if lo is not None:
        sub = sub.where(StageHistory.created_at >= lo)
    if hi is not None:
        sub = sub.where(StageHistory.created_at < hi)
    return model.id.in_(sub)


def describe_reserved(session, key: str, value, filters: dict) -> str:
    """A chip text for department_id / reached_stage (with its reached_at period)."""
    ids = _int_list(value, key)
    if key == "department_id":
        names = [d.name for d in (session.get(Department, i) for i in ids) if d]
        return "Отдел: " + (", ".join(names) or "—")
    names = [st.name for st in (session.get(Stage, i) for i in ids) if st]
    text = "Дошли до «" + "», «".join(names or ["—"]) + "»"
    period = filters.get("reached_at") or {}
    lo, hi = period.get("from"), period.get("to")
    if lo and hi:
        d0, d1 = _parse_date(lo, "с"), _parse_date(hi, "по")
        text += f" · {d0:%d.%m}{'' if d0.year == d1.year else f'.{d0.year}'}–{d1:%d.%m.%Y}"
    return text


def _int_list(value, name: str) -> list[int]:
    try:
        return [int(v) for v in (value if isinstance(value, list) else [value])]
    except (TypeError, ValueError):
        raise ValidationFailed(f"Неверное значение фильтра «{name}»", fields={name: "ids"}) from None


def _column(model, fd: FieldDef):
    if fd.key.startswith("custom."):
        return model.custom[fd.key.split(".", 1)[1]]
    return getattr(model, fd.column) if fd.column else None


def conditions(model, entity: str, filters: dict, fmap: dict[str, FieldDef], now: datetime) -> list:
    """SQL conditions for `filters`; unknown keys and malformed values raise ValidationFailed."""
    out = []
    for key, value in (filters or {}).items():
        if value in (None, "", [], {}):
            continue
        if key == "q":
            cond = text_condition(model, entity, str(value))
            if cond is not None:
                out.append(cond)
            continue
        if key == "semantic":
            out.append(model.semantic.in_(value if isinstance(value, list) else [value]))
            continue
        if key == "department_id":
            out.append(model.department_id.in_(_int_list(value, "Отдел")))
            continue
        if key == "reached_stage":
            if not hasattr(model, "stage_id"):
                raise ValidationFailed("Фильтр «Дошли до стадии» есть только у лидов и сделок",
                                       fields={key: "unknown"})
            out.append(reached_condition(model, entity, _int_list(value, "Дошли до стадии"),
                                         filters.get("reached_at")))
            continue
        if key == "reached_at":
            period_bounds(value, "Период")  # validated here, applied with reached_stage
            continue
        if key in ("activity", "next_activity_at"):
            if value not in ACTIVITY_STATES:
                raise ValidationFailed(f"Неизвестное состояние дел: {value}", fields={key: "activity"})
            col = model.next_activity_at
            end_of_today = day_bounds(now.astimezone(TZ).date())[1]
            out.append({"overdue": col < now, "today": and_(col >= now, col < end_of_today),
                        "none": col.is_(None)}[value])
            continue
        fd = fmap.get(key)
        if fd is None or not fd.filterable:
            raise ValidationFailed(f"Неизвестное поле фильтра: {key}", fields={key: "unknown"})
        out.append(_field_condition(model, entity, fd, value))
    return out


def _field_condition(model, entity: str, fd: FieldDef, value):
    custom = fd.key.startswith("custom.")
    if fd.kind in ("phone", "email"):
        sub = _comm_ids(entity if entity != "deal" else "contact", str(value))
        if sub is None:
            return false()
        return (model.contact_id if entity == "deal" else model.id).in_(sub)
    if fd.key == "id" and isinstance(value, list):
        try:
            return model.id.in_([int(v) for v in value])
        except (TypeError, ValueError):
            raise ValidationFailed("Неверный список номеров", fields={"id": "ids"}) from None
    if fd.key == "name" and entity == "lead":
        return search_condition(model, str(value))
    col = _column(model, fd)
    if fd.kind in LIST_KINDS:
        values = value if isinstance(value, list) else [value]
        if custom:
            return col.as_string().in_([str(v) for v in values])
        if fd.kind == "enum":
            return col.in_([str(v) for v in values])
        try:
            return col.in_([int(v) for v in values])
        except (TypeError, ValueError):
            raise ValidationFailed(f"Неверное значение фильтра «{fd.label}»", fields={fd.key: "ids"}) from None
    if fd.kind in RANGE_KINDS:
        if not isinstance(value, dict):
            raise ValidationFailed(f"Фильтр «{fd.label}» ждёт диапазон «от — до»", fields={fd.key: "range"})
        conds = []
        if fd.kind in ("date", "datetime"):
            lo = value.get("from")
            hi = value.get("to")
            if custom:
                col = col.as_string()
                if lo:
                    conds.append(col >= _parse_date(lo, fd.label).isoformat())
                if hi:
                    conds.append(col <= _parse_date(hi, fd.label).isoformat())
            elif fd.kind == "date":
                if lo:
                    conds.append(col >= _parse_date(lo, fd.label))
                if hi:
                    conds.append(col <= _parse_date(hi, fd.label))
            else:
                if lo:
                    conds.append(col >= day_bounds(_parse_date(lo, fd.label))[0])
                if hi:
                    conds.append(col < day_bounds(_parse_date(hi, fd.label))[1])
        else:
            if custom:
                col = cast(col.as_string(), Float)
            lo, hi = value.get("from"), value.get("to")
            if lo not in (None, ""):
                conds.append(col >= _parse_number(lo, fd.label))
            if hi not in (None, ""):
                conds.append(col <= _parse_number(hi, fd.label))
        return and_(*conds) if conds else and_(True)
    if fd.kind == "bool":
        flag = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "да", "yes")
        if custom:
            return col.as_string() == ("Да" if flag else "Нет")
        return col.is_(flag)
    # text: contains, case-insensitive (SQLite gets a Unicode-aware lower(); see db.py)
    text_col = col.as_string() if custom else cast(col, String)
    return func.lower(text_col).like(_like(str(value).strip().lower()), escape="\\")


# ---- URL form -------------------------------------------------------------------------

def encode(filters: dict) -> str:
    """Query-string form: lists comma-joined, ranges `from..to`, the rest as text."""
    params = {}
    for key, value in (filters or {}).items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            params[key] = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            params[key] = f"{value.get('from') or ''}..{value.get('to') or ''}"
        elif isinstance(value, bool):
            params[key] = "1" if value else "0"
        else:
            params[key] = str(value)
    return urlencode(params)


def decode(params: dict[str, str], fmap: dict[str, FieldDef]) -> dict:
    """Back from query parameters; keys that are not filters (view, page…) are ignored."""
    out: dict = {}
    for key, raw in params.items():
        if key in ("q", "activity"):
            out[key] = raw
            continue
        if key == "semantic":
            out[key] = [v for v in raw.split(",") if v]
            continue
        if key in INT_LIST_KEYS:
            out[key] = [int(v) for v in raw.split(",") if v.strip().isdigit()]
            continue
        if key == "reached_at":
            lo, _, hi = raw.partition("..")
            out[key] = {"from": lo or None, "to": hi or None}
            continue
        fd = fmap.get(key)
        if fd is None or not fd.filterable or raw == "":
            continue
        if fd.kind in LIST_KINDS:
            out[key] = [v for v in raw.split(",") if v]
            if fd.kind in ("stage", "user", "program", "pipeline", "contact", "company") and not fd.key.startswith("custom."):
                out[key] = [int(v) for v in out[key] if v.lstrip("-").isdigit()]
        elif fd.kind in RANGE_KINDS:
            lo, _, hi = raw.partition("..")
            out[key] = {"from": lo or None, "to": hi or None}
        elif fd.kind == "bool":
            out[key] = raw in ("1", "true", "Да")
        else:
            out[key] = raw
    return out


def normalized(filters: dict) -> str:
    """A stable JSON text of a filter (for presets and audit details)."""
    return json.dumps({k: v for k, v in sorted((filters or {}).items()) if v not in (None, "", [], {})},
                      ensure_ascii=False, sort_keys=True, default=str)

