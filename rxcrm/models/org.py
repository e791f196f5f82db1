"""People and access: departments, roles, permissions, users, sessions."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel, UniqueConstraint

from .base import TABLE_ARGS_EXTEND, utcnow

# Role codes. Levels of a permission: none < own < department < all.
ROLE_MANAGER, ROLE_HEAD, ROLE_DIRECTOR, ROLE_ADMIN = "manager", "head", "director", "admin"
ROLES = (ROLE_MANAGER, ROLE_HEAD, ROLE_DIRECTOR, ROLE_ADMIN)
LEVELS = ("none", "own", "department", "all")
ACTIONS = ("view", "add", "edit", "delete", "export", "import")


class Department(SQLModel, table=True):
    __tablename__ = "department"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    code: str = Field(default="", index=True)
    head_id: int | None = Field(default=None)  # user id; not a FK to avoid a cycle


class Role(SQLModel, table=True):
    __tablename__ = "role"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(index=True, unique=True)
    name: str


class RolePermission(SQLModel, table=True):
    """One cell of the access matrix: role × entity × action → level."""
    __tablename__ = "role_permission"
    __table_args__ = (UniqueConstraint("role_code", "entity", "action"), TABLE_ARGS_EXTEND)
    id: int | None = Field(default=None, primary_key=True)
    role_code: str = Field(index=True)
    entity: str
    action: str
    level: str = "none"


class User(SQLModel, table=True):
    __tablename__ = "crm_user"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(index=True, unique=True)
    full_name: str
    email: str = ""
    password_hash: str
    role: str = Field(default=ROLE_MANAGER, index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    is_active: bool = True
    locale: str = "ru"
    created_at: datetime = Field(default_factory=utcnow)


class UserSession(SQLModel, table=True):
    """A login session; the browser holds the random token, we keep its SHA-256."""
    __tablename__ = "user_session"
    __table_args__ = TABLE_ARGS_EXTEND
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True)
    user_id: int = Field(foreign_key="crm_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    last_seen_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    client: str = ""
