"""Write side of the work surfaces: stage moves, field edits, bulk actions, deletion.

Every change checks access and the stage's required fields, writes a timeline event and
a stage-history row (for moves), then publishes an event (FIELDS_CHANGED, STAGE_CHANGED,
ITEM_DELETED — services/events.py): the audit log, the notifications and the rules engine
react to it (wired in rxcrm/hooks.py) — all in the caller's transaction."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlmodel import Session

from rxcrm.models import Product, Stage, StageHistory, User, utcnow
from rxcrm.models.pipeline import PROCESS

from . import access, events, fmt
from .context import Actor
from .errors import AccessDenied, NotFound, ServiceError, ValidationFailed
from .fields import FieldDef, field_map
from .records import get_item, plain, set_value, timeline, touch, value_of
from .requirements import missing_fields

# Fields the list/board may edit directly (others belong to the card page).
EDITABLE_KINDS = {"text", "int", "money", "number", "date", "enum", "bool", "program", "user"}


class MissingFields(ValidationFailed):
    """Entering the stage needs these fields; `details["missing"]` lists them."""


# ---- field values ---------------------------------------------------------------------

INT_MIN, INT_MAX = -2**31, 2**31 - 1      # an INTEGER column on PostgreSQL
MONEY_MAX = Decimal(10) ** 12             # Numeric(14, 2): 12 digits before the point
INT_BOUNDS = {"probability": (0, 100)}    # fields with a narrower range than INTEGER
TRUE_WORDS = ("1", "true", "да", "yes")
FALSE_WORDS = ("0", "false", "нет", "no")
_INT_RE = re.compile(r"-?[0-9]+")


def editable(fd: FieldDef | None) -> bool:
    """Whether a person (or a rule) may set this field through apply_values/create."""
    if fd is None or fd.kind not in EDITABLE_KINDS or fd.key == "id":
        return False
    return fd.column is not None or fd.key.startswith("custom.")


def _refuse(fd: FieldDef, message: str, short: str):
    return ValidationFailed(f"«{fd.label}»: {message}", fields={fd.key: short})


def empty_value(fd: FieldDef):
    """What an empty input stores, by the field's column (FieldDef.empty): "" for a NOT NULL
    text, NULL where the column allows it (a custom field's key is removed), otherwise a
    refusal naming the field — never a NULL for a NOT NULL column."""
    if fd.empty == "blank":
        return ""
    if fd.empty == "required":
        raise _refuse(fd, "обязательное поле — укажите значение", "Обязательное поле")
    return None


def parse_value(fd: FieldDef, raw):
    """Validate and convert one typed-in value; raise ValidationFailed with a clear message.
    Every value it returns can be stored in the field's column on SQLite and PostgreSQL."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return empty_value(fd)
    text = str(raw).replace("\x00", "").strip()
    if not text:
        return empty_value(fd)
    if fd.kind in ("money", "number"):
        try:
            value = Decimal(text.replace("\u00a0", "").replace(" ", "").replace(",", ".").rstrip("₽"))
        except InvalidOperation:
            raise _refuse(fd, "введите число", "Введите число") from None
        if not value.is_finite():
            raise _refuse(fd, "введите число", "Введите число")
        if value < 0:
            raise _refuse(fd, "значение не может быть отрицательным", "Не может быть отрицательным")
        if value >= MONEY_MAX:
            raise _refuse(fd, "слишком большое число", "Слишком большое число")
        if fd.key.startswith("custom."):
            return float(value) if value != value.to_integral() else int(value)
        return value
    if fd.kind in ("int", "program", "user"):
        if not _INT_RE.fullmatch(text):
            raise _refuse(fd, "неверное значение", "Неверное значение")
        value = int(text)
        lo, hi = INT_BOUNDS.get(fd.key, (INT_MIN, INT_MAX))
        if not lo <= value <= hi:
            raise _refuse(fd, f"значение от {lo} до {hi}", f"От {lo} до {hi}")
        return value
    if fd.kind == "date":
        try:
            d = date.fromisoformat(text[:10])
        except ValueError:
            raise _refuse(fd, "дата в формате ГГГГ-ММ-ДД", "Неверная дата") from None
        return d.isoformat() if fd.key.startswith("custom.") else d
    if fd.kind == "enum" and fd.options and text not in fd.options:
        raise ValidationFailed(f"«{fd.label}»: выберите одно из значений: {', '.join(fd.options)}",
                               fields={fd.key: "Выберите из списка"})
    if fd.kind == "bool":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise _refuse(fd, "выберите «Да» или «Нет»", "Да или Нет")
    return text


def check_references(session: Session, parsed: dict[str, object]) -> None:
    """The responsible (an active user) and the program named by already parsed values exist —
    a wrong id is a clear refusal, not a foreign-key error at commit."""
    uid = parsed.get("responsible_id")
    if uid is not None:
        user = session.get(User, uid)
        if user is None or not user.is_active:
            raise ValidationFailed("Ответственный не найден или отключён", fields={"responsible_id": "Не найден"})
    pid = parsed.get("program_id")
    if pid is not None and session.get(Product, pid) is None:
        raise ValidationFailed("Образовательная программа не найдена", fields={"program_id": "Не найдена"})


def parse_values(fmap: dict[str, FieldDef], values: dict[str, object],
                 unknown: str = "Поле нельзя изменить здесь") -> dict[str, tuple[FieldDef, object]]:
    """Validate all values at once: {key: (FieldDef, value)}, or one ValidationFailed that
    names every wrong field (a single wrong field: its own message)."""
    parsed, errors, messages = {}, {}, []
    for key, raw in values.items():
        fd = fmap.get(key)
        if not editable(fd):
            errors[key] = unknown
            messages.append(f"«{fd.label if fd else key}»: {unknown.lower()}")
            continue
        try:
            parsed[key] = (fd, parse_value(fd, raw))
        except ValidationFailed as exc:
            errors.update(exc.fields or {key: exc.message})
            messages.append(exc.message)
    if errors:
        if len(messages) == 1:
            raise ValidationFailed(messages[0], fields=errors)
        raise ValidationFailed("Проверьте поля: " + "; ".join(messages), fields=errors)
    return parsed


def apply_values(session: Session, actor: Actor, entity: str, item, values: dict[str, object]) -> dict:
    """Validate all values first (nothing is written if one is wrong), then set them and
    record old → new per field on the timeline. Returns {key: (old, new)} of what changed.
    (Callers publish FIELDS_CHANGED once their whole change is made.)"""
    fmap = field_map(session, entity, getattr(item, "pipeline_id", None))
    parsed = parse_values(fmap, values)
    olds = {key: value_of(item, key) for key in parsed}
    new = {key: value for key, (_fd, value) in parsed.items() if plain(olds[key]) != plain(value)}
    check_references(session, new)  # (an unchanged, since deactivated responsible stays)
    changes = {}
    for key, value in new.items():
        fd, old = parsed[key][0], olds[key]
        set_value(item, key, value)
        changes[key] = (plain(old), plain(value))
        timeline(session, actor, entity, item.id, "field_changed",
                 {"field": key, "label": fd.label, "old": plain(old), "new": plain(value)})
    if "responsible_id" in changes and changes["responsible_id"][1]:
        user = session.get(User, changes["responsible_id"][1])
        item.department_id = user.department_id
    return changes


class Conflict(ServiceError):
    """The item changed since the person's view was loaded (code "conflict")."""

    def __init__(self, message: str, **kw):
        super().__init__(message, code="conflict", **kw)


def check_version(session: Session, item, expected_version: int | None) -> None:
    """The one version check of every change made from a view (card edit, stage move):
    refuse with «Карточку изменил <кто> (<когда>) — обновите …» when the item's version is
    no longer the one the view showed. `None` = the caller has no view to compare (no check)."""
    if expected_version is None or item.version == expected_version:
        return
    who = session.get(User, item.updated_by_id) if item.updated_by_id else None
    raise Conflict(f"Карточку изменил {who.full_name if who else 'другой пользователь'} "
                   f"({fmt.dt_short(item.updated_at)}) — обновите страницу, чтобы не затереть изменения",
                   details={"version": item.version})


def update_fields(session: Session, actor: Actor, entity: str, item_id: int, values: dict,
                  expected_version: int | None = None) -> dict:
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    check_version(session, item, expected_version)
    changes = apply_values(session, actor, entity, item, values)
    if changes:
        touch(item, actor)
        session.add(item)
        events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=entity, item=item, changes=changes)
    return changes


# ---- stage moves ----------------------------------------------------------------------

@dataclass
class MoveResult:
    item_id: int
    from_stage: str
    to_stage: str
    changed: bool


def move_stage(session: Session, actor: Actor, entity: str, item_id: int, stage_id: int,
               values: dict | None = None, allow_final: bool = False,
               expected_version: int | None = None) -> MoveResult:
    """Move a lead/deal to another stage of its pipeline.

    `values` are fields the manager filled in the "required fields" dialog: they are saved
    in the same transaction before the requirements are checked. `expected_version` is the
    version the mover's board/card showed: a move from a stale view is refused like an
    inline edit (check_version)."""
    if entity not in ("lead", "deal"):
        raise ValidationFailed("Стадии есть только у лидов и сделок")
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    check_version(session, item, expected_version)
    new = session.get(Stage, stage_id)
    if new is None or new.pipeline_id != item.pipeline_id:
        raise ValidationFailed("Такой стадии нет в воронке этого элемента")
    old = session.get(Stage, item.stage_id)
    if new.id == old.id and not values:
        return MoveResult(item.id, old.name, new.name, False)
    if new.semantic != PROCESS and not allow_final:
        raise ValidationFailed(f"«{new.name}» — завершающая стадия: используйте «Завершить»",
                               code="final_stage")
    changes = apply_values(session, actor, entity, item, values) if values else {}
    missing = missing_fields(session, entity, item, new)
    if missing:
        names = ", ".join(f"«{f.label}»" for f in missing)
        raise MissingFields(f"Чтобы перевести на стадию «{new.name}», заполните: {names}",
                            details={"missing": [{"key": f.key, "label": f.label, "kind": f.kind,
                                                  "options": list(f.options)} for f in missing],
                                     "stage_id": new.id, "stage": new.name})
    if new.id == old.id:
        touch(item, actor)
        session.add(item)
        if changes:
            events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=entity, item=item, changes=changes)
        return MoveResult(item.id, old.name, new.name, False)
    now = utcnow()
    entered_old_at = item.stage_changed_at
    item.stage_id, item.semantic, item.stage_changed_at = new.id, new.semantic, now
    item.closed_at = now if new.semantic != PROCESS else None
    touch(item, actor)
    session.add(item)
    session.add(StageHistory(entity_type=entity, entity_id=item.id, pipeline_id=item.pipeline_id,
                             stage_id=new.id, from_stage_id=old.id, prev_at=entered_old_at, semantic=new.semantic,
                             created_at=now, user_id=actor.user_id, responsible_id=item.responsible_id,
                             department_id=item.department_id))
    timeline(session, actor, entity, item.id, "stage_changed",
             {"from_stage_id": old.id, "to_stage_id": new.id, "from": old.name, "to": new.name})
    events.publish(session, events.STAGE_CHANGED, actor=actor, entity=entity, item=item, old=old, new=new)
    # The dialog's values are announced after the person's own move: their field triggers
    # run from the new stage (the person's move wins).
    if changes:
        events.publish(session, events.FIELDS_CHANGED, actor=actor, entity=entity, item=item, changes=changes)
    return MoveResult(item.id, old.name, new.name, True)


# ---- bulk -----------------------------------------------------------------------------

@dataclass
class BulkResult:
    done: int = 0
    refused: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        text = f"Готово: {self.done}"
        if self.refused:
            text += f"; не выполнено: {len(self.refused)} — " + "; ".join(
                f"№{r['id']}: {r['reason']}" for r in self.refused[:5])
            if len(self.refused) > 5:
                text += " …"
        return text


def bulk(session: Session, ids: list[int], op) -> BulkResult:
    """Run `op(item_id)` per item in a savepoint: one refusal does not undo the others.

    An id that does not exist (or is deleted) and an item the actor may not touch get the
    same reason, access.NO_ACCESS: a bulk answer never tells whether an id exists outside
    the actor's scope."""
    res = BulkResult()
    for item_id in ids:
        try:
            with session.begin_nested():
                op(item_id)
            res.done += 1
        except (NotFound, AccessDenied):
            res.refused.append({"id": item_id, "reason": access.NO_ACCESS})
        except ServiceError as exc:
            res.refused.append({"id": item_id, "reason": exc.message})
    return res


def bulk_move(session: Session, actor: Actor, entity: str, ids: list[int], stage_id: int) -> BulkResult:
    return bulk(session, ids, lambda i: move_stage(session, actor, entity, i, stage_id))


def bulk_assign(session: Session, actor: Actor, entity: str, ids: list[int], user_id: int) -> BulkResult:
    return bulk(session, ids, lambda i: update_fields(session, actor, entity, i, {"responsible_id": user_id}))


def delete_item(session: Session, actor: Actor, entity: str, item_id: int) -> None:
    """Soft delete: the item leaves lists and boards; the recycle bin can restore it."""
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "delete", item)
    item.deleted_at = utcnow()
    touch(item, actor)
    session.add(item)
    timeline(session, actor, entity, item.id, "deleted", {})
    events.publish(session, events.ITEM_DELETED, actor=actor, entity=entity, item=item)


def bulk_delete(session: Session, actor: Actor, entity: str, ids: list[int]) -> BulkResult:
    return bulk(session, ids, lambda i: delete_item(session, actor, entity, i))
