"""Editing the rules on /settings: required fields per stage, field-triggered
moves and on-enter actions live in `automation_rule` (services/rules_engine.py reads the
active rows). Everyone may read them; changes are for administrators only
(admin.require_admin), validated against the pipeline's stages and field catalog,
written in the caller's transaction and audited as "rule_update" (entity_type "rule")."""
from __future__ import annotations

from sqlmodel import Session, select

from rxcrm.models import AutomationRule, Pipeline, Stage, utcnow
from rxcrm.models.pipeline import PROCESS

from rxcrm.rules.actions import ACTIONS

from . import audit
from .access import require_admin
from .context import Actor
from .errors import NotFound, ValidationFailed
from .fields import field_map
from .items import editable, parse_value

KIND_LABEL = {"required": "Обязательные поля", "trigger": "Перевод по полю", "on_enter": "При входе на стадию"}
MAX_NAME = 200


def _rule(session: Session, rule_id) -> AutomationRule:
    rule = session.get(AutomationRule, int(rule_id)) if rule_id not in (None, "") else None
    if rule is None:
        raise NotFound("Правило не найдено")
    return rule


def _pipeline(session: Session, code: str) -> Pipeline:
    pipe = session.exec(select(Pipeline).where(Pipeline.code == (code or "").strip())).first()
    if pipe is None:
        raise ValidationFailed(f"Воронка «{code}» не найдена", fields={"pipeline_code": "Нет такой воронки"})
    return pipe


def _stage(session: Session, pipe: Pipeline, code: str, field: str = "stage_code") -> Stage:
    code = (code or "").strip()
    stage = session.exec(select(Stage).where(Stage.pipeline_id == pipe.id, Stage.code == code)).first()
    if stage is None:
        raise ValidationFailed(f"В воронке «{pipe.name}» нет стадии «{code}»", fields={field: "Нет такой стадии"})
    return stage


def _field_keys(session: Session, pipe: Pipeline, keys) -> list[str]:
    if isinstance(keys, str):
        keys = keys.split(",")
    out = []
    for k in keys or []:
        k = (k or "").strip()
        if k and k not in out:
            out.append(k)
    if not out:
        raise ValidationFailed("Укажите хотя бы одно поле", fields={"fields": "Обязательное поле"})
    fmap = field_map(session, pipe.entity, pipe.id)
    bad = [k for k in out if k not in fmap]
    if bad:
        raise ValidationFailed("Нет таких полей в воронке «" + pipe.name + "»: " + ", ".join(bad),
                               fields={"fields": "Нет поля: " + ", ".join(bad)})
    return out


def _snapshot(rule: AutomationRule) -> dict:
    return {"kind": rule.kind, "name": rule.name, "pipeline_code": rule.pipeline_code,
            "stage_code": rule.stage_code, "config": rule.config, "is_active": rule.is_active}


def _save(session: Session, actor: Actor, rule: AutomationRule, op: str, before: dict | None) -> AutomationRule:
    rule.updated_at = utcnow()
    session.add(rule)
    session.flush()
    audit.record(session, actor, "rule_update", "rule", rule.id, {"op": op, "old": before, "new": _snapshot(rule)})
    return rule


def _existing(session: Session, rule_id, kind: str) -> AutomationRule:
    rule = _rule(session, rule_id)
    if rule.kind != kind:
        raise ValidationFailed("Правило другого вида")
    return rule


def _next_sort(session: Session) -> int:
    rows = session.exec(select(AutomationRule.sort).order_by(AutomationRule.sort.desc())).first()
    return (rows or 0) + 10


def describe(rule: AutomationRule, stages: dict | None = None, labels: dict | None = None,
             lang: str = "ru") -> str:
    """What a rule does, in words (Russian, or English with lang "en"); `stages` {(pipeline code,
    stage code): name} names the stages, `labels` {field key: label} names the fields."""
    cfg = rule.config or {}
    en = lang == "en"
    quote = "“{}”" if en else "«{}»"

    def st(code):
        return (stages or {}).get((rule.pipeline_code, code), code)

    def fl(key):
        return quote.format((labels or {}).get(key, key))

    if rule.kind == "required":
        return ("Fill in: " if en else "Заполнить: ") + ", ".join(fl(k) for k in cfg.get("fields", []))
    if rule.kind == "trigger":
        src = st(rule.stage_code) if rule.stage_code else "any stage" if en else "любая стадия"
        when = "When" if en else "Когда"
        return f"{when} {fl(cfg.get('field'))} = {quote.format(cfg.get('equals'))}: {src} → {st(cfg.get('to_stage'))}"
    names = _Names(labels or {})
    parts = []
    for a in cfg.get("actions", []):
        plugin = ACTIONS.get(a.get("type", ""))
        if plugin:
            parts.append(plugin.describe_en(a, names) if en else plugin.describe(a, names))
        else:
            parts.append(("unknown action " if en else "неизвестное действие ") + quote.format(a.get("type", "")))
    return "; ".join(parts)


class _Names:
    """Field labels for an action's `describe`."""

    def __init__(self, labels: dict[str, str]):
        self.labels = labels

    def field(self, key: str) -> str:
        return self.labels.get(key, key)


def _labels(session: Session, pipe) -> dict[str, str]:
    entity = pipe.entity if pipe else "deal"
    return {k: f.label for k, f in field_map(session, entity, pipe.id if pipe else None).items()}


def field_choices(session: Session) -> dict[str, list[dict]]:
    """What the rules editor offers per pipeline code: the fields a person can fill (a stage
    may require them, a trigger may watch them, an on-enter rule may set them — the field
    catalog's editable ones incl. the pipeline's custom fields), each {"key", "label", "kind",
    "options"}: an enum's options, «Да»/«Нет» for yes/no, [] for free values."""
    out: dict[str, list[dict]] = {}
    for pipe in session.exec(select(Pipeline).order_by(Pipeline.sort, Pipeline.id)).all():
        rows = []
        for fd in field_map(session, pipe.entity, pipe.id).values():
            if not editable(fd):
                continue
            options = list(fd.options) if fd.kind == "enum" else ["Да", "Нет"] if fd.kind == "bool" else []
            rows.append({"key": fd.key, "label": fd.label, "kind": fd.kind, "options": options})
        out[pipe.code] = rows
    return out


def list_rules(session: Session) -> list[dict]:
    """Every rule (active or not) in engine order: id, kind, kind_label, name, pipeline_code,
    stage_code, pipeline, stage (names), text (and text_en, the same in English), is_active."""
    pipes = {p.id: p for p in session.exec(select(Pipeline)).all()}
    by_code = {p.code: p for p in pipes.values()}
    stages = {(pipes[s.pipeline_id].code, s.code): s.name for s in session.exec(select(Stage)).all()
              if s.pipeline_id in pipes}
    order = {k: i for i, k in enumerate(KIND_LABEL)}
    rows = sorted(session.exec(select(AutomationRule)).all(),
                  key=lambda r: (order.get(r.kind, 9), r.sort, r.id))
    out = []
    for r in rows:
        pipe = by_code.get(r.pipeline_code)
        pname = pipe.name if pipe else r.pipeline_code
        sname = stages.get((r.pipeline_code, r.stage_code), r.stage_code)
        labels = _labels(session, pipe)
        out.append({"id": r.id, "kind": r.kind, "kind_label": KIND_LABEL.get(r.kind, r.kind),
                    "name": r.name or f"{pname} · {sname}", "pipeline_code": r.pipeline_code,
                    "stage_code": r.stage_code, "pipeline": pname, "stage": sname,
                    "text": describe(r, stages, labels), "text_en": describe(r, stages, labels, "en"),
                    "is_active": bool(r.is_active)})
    return out


def set_active(session: Session, actor: Actor, rule_id: int, active: bool) -> bool:
    """Switch a rule on or off; returns whether it changed."""
    require_admin(session, actor, "rule_update", op="activate" if active else "deactivate", rule_id=rule_id)
    rule = _rule(session, rule_id)
    if bool(rule.is_active) == bool(active):
        return False
    before = _snapshot(rule)
    rule.is_active = bool(active)
    _save(session, actor, rule, "activate" if active else "deactivate", before)
    return True


def save_required(session: Session, actor: Actor, rule_id: int | None, pipeline_code: str, stage_code: str,
                  fields) -> AutomationRule:
    """Create (rule_id None) or change a "required fields" rule: the stage of the pipeline
    may be entered only with these fields (a list or comma-separated keys of the field
    catalog, custom fields as "custom.<code>")."""
    require_admin(session, actor, "rule_update", op="save_required", rule_id=rule_id,
                  pipeline_code=pipeline_code, stage_code=stage_code)
    pipe = _pipeline(session, pipeline_code)
    stage = _stage(session, pipe, stage_code)
    keys = _field_keys(session, pipe, fields)
    if rule_id in (None, "", 0):
        rule, before, op = AutomationRule(kind="required", sort=_next_sort(session)), None, "create"
    else:
        rule = _existing(session, rule_id, "required")
        before, op = _snapshot(rule), "update"
    rule.pipeline_code, rule.stage_code, rule.config = pipe.code, stage.code, {"fields": keys}
    return _save(session, actor, rule, op, before)


def _equals(value, kind: str):
    """The trigger value as the field stores it (the form sends text)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if kind == "bool":
        low = text.lower()
        if low in ("да", "true", "1", "yes"):
            return True
        if low in ("нет", "false", "0", "no"):
            return False
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            pass
    return text


def save_trigger(session: Session, actor: Actor, rule_id: int | None, name: str, pipeline_code: str,
                 from_stage: str, field: str, equals, to_stage: str) -> AutomationRule:
    """Create (rule_id None) or change a field-triggered move: when `field` becomes `equals`
    while the item is in `from_stage` ("" = any stage), move it to `to_stage`."""
    require_admin(session, actor, "rule_update", op="save_trigger", rule_id=rule_id,
                  pipeline_code=pipeline_code)
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed(f"Название правила: от 1 до {MAX_NAME} символов", fields={"name": "Обязательное поле"})
    pipe = _pipeline(session, pipeline_code)
    src = _stage(session, pipe, from_stage, "from_stage").code if (from_stage or "").strip() else ""
    dst = _stage(session, pipe, to_stage, "to_stage")
    if dst.code == src:
        raise ValidationFailed("Стадия перевода совпадает с исходной", fields={"to_stage": "Та же стадия"})
    key = _field_keys(session, pipe, [field])
    if len(key) != 1:
        raise ValidationFailed("Укажите одно поле", fields={"field": "Одно поле"})
    fd = field_map(session, pipe.entity, pipe.id)[key[0]]
    value = _equals(equals, fd.kind)
    if value in (None, ""):
        raise ValidationFailed("Укажите значение поля, при котором срабатывает правило",
                               fields={"equals": "Обязательное поле"})
    if rule_id in (None, "", 0):
        rule, before, op = AutomationRule(kind="trigger", sort=_next_sort(session)), None, "create"
    else:
        rule = _existing(session, rule_id, "trigger")
        before, op = _snapshot(rule), "update"
    rule.name, rule.pipeline_code, rule.stage_code = name, pipe.code, src
    rule.config = {"field": key[0], "equals": value, "to_stage": dst.code}
    return _save(session, actor, rule, op, before)


def action_choices() -> list[tuple[str, str, str]]:
    """The action picker on /settings: (code, label, English label) of every action plug-in
    registered now, in their order."""
    return [(code, a.label, a.label_en or a.label) for code, a in ACTIONS.items()]


def action_form(code: str) -> list[dict]:
    """The inputs of an action's form on /settings (its plug-in's `form`), as plain dicts:
    {"key", "label", "label_en", "kind", "options": [(value, label)], "options_en", "required",
    "default", "placeholder", "placeholder_en"} (the English texts fall back to the Russian)."""
    plugin = ACTIONS.get(code)
    out = []
    for f in (plugin.form if plugin else ()):
        english = dict(f.options_en)
        out.append({"key": f.key, "label": f.label, "label_en": f.label_en or f.label, "kind": f.kind,
                    "options": list(f.options), "options_en": [(v, english.get(v, lab)) for v, lab in f.options],
                    "required": f.required, "default": f.default, "placeholder": f.placeholder,
                    "placeholder_en": f.placeholder_en or f.placeholder})
    return out


class _FieldContext:
    """What an action's `validate` may ask about the rule's pipeline: a field a rule may
    fill (by key) and the stored form of a value for it (checked like an edit)."""

    def __init__(self, session: Session, pipe: Pipeline):
        self.session, self.pipe = session, pipe

    def field(self, key: str):
        found = _field_keys(self.session, self.pipe, [key])
        if len(found) != 1:
            raise ValidationFailed("Укажите одно поле", fields={"field": "Одно поле"})
        fd = field_map(self.session, self.pipe.entity, self.pipe.id)[found[0]]
        if not editable(fd):
            raise ValidationFailed(f"Поле «{fd.label}» нельзя заполнять правилом", fields={"field": "Не редактируется"})
        return fd

    def value(self, fd, raw):
        val = _equals(raw, fd.kind)
        if val in (None, ""):
            raise ValidationFailed("Укажите значение поля", fields={"value": "Обязательное поле"})
        parse_value(fd, val)  # the value must be valid for the field (a wrong one raises here, not on a move)
        return val


def on_enter_action(session: Session, pipe: Pipeline, action_type: str, **raw) -> dict:
    """One validated action of an on-enter rule: the action plug-in (rxcrm/rules/actions/)
    turns its typed form into the stored config."""
    plugin = ACTIONS.get(action_type)
    if plugin is None:
        raise ValidationFailed(f"Неизвестное действие: {action_type}", fields={"action": "Действие"})
    return plugin.validate(_FieldContext(session, pipe), raw)


def save_on_enter(session: Session, actor: Actor, rule_id: int | None, name: str, pipeline_code: str,
                  stage_code: str, actions: list[dict]) -> AutomationRule:
    """Create (rule_id None) or change an on-enter rule: when an item enters the (working)
    stage, do `actions` (each checked by `on_enter_action`'s rules: pass them through it)."""
    require_admin(session, actor, "rule_update", op="save_on_enter", rule_id=rule_id,
                  pipeline_code=pipeline_code, stage_code=stage_code)
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise ValidationFailed(f"Название правила: от 1 до {MAX_NAME} символов", fields={"name": "Обязательное поле"})
    pipe = _pipeline(session, pipeline_code)
    stage = _stage(session, pipe, stage_code)
    if stage.semantic != PROCESS:
        raise ValidationFailed("Правило при входе работает только для стадий в работе",
                               fields={"stage_code": "Стадия в работе"})
    if not actions:
        raise ValidationFailed("Добавьте хотя бы одно действие", fields={"action": "Обязательное поле"})
    checked = [on_enter_action(session, pipe, a.get("type", ""), **{k: v for k, v in a.items() if k != "type"})
               for a in actions]
    if rule_id in (None, "", 0):
        rule, before, op = AutomationRule(kind="on_enter", sort=_next_sort(session)), None, "create"
    else:
        rule = _existing(session, rule_id, "on_enter")
        before, op = _snapshot(rule), "update"
    rule.name, rule.pipeline_code, rule.stage_code, rule.config = name, pipe.code, stage.code, {"actions": checked}
    return _save(session, actor, rule, op, before)


def delete_rule(session: Session, actor: Actor, rule_id: int) -> None:
    require_admin(session, actor, "rule_update", op="delete", rule_id=rule_id)
    rule = _rule(session, rule_id)
    before = _snapshot(rule)
    session.delete(rule)
    session.flush()
    audit.record(session, actor, "rule_update", "rule", int(rule_id), {"op": "delete", "old": before, "new": None})


__all__ = ["KIND_LABEL", "action_choices", "action_form", "delete_rule", "describe", "field_choices",
           "list_rules", "on_enter_action", "save_on_enter", "save_required", "save_trigger", "set_active"]
