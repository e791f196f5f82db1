"""What happens to items: activities, comments, timeline, stage history, notifications."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Index, SQLModel

from .base import TABLE_ARGS_EXTEND, json_field, utcnow

CALL, MEETING, TASK, EMAIL_ACT = "call", "meeting", "task", "email"
ACTIVITY_KINDS = (CALL, MEETING, TASK, EMAIL_ACT)
MAX_DURATION_MIN = {CALL: 15, MEETING: 60}


class Activity(SQLModel, table=True):
    """Дело: a planned action with a deadline on a lead/deal/contact/company."""
    __tablename__ = "activity"
    __table_args__ = (
        Index("ix_activity_entity", "entity_type", "entity_id", "done"),
        Index("ix_activity_resp", "responsible_id", "done", "start_at"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    entity_id: int
    kind: str = CALL
    subject: str = ""
    description: str = ""
    responsible_id: int | None = Field(default=None, foreign_key="crm_user.id")
    start_at: datetime
    duration_min: int = 15
    remind_before_min: int | None = None
    remind_at: datetime | None = Field(default=None, index=True)
    done: bool = False
    done_at: datetime | None = None
    result: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="crm_user.id")


class Comment(SQLModel, table=True):
    __tablename__ = "comment"
    __table_args__ = (Index("ix_comment_entity", "entity_type", "entity_id"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    entity_id: int
    text: str
    author_id: int | None = Field(default=None, foreign_key="crm_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class TimelineEvent(SQLModel, table=True):
    """One line of an item's Лента: created, stage_changed, field_changed,
    activity_planned, activity_done, comment, email, converted, closed, ...
    `data` holds the details (from/to stage, field, old/new values, ids)."""
    __tablename__ = "timeline_event"
    __table_args__ = (
        Index("ix_timeline_entity", "entity_type", "entity_id", "created_at"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    entity_id: int
    kind: str
    created_at: datetime = Field(default_factory=utcnow)
    user_id: int | None = Field(default=None, foreign_key="crm_user.id")
    rule: str = ""  # name of the automation rule that made the change, if any
    data: dict = json_field(dict)


class StageHistory(SQLModel, table=True):
    """Every entry of a lead/deal into a stage (analytics: funnels, time in stage)."""
    __tablename__ = "stage_history"
    __table_args__ = (
        # Covering index of the analytics scans (funnels, dynamics, time in stage): a period of
        # one pipeline is read from the index alone.
        Index("ix_stage_hist_cover", "entity_type", "pipeline_id", "created_at", "entity_id", "stage_id",
              "from_stage_id", "prev_at"),
        Index("ix_stage_hist_item", "entity_type", "entity_id", "created_at"),
        TABLE_ARGS_EXTEND,
    )
    id: int | None = Field(default=None, primary_key=True)
    entity_type: str
    entity_id: int
    pipeline_id: int = Field(foreign_key="pipeline.id")
    stage_id: int = Field(foreign_key="stage.id")
    from_stage_id: int | None = None
    prev_at: datetime | None = None  # when the item entered from_stage (time in stage = created_at - prev_at)
    semantic: str = "process"
    created_at: datetime = Field(default_factory=utcnow)
    user_id: int | None = None
    responsible_id: int | None = None
    department_id: int | None = None


class Notification(SQLModel, table=True):
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user", "user_id", "read_at"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="crm_user.id")
    kind: str  # reminder | assigned | automation
    text: str
    entity_type: str = ""
    entity_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None
