"""Small reference lists for pickers and filters (users, programs, pipelines, stages)."""
from __future__ import annotations

from sqlalchemy import exists, select
from sqlmodel import Session

from rxcrm.models import Department, Pipeline, Product, Stage, User
from rxcrm.rules.defaults import SOURCES

from . import access
from .context import Actor
from .fields import MODELS


def users(session: Session, active_only: bool = True) -> list[tuple[int, str]]:
    stmt = select(User.id, User.full_name).order_by(User.full_name)
    if active_only:
        stmt = stmt.where(User.is_active.is_(True))
    return [(i, n) for i, n in session.execute(stmt).all()]


def assignable_users(session: Session) -> list[tuple[int, str]]:
    """Who can be made responsible: active managers and heads."""
    stmt = (select(User.id, User.full_name).where(User.is_active.is_(True), User.role.in_(("manager", "head")))
            .order_by(User.full_name))
    return [(i, n) for i, n in session.execute(stmt).all()]


def programs(session: Session) -> list[tuple[int, str]]:
    stmt = select(Product.id, Product.title).where(Product.is_active.is_(True)).order_by(Product.title)
    return [(i, n) for i, n in session.execute(stmt).all()]


def pipelines(session: Session, entity: str) -> list[Pipeline]:
    return list(session.execute(select(Pipeline).where(Pipeline.entity == entity)
                                .order_by(Pipeline.sort, Pipeline.id)).scalars())


def default_pipeline(session: Session, entity: str) -> Pipeline | None:
    pipes = pipelines(session, entity)
    return next((p for p in pipes if p.is_default), pipes[0] if pipes else None)


def pipelines_for(session: Session, actor: Actor, entity: str) -> list[Pipeline]:
    """The pipelines offered to `actor` in the picker: those where they can see at least one
    item, and their department's own — every pipeline for whoever may add items anywhere
    (admins: a new, empty pipeline must be reachable). One statement: an EXISTS per pipeline,
    each seeking (pipeline_id, stage_id ∈ its stages, deleted_at) in the board's covering
    index and reading the access columns there (~10–25 ms at 100k deals on SQLite where a
    person sees nothing; without the stage list it scanned the pipeline, ~85 ms)."""
    pipes = pipelines(session, entity)
    if not pipes or access.level(session, actor, entity, "add") == "all":
        return pipes
    model = MODELS[entity]
    visible = access.scope(session, actor, model, entity, "view")
    stage_ids: dict[int, list[int]] = {p.id: [] for p in pipes}
    for pipe_id, stage_id in session.execute(select(Stage.pipeline_id, Stage.id)
                                             .where(Stage.pipeline_id.in_(list(stage_ids)))).all():
        stage_ids[pipe_id].append(stage_id)
    probes = [exists().where(model.pipeline_id == p.id, model.stage_id.in_(stage_ids[p.id] or [0]),
                             model.deleted_at.is_(None), visible).label(f"p{p.id}")
              for p in pipes]
    seen = session.execute(select(*probes)).one()
    offered = [p for p, has in zip(pipes, seen) if has or
               (actor.department_id is not None and p.department_id == actor.department_id)]
    return offered or [default_pipeline(session, entity)]


def pipeline_for(session: Session, actor: Actor, entity: str, offered: list[Pipeline],
                 remembered: int | None = None) -> Pipeline | None:
    """The pipeline a page opens on for `actor`: the one they chose last (if still offered),
    else their department's, else the default one, else the first offered."""
    by_id = {p.id: p for p in offered}
    if remembered in by_id:
        return by_id[remembered]
    if actor.department_id is not None:
        mine = next((p for p in offered if p.department_id == actor.department_id), None)
        if mine is not None:
            return mine
    return next((p for p in offered if p.is_default), offered[0] if offered else default_pipeline(session, entity))


def stages(session: Session, pipeline_id: int) -> list[Stage]:
    return list(session.execute(select(Stage).where(Stage.pipeline_id == pipeline_id)
                                .order_by(Stage.sort, Stage.id)).scalars())


def departments(session: Session) -> list[Department]:
    return list(session.execute(select(Department).order_by(Department.name)).scalars())


def sources() -> list[str]:
    return list(SOURCES)
