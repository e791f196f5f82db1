"""/settings → Интеграции shows how many intake events wait for processing (stored, status
"received"), next to its label from the catalog."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from rxcrm import i18n
from rxcrm.db import migrate, session_scope
from rxcrm.models import IntakeEvent, User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


@pytest.fixture(scope="module")
def token():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "iadmin")).first():
            f.user(s, "iadmin", role="admin", dept_code=None, full_name="Админ Интеграций")
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        tok, _ = auth.login(s, "iadmin", "demo")
    return tok


def test_integrations_tab_counts_the_events_waiting(token):
    from rxcrm.state.settings import SettingsState
    with session_scope() as s:
        waiting = s.exec(select(IntakeEvent).where(IntakeEvent.status == "received")).all()
        before = len(waiting)
        for i, status in enumerate(("received", "received", "processed", "failed")):
            s.add(IntakeEvent(integration="landing", event_id=f"settings-wait-{i}", event_type="question",
                              payload={"event_id": f"settings-wait-{i}"}, status=status))
    st = f.logged_in(SettingsState, token)
    st.check_login()
    st.on_load()
    assert st.settings_error == ""
    assert st.intake_waiting == before + 2
    page = (Path(__file__).resolve().parent.parent / "rxcrm" / "pages" / "settings.py").read_text(encoding="utf-8")
    assert 't["settings.events.waiting"], SettingsState.intake_waiting' in page
    assert i18n.RU["settings.events.waiting"] == "Ожидают обработки: "
