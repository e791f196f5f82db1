"""Small reference lists for pickers and filters (users, programs, pipelines, stages)."""
from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from rxcrm.models import Department, Pipeline, Product, Stage, User
from rxcrm.rules.defaults import SOURCES


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


def stages(session: Session, pipeline_id: int) -> list[Stage]:
    return list(session.execute(select(Stage).where(Stage.pipeline_id == pipeline_id)
                                .order_by(Stage.sort, Stage.id)).scalars())


def departments(session: Session) -> list[Department]:
    return list(session.execute(select(Department).order_by(Department.name)).scalars())


def sources() -> list[str]:
    return list(SOURCES)
