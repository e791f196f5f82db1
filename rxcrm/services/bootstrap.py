"""First-start configuration: writes rules/defaults.py into an empty database, and the
rule declarations (rules/stage_requirements.py, rules/automation.py) into `automation_rule`.

Idempotent: rows that exist (matched by code) are left alone, so an admin's edits
survive restarts; rules of a kind are written only while the table has none of that kind."""
from __future__ import annotations

from sqlmodel import Session, select

from rxcrm.models import AutomationRule, CustomField, Department, Pipeline, Role, RolePermission, Stage
from rxcrm.rules import automation, defaults, stage_requirements

from .views import ensure_builtin_presets


def ensure_defaults(session: Session) -> None:
    depts = {d.code: d for d in session.exec(select(Department)).all()}
    for d in defaults.DEPARTMENTS:
        if d["code"] not in depts:
            depts[d["code"]] = Department(code=d["code"], name=d["name"])
            session.add(depts[d["code"]])
    roles = {r.code for r in session.exec(select(Role)).all()}
    for r in defaults.ROLES:
        if r["code"] not in roles:
            session.add(Role(code=r["code"], name=r["name"]))
    cells = {(p.role_code, p.entity, p.action) for p in session.exec(select(RolePermission)).all()}
    for role, actions in defaults.PERMISSIONS.items():
        for entity in defaults.ENTITIES:
            for action, level in actions.items():
                if (role, entity, action) not in cells:
                    session.add(RolePermission(role_code=role, entity=entity, action=action, level=level))
    session.flush()
    pipes = {p.code: p for p in session.exec(select(Pipeline)).all()}
    for spec in defaults.PIPELINES:
        if spec["code"] in pipes:
            continue
        dept = depts.get(spec["department"]) if spec["department"] else None
        pipe = Pipeline(code=spec["code"], entity=spec["entity"], name=spec["name"],
                        sort=spec["sort"], is_default=spec["is_default"],
                        department_id=dept.id if dept else None)
        session.add(pipe)
        session.flush()
        pipes[spec["code"]] = pipe
        for i, (code, name, color, semantic) in enumerate(spec["stages"]):
            session.add(Stage(pipeline_id=pipe.id, code=code, name=name, color=color,
                              sort=(i + 1) * 10, semantic=semantic))
    have = {c.code for c in session.exec(select(CustomField).where(CustomField.entity == "deal")).all()}
    for pipe_code, fields in defaults.CUSTOM_FIELDS.items():
        for i, (code, label, label_en, ftype, options, block) in enumerate(fields):
            full_code = f"{pipe_code}_{code}"
            if full_code in have:
                continue
            session.add(CustomField(entity="deal", pipeline_id=pipes[pipe_code].id, code=full_code,
                                    label=label, label_en=label_en, field_type=ftype,
                                    options=list(options), sort=(i + 1) * 10, block=block))
    session.flush()
    ensure_default_rules(session)
    ensure_builtin_presets(session)


def default_rules() -> list[AutomationRule]:
    """The shipped declarations as rows (not added to a session). A trigger with several
    "from" stages becomes one row per stage (same name); None ("any stage") is ""."""
    out = [AutomationRule(kind="required", name="", pipeline_code=pipe, stage_code=stage,
                          config={"fields": list(keys)})
           for (pipe, stage), keys in stage_requirements.REQUIRED_FIELDS.items()]
    for r in automation.FIELD_TRIGGERS:
        froms = r.get("from_stage")
        froms = [froms] if isinstance(froms, str) else list(froms) if froms else [""]
        out += [AutomationRule(kind="trigger", name=r["name"], pipeline_code=r["pipeline"], stage_code=code,
                               config={"field": r["field"], "equals": r["equals"], "to_stage": r["to_stage"]})
                for code in froms]
    out += [AutomationRule(kind="on_enter", name=r["name"], pipeline_code=r["pipeline"], stage_code=r["stage"],
                           config={"actions": list(r.get("actions", []))})
            for r in automation.ON_ENTER]
    for i, rule in enumerate(out):
        rule.sort = (i + 1) * 10
    return out


def ensure_default_rules(session: Session) -> None:
    """Write the declarations of each rule kind once — only while the table has no rule of
    that kind (an admin who deleted a rule does not get it back on restart, unless every
    rule of the kind is gone)."""
    have = set(session.exec(select(AutomationRule.kind).distinct()).all())
    for rule in default_rules():
        if rule.kind not in have:
            session.add(rule)
    session.flush()
