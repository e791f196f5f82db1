"""crm.{lead,deal,contact,company}.{fields,get,list,add,update,delete} and the reference
methods (crm.status.*, crm.category.list, crm.dealcategory.*), as Bitrix24 answers them
(shared/BITRIX24_REST.md §3–5), through rxcrm's services.

How rxcrm maps onto Bitrix24 — one declaration per entity (`FIELDS`), read both ways:
- deal pipelines are deal categories: the default pipeline is `CATEGORY_ID` 0, another one
  its own id; a stage is `STAGE_ID` = its code in category 0 (`INTEREST`), `C<n>:<code>`
  in category n (`C3:REGISTRATION`); lead stages are `STATUS_ID`s (`NEW`, `CONVERTED`);
- sources are `SOURCE_ID`s (`SOURCE_CODES`), custom fields `UF_CRM_<CODE>`, phones and
  e-mails multi-fields (`PHONE`, `EMAIL`: add, change by ID, delete);
- the program of a lead or deal is `UF_CRM_PROGRAM` (a product id).
Reads are scoped by the webhook user's role (the same SQL condition as the lists); writes go
through the create/update/move/delete services (rights, required fields, rules, history,
timeline and audit with the source «REST: <webhook>»). Unknown or read-only fields in
`fields` are dropped, as Bitrix24 does; unknown filter fields too."""
from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime, time as dtime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, func, select

from rxcrm.models import Communication, CustomField, Pipeline, Stage
from rxcrm.rules.imports import SOURCE_CODES
from rxcrm.services import access, comms, create, entities, fmt, items
from rxcrm.services.fields import field_map
from rxcrm.services.phones import normalize_email, normalize_phone

from . import wire
from .methods import Call, method

MODELS = entities.MODELS  # the one registry of item entities (services/entities.py)
SEMANTIC_LETTER = {"process": "P", "success": "S", "failure": "F"}
SEMANTIC_EXTRA = {"process": "process", "success": "success", "failure": "failure"}
SOURCE_BY_CODE = {v: k for k, v in SOURCE_CODES.items()}


# ---- the declarations ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class F:
    """One Bitrix24 field of an entity: its name and type there, and where it lives here
    (`attr`, the model's attribute and the field catalog's key; "" for a computed one)."""
    name: str
    type: str
    attr: str = ""
    title: str = ""
    ro: bool = False
    required: bool = False
    multiple: bool = False
    immutable: bool = False
    status_type: str = ""


_TRACKED = (
    F("ASSIGNED_BY_ID", "user", "responsible_id", "Ответственный"),
    F("CREATED_BY_ID", "user", "created_by_id", "Кем создан", ro=True),
    F("MODIFY_BY_ID", "user", "updated_by_id", "Кем изменён", ro=True),
    F("DATE_CREATE", "datetime", "created_at", "Дата создания", ro=True),
    F("DATE_MODIFY", "datetime", "updated_at", "Дата изменения", ro=True),
    F("OPENED", "char", "", "Доступен для всех", ro=True),
    F("COMMENTS", "string", "comment", "Комментарий"),
)
_UTM = tuple(F(f"UTM_{p.upper()}", "string", f"utm_{p}", f"UTM {p}") for p in
             ("source", "medium", "campaign", "content", "term"))
_PERSON = (
    F("NAME", "string", "first_name", "Имя"),
    F("SECOND_NAME", "string", "middle_name", "Отчество"),
    F("LAST_NAME", "string", "last_name", "Фамилия"),
    F("BIRTHDATE", "date", "birthday", "Дата рождения"),
    F("POST", "string", "position", "Должность"),
)
_MULTI = (F("HAS_PHONE", "char", "", "Есть телефон", ro=True), F("HAS_EMAIL", "char", "", "Есть e-mail", ro=True),
          F("PHONE", "crm_multifield", "", "Телефон", multiple=True),
          F("EMAIL", "crm_multifield", "", "E-mail", multiple=True))
_MONEY = (F("OPPORTUNITY", "double", "amount", "Сумма"), F("CURRENCY_ID", "crm_currency", "", "Валюта"))
_PROGRAM = F("UF_CRM_PROGRAM", "integer", "program_id", "Образовательная программа")

FIELDS: dict[str, tuple[F, ...]] = {
    "lead": (
        F("ID", "integer", "id", "ID", ro=True),
        F("TITLE", "string", "title", "Название лида", required=True),
        *_PERSON[:4], F("COMPANY_TITLE", "string", "company_title", "Название компании"), _PERSON[4],
        F("SOURCE_ID", "crm_status", "source", "Источник", status_type="SOURCE"),
        F("STATUS_ID", "crm_status", "stage_id", "Стадия", status_type="STATUS"),
        F("STATUS_SEMANTIC_ID", "string", "semantic", "Состояние стадии", ro=True),
        *_MONEY, *_MULTI,
        F("CONTACT_ID", "crm_contact", "contact_id", "Контакт", ro=True),
        F("COMPANY_ID", "crm_company", "company_id", "Компания", ro=True),
        F("IS_RETURN_CUSTOMER", "char", "is_repeat", "Повторный лид", ro=True),
        F("DATE_CLOSED", "datetime", "closed_at", "Дата закрытия", ro=True),
        *_TRACKED, *_UTM, _PROGRAM,
    ),
    "deal": (
        F("ID", "integer", "id", "ID", ro=True),
        F("TITLE", "string", "title", "Название", required=True),
        F("TYPE_ID", "string", "deal_type", "Тип"),
        F("CATEGORY_ID", "crm_category", "pipeline_id", "Воронка", immutable=True),
        F("STAGE_ID", "crm_status", "stage_id", "Стадия сделки", status_type="DEAL_STAGE"),
        F("STAGE_SEMANTIC_ID", "string", "semantic", "Состояние стадии", ro=True),
        F("CLOSED", "char", "", "Закрыта", ro=True),
        F("PROBABILITY", "integer", "probability", "Вероятность"),
        *_MONEY,
        F("CONTACT_ID", "crm_contact", "contact_id", "Контакт"),
        F("COMPANY_ID", "crm_company", "company_id", "Компания", ro=True),
        F("LEAD_ID", "crm_lead", "lead_id", "Лид", ro=True),
        F("SOURCE_ID", "crm_status", "source", "Источник", status_type="SOURCE"),
        F("CLOSEDATE", "date", "close_date", "Предполагаемая дата закрытия"),
        F("IS_RETURN_CUSTOMER", "char", "is_repeat", "Повторная сделка", ro=True),
        F("IS_REPEATED_APPROACH", "char", "is_repeat", "Повторное обращение", ro=True),
        *_TRACKED, *_UTM, _PROGRAM,
    ),
    "contact": (
        F("ID", "integer", "id", "ID", ro=True),
        *_PERSON,
        F("SOURCE_ID", "crm_status", "source", "Источник", status_type="SOURCE"),
        F("COMPANY_ID", "crm_company", "company_id", "Компания"),
        *_MULTI, *_TRACKED,
    ),
    "company": (
        F("ID", "integer", "id", "ID", ro=True),
        F("TITLE", "string", "title", "Название компании", required=True),
        F("INDUSTRY", "string", "industry", "Сфера деятельности"),
        F("ADDRESS", "string", "address", "Адрес"),
        F("UF_CRM_INN", "string", "inn", "ИНН"),
        *_MULTI, *_TRACKED,
    ),
}
_BY_NAME = {e: {f.name: f for f in fs} for e, fs in FIELDS.items()}
_UF = re.compile(r"^UF_CRM_[A-Z0-9_]+$")


# ---- reference data: categories, stages, sources, custom fields ------------------------------
class Refs:
    """What the mapping needs to know of the configuration, read once per call."""

    def __init__(self, s: Session):
        pipes = s.exec(select(Pipeline).order_by(Pipeline.sort, Pipeline.id)).all()
        self.pipes = {p.id: p for p in pipes}
        deal_pipes = [p for p in pipes if p.entity == "deal"]
        default = next((p for p in deal_pipes if p.is_default), deal_pipes[0] if deal_pipes else None)
        self.category = {p.id: (0 if p is default else p.id) for p in deal_pipes}
        self.pipe_of_category = {c: p for p, c in self.category.items()}
        self.lead_pipe = next((p for p in pipes if p.entity == "lead" and p.is_default),
                              next((p for p in pipes if p.entity == "lead"), None))
        self.stages = s.exec(select(Stage).order_by(Stage.pipeline_id, Stage.sort, Stage.id)).all()
        self.status_of: dict[int, str] = {}  # stage id → STATUS_ID / STAGE_ID
        self.status_list: dict[int, tuple[str, str | None]] = {}  # stage id → (crm.status ENTITY_ID, CATEGORY_ID)
        self.stage_of: dict[tuple[str, str], Stage] = {}
        for st in self.stages:
            pipe = self.pipes.get(st.pipeline_id)
            if pipe is None:
                continue
            if pipe.entity == "deal":
                cat = self.category[pipe.id]
                code = st.code if cat == 0 else f"C{cat}:{st.code}"
                self.status_list[st.id] = ("DEAL_STAGE", None) if cat == 0 else (f"DEAL_STAGE_{cat}", str(cat))
            else:
                code = st.code
                if pipe is self.lead_pipe:
                    self.status_list[st.id] = ("STATUS", None)
            self.status_of[st.id] = code
            self.stage_of.setdefault((pipe.entity, code.upper()), st)
        self._custom: dict[str, list[CustomField]] = {}
        self._s = s

    def custom(self, entity: str) -> list[CustomField]:
        if entity not in self._custom:
            self._custom[entity] = self._s.exec(select(CustomField).where(CustomField.entity == entity)
                                                .order_by(CustomField.sort, CustomField.id)).all()
        return self._custom[entity]

    def stage(self, entity: str, code) -> Stage:
        st = self.stage_of.get((entity, str(code or "").strip().upper()))
        if st is None:
            raise wire.RestError(f"Стадия «{code}» не найдена")
        return st


def source_code(text: str) -> str:
    if not text:
        return ""
    return SOURCE_CODES.get(text) or (re.sub(r"[^A-Z0-9]+", "_", text.upper()).strip("_") or "OTHER")


def source_text(code) -> str:
    code = str(code or "").strip()
    return SOURCE_BY_CODE.get(code.upper(), code)


def uf_name(cf: CustomField) -> str:
    return "UF_CRM_" + re.sub(r"[^A-Z0-9]+", "_", cf.code.upper())


_UF_TYPE = {"string": "string", "text": "string", "number": "double", "money": "money", "bool": "boolean",
            "date": "date", "enum": "enumeration", "file": "file"}


# ---- values out ------------------------------------------------------------------------------
def _iso_date(d) -> str:
    if not d:
        return ""
    if isinstance(d, str):
        try:
            d = date.fromisoformat(d[:10])
        except ValueError:
            return ""
    return wire.iso(datetime.combine(d, dtime(0, 0), tzinfo=wire.TZ))


def _out(f: F, item, entity: str, refs: Refs, multi: dict) -> Any:
    if f.name == "OPENED":
        return "Y"
    if f.name == "CURRENCY_ID":
        return getattr(item, "currency", "") or "RUB"
    if f.name in ("HAS_PHONE", "HAS_EMAIL"):
        kind = "phone" if f.name == "HAS_PHONE" else "email"
        return "Y" if any(c.kind == kind for c in multi.get(item.id, [])) else "N"
    if f.name in ("PHONE", "EMAIL"):
        kind = "phone" if f.name == "PHONE" else "email"
        return [{"ID": str(c.id), "VALUE_TYPE": (c.value_type or "work").upper(), "VALUE": c.value, "TYPE_ID": f.name}
                for c in multi.get(item.id, []) if c.kind == kind]
    if f.name == "CLOSED":
        return "N" if item.semantic == "process" else "Y"
    value = getattr(item, f.attr, None) if f.attr else None
    if f.name in ("STAGE_SEMANTIC_ID", "STATUS_SEMANTIC_ID"):
        return SEMANTIC_LETTER.get(value or "process", "P")
    if f.type == "crm_category":
        return str(refs.category.get(value, value)) if value is not None else None
    if f.name in ("STAGE_ID", "STATUS_ID"):
        return refs.status_of.get(value)
    if f.name == "SOURCE_ID":
        return source_code(value) or None
    if f.type == "char":
        return "Y" if value else "N"
    if f.type == "double":
        return f"{Decimal(value):.2f}" if value is not None else None
    if f.type == "datetime":
        return wire.iso(value) if value else ""
    if f.type == "date":
        return _iso_date(value)
    if f.type in ("integer", "user", "crm_contact", "crm_company", "crm_lead"):
        return str(value) if value is not None else None
    return value if value is not None else None


def _uf_out(cf: CustomField, item) -> Any:
    value = (item.custom or {}).get(cf.code)
    if value is None:
        return None
    if cf.field_type == "date":
        return _iso_date(value)
    if cf.field_type in ("number", "money"):
        return str(value)
    return value


def rows(s: Session, entity: str, found: list, refs: Refs, select_: list[str] | None = None) -> list[dict]:
    """Items as Bitrix24 rows: every scalar a string, multi-fields as lists, `UF_CRM_*`; only
    `select_` when given (`*` = the standard fields, `UF_*` = the custom ones; `ID` always)."""
    fields, customs = FIELDS[entity], refs.custom(entity)
    wanted = {n.upper() for n in (select_ or [])}
    if not wanted:
        wanted = {"*", "UF_*"}
    std = [f for f in fields if ("*" in wanted and not f.multiple) or f.name in wanted or f.name == "ID"]
    ufs = [cf for cf in customs if "UF_*" in wanted or uf_name(cf) in wanted]
    need_multi = any(f.type == "crm_multifield" or f.name.startswith("HAS_") for f in std)
    multi = comms.of(s, entity, [i.id for i in found]) if need_multi and entity != "deal" else {}
    out = []
    for item in found:
        row = {f.name: _out(f, item, entity, refs, multi) for f in std}
        for cf in ufs:
            row[uf_name(cf)] = _uf_out(cf, item)
        out.append(row)
    return out


def descriptors(entity: str, refs: Refs) -> dict:
    """`crm.<entity>.fields`: every field's descriptor (all keys b24pysdk's CRMField needs)."""
    out = {}
    for f in FIELDS[entity]:
        d = {"type": f.type, "isRequired": f.required, "isReadOnly": f.ro, "isImmutable": f.immutable,
             "isMultiple": f.multiple, "isDynamic": False, "title": f.title}
        if f.status_type:
            d["statusType"] = f.status_type if f.status_type != "DEAL_STAGE" else "DEAL_STAGE"
        out[f.name] = d
    for cf in refs.custom(entity):
        name = uf_name(cf)
        d = {"type": _UF_TYPE.get(cf.field_type, "string"), "isRequired": False, "isReadOnly": False,
             "isImmutable": False, "isMultiple": False, "isDynamic": True, "title": name,
             "listLabel": cf.label, "formLabel": cf.label, "filterLabel": cf.label, "settings": {}}
        if cf.field_type == "enum":
            d["items"] = [{"ID": str(i + 1), "VALUE": v} for i, v in enumerate(cf.options or [])]
        out[name] = d
    return out


# ---- values in -------------------------------------------------------------------------------
def parse_moment(value) -> datetime | None:
    """A date or moment as integrations send them (services/fmt.parse_moment), in the
    portal's time zone when it has no offset; Bitrix24's error for anything else."""
    try:
        return fmt.parse_moment(value, wire.TZ)
    except ValueError as exc:
        raise wire.RestError(str(exc)) from None


INT_MAX = 2**31 - 1  # ids and integers as the databases store them


def _int(name: str, value) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise wire.RestError(f"«{name}»: ожидается число, получено «{value}»") from None
    if not -INT_MAX <= number <= INT_MAX:
        raise wire.RestError(f"«{name}»: слишком большое число")
    return number


def _multi_ops(value) -> list[comms.Op]:
    ops = []
    for entry in wire.as_list(value):
        if not isinstance(entry, dict):
            entry = {"VALUE": entry}
        e = {str(k).upper(): v for k, v in entry.items()}
        ops.append(comms.Op(id=_int("ID", e.get("ID")), value=str(e.get("VALUE") or ""),
                            value_type=str(e.get("VALUE_TYPE") or ""),
                            delete=str(e.get("DELETE") or "").upper() == "Y"))
    return ops


@dataclasses.dataclass
class Incoming:
    """`fields` of an add/update, in rxcrm's terms."""
    values: dict  # catalog key → value (text as typed, like the card's inputs)
    custom: dict  # custom field code → value
    phones: list
    emails: list
    stage: Stage | None = None
    pipeline_id: int | None = None
    contact_id: int | None = None
    company_id: int | None = None


def incoming(entity: str, fields: dict, refs: Refs, *, adding: bool) -> Incoming:
    """Bitrix24 `fields` → rxcrm values. Unknown and read-only fields are dropped (as
    Bitrix24 does); CATEGORY_ID only on add (immutable)."""
    by_name, customs = _BY_NAME[entity], {uf_name(cf): cf for cf in refs.custom(entity)}
    inc = Incoming({}, {}, [], [])
    for raw_name, value in fields.items():
        name = str(raw_name).upper()
        f = by_name.get(name)
        if f is None:
            cf = customs.get(name)
            if cf is not None:
                if cf.field_type == "date" and value not in (None, ""):
                    moment = parse_moment(value)
                    value = moment.date().isoformat() if moment else None
                inc.custom[cf.code] = value
            continue
        if f.name in ("PHONE", "EMAIL"):
            (inc.phones if f.name == "PHONE" else inc.emails).extend(_multi_ops(value))
            continue
        if f.name == "CONTACT_ID" and entity == "deal":
            inc.contact_id = _int(f.name, value)
            continue
        if f.name == "COMPANY_ID" and entity == "contact":
            inc.company_id = _int(f.name, value)
            continue
        if f.ro:
            continue
        if f.name == "CATEGORY_ID":
            if adding:
                cat = _int(f.name, value) or 0
                pipe = refs.pipe_of_category.get(cat)
                if pipe is None:
                    raise wire.RestError(f"Воронка (CATEGORY_ID) {value} не найдена")
                inc.pipeline_id = pipe
            continue
        if f.name in ("STAGE_ID", "STATUS_ID"):
            if value not in (None, ""):
                inc.stage = refs.stage(entity, value)
            continue
        if f.name == "SOURCE_ID":
            inc.values["source"] = source_text(value)
            continue
        if f.name == "CURRENCY_ID":
            continue
        if f.type in ("date", "datetime"):
            moment = parse_moment(value)
            value = (moment.date().isoformat() if f.type == "date" else moment.isoformat()) if moment else ""
        elif f.type in ("user", "integer") and value not in (None, ""):
            value = str(_int(f.name, value) or "")
        inc.values[f.attr] = "" if value is None else value
    return inc


# ---- the engine --------------------------------------------------------------------------------
def _model(entity: str):
    return MODELS[entity]


def _visible(s: Session, call: Call, entity: str, item_id: int):
    """The item if it exists and the webhook's user may see it; Bitrix24's «Not found» /
    «Access denied» otherwise."""
    item = s.get(_model(entity), item_id)
    if item is None or item.deleted_at is not None:
        raise wire.not_found()
    if not access.allowed(s, call.actor, entity, "view", item):
        raise wire.access_denied()
    return item


def _column(entity: str, f: F):
    model = _model(entity)
    return getattr(model, f.attr, None) if f.attr else None


_OP = re.compile(r"^([^A-Za-z]*)(.*)$")


def _coerce(f: F | None, value, refs: Refs, entity: str):
    """A filter value in the column's terms."""
    if value is None:
        return None
    if f is None:
        return str(value)
    if f.name in ("STAGE_ID", "STATUS_ID"):
        st = refs.stage_of.get((entity, str(value).upper()))
        return st.id if st else -1
    if f.type == "crm_category":
        return refs.pipe_of_category.get(_int(f.name, value) or 0, -1)
    if f.name == "SOURCE_ID":
        return source_text(value)
    if f.name in ("STAGE_SEMANTIC_ID", "STATUS_SEMANTIC_ID"):
        return {v: k for k, v in SEMANTIC_LETTER.items()}.get(str(value).upper(), str(value))
    if f.type == "char":
        return str(value).upper() in ("Y", "1", "TRUE")
    if f.type in ("integer", "user", "crm_contact", "crm_company", "crm_lead"):
        try:
            number = int(str(value).strip())
        except ValueError:
            return -1
        return number if -INT_MAX <= number <= INT_MAX else -1  # matches nothing
    if f.type == "double":
        try:
            return Decimal(str(value).replace(",", "."))
        except InvalidOperation:
            return Decimal(-1)
    if f.type in ("date", "datetime"):
        moment = parse_moment(value)
        return moment.date() if (moment and f.type == "date") else moment
    return str(value)


def _condition(entity: str, key: str, value, refs: Refs):
    """One filter entry (`>=DATE_CREATE`, `@STAGE_ID`, `%TITLE`…) → a SQL condition, or None
    for a field we do not know (dropped, as Bitrix24 does)."""
    op, name = _OP.match(str(key)).groups()
    name = name.upper()
    model = _model(entity)
    f = _BY_NAME[entity].get(name)
    if name in ("PHONE", "EMAIL") and entity != "deal":
        kind = "phone" if name == "PHONE" else "email"
        norm = normalize_phone if kind == "phone" else normalize_email
        values = [norm(str(v)) for v in wire.as_list(value)]
        sub = select(Communication.entity_id).where(Communication.entity_type == entity, Communication.kind == kind,
                                                    Communication.norm.in_(values))
        return ~model.id.in_(sub) if op.startswith("!") else model.id.in_(sub)
    if f is not None and f.name == "CLOSED":
        closed = str(value).upper() in ("Y", "1", "TRUE")
        cond = model.semantic != "process" if closed else model.semantic == "process"
        return ~cond if op.startswith("!") else cond
    if f is not None:
        col = _column(entity, f)
        if col is None:
            return None
    else:
        cf = next((c for c in refs.custom(entity) if uf_name(c) == name), None)
        if cf is None:
            return None
        col = model.custom[cf.code].as_string()
    if f is not None and f.type == "char" and op not in ("", "=", "!", "!="):
        return None  # a flag is equal or not; nothing else (dropped, as unknown filters are)
    many = isinstance(value, (list, dict))
    vals = [_coerce(f, v, refs, entity) for v in wire.as_list(value)] if many else None
    one = None if many else _coerce(f, value, refs, entity)
    empty = not many and value in ("", False, None)
    if op in ("@", "") and many:
        return col.in_(vals) if vals else sa.false()
    if op in ("!@",) or (op in ("!", "!=") and many):
        return ~col.in_(vals) if vals else sa.true()
    if op in ("", "="):
        return (col.is_(None) | (sa.cast(col, sa.String) == "")) if empty else col == one
    if op in ("!", "!="):
        return (col.is_not(None) & (sa.cast(col, sa.String) != "")) if empty else (col != one) | col.is_(None)
    if op in (">", ">=", "<", "<="):
        if one is None:
            return None
        return {">": col > one, ">=": col >= one, "<": col < one, "<=": col <= one}[op]
    if op in ("%", "=%", "%=", "!%", "!=%", "!%="):
        text = str(value)
        pattern = f"%{text}%" if op in ("%", "!%") else text
        cond = sa.cast(col, sa.String).ilike(pattern) if f is None or f.type not in (
            "crm_status", "crm_contact", "crm_company") else col == one
        return ~cond if op.startswith("!") else cond
    return None


def _order(entity: str, order: dict):
    model, out = _model(entity), []
    for key, direction in order.items():
        f = _BY_NAME[entity].get(str(key).upper())
        col = _column(entity, f) if f else None
        if col is None:
            continue
        out.append(col.desc() if str(direction).upper() == "DESC" else col.asc())
    return out or [model.id.asc()]


def list_items(call: Call, entity: str, *, names=None, orm: bool = False) -> wire.Answer:
    """A list page. `names` turns the caller's field names into ours (crm.item's camelCase);
    `orm`: the offset is `start` itself (crm.item.list), not Bitrix24's legacy page."""
    s, model, refs = call.session, _model(entity), Refs(call.session)
    names = names or (lambda n: n)
    flt = {_with_op(k, names): v for k, v in wire.as_map(call.p("filter"), "filter").items()}
    order = {names(str(k)): v for k, v in wire.as_map(call.p("order"), "order").items()}
    select_ = [names(str(x)) for x in wire.as_list(call.p("select"))]
    conds = [model.deleted_at.is_(None), access.scope(s, call.actor, model, entity, "view")]
    for key, value in flt.items():
        cond = _condition(entity, key, value, refs)
        if cond is not None:
            conds.append(cond)
    start = wire.as_start(call.p("start"))
    q = select(model).where(*conds).order_by(*_order(entity, order), model.id.asc())
    if start == -1:  # no count: the first 50 (b24pysdk's fast lists walk by >ID)
        found = s.exec(q.limit(wire.PAGE)).all()
        return wire.Answer(rows(s, entity, list(found), refs, select_), total=0)
    offset = max(0, start) if orm else wire.legacy_page(start)
    total = s.exec(select(func.count()).select_from(model).where(*conds)).one()
    found = s.exec(q.offset(offset).limit(wire.PAGE)).all() if offset < total else []
    nxt = (offset + len(found) if offset + len(found) < total else None) if orm else wire.next_start(offset, total)
    return wire.Answer(rows(s, entity, list(found), refs, select_), total=total, next=nxt)


def _with_op(key, names) -> str:
    op, name = _OP.match(str(key)).groups()
    return op + names(name)


def get_one(call: Call, entity: str) -> dict:
    item = _visible(call.session, call, entity, wire.as_id(call.p("id")))
    return rows(call.session, entity, [item], Refs(call.session), ["*", "UF_*", "PHONE", "EMAIL"])[0]


def add(call: Call, entity: str) -> int:
    s, refs = call.session, Refs(call.session)
    fields = wire.as_map(call.p("fields"), "fields")
    if not fields:
        raise wire.RestError("Parameter 'fields' must be array.")
    inc = incoming(entity, fields, refs, adding=True)
    v = inc.values
    for op in (*inc.phones, *inc.emails):
        if op.id is not None:
            raise wire.RestError("Новая запись: у телефона или e-mail не может быть ID")
    phones = [(o.value, (o.value_type or "work").lower()) for o in inc.phones if not o.delete]
    emails = [(o.value, (o.value_type or "work").lower()) for o in inc.emails if not o.delete]
    responsible = _int("ASSIGNED_BY_ID", v.pop("responsible_id", None))
    utm = {k: v.pop(k) for k in [k for k in v if k.startswith("utm_")]}
    program = v.pop("program_id", None) or None
    custom = dict(inc.custom)
    if entity == "lead":
        stage_code = inc.stage.code if inc.stage else None
        item = create.create_lead(s, call.actor, title=v.pop("title", ""), last_name=v.pop("last_name", ""),
                                  first_name=v.pop("first_name", ""), middle_name=v.pop("middle_name", ""),
                                  phones=phones, emails=emails, source=v.pop("source", "") or create.DEFAULT_SOURCE,
                                  program_id=program, amount=v.pop("amount", None) or None,
                                  comment=v.pop("comment", ""), utm=utm, company_title=v.pop("company_title", ""),
                                  responsible_id=responsible, stage_code=stage_code, custom=custom,
                                  position=v.pop("position", ""))
        rest = _editable(s, entity, item.pipeline_id, v)
    elif entity == "deal":
        pipeline_id = inc.pipeline_id or refs.pipe_of_category.get(0)
        if inc.stage is not None and inc.stage.pipeline_id != pipeline_id:
            raise wire.RestError("Стадия не из этой воронки (CATEGORY_ID)")
        item = create.create_deal(s, call.actor, pipeline_id=pipeline_id, title=v.pop("title", ""),
                                  contact_id=inc.contact_id, program_id=program,
                                  amount=v.pop("amount", None) or None,
                                  source=v.pop("source", "") or create.DEFAULT_SOURCE, utm=utm,
                                  responsible_id=responsible, stage_id=inc.stage.id if inc.stage else None,
                                  comment=v.pop("comment", ""), custom=custom,
                                  values={k: x for k, x in _editable(s, entity, pipeline_id, v).items()
                                          if x not in ("", None)})
        rest = {}
    elif entity == "contact":
        item = create.create_contact(s, call.actor, last_name=v.pop("last_name", ""),
                                     first_name=v.pop("first_name", ""), middle_name=v.pop("middle_name", ""),
                                     phones=phones, emails=emails, company_id=inc.company_id,
                                     position=v.pop("position", ""), birthday=v.pop("birthday", None) or None,
                                     source=v.pop("source", "") or create.DEFAULT_SOURCE,
                                     responsible_id=responsible, comment=v.pop("comment", ""), custom=custom)
        rest = {}
    else:
        item = create.create_company(s, call.actor, title=v.pop("title", ""), phones=phones, emails=emails,
                                     inn=v.pop("inn", ""), industry=v.pop("industry", ""),
                                     address=v.pop("address", ""), responsible_id=responsible,
                                     comment=v.pop("comment", ""), custom=custom)
        rest = {}
    rest = {k: x for k, x in rest.items() if x not in ("", None)}
    if rest:
        items.apply_values(s, call.actor, entity, item, rest)
    s.flush()
    return int(item.id)


def _editable(s: Session, entity: str, pipeline_id: int | None, values: dict) -> dict:
    """The values a person could set on the card (the field catalog's editable fields);
    the rest are dropped, as Bitrix24 drops fields it does not take (a contact's names are
    changed on its card, where the full name is kept in step)."""
    fmap = field_map(s, entity, pipeline_id)
    return {k: v for k, v in values.items() if items.editable(fmap.get(k))}


def update(call: Call, entity: str) -> bool:
    s, refs = call.session, Refs(call.session)
    item_id = wire.as_id(call.p("id"))
    fields = wire.as_map(call.p("fields"), "fields")
    item = _visible(s, call, entity, item_id)
    inc = incoming(entity, fields, refs, adding=False)
    values = dict(inc.values)
    values.update({f"custom.{code}": val for code, val in inc.custom.items()})
    values = _editable(s, entity, getattr(item, "pipeline_id", None), values)
    if values:
        items.update_fields(s, call.actor, entity, item.id, values)
    if inc.contact_id and entity == "deal":
        create.link_contact(s, call.actor, entity, item.id, inc.contact_id)
    if inc.phones:
        comms.change(s, call.actor, entity, item.id, "phone", inc.phones, item=item)
    if inc.emails:
        comms.change(s, call.actor, entity, item.id, "email", inc.emails, item=item)
    if inc.stage is not None and entity in ("lead", "deal"):
        if inc.stage.pipeline_id != item.pipeline_id:
            raise wire.RestError("Стадия не из воронки этой записи (CATEGORY_ID не меняется)")
        items.move_stage(s, call.actor, entity, item.id, inc.stage.id, allow_final=True)
    return True


def delete(call: Call, entity: str) -> bool:
    item = _visible(call.session, call, entity, wire.as_id(call.p("id")))
    items.delete_item(call.session, call.actor, entity, item.id)
    return True


def _register(entity: str) -> None:
    prefix = f"crm.{entity}."
    method(prefix + "fields")(lambda call, e=entity: descriptors(e, Refs(call.session)))
    method(prefix + "list")(lambda call, e=entity: list_items(call, e))
    method(prefix + "get")(lambda call, e=entity: get_one(call, e))
    method(prefix + "add", write=True)(lambda call, e=entity: add(call, e))
    method(prefix + "update", write=True)(lambda call, e=entity: update(call, e))
    method(prefix + "delete", write=True)(lambda call, e=entity: delete(call, e))


for _entity in FIELDS:
    _register(_entity)


# ---- crm.item.*: the universal methods (camelCase, typed values) ---------------------------------
ENTITY_TYPES = entities.BY_TYPE_ID  # Bitrix24's entityTypeId → our entity
_CAMEL_OVERRIDES = {"DATE_CREATE": "createdTime", "DATE_MODIFY": "updatedTime", "CREATED_BY_ID": "createdBy",
                    "MODIFY_BY_ID": "updatedBy", "STATUS_ID": "stageId", "STATUS_SEMANTIC_ID": "stageSemanticId",
                    "BIRTHDATE": "birthdate", "CLOSEDATE": "closedate", "DATE_CLOSED": "closedTime",
                    "IS_RETURN_CUSTOMER": "isReturnCustomer", "IS_REPEATED_APPROACH": "isRepeatedApproach"}


def camel(name: str) -> str:
    """A Bitrix24 field name in crm.item's spelling: ASSIGNED_BY_ID → assignedById,
    UF_CRM_DPO_CONTRACT_NUMBER → ufCrmDpoContractNumber."""
    if name in _CAMEL_OVERRIDES:
        return _CAMEL_OVERRIDES[name]
    head, *rest = name.lower().split("_")
    return head + "".join(p.capitalize() for p in rest)


def _item_names(entity: str, refs: Refs):
    """camelCase or UPPER name → the legacy UPPER name (unknown names pass through)."""
    names = [f.name for f in FIELDS[entity]] + [uf_name(cf) for cf in refs.custom(entity)]
    back = {camel(n).lower(): n for n in names} | {n.lower(): n for n in names}
    return lambda n: back.get(str(n).lower(), str(n).upper()) if n not in ("*", "UF_*") else n


def _typed(entity: str, row: dict, refs: Refs) -> dict:
    """A legacy row → crm.item's item: ints and floats as numbers, null for empty, `fm`
    for the multi-fields."""
    by_name, out = _BY_NAME[entity], {}
    for name, value in row.items():
        f = by_name.get(name)
        kind = f.type if f else "string"
        if name in ("PHONE", "EMAIL"):
            out.setdefault("fm", []).extend({"id": int(v["ID"]), "valueType": v["VALUE_TYPE"], "value": v["VALUE"],
                                              "typeId": v["TYPE_ID"]} for v in value)
            continue
        if value in ("", None):
            value = None
        elif kind in ("integer", "user", "crm_contact", "crm_company", "crm_lead", "crm_category"):
            value = int(value)
        elif kind == "double":
            value = float(value)
        out[camel(name)] = value
    out["entityTypeId"] = next(k for k, v in ENTITY_TYPES.items() if v == entity)
    return out


def _entity_type(call: Call) -> str:
    try:
        etype = int(str(call.p("entityTypeId") or "").strip())
    except ValueError:
        etype = 0
    if etype not in ENTITY_TYPES:
        raise wire.RestError("entityTypeId: 1 (лиды), 2 (сделки), 3 (контакты) или 4 (компании)",
                             "NOT_FOUND", 400)
    return ENTITY_TYPES[etype]


def _item_fields(call: Call, names) -> Call:
    """The call with `fields` in legacy names (crm.item accepts camelCase)."""
    fields = wire.as_map(call.p("fields"), "fields")
    params = {k: v for k, v in call.params.items() if str(k).lower() != "fields"}
    params["fields"] = {names(k): v for k, v in fields.items()}
    return dataclasses.replace(call, params=params)


def _one_item(call: Call, entity: str, item_id: int) -> dict:
    s, refs = call.session, Refs(call.session)
    item = _visible(s, call, entity, item_id)
    return {"item": _typed(entity, rows(s, entity, [item], refs, ["*", "UF_*", "PHONE", "EMAIL"])[0], refs)}


@method("crm.item.fields")
def item_fields(call: Call) -> dict:
    entity = _entity_type(call)
    return {"fields": {camel(n): {**d, "upperName": n} for n, d in descriptors(entity, Refs(call.session)).items()}}


@method("crm.item.get")
def item_get(call: Call) -> dict:
    return _one_item(call, _entity_type(call), wire.as_id(call.p("id")))


@method("crm.item.list")
def item_list(call: Call) -> wire.Answer:
    entity = _entity_type(call)
    refs = Refs(call.session)
    answer = list_items(call, entity, names=_item_names(entity, refs), orm=True)
    return wire.Answer({"items": [_typed(entity, r, refs) for r in answer.result]}, total=answer.total,
                       next=answer.next)


@method("crm.item.add", write=True)
def item_add(call: Call) -> dict:
    entity = _entity_type(call)
    new_id = add(_item_fields(call, _item_names(entity, Refs(call.session))), entity)
    return _one_item(call, entity, new_id)


@method("crm.item.update", write=True)
def item_update(call: Call) -> dict:
    entity = _entity_type(call)
    update(_item_fields(call, _item_names(entity, Refs(call.session))), entity)
    return _one_item(call, entity, wire.as_id(call.p("id")))


@method("crm.item.delete", write=True)
def item_delete(call: Call) -> list:
    delete(call, _entity_type(call))
    return []


# ---- reference methods -------------------------------------------------------------------------
def _status_rows(refs: Refs) -> list[dict]:
    out = []
    for st in refs.stages:
        if st.id not in refs.status_list:
            continue
        entity_id, category = refs.status_list[st.id]
        out.append({"ID": str(st.id), "ENTITY_ID": entity_id, "STATUS_ID": refs.status_of[st.id], "NAME": st.name,
                    "NAME_INIT": st.name, "SORT": str(st.sort), "SYSTEM": "N", "CATEGORY_ID": category,
                    "COLOR": st.color, "SEMANTICS": {"success": "S", "failure": "F"}.get(st.semantic),
                    "EXTRA": {"SEMANTICS": SEMANTIC_EXTRA.get(st.semantic, "process"), "COLOR": st.color}})
    from rxcrm.rules.defaults import SOURCES
    for i, text in enumerate(SOURCES):
        out.append({"ID": str(100000 + i), "ENTITY_ID": "SOURCE", "STATUS_ID": source_code(text), "NAME": text,
                    "NAME_INIT": text, "SORT": str((i + 1) * 10), "SYSTEM": "N", "CATEGORY_ID": None,
                    "COLOR": "", "SEMANTICS": None, "EXTRA": {}})
    return out


@method("crm.status.list")
def status_list(call: Call) -> wire.Answer:
    flt = {str(k).upper(): v for k, v in wire.as_map(call.p("filter"), "filter").items()}
    out = _status_rows(Refs(call.session))
    for key in ("ENTITY_ID", "STATUS_ID", "CATEGORY_ID", "ID"):
        if key in flt:
            wanted = {str(x) for x in wire.as_list(flt[key])}
            out = [r for r in out if str(r[key]) in wanted]
    return wire.Answer(out, total=len(out))


@method("crm.status.entity.types")
def status_entity_types(call: Call) -> list:
    refs = Refs(call.session)
    out = [{"ID": "STATUS", "NAME": "Стадии лидов", "SEMANTIC_INFO": {}, "ENTITY_TYPE_ID": 1},
           {"ID": "SOURCE", "NAME": "Источники"}]
    for pipe_id, cat in sorted(refs.category.items(), key=lambda x: x[1]):
        pipe = refs.pipes[pipe_id]
        out.append({"ID": "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}", "NAME": f"Стадии сделок: {pipe.name}",
                    "ENTITY_TYPE_ID": 2, "CATEGORY_ID": cat, **({"PARENT_ID": "DEAL_STAGE"} if cat else {})})
    return out


def _categories(refs: Refs) -> list[dict]:
    return [{"id": cat, "name": refs.pipes[p].name, "sort": refs.pipes[p].sort, "entityTypeId": 2,
             "isDefault": "Y" if cat == 0 else "N", "originId": "", "originatorId": ""}
            for p, cat in sorted(refs.category.items(), key=lambda x: (refs.pipes[x[0]].sort, x[1]))]


@method("crm.category.list")
def category_list(call: Call) -> wire.Answer:
    etype = str(call.p("entityTypeId") or "")
    cats = _categories(Refs(call.session)) if etype == "2" else []
    return wire.Answer({"categories": cats}, total=len(cats))


@method("crm.category.get")
def category_get(call: Call) -> dict:
    cat_id = str(call.p("id"))
    found = next((c for c in _categories(Refs(call.session)) if str(c["id"]) == cat_id), None)
    if found is None or str(call.p("entityTypeId") or "") != "2":
        raise wire.not_found()
    return {"category": found}


@method("crm.dealcategory.list")
def dealcategory_list(call: Call) -> wire.Answer:
    refs = Refs(call.session)
    out = [{"ID": str(c["id"]), "CREATED_DATE": "", "NAME": c["name"], "IS_LOCKED": "N", "SORT": str(c["sort"])}
           for c in _categories(refs) if c["id"] != 0]  # Bitrix24's legacy list leaves out category 0
    return wire.Answer(out, total=len(out))


@method("crm.dealcategory.get")
def dealcategory_get(call: Call) -> dict:
    cat_id = wire.as_id(call.p("id"))
    found = next((c for c in _categories(Refs(call.session)) if c["id"] == cat_id), None)
    if found is None:
        raise wire.not_found()
    return {"ID": str(found["id"]), "CREATED_DATE": "", "NAME": found["name"], "IS_LOCKED": "N",
            "SORT": str(found["sort"])}


@method("crm.dealcategory.stage.list")
def dealcategory_stage_list(call: Call) -> list:
    refs = Refs(call.session)
    cat = _int("id", call.p("id")) or 0
    pipe = refs.pipe_of_category.get(cat)
    if pipe is None:
        raise wire.not_found()
    return [{"NAME": st.name, "SORT": st.sort, "STATUS_ID": refs.status_of[st.id]}
            for st in refs.stages if st.pipeline_id == pipe]


@method("crm.dealcategory.status")
def dealcategory_status(call: Call) -> str:
    cat = _int("id", call.p("id")) or 0
    return "DEAL_STAGE" if cat == 0 else f"DEAL_STAGE_{cat}"


@method("crm.dealcategory.default.get")
def dealcategory_default(call: Call) -> dict:
    refs = Refs(call.session)
    pipe = refs.pipe_of_category.get(0)
    return {"ID": 0, "NAME": refs.pipes[pipe].name if pipe else ""}


__all__ = ["ENTITY_TYPES", "FIELDS", "Refs", "SOURCE_CODES", "camel", "descriptors", "incoming", "parse_moment", "rows", "source_code",
           "source_text", "uf_name"]
