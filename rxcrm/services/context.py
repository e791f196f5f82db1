"""Who is acting: every service call takes an Actor (user, role, department, source)."""
from __future__ import annotations

from dataclasses import dataclass


IMPORT_SOURCE = "import"  # Actor.source of an import's writes: audited and told of once per import (services/imports.py)


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    login: str
    full_name: str
    role: str
    department_id: int | None
    source: str = "ui"  # ui | intake | rule | system
    client: str = ""

    @classmethod
    def system(cls, source: str = "system") -> "Actor":
        return cls(user_id=None, login="system", full_name="Система", role="admin",
                   department_id=None, source=source)
