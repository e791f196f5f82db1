"""First-start configuration: writes rules/defaults.py into an empty database.

Idempotent: rows that exist (matched by code) are left alone, so an admin's edits
survive restarts."""
from __future__ import annotations

from sqlmodel import Session, select

from rxcrm.models import CustomField, Department, Pipeline, Role, RolePermission, Stage
from rxcrm.rules import defaults

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
    ensure_builtin_presets(session)
