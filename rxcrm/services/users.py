"""Users and departments."""
from __future__ import annotations

from sqlmodel import Session

from rxcrm.models import User


def set_locale(session: Session, user_id: int, lang: str) -> None:
    user = session.get(User, user_id)
    if user is not None and user.locale != lang:
        user.locale = lang
        session.add(user)
