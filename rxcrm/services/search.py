"""The top bar's search: leads, deals, contacts and companies at once, grouped.

One query per kind of item, each the very condition the lists use for their free-text
search (`filters.text_condition` through `listing.query_items`: a phone in any format by
the indexed tail of `communication.norm_rev`, an e-mail by its indexed prefix, names and
titles as a substring of `search_text` — through its trigram index from 3 characters on,
migration 0011) under the same access scope (`access.scope`), newest first and bounded:
PER_GROUP + 1 rows per kind (the extra one only says «Показать все» has more).
No count of all matches is made — a common fragment matches a large share of the rows.
«Показать все» opens the kind's list filtered by the same `q`, so the list shows the
same matches in full."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import urlencode

from sqlmodel import Session

from rxcrm.db import open_session
from rxcrm.models import utcnow

from . import access, fmt, listing
from .context import Actor
from .filters import looks_like_phone
from .phones import normalize_phone, phone_search_key

# (entity, group label, list route)
GROUPS = (("lead", "Лиды", "leads"), ("deal", "Сделки", "deals"), ("contact", "Контакты", "contacts"),
          ("company", "Компании", "companies"))
GROUP_LABEL_EN = {"lead": "Leads", "deal": "Deals", "contact": "Contacts", "company": "Companies"}
PER_GROUP = 5
MIN_LEN = 2      # shorter queries find nothing (one letter matches half the base)
MAX_LEN = 200
# What the hint line under a title shows, per kind (batched by listing.resolve).
HINT_KEYS = {"lead": ["name", "phone", "stage_id"], "deal": ["contact_id", "stage_id", "amount"],
             "contact": ["phone", "email", "company_id"], "company": ["phone", "industry"]}


def clean(q) -> str:
    """The query as searched: trimmed, inner spaces collapsed, at most MAX_LEN characters;
    characters no database can hold (NUL, lone surrogates) dropped."""
    text = str(q or "").replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")
    return " ".join(text.split())[:MAX_LEN]


def list_href(route: str, q: str) -> str:
    """The kind's list filtered by the same text (what «Показать все» opens)."""
    return f"/{route}?" + urlencode({"view": "list", "q": q})


def _title(entity: str, item) -> str:
    if entity == "contact":
        return item.full_name or f"Контакт №{item.id}"
    return item.title or f"№{item.id}"


def _pick(joined: str, q: str, kind: str) -> str:
    """One of an item's phones/e-mails (listing.resolve joins them with ", "): the one the
    query matched (a phone by its tail, an e-mail by its start), else the first."""
    values = [v for v in (joined or "").split(", ") if v]
    if not values:
        return ""
    if kind == "phone" and looks_like_phone(q):
        key = phone_search_key(q) or ""
        hit = next((v for v in values if normalize_phone(v)[::-1].startswith(key)), None)
    else:
        hit = next((v for v in values if v.lower().startswith(q.lower())), None)
    return hit or values[0]


def _hint(entity: str, vals: dict, q: str = "") -> str:
    parts: list[str] = []
    if entity == "lead":
        parts = [vals.get("name") or "", _pick(vals.get("phone"), q, "phone"), vals.get("stage_id") or ""]
    elif entity == "deal":
        amount = vals.get("amount")
        parts = [vals.get("contact_id") or "", vals.get("stage_id") or "",
                 fmt.money(amount) if amount else ""]
    elif entity == "contact":
        parts = [_pick(vals.get("phone"), q, "phone"), _pick(vals.get("email"), q, "email"),
                 vals.get("company_id") or ""]
    elif entity == "company":
        parts = [_pick(vals.get("phone"), q, "phone"), vals.get("industry") or ""]
    return " · ".join(p for p in parts if p)


def search(session: Session, actor: Actor, q, per_group: int = PER_GROUP, now: datetime | None = None,
           lang: str = "ru", workers: int = 1) -> list[dict]:
    """Groups of matches, only those with any: [{"entity", "label", "href_all", "more",
    "hits": [{"id", "title", "hint", "href"}]}] — at most `per_group` hits each."""
    q = clean(q)
    if len(q) < MIN_LEN:
        return []
    now = now or utcnow()
    per_group = max(1, min(int(per_group), 20))

    def group(s: Session, entity: str, label: str, route: str) -> dict | None:
        if access.level(s, actor, entity, "view") == "none":
            return None
        # newest first by id: when matches are common the scan stops after per_group + 1 rows
        rows, _ = listing.query_items(s, actor, entity, {"q": q}, sort="id", desc=True,
                                      limit=per_group + 1, now=now)
        if not rows:
            return None
        more, rows = len(rows) > per_group, rows[:per_group]
        values = listing.resolve(s, entity, rows, HINT_KEYS[entity])
        return {"entity": entity, "label": GROUP_LABEL_EN[entity] if lang == "en" else label,
                "href_all": list_href(route, q), "more": more,
                "hits": [{"id": item.id, "title": _title(entity, item), "hint": _hint(entity, vals, q),
                          "href": f"/{route}/{item.id}"} for item, vals in zip(rows, values)]}

    if workers <= 1:
        found = [group(session, *g) for g in GROUPS]
    else:
        # The four independent reads run on `workers` threads, each its own read-only unit,
        # so the database works on them in parallel (as analytics does) — what a 2-letter
        # query (a scan: no trigram in it) or a common fragment (many index hits) needs.
        bind = session.get_bind()

        def run(g):
            with open_session(bind, write=False) as s:
                return group(s, *g)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(run, GROUPS))
    return [g for g in found if g]


def best_target(groups: list[dict], q) -> str:
    """Where Enter in the search box goes: the card when exactly one item matched, else the
    list of the first kind with matches (filtered by q); the leads list when nothing did."""
    q = clean(q)
    hits = [h for g in groups for h in g["hits"]]
    if len(hits) == 1 and not any(g["more"] for g in groups):
        return hits[0]["href"]
    if groups:
        return groups[0]["href_all"]
    return list_href("leads", q) if q else "/leads"


__all__ = ["GROUPS", "MIN_LEN", "PER_GROUP", "best_target", "clean", "list_href", "search"]
