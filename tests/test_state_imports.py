"""State handler tests for the import wizard (state/imports.py) and /settings → Импорт: an
admin uploads a file, sees the mapping, changes a column, checks, imports and undoes; a
manager is refused; a bad upload is refused with a message."""
from __future__ import annotations

import asyncio
import io

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import ImportJob, Lead, User
from rxcrm.services import auth, imports
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f

CSV = ("ID;Название лида;Фамилия;Имя;Мобильный телефон;Стадия;Комментарий\r\n"
       "s-1;Импорт из состояния;Белкин;Иван;+7 915 000-11-22;Знакомство;первый\r\n"
       "s-2;Плохой телефон;Белкина;Анна;12-34;;\r\n").encode("cp1251")


class Upload:
    """What Reflex hands an upload handler: a name and an async read."""

    def __init__(self, name: str, data: bytes):
        self.filename, self.name, self._f = name, name, io.BytesIO(data)

    async def read(self, n: int = -1) -> bytes:
        return self._f.read(n)


@pytest.fixture(scope="module")
def world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if s.exec(select(User).where(User.login == "impadmin")).first() is None:
            f.user(s, "impadmin", role="admin", dept_code=None, full_name="Админ Импорта")
            f.user(s, "impmgr", full_name="Менеджер Импорта")
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        return {login: auth.login(s, login, "demo")[0] for login in ("impadmin", "impmgr")}


def _drain(result):
    if asyncio.iscoroutine(result):
        return asyncio.run(result)
    if hasattr(result, "__anext__"):
        async def go():
            return [x async for x in result]
        return asyncio.run(go())
    return result


def _wizard(token):
    from rxcrm.state.imports import ImportState
    st = f.logged_in(ImportState, token, "/leads")
    st.check_login()
    return st


def test_admin_uploads_maps_checks_imports_and_undoes(world):
    st = _wizard(world["impadmin"])
    st.open_wizard("leads")
    assert st.open and st.step == "upload" and st.entity == "lead" and st.responsible_id
    _drain(st.handle_upload([Upload("leads.csv", CSV)]))
    assert st.error == "" and st.step == "map" and st.encoding == "cp1251" and st.delimiter == ";"
    targets = {c.header: c.target for c in st.columns}
    assert targets["Мобильный телефон"] == "phone.mobile" and targets["ID"] == "external_id"
    assert "Белкин" in next(c.sample for c in st.columns if c.header == "Фамилия")
    st.set_target("6", "-")  # the comment column is not loaded
    assert next(c.target for c in st.columns if c.header == "Комментарий") == ""
    st.check()
    assert st.step == "check" and st.status == "checking"
    assert imports.work(st.job_id) == "checked"
    from rxcrm.state.imports import _read_progress
    summary, rows = _read_progress(st._require_actor(), st.job_id)
    st._progress(summary)
    assert (st.created, st.rejected) == (1, 1) and rows[0].row == 3 and "10 цифр" in rows[0].message
    with session_scope(write=False) as s:
        assert s.exec(select(Lead).where(Lead.title == "Импорт из состояния")).first() is None
    st.run()
    assert st.step == "run" and st.status == "queued"
    assert imports.work(st.job_id) == "done"
    with session_scope(write=False) as s:
        lead = s.exec(select(Lead).where(Lead.title == "Импорт из состояния")).one()
        assert lead.comment == "" and lead.deleted_at is None

    from rxcrm.state.imports import ImportsListState
    lst = f.logged_in(ImportsListState, world["impadmin"], "/settings")
    lst.check_login()
    lst.on_load()
    row = next(j for j in lst.jobs if j.id == st.job_id)
    assert row.can_undo and row.has_errors and row.counts == "1 · 0 · 0 · 1"
    lst.undo(st.job_id)
    assert imports.work(st.job_id) == "undone"
    with session_scope(write=False) as s:
        assert s.exec(select(Lead).where(Lead.title == "Импорт из состояния")).one().deleted_at is not None
        assert s.get(ImportJob, st.job_id).status == "undone"


def test_a_manager_gets_no_wizard_and_bad_uploads_are_refused(world):
    st = _wizard(world["impmgr"])
    out = st.open_wizard("leads")
    assert not st.open and "руководителям" in str(out)
    admin = _wizard(world["impadmin"])
    admin.open_wizard("deals")
    _drain(admin.handle_upload([Upload("empty.csv", b"")]))
    assert admin.step == "upload" and "пуст" in admin.error
    _drain(admin.handle_upload([Upload("x.pdf", b"%PDF-1.4 \x00\x01\x02")]))
    assert admin.step == "upload" and admin.error
