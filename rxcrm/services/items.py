"""Write side of the work surfaces: stage moves, field edits, bulk actions, deletion.

Every change checks access, applies the rules engine, and writes a timeline event,
a stage-history row (for moves) and an audit record — in the caller's transaction."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlmodel import Session

from rxcrm.models import Stage, StageHistory, TimelineEvent, User, utcnow

from . import access, audit, rules_engine
from .context import Actor
from .errors import NotFound, ServiceError, ValidationFailed
from .fields import MODELS, FieldDef, field_map

ENTITY_LABEL = {"lead": "Лид", "deal": "Сделка", "contact": "Контакт", "company": "Компания"}
# Fields the list/board may edit directly (others belong to the card page).
EDITABLE_KINDS = {"text", "int", "money", "number", "date", "enum", "bool", "program", "user"}


class MissingFields(ValidationFailed):
    """Entering the stage needs these fields; `details["missing"]` lists them."""


def get_item(session: Session, entity: str, item_id: int):
    item = session.get(MODELS[entity], item_id)
    if item is None or item.deleted_at is not None:
        raise NotFound(f"{ENTITY_LABEL[entity]} №{item_id} не найден" if entity != "deal"
                       else f"Сделка №{item_id} не найдена")
    return item


def _touch(item, actor: Actor) -> None:
    item.updated_at = utcnow()
    item.updated_by_id = actor.user_id
    item.version = (item.version or 0) + 1


def _timeline(session: Session, actor: Actor, entity: str, item_id: int, kind: str, data: dict,
              rule: str = "") -> None:
    session.add(TimelineEvent(entity_type=entity, entity_id=item_id, kind=kind, user_id=actor.user_id,
                              rule=rule or ("" if actor.source != "rule" else actor.login), data=data))


# ---- field values ---------------------------------------------------------------------

def parse_value(fd: FieldDef, raw):
    """Validate and convert one typed-in value; raise ValidationFailed with a clear message."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    text = str(raw).strip()
    if fd.kind in ("money", "number"):
        try:
            value = Decimal(text.replace("\u00a0", "").replace(" ", "").replace(",", ".").rstrip("₽"))
        except InvalidOperation:
            raise ValidationFailed(f"«{fd.label}»: введите число", fields={fd.key: "Введите число"}) from None
        if value < 0:
            raise ValidationFailed(f"«{fd.label}»: значение не может быть отрицательным",
                                   fields={fd.key: "Не может быть отрицательным"})
        if fd.key.startswith("custom."):
            return float(value) if value != value.to_integral() else int(value)
        return value
    if fd.kind in ("int", "program", "user"):
        if not text.lstrip("-").isdigit():
            raise ValidationFailed(f"«{fd.label}»: неверное значение", fields={fd.key: "Неверное значение"})
        return int(text)
    if fd.kind == "date":
        try:
            d = date.fromisoformat(text[:10])
        except ValueError:
            raise ValidationFailed(f"«{fd.label}»: дата в формате ГГГГ-ММ-ДД",
                                   fields={fd.key: "Неверная дата"}) from None
        return d.isoformat() if fd.key.startswith("custom.") else d
    if fd.kind == "enum" and fd.options and text not in fd.options:
        raise ValidationFailed(f"«{fd.label}»: выберите одно из значений: {', '.join(fd.options)}",
                               fields={fd.key: "Выберите из списка"})
    if fd.kind == "bool":
        return text.lower() in ("1", "true", "да", "yes")
    return text


def _set(item, key: str, value) -> None:
    if key.startswith("custom."):
        custom = dict(item.custom or {})
        code = key.split(".", 1)[1]
        if value is None:
            custom.pop(code, None)
        else:
            custom[code] = value
        item.custom = custom
    else:
        setattr(item, key, value)


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def apply_values(session: Session, actor: Actor, entity: str, item, values: dict[str, object]) -> dict:
    """Validate all values first (nothing is written if one is wrong), then set them and
    record old → new per field. Returns {key: (old, new)} of what changed."""
    fmap = field_map(session, entity, getattr(item, "pipeline_id", None))
    parsed, errors = {}, {}
    for key, raw in values.items():
        fd = fmap.get(key)
        if fd is None or fd.column is None and not key.startswith("custom.") or fd.kind not in EDITABLE_KINDS:
            errors[key] = "Поле нельзя изменить здесь"
            continue
        try:
            parsed[key] = (fd, parse_value(fd, raw))
        except ValidationFailed as exc:
            errors.update(exc.fields or {key: exc.message})
    if errors:
        labels = ", ".join(f"«{fmap[k].label}»" if k in fmap else k for k in errors)
        raise ValidationFailed(f"Проверьте поля: {labels}", fields=errors)
    if "responsible_id" in parsed and parsed["responsible_id"][1] is not None:
        user = session.get(User, parsed["responsible_id"][1])
        if user is None or not user.is_active:
            raise ValidationFailed("Ответственный не найден или отключён", fields={"responsible_id": "Не найден"})
    changes = {}
    for key, (fd, value) in parsed.items():
        old = rules_engine.value_of(item, key)
        if _plain(old) == _plain(value):
            continue
        _set(item, key, value)
        changes[key] = (_plain(old), _plain(value))
        _timeline(session, actor, entity, item.id, "field_changed",
                  {"field": key, "label": fd.label, "old": _plain(old), "new": _plain(value)})
    if "responsible_id" in changes and changes["responsible_id"][1]:
        user = session.get(User, changes["responsible_id"][1])
        item.department_id = user.department_id
    return changes


def update_fields(session: Session, actor: Actor, entity: str, item_id: int, values: dict,
                  expected_version: int | None = None) -> dict:
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    if expected_version is not None and item.version != expected_version:
        who = session.get(User, item.updated_by_id) if item.updated_by_id else None
        from .fmt import dt_short
        raise ServiceError(f"Карточку изменил {who.full_name if who else 'другой пользователь'} "
                           f"({dt_short(item.updated_at)}) — обновите страницу, чтобы не затереть изменения",
                           code="conflict")
    changes = apply_values(session, actor, entity, item, values)
    if changes:
        _touch(item, actor)
        session.add(item)
        audit.record(session, actor, "update", entity, item.id,
                     {"changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}})
        if "responsible_id" in changes:
            from . import notifications
            notifications.on_assigned(session, actor, entity, item, changes["responsible_id"][0])
        rules_engine.after_fields_changed(session, actor, entity, item, changes)
    return changes


# ---- stage moves ----------------------------------------------------------------------

@dataclass
class MoveResult:
    item_id: int
    from_stage: str
    to_stage: str
    changed: bool


def move_stage(session: Session, actor: Actor, entity: str, item_id: int, stage_id: int,
               values: dict | None = None, allow_final: bool = False) -> MoveResult:
    """Move a lead/deal to another stage of its pipeline.

    `values` are fields the manager filled in the "required fields" dialog: they are saved
    in the same transaction before the requirements are checked."""
    if entity not in ("lead", "deal"):
        raise ValidationFailed("Стадии есть только у лидов и сделок")
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "edit", item)
    new = session.get(Stage, stage_id)
    if new is None or new.pipeline_id != item.pipeline_id:
        raise ValidationFailed("Такой стадии нет в воронке этого элемента")
    old = session.get(Stage, item.stage_id)
    if new.id == old.id and not values:
        return MoveResult(item.id, old.name, new.name, False)
    if new.semantic != "process" and not allow_final:
        raise ValidationFailed(f"«{new.name}» — завершающая стадия: используйте «Завершить»",
                               code="final_stage")
    changes = {}
    if values:
        changes = apply_values(session, actor, entity, item, values)
        if changes:
            audit.record(session, actor, "update", entity, item.id,
                         {"changes": {k: {"old": o, "new": n} for k, (o, n) in changes.items()}})
    missing = rules_engine.missing_fields(session, entity, item, new)
    if missing:
        names = ", ".join(f"«{f.label}»" for f in missing)
        raise MissingFields(f"Чтобы перевести на стадию «{new.name}», заполните: {names}",
                            details={"missing": [{"key": f.key, "label": f.label, "kind": f.kind,
                                                  "options": list(f.options)} for f in missing],
                                     "stage_id": new.id, "stage": new.name})
    if new.id == old.id:
        _touch(item, actor)
        session.add(item)
        rules_engine.after_fields_changed(session, actor, entity, item, changes)
        return MoveResult(item.id, old.name, new.name, False)
    now = utcnow()
    entered_old_at = item.stage_changed_at
    item.stage_id, item.semantic, item.stage_changed_at = new.id, new.semantic, now
    item.closed_at = now if new.semantic != "process" else None
    _touch(item, actor)
    session.add(item)
    session.add(StageHistory(entity_type=entity, entity_id=item.id, pipeline_id=item.pipeline_id,
                             stage_id=new.id, from_stage_id=old.id, prev_at=entered_old_at, semantic=new.semantic,
                             created_at=now, user_id=actor.user_id, responsible_id=item.responsible_id,
                             department_id=item.department_id))
    _timeline(session, actor, entity, item.id, "stage_changed",
              {"from_stage_id": old.id, "to_stage_id": new.id, "from": old.name, "to": new.name})
    audit.record(session, actor, "move", entity, item.id, {"from": old.name, "to": new.name})
    rules_engine.after_stage_change(session, actor, entity, item, old, new)
    # Field triggers of the dialog's values run after the person's own move (it wins).
    rules_engine.after_fields_changed(session, actor, entity, item, changes)
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


def _bulk(session: Session, ids: list[int], op) -> BulkResult:
    """Run `op(item_id)` per item in a savepoint: one refusal does not undo the others."""
    res = BulkResult()
    for item_id in ids:
        try:
            with session.begin_nested():
                op(item_id)
            res.done += 1
        except ServiceError as exc:
            res.refused.append({"id": item_id, "reason": exc.message})
    return res


def bulk_move(session: Session, actor: Actor, entity: str, ids: list[int], stage_id: int) -> BulkResult:
    return _bulk(session, ids, lambda i: move_stage(session, actor, entity, i, stage_id))


def bulk_assign(session: Session, actor: Actor, entity: str, ids: list[int], user_id: int) -> BulkResult:
    return _bulk(session, ids, lambda i: update_fields(session, actor, entity, i, {"responsible_id": user_id}))


def delete_item(session: Session, actor: Actor, entity: str, item_id: int) -> None:
    """Soft delete: the item leaves lists and boards; the recycle bin can restore it."""
    item = get_item(session, entity, item_id)
    access.require(session, actor, entity, "delete", item)
    item.deleted_at = utcnow()
    _touch(item, actor)
    session.add(item)
    _timeline(session, actor, entity, item.id, "deleted", {})
    audit.record(session, actor, "delete", entity, item.id, {"title": getattr(item, "title", "")})


def bulk_delete(session: Session, actor: Actor, entity: str, ids: list[int]) -> BulkResult:
    return _bulk(session, ids, lambda i: delete_item(session, actor, entity, i))
