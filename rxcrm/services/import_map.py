"""From a file's row to what the create and edit services take (the import's mapping).

- `targets(session, entity)`: what a column can be loaded into — the field catalog's
  editable fields (services/fields.py, custom fields included) and the import's own
  targets (ФИО, phones and e-mails by type, the id in rxcrm or in the old system, the
  creation date, a deal's pipeline and client, a contact's company).
- `auto_map(...)`: headers → targets by the declarations in rules/imports.py (Bitrix24's
  export headers) and the catalog's labels (our own export).
- `Reader`: one row → a `Row`: lookups done (a responsible by full name, login or e-mail,
  a stage by name or code in the row's pipeline, a pipeline and a program by name, a
  source by name or Bitrix24 code) and formats made plain (Russian dates → ISO, «1 200,50
  руб.» → 1200.50, several phones in one cell). It does not validate what the services
  validate (a phone's length, an e-mail, a number's range, a stage's required fields):
  the import hands the values to them, so a row is refused exactly as a person's input
  would be. Lookups are read once per job (pick lists are small).
No database writes here."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, select

from rxcrm.models import Pipeline, Product, Stage, User
from rxcrm.rules import imports as declared
from rxcrm.rules.defaults import SOURCES

from . import fmt
from .entities import ENTITIES
from .errors import ValidationFailed
from .fields import all_fields
from .items import editable
from .phones import digits, fold, normalize_email, normalize_phone

SKIP = ""  # «Не загружать»
PHONE_TYPES = {"work": ("Рабочий телефон", "Work phone"), "mobile": ("Мобильный телефон", "Mobile phone"),
               "home": ("Домашний телефон", "Home phone"), "other": ("Другой телефон", "Other phone")}
EMAIL_TYPES = {"work": ("Рабочий e-mail", "Work e-mail"), "home": ("Частный e-mail", "Personal e-mail"),
               "other": ("Другой e-mail", "Other e-mail")}
DUPLICATES = ("skip", "update", "create")
UPDATE_MODES = ("empty", "overwrite")
MATCHES = ("phone", "email", "name")
DEFAULT_OPTIONS = {"duplicates": "skip", "match": ["phone", "email"], "update_mode": "empty",
                   "responsible_id": None, "pipeline_id": None}


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    label_en: str
    kind: str = "text"

    def title(self, lang: str) -> str:
        return self.label_en if lang == "en" else self.label


def _own(entity: str) -> list[Target]:
    """The import's own targets of an entity, before the catalog's fields."""
    out = [Target("id", "ID в rxcrm (обновить запись)", "ID in rxcrm (update)", "id"),
           Target("external_id", "Внешний ID (ID в Битрикс24)", "External ID (Bitrix24 ID)", "external_id")]
    if entity in ("lead", "contact"):
        out += [Target("name", "ФИО (фамилия имя отчество)", "Full name", "name"),
                Target("last_name", "Фамилия", "Last name"), Target("first_name", "Имя", "First name"),
                Target("middle_name", "Отчество", "Middle name")]
    if entity != "deal":
        out += [Target(f"phone.{t}", ru, en, "phone") for t, (ru, en) in PHONE_TYPES.items()]
        out += [Target(f"email.{t}", ru, en, "email") for t, (ru, en) in EMAIL_TYPES.items()]
    if entity == "deal":
        out += [Target("pipeline_id", "Воронка", "Pipeline", "pipeline"),
                Target("contact", "Контакт (ФИО)", "Contact (full name)", "contact"),
                Target("contact.phone", "Телефон контакта", "Contact phone", "phone"),
                Target("contact.email", "E-mail контакта", "Contact e-mail", "email")]
    if entity in ("deal", "contact"):
        out.append(Target("company", "Компания (название)", "Company (name)", "company"))
    if entity in ("lead", "deal"):
        out += [Target("stage_id", "Стадия", "Stage", "stage"),
                Target("closed_at", "Дата закрытия", "Closed", "datetime")]
    if entity == "company":
        out.append(Target("website", "Сайт", "Website"))
    out.append(Target("created_at", "Дата создания", "Created", "datetime"))
    return out


def targets(session: Session, entity: str) -> list[Target]:
    """Everything a column of this entity's file can be loaded into, in the picker's order."""
    own = _own(entity)
    taken = {t.key for t in own}
    fields = [Target(f.key, f.label, f.label_en, f.kind) for f in all_fields(session, entity)
              if editable(f) and f.key not in taken and f.key != "full_name"]
    return own + fields


def norm_header(text) -> str:
    """A header as the declarations compare it: lower case, «ё» as «е», no «(…)»/«:» tail."""
    t = str(text or "").replace("\ufeff", "").strip().lower().replace("ё", "е")
    t = re.sub(r"\s*\([^)]*\)\s*$", "", t.rstrip(":").strip()).rstrip(":").strip()
    return re.sub(r"\s+", " ", t)


def auto_map(session: Session, entity: str, headers: list[str], *, own_export: bool = False) -> dict[str, str]:
    """{column index as text: target key} for the headers it recognises; a target is used
    once (a phone or e-mail type too), the first column wins. `own_export`: the file is
    rxcrm's own export, so its «ID» is our id (an update), not an old system's."""
    known = {t.key for t in targets(session, entity)}
    by_label: dict[str, str] = {}
    for t in targets(session, entity):
        by_label.setdefault(norm_header(t.label), t.key)
    for f in all_fields(session, entity):  # our export's headers (the catalog's labels)
        if f.key in known:
            by_label.setdefault(norm_header(f.label), f.key)
    if entity in ("lead", "contact"):
        by_label["фио"] = "name"
    declared_map = declared.HEADERS.get(entity, {})
    out, used = {}, set()
    for i, header in enumerate(headers):
        h = norm_header(header)
        key = declared_map.get(h) or by_label.get(h)
        if own_export and h == "id":
            key = "id"
        if own_export and h in ("телефон", "e-mail") and entity != "deal":
            key = "phone.work" if h == "телефон" else "email.work"
        if key and key in known and key not in used:
            out[str(i)] = key
            used.add(key)
    return out


def check_mapping(session: Session, entity: str, headers: list[str], mapping: dict) -> dict[str, str]:
    """The mapping cleaned (known columns and targets, each target once — phones and
    e-mails of a type may come from several columns); a clear refusal when nothing would
    identify an item."""
    known = {t.key: t for t in targets(session, entity)}
    out, seen = {}, {}
    for col, key in (mapping or {}).items():
        key = str(key or "")
        idx = str(col)
        if not key:
            continue
        if not (idx.isdigit() and int(idx) < len(headers)):
            raise ValidationFailed(f"Колонки №{idx} нет в файле")
        if key not in known:
            raise ValidationFailed(f"Поле «{key}» нельзя загрузить в {ENTITIES[entity].plural.lower()}")
        multi = known[key].kind in ("phone", "email")
        if key in seen and not multi:
            raise ValidationFailed(f"Поле «{known[key].label}» выбрано для двух колонок: "
                                   f"«{headers[int(seen[key])]}» и «{headers[int(idx)]}»")
        seen[key] = idx
        out[idx] = key
    if not out:
        raise ValidationFailed("Выберите, в какие поля загрузить колонки файла")
    keys = set(out.values())
    need = {"lead": ("title", "name", "last_name", "first_name", "phone.", "email.", "id", "external_id"),
            "deal": ("title", "id", "external_id"), "contact": ("name", "last_name", "first_name", "id", "external_id"),
            "company": ("title", "id", "external_id")}[entity]
    if not any(k == n or (n.endswith(".") and k.startswith(n)) for k in keys for n in need):
        names = {"lead": "название, ФИО, телефон или e-mail", "deal": "название сделки",
                 "contact": "ФИО, фамилию или имя", "company": "название компании"}[entity]
        raise ValidationFailed(f"Не выбрана колонка, по которой создать запись: нужно {names}")
    return out


# ---- reading one row ---------------------------------------------------------------------
@dataclass
class Row:
    """One row in the services' terms. `values` are catalog keys → text (as a person would
    type them); `errors` are [(target key, value, message)] of what could not be read."""
    number: int
    values: dict = field(default_factory=dict)
    phones: list = field(default_factory=list)   # [(value, type)]
    emails: list = field(default_factory=list)
    stage: Stage | None = None
    pipeline_id: int | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    item_id: int | None = None
    external_id: str = ""
    website: str = ""
    contact: dict | None = None   # a deal's client: {"name", "phones", "emails"}
    company: str = ""
    errors: list = field(default_factory=list)
    raw: dict = field(default_factory=dict)      # target key → the cell's text
    phone_norms: list = field(default_factory=list)  # what the phones and e-mails are matched by
    email_norms: list = field(default_factory=list)  # (phone_keys / email_keys, read once)

    def names(self) -> tuple[str, str, str]:
        v = self.values
        return v.get("last_name", ""), v.get("first_name", ""), v.get("middle_name", "")


def cell_text(value) -> str:
    """A cell as text: numbers without a spurious «.0», dates as ДД.ММ.ГГГГ [ЧЧ:ММ]."""
    if type(value) is str:  # every cell of a CSV: the common case first
        return (value.replace("\x00", "") if "\x00" in value else value).strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Да" if value else "Нет"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M:%S" if (value.hour, value.minute, value.second) != (0, 0, 0)
                              else "%d.%m.%Y")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value).replace("\x00", "").strip()


_MONEY_JUNK = re.compile(r"(руб\.?|р\.|₽|rub|\s|\u00a0|\u202f)", re.IGNORECASE)
_SPLIT = re.compile(r"[,;\n]+")


def money_text(value) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return cell_text(value)
    text = _MONEY_JUNK.sub("", str(value or ""))
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    elif "," in text and "." in text:  # 1,234.50
        text = text.replace(",", "")
    return text


def split_name(text: str) -> tuple[str, str, str]:
    """«Иванов Пётр Сергеевич» → (Иванов, Пётр, Сергеевич); one word is a first name."""
    parts = text.split()
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return parts[0], parts[1], ""
    return parts[0], parts[1], " ".join(parts[2:])


class Lookups:
    """The pick lists a row is read against, loaded once per job."""

    def __init__(self, session: Session, entity: str):
        self.entity = entity
        users = session.exec(select(User)).all()
        self.users: dict[str, int | None] = {}
        for u in users:
            if not u.is_active:
                continue
            for key in self._user_keys(u):
                self.users[key] = None if key in self.users and self.users[key] != u.id else u.id
        self.pipes = [p for p in session.exec(select(Pipeline).order_by(Pipeline.sort, Pipeline.id)).all()
                      if p.entity == ("deal" if entity == "deal" else "lead")]
        self.pipe_by_name = {fold(p.name): p for p in self.pipes}
        self.default_pipe = next((p for p in self.pipes if p.is_default), self.pipes[0] if self.pipes else None)
        stages = session.exec(select(Stage).order_by(Stage.pipeline_id, Stage.sort)).all()
        self.stages: dict[tuple[int, str], Stage] = {}
        for st in stages:
            self.stages.setdefault((st.pipeline_id, fold(st.name)), st)
            self.stages.setdefault((st.pipeline_id, fold(st.code)), st)
        self.programs: dict[str, int] = {}
        for p in session.exec(select(Product)).all():
            self.programs.setdefault(fold(p.title), p.id)
            if p.code:
                self.programs.setdefault(fold(p.code), p.id)
        self.sources = {fold(s): s for s in SOURCES}
        self.sources.update({fold(k): v for k, v in declared.SOURCE_NAMES.items()})
        self.sources.update({fold(code): name for name, code in declared.SOURCE_CODES.items()})

    @staticmethod
    def _user_keys(u: User) -> list[str]:
        keys = [fold(u.login), fold(u.full_name)]
        parts = u.full_name.split()
        if len(parts) >= 2:
            keys += [fold(f"{parts[1]} {parts[0]}"), fold(" ".join(parts[:2]))]
        if getattr(u, "email", ""):
            keys.append(fold(u.email))
        return [k for k in keys if k]

    def user(self, text: str) -> int:
        key = fold(text)
        if key.isdigit() and int(key) in set(self.users.values()):
            return int(key)
        if key not in self.users:
            raise ValueError(f"Ответственный «{text}» не найден среди активных сотрудников "
                             "(укажите ФИО, логин или e-mail)")
        uid = self.users[key]
        if uid is None:
            raise ValueError(f"Ответственный «{text}»: несколько сотрудников с таким именем — укажите логин")
        return uid

    def pipeline(self, text: str) -> Pipeline:
        pipe = self.pipe_by_name.get(fold(text))
        if pipe is None:
            names = ", ".join(f"«{p.name}»" for p in self.pipes)
            raise ValueError(f"Воронка «{text}» не найдена; есть: {names}")
        return pipe

    def stage(self, pipe: Pipeline, text: str) -> Stage:
        code = text.split(":", 1)[1] if re.match(r"^C\d+:", text.strip()) else text
        st = self.stages.get((pipe.id, fold(code)))
        if st is None:
            raise ValueError(f"Стадия «{text}» не найдена в воронке «{pipe.name}»")
        return st

    def program(self, text: str) -> int:
        pid = self.programs.get(fold(text))
        if pid is None:
            raise ValueError(f"Образовательная программа «{text}» не найдена")
        return pid

    def source(self, text: str) -> str:
        name = self.sources.get(fold(text))
        if name is None:
            raise ValueError(f"Источник «{text}» не найден; допустимы: {', '.join(SOURCES)}")
        return name


_SPECIAL = {"id", "external_id", "name", "contact", "company", "website", "pipeline_id", "created_at", "closed_at",
            "source", "stage_id"}  # the keys `Reader._one` reads in a way of their own


class Reader:
    """Reads a job's rows: `row(number, cells)` → Row."""

    def __init__(self, session: Session, entity: str, headers: list[str], mapping: dict[str, str],
                 defaults: dict | None = None):
        self.entity, self.headers = entity, headers
        self.lk = Lookups(session, entity)
        self.cols = sorted(((int(i), k) for i, k in mapping.items() if k), key=lambda p: p[0])
        self.kinds = {t.key: t.kind for t in targets(session, entity)}
        self.defaults = defaults or {}
        # the columns whose text is the value as it is (most of a file): no dispatch per cell
        self.plain = {k for _i, k in self.cols if k not in _SPECIAL and not k.startswith(("phone.", "email.", "contact."))
                      and self.kinds.get(k, "text") not in ("user", "program", "money", "number", "date")}

    def column(self, key: str) -> str:
        """The header of the (first) column loaded into `key` (phones: any phone column)."""
        for i, k in self.cols:
            if k == key or (key in ("phones", "phone") and k.startswith("phone.")) or \
                    (key in ("emails", "email") and k.startswith("email.")) or \
                    (key == "contact_id" and k.startswith("contact")) or (key == "stage_id" and k == "stage_id"):
                return self.headers[i]
        return ""

    def row(self, number: int, cells: list) -> Row:
        r = Row(number)
        stage_text = ""
        for i, key in self.cols:
            raw = cells[i] if i < len(cells) else ""
            text = cell_text(raw)
            if not text:
                continue
            r.raw[key] = text
            if key in self.plain:
                r.values[key] = text
                continue
            try:
                if key == "stage_id":
                    stage_text = text
                else:
                    self._one(r, key, raw, text)
            except ValueError as exc:
                r.errors.append((key, text, str(exc)))
        if self.entity in ("lead", "deal"):
            self._pipeline_and_stage(r, stage_text)
        if self.entity in ("lead", "contact") and "name" in r.raw:
            last, first, middle = split_name(r.raw["name"])
            for k, v in (("last_name", last), ("first_name", first), ("middle_name", middle)):
                r.values.setdefault(k, v)
        r.phone_norms, r.email_norms = phone_keys(r.phones), email_keys(r.emails)
        return r

    def _pipeline_and_stage(self, r: Row, stage_text: str) -> None:
        pipe = None
        if self.entity == "deal":
            if r.pipeline_id is None:
                pid = self.defaults.get("pipeline_id")
                pipe = next((p for p in self.lk.pipes if p.id == pid), self.lk.default_pipe)
                r.pipeline_id = pipe.id if pipe else None
            else:
                pipe = next(p for p in self.lk.pipes if p.id == r.pipeline_id)
        else:
            pipe = self.lk.default_pipe
        if stage_text and pipe is not None:
            try:
                r.stage = self.lk.stage(pipe, stage_text)
            except ValueError as exc:
                r.errors.append(("stage_id", stage_text, str(exc)))

    def _one(self, r: Row, key: str, raw, text: str) -> None:
        kind = self.kinds.get(key, "text")
        if key == "id":
            if not text.isdigit() or len(text) > 9:
                raise ValueError(f"ID «{text}»: ожидается номер записи в rxcrm")
            r.item_id = int(text)
        elif key == "external_id":
            r.external_id = text[:100]
        elif key == "name":
            pass  # split after the row is read: separate name columns win
        elif key.startswith(("phone.", "email.")) or key in ("contact.phone", "contact.email"):
            kind_, _, vtype = key.partition(".")
            parts = [p.strip() for p in _SPLIT.split(text) if p.strip()]
            if key.startswith("contact."):
                c = r.contact if r.contact is not None else {"name": "", "phones": [], "emails": []}
                c["phones" if vtype == "phone" else "emails"] += parts
                r.contact = c
            else:
                (r.phones if kind_ == "phone" else r.emails).extend((p, vtype) for p in parts)
        elif key == "contact":
            c = r.contact if r.contact is not None else {"name": "", "phones": [], "emails": []}
            c["name"] = text
            r.contact = c
        elif key == "company":
            r.company = text
        elif key == "website":
            r.website = text
        elif key == "pipeline_id":
            r.pipeline_id = self.lk.pipeline(text).id
        elif key in ("created_at", "closed_at"):
            moment = fmt.parse_moment(raw if isinstance(raw, (datetime, date)) else text)
            setattr(r, key, moment)
        elif kind == "user":
            r.values[key] = str(self.lk.user(text))
        elif kind == "program":
            r.values[key] = str(self.lk.program(text))
        elif key == "source":
            r.values[key] = self.lk.source(text)
        elif kind in ("money", "number"):
            r.values[key] = money_text(raw)
        elif kind == "date":
            moment = fmt.parse_moment(raw if isinstance(raw, (datetime, date)) else text)
            r.values[key] = moment.date().isoformat() if moment else ""
        else:
            r.values[key] = text


# ---- what identifies a row among the items (duplicates) -------------------------------------
def phone_keys(phones) -> list[str]:
    out = []
    for value, _t in phones:
        norm = normalize_phone(value)
        if len(digits(norm)) >= 10 and norm not in out:
            out.append(norm)
    return out


def email_keys(emails) -> list[str]:
    return list(dict.fromkeys(normalize_email(v) for v, _t in emails if "@" in v))


def name_key(entity: str, r: Row) -> str:
    """The name an item is matched by: a person's full name, a company's or deal's title."""
    if entity in ("lead", "contact"):
        name = " ".join(p for p in r.names() if p)
        return fold(name) if name else (fold(r.values.get("title", "")) if entity == "lead" else "")
    return fold(r.values.get("title", ""))


__all__ = ["DEFAULT_OPTIONS", "DUPLICATES", "MATCHES", "Lookups", "Reader", "Row", "SKIP", "Target", "UPDATE_MODES", "auto_map",
           "cell_text", "check_mapping", "email_keys", "money_text", "name_key", "norm_header", "phone_keys",
           "split_name", "targets"]
