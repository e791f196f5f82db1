"""Views are data: saved filter presets (Представления фильтра) and list column sets.

Pages: leads, deals, contacts, companies (each maps to one entity of the field catalog).

Presets (`filter_preset`):
- built-in (is_builtin, shared, no owner, a stable `code`), written by
  `ensure_builtin_presets` on first start;
- shared (is_shared, saved by a head or an admin) — everybody sees them;
- personal (owner_id = the user) — only the owner sees them.
Filters are stored as given (the filter dict of services/filters.py); built-ins use
placeholders in list values, resolved per actor by `preset_filters`:
    "@me"          → the actor's user id
    "@dept:<code>" → ids of the active users of that department

Column sets (`column_set`): the user's own row for the page, else the row for everyone
(user_id NULL), else fields.DEFAULT_COLUMNS; keys that left the catalog are dropped."""
from __future__ import annotations

import copy
import json

from sqlalchemy import update
from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from rxcrm.models import ColumnSet, CustomField, Department, FilterPreset, Pipeline, User, UserPageSetting, utcnow
from rxcrm.models.org import ROLE_ADMIN, ROLE_HEAD

from .context import Actor
from .errors import AccessDenied, NotFound, ValidationFailed
from .fields import DEFAULT_COLUMNS, all_fields, field_map

PAGES: dict[str, str] = {"leads": "lead", "deals": "deal", "contacts": "contact", "companies": "company"}
RESERVED_FILTER_KEYS = frozenset({"q", "activity", "semantic", "pipeline_id", "department_id", "reached_stage",
                                  "reached_at"})
NAME_MAX = 80
ME = "@me"
DEPT_PREFIX = "@dept:"
NO_MATCH_ID = 0  # a placeholder that resolves to nobody becomes this id (no row has it)

SHARE_ROLES = (ROLE_HEAD, ROLE_ADMIN)

# code, page, name, filters, sort
BUILTIN_PRESETS = (
    ("my_leads", "leads", "Мои лиды в работе", {"responsible_id": [ME], "semantic": ["process"]}, 10),
    # «Очередь» (services/queue.py): the UI lists it with sort="queue" (preset.code == "queue").
    ("queue", "leads", "Очередь", {"responsible_id": [ME], "semantic": ["process"]}, 15),
    ("my_deals", "deals", "Мои сделки в работе", {"responsible_id": [ME], "semantic": ["process"]}, 10),
    ("dpo_managers", "deals", "Менеджеры ДПО", {"responsible_id": [f"{DEPT_PREFIX}dpo"], "semantic": ["process"]},
     20),
)
DEFAULT_PRESET_CODES = {"leads": "my_leads", "deals": "my_deals"}


# ---- helpers --------------------------------------------------------------------------

def entity_of(page: str) -> str:
    try:
        return PAGES[page]
    except KeyError:
        raise ValidationFailed(f"Неизвестная страница: {page}", fields={"page": "unknown"}) from None


ANALYTICS_PAGE = "analytics"  # dashboard views: the filter of services/analytics.Params


def _check_page(page: str) -> None:
    if page != ANALYTICS_PAGE:
        entity_of(page)


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold().replace("ё", "е")


def is_visible(preset: FilterPreset, actor: Actor) -> bool:
    """Built-in and shared presets are for everyone; a personal one only for its owner."""
    if preset.is_builtin or preset.is_shared:
        return True
    return actor.user_id is not None and preset.owner_id == actor.user_id


def _require_user(actor: Actor) -> int:
    if actor.user_id is None:
        raise AccessDenied("Настройки представлений сохраняются только для пользователя")
    return actor.user_id


def _get_preset(session: Session, actor: Actor, preset_id: int) -> FilterPreset:
    preset = session.get(FilterPreset, preset_id)
    if preset is None or not is_visible(preset, actor):
        raise NotFound("Представление не найдено")
    return preset


# ---- presets --------------------------------------------------------------------------

def ensure_builtin_presets(session: Session) -> None:
    """Create the built-in presets that are missing (matched by code); existing rows stay."""
    have = {p.code for p in session.exec(select(FilterPreset).where(FilterPreset.is_builtin.is_(True))).all()}
    for code, page, name, filters, sort in BUILTIN_PRESETS:
        if code in have:
            continue
        session.add(FilterPreset(page=page, name=name, owner_id=None, is_shared=True, is_builtin=True,
                                 code=code, filters=copy.deepcopy(filters), sort=sort))
    session.flush()


def list_presets(session: Session, actor: Actor, page: str) -> list[FilterPreset]:
    """Built-ins and shared presets (by sort, then name), then the actor's personal ones (by name)."""
    _check_page(page)
    cond = FilterPreset.is_builtin.is_(True) | FilterPreset.is_shared.is_(True)
    if actor.user_id is not None:
        cond = cond | (FilterPreset.owner_id == actor.user_id)
    rows = session.exec(select(FilterPreset).where(FilterPreset.page == page, cond)).all()
    common = sorted((p for p in rows if p.is_builtin or p.is_shared),
                    key=lambda p: (p.sort, not p.is_builtin, _name_key(p.name), p.id))
    personal = sorted((p for p in rows if not (p.is_builtin or p.is_shared)),
                      key=lambda p: (_name_key(p.name), p.id))
    return common + personal


def validate_filters(session: Session, page: str, filters) -> dict:
    """A preset's filter must be a JSON-able dict whose keys are filters of the page's entity
    (for the analytics page: the dashboard parameters)."""
    if page == ANALYTICS_PAGE:
        from .analytics import parse
        if filters is not None and not isinstance(filters, dict):
            raise ValidationFailed("Фильтр представления должен быть набором условий", fields={"filters": "type"})
        return parse(filters).as_dict()
    entity = entity_of(page)
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise ValidationFailed("Фильтр представления должен быть набором условий", fields={"filters": "type"})
    fmap = field_map(session, entity)
    bad = [str(k) for k in filters
           if k not in RESERVED_FILTER_KEYS and (k not in fmap or not fmap[k].filterable)]
    if bad:
        raise ValidationFailed(f"Неизвестные поля фильтра: {', '.join(bad)}",
                               fields={k: "unknown" for k in bad})
    try:
        json.dumps(filters, ensure_ascii=False)
    except (TypeError, ValueError):
        raise ValidationFailed("Фильтр содержит значения, которые нельзя сохранить",
                               fields={"filters": "json"}) from None
    return filters


def save_preset(session: Session, actor: Actor, page: str, name: str, filters: dict,
                shared: bool = False) -> FilterPreset:
    """Save the actor's preset; the same name (same owner and page) updates it."""
    _check_page(page)
    name = " ".join((name or "").split())
    if not name:
        raise ValidationFailed("Укажите название представления", fields={"name": "required"})
    if len(name) > NAME_MAX:
        raise ValidationFailed(f"Название представления длиннее {NAME_MAX} символов", fields={"name": "length"})
    if shared and actor.role not in SHARE_ROLES:
        raise AccessDenied("Общие представления могут сохранять только руководители и администраторы")
    owner_id = _require_user(actor)
    filters = copy.deepcopy(validate_filters(session, page, filters))
    key = _name_key(name)
    mine = session.exec(select(FilterPreset).where(
        FilterPreset.page == page, FilterPreset.owner_id == owner_id,
        FilterPreset.is_builtin.is_(False)).order_by(FilterPreset.id)).all()
    preset = next((p for p in mine if _name_key(p.name) == key), None)
    if preset is None:
        preset = FilterPreset(page=page, name=name, owner_id=owner_id)
    preset.name = name
    preset.filters = filters
    preset.is_shared = bool(shared)
    session.add(preset)
    session.flush()
    return preset


def delete_preset(session: Session, actor: Actor, preset_id: int) -> None:
    """The owner deletes theirs; a head or an admin also deletes shared ones. Built-ins stay."""
    preset = _get_preset(session, actor, preset_id)
    if preset.is_builtin:
        raise AccessDenied("Встроенные представления удалить нельзя")
    own = actor.user_id is not None and preset.owner_id == actor.user_id
    if not own and not (preset.is_shared and actor.role in SHARE_ROLES):
        raise AccessDenied("Удалить общее представление могут только его автор, руководители и администраторы")
    session.execute(update(UserPageSetting).where(UserPageSetting.default_preset_id == preset.id)
                    .values(default_preset_id=None))
    session.delete(preset)
    session.flush()


def _page_setting(session: Session, user_id: int, page: str) -> UserPageSetting | None:
    return session.exec(select(UserPageSetting).where(
        UserPageSetting.user_id == user_id, UserPageSetting.page == page)).first()


def set_default_preset(session: Session, actor: Actor, page: str, preset_id: int | None) -> None:
    """Pin a visible preset of this page as the actor's default; None unpins."""
    _check_page(page)
    user_id = _require_user(actor)
    if preset_id is not None:
        preset = _get_preset(session, actor, preset_id)
        if preset.page != page:
            raise ValidationFailed("Это представление относится к другой странице", fields={"preset_id": "page"})
    row = _page_setting(session, user_id, page)
    if row is None:
        if preset_id is None:
            return
        row = UserPageSetting(user_id=user_id, page=page)
    row.default_preset_id = preset_id
    session.add(row)
    session.flush()


def toggle_default(session: Session, actor: Actor, page: str, preset_id: int) -> None:
    """The pin of a preset list: pin `preset_id` as the page default; pinning the pinned one
    again unpins it (a built-in default stays: it is the fallback anyway)."""
    current = default_preset(session, actor, page)
    unpin = current is not None and current.id == preset_id and not current.is_builtin
    set_default_preset(session, actor, page, None if unpin else preset_id)


def presets_with_default(session: Session, actor: Actor, page: str) -> list[tuple[FilterPreset, bool]]:
    """`list_presets` with, for each, whether it is the actor's default of the page."""
    default = default_preset(session, actor, page)
    return [(p, default is not None and default.id == p.id) for p in list_presets(session, actor, page)]


def default_preset(session: Session, actor: Actor, page: str) -> FilterPreset | None:
    """The pinned preset if it is still visible, else the page's built-in default (or None)."""
    _check_page(page)
    if actor.user_id is not None:
        row = _page_setting(session, actor.user_id, page)
        if row is not None and row.default_preset_id is not None:
            preset = session.get(FilterPreset, row.default_preset_id)
            if preset is not None and preset.page == page and is_visible(preset, actor):
                return preset
    code = DEFAULT_PRESET_CODES.get(page)
    if code is None:
        return None
    return session.exec(select(FilterPreset).where(
        FilterPreset.is_builtin.is_(True), FilterPreset.code == code, FilterPreset.page == page)).first()


def _dept_user_ids(session: Session, code: str) -> list[int]:
    dept = session.exec(select(Department).where(Department.code == code)).first()
    if dept is None:
        return []
    return list(session.exec(select(User.id).where(
        User.department_id == dept.id, User.is_active.is_(True)).order_by(User.id)).all())


def _resolve_value(value, actor: Actor, session: Session | None) -> list:
    out: list = []
    if isinstance(value, str) and value == ME:
        if actor.user_id is not None:
            out.append(actor.user_id)
    elif isinstance(value, str) and value.startswith(DEPT_PREFIX):
        if session is None:
            raise ValueError("preset_filters needs a session to resolve a department placeholder")
        out.extend(_dept_user_ids(session, value[len(DEPT_PREFIX):]))
    else:
        out.append(value)
    return out


def _is_placeholder(value) -> bool:
    return isinstance(value, str) and (value == ME or value.startswith(DEPT_PREFIX))


def preset_filters(preset: FilterPreset, actor: Actor, session: Session | None = None) -> dict:
    """The filter dict to apply for `actor`: a copy with "@me" / "@dept:<code>" resolved.

    A placeholder list that resolves to nobody becomes [NO_MATCH_ID] (matches nothing —
    an empty list would mean "no condition")."""
    session = session or object_session(preset)
    out: dict = {}
    for key, value in copy.deepcopy(preset.filters or {}).items():
        if isinstance(value, list) and any(_is_placeholder(v) for v in value):
            ids: list = []
            for v in value:
                for r in _resolve_value(v, actor, session):
                    if r not in ids:
                        ids.append(r)
            out[key] = ids or [NO_MATCH_ID]
        elif _is_placeholder(value):
            out[key] = _resolve_value(value, actor, session) or [NO_MATCH_ID]
        else:
            out[key] = value
    return out


# ---- column sets ----------------------------------------------------------------------

def _column_row(session: Session, page: str, user_id: int | None) -> ColumnSet | None:
    cond = ColumnSet.user_id.is_(None) if user_id is None else ColumnSet.user_id == user_id
    return session.exec(select(ColumnSet).where(ColumnSet.page == page, cond).order_by(ColumnSet.id)).first()


def _valid_only(columns, valid: set[str]) -> list[str]:
    out: list[str] = []
    for c in columns or []:
        if isinstance(c, str) and c in valid and c not in out:
            out.append(c)
    return out


def columns_for(session: Session, actor: Actor, page: str, pipeline_id: int | None = None) -> list[str]:
    """The actor's columns, else the columns for everyone, else the defaults; unknown keys dropped.

    With a pipeline_id, custom fields of other pipelines are left out. A stored set left
    empty by the filtering falls through to the next level."""
    entity = entity_of(page)
    valid = set(field_map(session, entity, pipeline_id))
    rows = []
    if actor.user_id is not None:
        rows.append(_column_row(session, page, actor.user_id))
    rows.append(_column_row(session, page, None))
    for row in rows:
        if row is not None:
            cols = _valid_only(row.columns, valid)
            if cols:
                return cols
    return _valid_only(DEFAULT_COLUMNS[entity], valid)


def save_columns(session: Session, actor: Actor, page: str, columns: list[str], for_all: bool = False) -> ColumnSet:
    """Save the actor's columns for the page (or, for an admin with for_all, everyone's default)."""
    entity = entity_of(page)
    if for_all and actor.role != ROLE_ADMIN:
        raise AccessDenied("Колонки для всех может настраивать только администратор")
    cols: list[str] = []
    for c in columns or []:
        c = str(c).strip()
        if c and c not in cols:
            cols.append(c)
    if not cols:
        raise ValidationFailed("Выберите хотя бы одно поле", fields={"columns": "required"})
    valid = set(field_map(session, entity))  # custom fields of every pipeline of the entity
    unknown = [c for c in cols if c not in valid]
    if unknown:
        raise ValidationFailed(f"Неизвестные поля: {', '.join(unknown)}", fields={c: "unknown" for c in unknown})
    user_id = None if for_all else _require_user(actor)
    row = _column_row(session, page, user_id)
    if row is None:
        row = ColumnSet(page=page, user_id=user_id)
    row.columns = cols
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def reset_columns(session: Session, actor: Actor, page: str) -> list[str]:
    """Drop the actor's own column set ("По умолчанию"); returns the columns now in effect."""
    entity_of(page)
    if actor.user_id is not None:
        row = _column_row(session, page, actor.user_id)
        if row is not None:
            session.delete(row)
            session.flush()
    return columns_for(session, actor, page)


def available_columns(session: Session, page: str, pipeline_id: int | None = None,
                      lang: str = "ru") -> list[tuple[str, str]]:
    """(key, label) of every field for the column chooser, custom fields included.

    Without a pipeline_id the custom fields of all pipelines are offered; those bound to
    a pipeline get its name in the label ("Сумма баллов · Магистратура") to tell them apart."""
    entity = entity_of(page)
    defs = all_fields(session, entity, pipeline_id)
    suffix: dict[str, str] = {}
    if pipeline_id is None:
        rows = session.exec(select(CustomField.code, Pipeline.name)
                            .join(Pipeline, Pipeline.id == CustomField.pipeline_id)
                            .where(CustomField.entity == entity)).all()
        suffix = {f"custom.{code}": pname for code, pname in rows}
    out = []
    for fd in defs:
        label = fd.title(lang)
        if fd.key in suffix:
            label = f"{label} · {suffix[fd.key]}"
        out.append((fd.key, label))
    return out
