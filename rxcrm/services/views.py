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
    "@mydept"      → the actor's department id (for the `department_id` filter)
    "@dept:<code>" → ids of the active users of that department

The preset a page opens on (`default_preset`): the one the person pinned, else the one of
their role (`preset_role_default` rows: managers their own items in work, heads their
department's, directors and admins everything in work — rules/defaults.py declares them).
`user_page_setting` also remembers per person and page the pipeline chosen last, board or
list, and the page size (`remember` / `page_setting`).

Column sets (`column_set`): the user's own row for the page, else the row for everyone
(user_id NULL), else fields.DEFAULT_COLUMNS; keys that left the catalog are dropped."""
from __future__ import annotations

import copy
import json

from sqlalchemy import update
from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from rxcrm.models import (ColumnSet, CustomField, Department, FilterPreset, Pipeline, PresetRoleDefault, User,
                          UserPageSetting, utcnow)
from rxcrm.models.org import ROLE_ADMIN, ROLE_HEAD
from rxcrm.rules import defaults

from .context import Actor
from .entities import BY_SECTION
from .errors import AccessDenied, NotFound, ValidationFailed
from .fields import DEFAULT_COLUMNS, all_fields, field_map
from .listing import PAGE_SIZES
from .analytics import parse

PAGES: dict[str, str] = BY_SECTION  # "deals" → "deal" (the entity registry)
RESERVED_FILTER_KEYS = frozenset({"q", "activity", "semantic", "pipeline_id", "department_id", "reached_stage",
                                  "reached_at"})
NAME_MAX = 80
ME = "@me"
MY_DEPT = "@mydept"
DEPT_PREFIX = "@dept:"
NO_MATCH_ID = 0  # a placeholder that resolves to nobody becomes this id (no row has it)

SHARE_ROLES = (ROLE_HEAD, ROLE_ADMIN)

BUILTIN_PRESETS = defaults.BUILTIN_PRESETS  # (code, page, name, filters, sort[, view])
VIEW_MODES = ("kanban", "list")


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
    """Create the built-in presets that are missing (matched by code) and the role defaults
    of each page that has none for a role; existing rows stay."""
    have = {p.code: p for p in session.exec(select(FilterPreset).where(FilterPreset.is_builtin.is_(True))).all()}
    for code, page, name, filters, sort, *rest in BUILTIN_PRESETS:
        if code in have:
            continue
        view = rest[0] if rest else {}
        have[code] = FilterPreset(page=page, name=name, owner_id=None, is_shared=True, is_builtin=True,
                                  code=code, filters=copy.deepcopy(filters), sort=sort,
                                  view_mode=view.get("view", ""), list_sort=view.get("sort", ""),
                                  list_desc=bool(view.get("desc", False)))
        session.add(have[code])
    session.flush()
    rows = {(r.page, r.role_code) for r in session.exec(select(PresetRoleDefault)).all()}
    for page, by_role in defaults.ROLE_DEFAULT_PRESETS.items():
        for role, code in by_role.items():
            preset = have.get(code)
            if (page, role) not in rows and preset is not None and preset.page == page:
                session.add(PresetRoleDefault(page=page, role_code=role, preset_id=preset.id))
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


VIEW_MODES = ("kanban", "list")


def preset_view(preset: FilterPreset | None) -> dict:
    """The rest of the view a preset names: {"view", "sort", "desc"} for what it sets
    (a preset that names no order or mode leaves the page's own)."""
    if preset is None:
        return {}
    out = {}
    if preset.view_mode in VIEW_MODES:
        out["view"] = preset.view_mode
    if preset.list_sort:
        out["sort"], out["desc"] = preset.list_sort, bool(preset.list_desc)
    return out


def save_preset(session: Session, actor: Actor, page: str, name: str, filters: dict,
                shared: bool = False, view_mode: str = "", list_sort: str = "",
                list_desc: bool = False) -> FilterPreset:
    """Save the actor's preset — the filter and the view it was saved from (board/list and
    the list's order); the same name (same owner and page) updates it."""
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
    preset.view_mode = view_mode if view_mode in VIEW_MODES else ""
    preset.list_sort = (list_sort or "")[:100]
    preset.list_desc = bool(list_desc) if preset.list_sort else False
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
    for row in session.exec(select(PresetRoleDefault).where(PresetRoleDefault.preset_id == preset.id)).all():
        session.delete(row)
    session.flush()
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
    again unpins it (the page then opens on the role's default again)."""
    row = _page_setting(session, actor.user_id, page) if actor.user_id is not None else None
    unpin = row is not None and row.default_preset_id == preset_id
    set_default_preset(session, actor, page, None if unpin else preset_id)


def presets_with_default(session: Session, actor: Actor, page: str) -> list[tuple[FilterPreset, bool]]:
    """`list_presets` with, for each, whether it is the actor's default of the page."""
    default = default_preset(session, actor, page)
    return [(p, default is not None and default.id == p.id) for p in list_presets(session, actor, page)]


def default_preset(session: Session, actor: Actor, page: str) -> FilterPreset | None:
    """The pinned preset if it is still visible, else the default of the actor's role for
    the page (a `preset_role_default` row), else None (the page opens unfiltered)."""
    _check_page(page)
    if actor.user_id is not None:
        row = _page_setting(session, actor.user_id, page)
        if row is not None and row.default_preset_id is not None:
            preset = session.get(FilterPreset, row.default_preset_id)
            if preset is not None and preset.page == page and is_visible(preset, actor):
                return preset
    return role_default_preset(session, actor.role, page)


def role_default_preset(session: Session, role: str, page: str) -> FilterPreset | None:
    """The preset `page` opens on for `role` (None when the role has none)."""
    return session.exec(select(FilterPreset).join(PresetRoleDefault, PresetRoleDefault.preset_id == FilterPreset.id)
                        .where(PresetRoleDefault.page == page, PresetRoleDefault.role_code == role,
                               FilterPreset.page == page)).first()


def page_setting(session: Session, actor: Actor, page: str) -> UserPageSetting | None:
    """The actor's remembered settings of `page` (pinned preset, pipeline, view, page size)."""
    _check_page(page)
    return _page_setting(session, actor.user_id, page) if actor.user_id is not None else None


def remember(session: Session, actor: Actor, page: str, *, pipeline_id: int | None = None,
             view_mode: str | None = None, page_size: int | None = None) -> None:
    """Remember what the person chose on `page` (only the arguments given; unknown values
    are ignored), so that the page opens that way next time."""
    _check_page(page)
    if actor.user_id is None:
        return
    row = _page_setting(session, actor.user_id, page) or UserPageSetting(user_id=actor.user_id, page=page)
    if pipeline_id is not None:
        pipe = session.get(Pipeline, pipeline_id)
        if pipe is None or pipe.entity != PAGES.get(page):
            raise ValidationFailed("Воронка не найдена", fields={"pipeline_id": "unknown"})
        row.pipeline_id = pipeline_id
    if view_mode in VIEW_MODES:
        row.view_mode = view_mode
    if page_size in PAGE_SIZES:
        row.page_size = page_size
    session.add(row)
    session.flush()


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
    elif isinstance(value, str) and value == MY_DEPT:
        if actor.department_id is not None:
            out.append(actor.department_id)
    elif isinstance(value, str) and value.startswith(DEPT_PREFIX):
        if session is None:
            raise ValueError("preset_filters needs a session to resolve a department placeholder")
        out.extend(_dept_user_ids(session, value[len(DEPT_PREFIX):]))
    else:
        out.append(value)
    return out


def _is_placeholder(value) -> bool:
    return isinstance(value, str) and (value in (ME, MY_DEPT) or value.startswith(DEPT_PREFIX))


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
