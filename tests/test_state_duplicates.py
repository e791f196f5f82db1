"""State handler tests for /settings → Дубликаты: an admin sees the groups, opens the merge
dialog, picks the survivor and a value per field, merges; a manager is refused; bad
arguments are refused with a message."""
from __future__ import annotations

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Contact, Deal, User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f

PHONE = "+7 955 123-45-67"


@pytest.fixture(scope="module")
def world():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        admin = s.exec(select(User).where(User.login == "dupadmin")).first() or \
            f.user(s, "dupadmin", role="admin", dept_code=None, full_name="Админ Дубликатов")
        mgr = s.exec(select(User).where(User.login == "dupmgr")).first() or \
            f.user(s, "dupmgr", full_name="Менеджер Дубликатов")
        a = f.contact(s, "Дублев", "Антон", phones=[PHONE], responsible=mgr)
        b = f.contact(s, "Дублев", "Антон", "Ильич", phones=["8 955 1234567"], responsible=mgr)
        b.position = "Декан"
        s.add(b)
        deal = f.deal(s, "Сделка дубля", mgr, contact_=b)
        ids = {"a": a.id, "b": b.id, "deal": deal.id}
    import rxcrm.rxcrm  # noqa: F401
    out = {}
    with session_scope() as s:
        for login in ("dupadmin", "dupmgr"):
            out[login], _ = auth.login(s, login, "demo")
    return out, ids


def _state(token):
    from rxcrm.state.duplicates import DuplicatesState
    st = f.logged_in(DuplicatesState, token, "/settings")
    st.check_login()
    return st


def _mine(st, ids):
    return next(g for g in st.dup_groups if set(g.ids) >= {ids["a"], ids["b"]})


def test_admin_merges_a_group_choosing_values(world):
    tokens, ids = world
    st = _state(tokens["dupadmin"])
    st.on_load()
    assert st.dup_error == "" and st.dup_total >= 1
    group = _mine(st, ids)
    assert group.kind == "phone" and group.count == 2 and {r.title for r in group.rows} == {
        "Дублев Антон", "Дублев Антон Ильич"}
    assert next(r for r in group.rows if r.id == ids["b"]).deals == 1
    st.open_merge([ids["a"], ids["b"]])
    assert st.merge_open and st.merge_survivor == str(ids["a"])
    fields = {fd.key: fd for fd in st.merge_fields}
    assert fields["position"].chosen == str(ids["b"])  # the survivor's is empty
    assert fields["name"].chosen == str(ids["a"])
    st.set_survivor(str(ids["b"]))
    assert st.merge_survivor == str(ids["b"])
    st.set_survivor(str(ids["a"]))
    st.choose("name", str(ids["b"]))
    assert next(fd for fd in st.merge_fields if fd.key == "name").chosen == str(ids["b"])
    st.confirm_merge()
    assert not st.merge_open
    assert all(not set(g.ids) >= {ids["a"], ids["b"]} for g in st.dup_groups)
    with session_scope(write=False) as s:
        a, b = s.get(Contact, ids["a"]), s.get(Contact, ids["b"])
        assert a.full_name == "Дублев Антон Ильич" and a.position == "Декан" and b.deleted_at is not None
        assert s.get(Deal, ids["deal"]).contact_id == ids["a"]


def test_bad_arguments_and_a_manager_are_refused(world):
    tokens, ids = world
    st = _state(tokens["dupmgr"])
    st.on_load()
    assert "администратор" in st.dup_error and st.dup_groups == []
    out = st.open_merge([ids["a"], ids["b"]])
    assert "администратор" in str(out) and not st.merge_open
    st = _state(tokens["dupadmin"])
    st.on_load()
    assert "Неверные данные" in str(st.set_dup_entity("deal"))
    assert "Неверные данные" in str(st.choose("name", "1"))
    assert "Неверные данные" in str(st.confirm_merge())
    st.set_dup_entity("company")
    assert st.dup_entity == "company" and st.dup_page == 0
