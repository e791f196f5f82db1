"""Lists and navigation (issue 12): each work page keeps its own sort, columns and filter;
the URL describes the view completely (filter — an explicitly empty one too —, sort and
direction, page size, page, board/list, pipeline); defaults follow the person (preset by
role, pipeline by department, the last pipeline remembered, invisible pipelines not
offered); an empty board or list says why. State handler tests on the app's database."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Deal, User
from rxcrm.services import auth
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


@pytest.fixture(scope="module")
def nav_world():
    """ДПО: a head, two managers (one with 6 deals, one with 4); admissions: a manager with 3
    Магистратура deals; a director and an admin; a few contacts."""
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "nv_m1")).first():
            m1 = f.user(s, "nv_m1", full_name="Иванова Мария Олеговна")
            m2 = f.user(s, "nv_m2", full_name="Петров Алексей Игоревич")
            f.user(s, "nv_head", role="head", full_name="Кузнецова Анна Сергеевна")
            f.user(s, "nv_dir", role="director", dept_code=None, full_name="Орлов Виктор Павлович")
            f.user(s, "nv_admin", role="admin", dept_code=None, full_name="Соколов Дмитрий")
            adm = f.user(s, "nv_adm", dept_code="admissions", full_name="Морозова Ольга Дмитриевна")
            for i in range(6):
                f.deal(s, f"НВ Иванова {i}", m1, amount=1000 * (i + 1), source="Лендинг" if i % 2 else "Email")
            for i in range(4):
                f.deal(s, f"НВ Петров {i}", m2, amount=50000 + i)
            f.deal(s, "НВ Иванова выиграна", m1, stage_code="WON")
            for i in range(3):
                f.deal(s, f"НВ Магистратура {i}", adm, pipe_code="masters", stage_code="REGISTRATION")
            for i in range(3):
                f.contact(s, "Навигаторова", f"Вера{i}", responsible=m1)
    import rxcrm.rxcrm  # noqa: F401
    with session_scope() as s:
        tokens = {u: auth.login(s, u, "demo")[0] for u in ("nv_m1", "nv_m2", "nv_head", "nv_dir", "nv_admin",
                                                            "nv_adm")}
        pipes = {code: f.pipeline(s, code).id for code in ("dpo", "masters")}
    return tokens, pipes


def _open(token, path):
    """A fresh browser tab on `path` (a reload or a link from a colleague)."""
    from rxcrm.state.work import WorkState
    st = f.logged_in(WorkState, token, path)
    st.check_login()
    _drain(st.on_load())
    return st


def _go(st, path):
    """The same tab navigates to `path` (the sidebar, a link, back)."""
    f.route(st, None, path)
    st.check_login()
    _drain(st.on_load())
    return st


def _drain(result):
    return list(result) if hasattr(result, "__iter__") and not isinstance(result, (list, dict, str)) else result


def _query(st) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(st._url()).query, keep_blank_values=True).items()}


def _deals_total(st) -> int:
    return st.board_total if st.is_kanban else st.total


# ---- 1. a sort does not carry over between sections ----------------------------------------

def test_a_deal_sort_does_not_break_contacts_and_comes_back_with_deals(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/deals?view=list")
    st.set_sort("amount")
    assert (st.sort, st.desc, st.error) == ("amount", True, "")
    _go(st, "/contacts")  # the sidebar: a bare URL
    assert st.error == "" and st.total >= 3
    assert [c.key for c in st.list_columns][0] == "full_name"
    assert "amount" not in [c.key for c in st.list_columns]
    assert st.sort == "created_at"
    _go(st, "/companies")
    assert st.error == ""
    _go(st, "/deals")  # back: the deals page kept its own sort, view and filter
    assert (st.view, st.sort, st.desc, st.error) == ("list", "amount", True, "")
    amounts = [float(r["amount"].replace("\u00a0", "").replace(" ", "").replace("₽", "").replace(",", ".") or 0)
               for r in st.rows]
    assert amounts == sorted(amounts, reverse=True)


def test_each_page_keeps_its_own_filter(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/deals?view=list")
    st.search({"q": "Иванова 3"})
    assert st.total == 1
    _go(st, "/contacts")
    assert st.q == "" and not any(c.key == "q" for c in st.chips) and st.total >= 3
    st.search({"q": "Вера1"})
    assert st.total == 1
    _go(st, "/deals")
    assert st.q == "Иванова 3" and st.total == 1
    _go(st, "/contacts")
    assert st.q == "Вера1" and st.total == 1


def test_an_unknown_sort_falls_back_to_the_default_silently(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/contacts?sort=amount&dir=asc")
    assert st.error == "" and st.sort == "created_at" and st.desc and st.total >= 3
    st = _open(tokens["nv_m1"], "/deals?view=list&sort=custom.nope")
    assert st.error == "" and st.sort == "created_at"
    st.set_sort("no_such_field")
    assert st.error == "" and st.sort == "created_at"
    st = _open(tokens["nv_m1"], "/deals?view=list&sort=queue")  # the lead queue order is for leads only
    assert st.error == "" and st.sort == "created_at"


# ---- 2. the URL describes the view completely --------------------------------------------------

def test_sort_direction_page_size_and_page_are_in_the_url_and_restored(nav_world):
    tokens, pipes = nav_world
    st = _open(tokens["nv_head"], "/deals?view=list&filter=none")
    st.set_page_size("10")
    st.set_sort("amount")
    st.set_sort("amount")  # again: ascending
    st.set_page_no(2)
    q = _query(st)
    assert q["view"] == "list" and q["pipeline"] == str(pipes["dpo"])
    assert (q["sort"], q["dir"], q["size"], q["page"]) == ("amount", "asc", "10", "2")
    assert q["filter"] == "none"
    rows = [r["id"] for r in st.rows]
    again = _open(tokens["nv_head"], st._url())  # reload, or the link sent to a colleague
    assert (again.sort, again.desc, again.page_size, again.page_no) == ("amount", False, 10, 2)
    assert [r["id"] for r in again.rows] == rows and again.chips == []


def test_a_cleared_filter_survives_a_reload(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/deals")
    assert st.chips  # the default preset
    st.clear_filters()
    assert st.chips == [] and _query(st).get("filter") == "none"
    again = _open(tokens["nv_m1"], st._url())
    assert again.chips == [] and again._filters == {} and again.active_preset_id == 0
    # a preset with no conditions keeps its name in the URL and comes back too
    again.save_preset({"name": "Все мои (без условий)"})
    pid = again.active_preset_id
    assert _query(again).get("preset") == str(pid)
    third = _open(tokens["nv_m1"], again._url())
    assert third.active_preset_id == pid and third.chips == []


def test_a_preset_filter_in_the_url_is_what_a_colleague_sees(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/deals?view=list")
    mine = st.total
    colleague = _open(tokens["nv_head"], st._url())
    assert colleague.total == mine and [c.label for c in colleague.chips] == [c.label for c in st.chips]


# ---- 3. defaults follow the person --------------------------------------------------------

def _preset_name(st) -> str:
    return next((p.name for p in st.presets if p.id == st.active_preset_id), "")


def test_default_preset_by_role(nav_world):
    tokens, _ = nav_world
    manager = _open(tokens["nv_m1"], "/deals")
    assert _preset_name(manager) == "Мои сделки в работе" and manager.board_total == 6
    head = _open(tokens["nv_head"], "/deals")
    assert _preset_name(head) == "Сделки отдела в работе"
    with session_scope() as s:
        open_deals = select(Deal).where(Deal.semantic == "process", Deal.deleted_at.is_(None))
        dept_open = len(s.exec(open_deals.where(Deal.department_id == f.dept(s, "dpo").id)).all())
        pipe_open = len(s.exec(open_deals.where(Deal.pipeline_id == f.pipeline(s, "dpo").id)).all())
    assert head.board_total == dept_open >= 10
    assert [c.label for c in head.chips] == ["Отдел: ДПО", "Только в работе"]
    director = _open(tokens["nv_dir"], "/deals")
    assert _preset_name(director) == "Все сделки в работе" and director.board_total == pipe_open
    admin = _open(tokens["nv_admin"], "/leads")
    assert _preset_name(admin) == "Все лиды в работе"
    # a person's own pinned preset still wins
    manager.save_preset({"name": "Мои лендинги"})
    manager.pin_preset(manager.active_preset_id)
    again = _open(tokens["nv_m1"], "/deals")
    assert _preset_name(again) == "Мои лендинги"
    again.pin_preset(again.active_preset_id)  # unpinned: back to the role default
    assert _preset_name(_open(tokens["nv_m1"], "/deals")) == "Мои сделки в работе"


def test_default_pipeline_by_department_and_invisible_pipelines_not_offered(nav_world):
    tokens, pipes = nav_world
    adm = _open(tokens["nv_adm"], "/deals")
    assert adm.pipeline_id == pipes["masters"]
    assert [o.value for o in adm.pipeline_options] == [str(pipes["masters"])]  # nothing to see in ДПО
    assert adm.board_total == 3
    m1 = _open(tokens["nv_m1"], "/deals")
    assert m1.pipeline_id == pipes["dpo"]
    assert [o.value for o in m1.pipeline_options] == [str(pipes["dpo"])]
    admin = _open(tokens["nv_admin"], "/deals")
    assert {o.value for o in admin.pipeline_options} == {str(pipes["dpo"]), str(pipes["masters"])}


def test_the_last_pipeline_chosen_is_remembered_per_user(nav_world):
    tokens, pipes = nav_world
    admin = _open(tokens["nv_admin"], "/deals")
    assert admin.pipeline_id == pipes["dpo"]  # no department: the default pipeline
    admin.set_pipeline(str(pipes["masters"]))
    assert admin.pipeline_id == pipes["masters"]
    assert _open(tokens["nv_admin"], "/deals").pipeline_id == pipes["masters"]  # another day, a bare /deals
    assert _open(tokens["nv_dir"], "/deals").pipeline_id == pipes["dpo"]  # per user
    admin.set_pipeline(str(pipes["dpo"]))
    assert _open(tokens["nv_admin"], "/deals").pipeline_id == pipes["dpo"]
    # a link naming a pipeline wins over the remembered one
    assert _open(tokens["nv_admin"], f"/deals?pipeline={pipes['masters']}").pipeline_id == pipes["masters"]


def test_an_empty_board_and_list_say_why_and_what_to_do(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/deals")
    assert st.empty_title == ""  # not empty
    st.search({"q": "нет такой сделки"})
    assert st.board_total == 0
    assert st.empty_title and "фильтр" in st.empty_text.lower() and st.empty_can_reset
    st.set_view("list")
    assert st.total == 0 and st.empty_title and st.empty_can_reset
    st.clear_filters()
    assert st.empty_title == ""
    director = _open(tokens["nv_dir"], "/contacts?filter=none")
    assert director.total >= 3 and director.empty_title == ""
    # a kanban column with no cards says so
    board = _open(tokens["nv_m1"], "/deals")
    assert board.column_empty_text == "Нет сделок"
    assert _open(tokens["nv_m1"], "/leads").column_empty_text == "Нет лидов"


def test_the_filter_bar_shows_two_chips_and_folds_the_rest(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/deals?view=list")
    st.apply_filter_form({"source__Лендинг": "on", "amount_from": "1", "only_open": "on",
                          f"responsible_id__{st.user_id}": "on"})
    assert len(st.chips) == 4
    assert [c.key for c in st.chips_shown] == [c.key for c in st.chips[:2]]
    assert [c.key for c in st.chips_more] == [c.key for c in st.chips[2:]]


def test_another_login_in_the_same_tab_does_not_inherit_the_view(nav_world):
    tokens, _ = nav_world
    st = _open(tokens["nv_m1"], "/deals?view=list")
    st.search({"q": "Иванова 3"})
    f.route(st, tokens["nv_m2"], "/deals")  # manager1 logs out, manager2 logs in, same tab
    st.check_login()
    _drain(st.on_load())
    assert st.q == "" and [c.key for c in st.chips] == ["responsible_id", "semantic"] and st.board_total == 4
