"""/history: who sees which records, filters, pagination, row texts — on SQLite and
PostgreSQL."""
from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, update
from sqlmodel import select

from rxcrm.db import get_engine, session_scope
from rxcrm.models import AuditRecord, User
from rxcrm.services import admin, auth, cards, create, export, history, items
from rxcrm.services.context import Actor
from rxcrm.services.errors import AccessDenied, AuthError, ValidationFailed

from . import factories as f

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        m1 = f.user(s, "dpo1", full_name="Петров Иван")
        head = f.user(s, "dpohead", role="head", full_name="Волков Олег")
        adm = f.user(s, "adm1", dept_code="admissions", full_name="Орлова Мария")
        ahead = f.user(s, "admhead", role="head", dept_code="admissions", full_name="Смирнова Ольга")
        boss = f.user(s, "admin", role="admin", dept_code=None, full_name="Админов Админ")
        director = f.user(s, "director", role="director", dept_code=None, full_name="Директоров Денис")
        dpo_deal = f.deal(s, "Python — Иванов", m1, amount=10000)
        adm_deal = f.deal(s, "Магистратура — Орлова", adm, pipe_code="masters", stage_code="REGISTRATION")
        ids = dict(dpo_deal=dpo_deal.id, adm_deal=adm_deal.id, registration=f.stage(s, "dpo", "REGISTRATION").id,
                   dpo_pipe=f.pipeline(s, "dpo").id)
        ids.update({u.login: u.id for u in (m1, head, adm, ahead, boss, director)})
        A = {u.login: auth.actor_for(u) for u in (m1, head, adm, ahead, boss, director)}
    with session_scope(db) as s:
        items.move_stage(s, A["dpo1"], "deal", ids["dpo_deal"], ids["registration"])
        items.update_fields(s, A["dpo1"], "deal", ids["dpo_deal"], {"amount": "25500"})
        cards.open_card(s, A["dpo1"], "deal", ids["dpo_deal"])
        cards.open_card(s, A["adm1"], "deal", ids["adm_deal"])
        items.update_fields(s, A["adm1"], "deal", ids["adm_deal"], {"responsible_id": str(ids["admhead"])})
        export.export_xlsx(s, A["dpo1"], "deal", {"title": "Python"}, ["id", "title"],
                           dest=Path(tempfile.mkdtemp()) / "x.xlsx")
        # An intake (integration) creates a lead with no user.
        create.create_lead(s, Actor.system("intake"), title="С сайта", last_name="Кузнецов",
                           phones=["+7 900 123-45-67"], responsible_id=ids["dpo1"])
    with session_scope(db) as s:
        auth.login(s, "dpo1", "demo", client="10.0.0.1")
    with pytest.raises(AuthError), session_scope(db) as s:
        auth.login(s, "adm1", "wrong", client="10.0.0.2")
    return db, ids, A


def test_managers_are_refused(world):
    db, ids, A = world
    with session_scope(db) as s:
        for login in ("dpo1", "adm1"):
            with pytest.raises(AccessDenied) as err:
                history.history_page(s, A[login])
            assert err.value.message == "История доступна руководителям, директору и администратору"
        assert not history.can_view(A["dpo1"]) and history.can_view(A["dpohead"])


@pytest.mark.parametrize("login", ["admin", "director"])
def test_admins_and_directors_see_everything(world, login):
    db, ids, A = world
    with session_scope(db) as s:
        rows, total = history.history_page(s, A[login], limit=200)
        everything = len(s.exec(select(AuditRecord.id)).all())
    assert total == everything == len(rows)
    assert {"Петров Иван", "Орлова Мария", "Интеграция"} <= {r["user"] for r in rows}


def test_heads_see_their_department(world):
    db, ids, A = world
    with session_scope(db) as s:
        rows, total = history.history_page(s, A["dpohead"], limit=200)
        assert total == len(rows)
        assert {r["user"] for r in rows} == {"Петров Иван", "Интеграция", "Правило"}  # on-enter rule
        assert ids["adm_deal"] not in {r["entity_id"] for r in rows if r["entity_type"] == "deal"}
        # The intake's lead belongs to ДПО (its responsible is there): visible to the ДПО head.
        assert any(r["action"] == "create" and r["entity_type"] == "lead" for r in rows)
        arows, _ = history.history_page(s, A["admhead"], limit=200)
        # The admissions head sees the admissions manager's records and her failed login…
        assert {r["user"] for r in arows} == {"Орлова Мария", "логин «adm1»"}
        assert {r["action"] for r in arows} == {"view", "update", "login_failed"}
        # …and nothing of ДПО.
        assert all(r["entity_id"] != ids["dpo_deal"] for r in arows)
        opts = history.history_filters_options(s, A["dpohead"])
        assert {n for _, n in opts["users"]} == {"Петров Иван", "Волков Олег"}
        assert len(history.history_filters_options(s, A["director"])["users"]) == 6
        assert ("view", "Просмотр") in opts["actions"] and ("deal", "Сделка") in opts["entities"]


def test_row_texts(world):
    db, ids, A = world
    with session_scope(db) as s:
        rows, _ = history.history_page(s, A["admin"], limit=200, now=NOW)
    by = {}
    for r in rows:
        by.setdefault(r["action"], []).append(r)
    move = by["move"][0]
    assert move["action_label"] == "Смена стадии" and move["details"] == "Интерес → Регистрация"
    assert move["entity_label"] == "Сделка" and move["title"] == "Python — Иванов"
    assert move["href"] == f"/deals/{ids['dpo_deal']}" and move["source_label"] == "Интерфейс"
    upd = [r for r in by["update"] if r["entity_id"] == ids["dpo_deal"]][0]
    assert upd["details"].replace("\u00a0", " ") == "Сумма: 10 000 → 25 500"
    resp = [r for r in by["update"] if r["entity_id"] == ids["adm_deal"]][0]
    assert resp["details"] == "Ответственный: Орлова Мария → Смирнова Ольга"
    exp = by["export"][0]
    assert exp["action_label"] == "Экспорт" and exp["details"].startswith("строк: 1")
    assert exp["details"] == "строк: 1 · фильтр: Сделка: Python" and exp["href"] == ""
    intake = by["create"][0]
    assert intake["user"] == "Интеграция" and intake["source_label"] == "Интеграция"
    assert intake["entity_label"] == "Лид" and intake["href"].startswith("/leads/")
    assert by["view"][0]["action_label"] == "Просмотр"
    login = by["login"][0]
    assert login["entity_label"] == "Сотрудник" and login["href"] == "" and "10.0.0.1" in login["details"]
    failed = by["login_failed"][0]
    assert failed["action_label"] == "Неудачный вход" and "неверный пароль" in failed["details"]
    assert "10.0.0.2" in failed["details"] and failed["title"] == "Орлова Мария"


def test_filters_and_pagination(world):
    db, ids, A = world
    with session_scope(db) as s:
        a = A["admin"]
        rows, total = history.history_page(s, a, user_id=ids["dpo1"])
        assert total == len(rows) and {r["user"] for r in rows} == {"Петров Иван"}
        rows, total = history.history_page(s, a, entity_type="deal", action="view")
        assert total == 2 and all(r["action"] == "view" for r in rows)
        rows, total = history.history_page(s, a, action=["move", "update"])
        assert total == 3
        rows, total = history.history_page(s, a, entity_type="deal", entity_id=ids["dpo_deal"])
        assert {r["action"] for r in rows} == {"move", "update", "view", "activity_planned"}  # + on-enter rule
        all_rows, total = history.history_page(s, a, limit=200)
        pages = [history.history_page(s, a, offset=o, limit=3)[0] for o in range(0, total, 3)]
        assert [r["id"] for p in pages for r in p] == [r["id"] for r in all_rows]  # newest first, no gaps
        assert all_rows == sorted(all_rows, key=lambda r: -r["id"])
        with pytest.raises(ValidationFailed):
            history.history_page(s, a, date_from="вчера")
        with pytest.raises(ValidationFailed):
            history.history_page(s, a, date_from="2026-11-20", date_to="2026-11-19")
    # Dates are Moscow days: move the view records to 2026-11-19 23:30 Moscow (20:30 UTC).
    with session_scope(db) as s:
        s.execute(update(AuditRecord).where(AuditRecord.action == "view")
                  .values(created_at=datetime(2026, 11, 19, 20, 30, tzinfo=UTC)))
    with session_scope(db) as s:
        a = A["admin"]
        rows, total = history.history_page(s, a, date_from=date(2026, 11, 19), date_to="2026-11-19")
        assert total == 2 and {r["action"] for r in rows} == {"view"}
        assert history.history_page(s, a, date_from="2026-11-20", date_to="2026-11-20")[1] == 0
        assert history.history_page(s, a, date_to="2026-11-18")[1] == 0


def test_titles_are_batched_and_hidden_when_not_viewable(world):
    """A page of many rows costs a fixed number of queries; a head who may not view an
    item sees only its number (no title, no link)."""
    db, ids, A = world
    with session_scope(db) as s:
        m1 = s.get(User, ids["dpo1"])
        for i in range(50):
            d = f.deal(s, f"Сделка {i}", m1)
            cards.open_card(s, A["dpo1"], "deal", d.id)
    engine = get_engine(db)
    seen = []
    listener = lambda *a, **k: seen.append(1)  # noqa: E731
    with session_scope(db) as s:
        s.connection()
        event.listen(engine, "before_cursor_execute", listener)
        try:
            rows, _ = history.history_page(s, A["admin"], limit=50)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
    assert len(rows) == 50 and len(seen) <= 12
    # A ДПО manager opened an admissions deal that later became visible to her? No — simulate
    # a record by a ДПО user about an admissions item: the ДПО head sees the record, not the title.
    with session_scope(db) as s:
        s.add(AuditRecord(user_id=ids["dpo1"], action="view", entity_type="deal", entity_id=ids["adm_deal"],
                          source="ui"))
    with session_scope(db) as s:
        rows, _ = history.history_page(s, A["dpohead"], entity_id=ids["adm_deal"], entity_type="deal")
        assert len(rows) == 1 and rows[0]["title"] == f"№{ids['adm_deal']}" and rows[0]["href"] == ""


def test_admin_actions_are_in_history(world):
    db, ids, A = world
    with session_scope(db) as s:
        a = A["admin"]
        admin.set_permission(s, a, "manager", "deal", "export", "own")
        admin.deactivate_user(s, a, ids["adm1"])
        admin.reassign_items(s, a, ids["adm1"], ids["admhead"])
    with session_scope(db) as s:
        rows, _ = history.history_page(s, A["admin"], user_id=ids["admin"])
        by = {r["action"]: r for r in rows}
        assert by["permission_set"]["details"] == "Менеджер · Сделки · Экспорт: Своего отдела → Свои"
        assert by["user_deactivate"]["title"] == "Орлова Мария"
        assert by["reassign"]["details"].startswith("→ Смирнова Ольга")
        # The admissions head sees what was done to her department's user.
        arows, _ = history.history_page(s, A["admhead"], action="user_deactivate")
        assert len(arows) == 1
        assert history.history_page(s, A["dpohead"], action="user_deactivate")[1] == 0


def test_a_refused_admin_action_reads_as_a_denial(world):
    """A manager trying an admin operation leaves a «Отказ в доступе» row naming what was tried."""
    db, ids, A = world
    with pytest.raises(AccessDenied), session_scope(db) as s:
        admin.create_user(s, A["dpo1"], login="x1", full_name="Икс", password="secret123", role="manager",
                          department_id=None)
    with session_scope(db) as s:
        rows, _ = history.history_page(s, A["admin"], action="denied")
    assert rows and rows[0]["action_label"] == "Отказ в доступе" and rows[0]["user"] == "Петров Иван"
    assert rows[0]["details"].startswith("попытка: Создание сотрудника")


# ---- every action code reads in words (issue 12) -----------------------------------------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

RXCRM = Path(__file__).resolve().parents[1] / "rxcrm"
AUDIT_CALLS = {"record", "refused", "require_admin", "_require_admin"}


def _recorded_actions() -> dict[str, str]:
    """Every audit action code the code base can record, found in its source: the third
    argument of audit.record / audit.refused / require_admin (what a refusal names), the
    `action=` of an AuditRecord(...) and the "action" of an audit row written in bulk
    (a dict with "entity_type" too). Module constants are resolved; a code passed through
    a parameter is found where the wrapper is called. Returns {code: where}."""
    found: dict[str, str] = {}
    unresolved: list[str] = []
    for path in RXCRM.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                  and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                  for t in n.targets if isinstance(t, ast.Name)}
        params = {a.arg for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for a in fn.args.args + fn.args.kwonlyargs}
        where = f"{path.relative_to(RXCRM.parent)}"

        def take(node, line):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.setdefault(node.value, f"{where}:{line}")
            elif isinstance(node, ast.Name) and node.id in consts:
                found.setdefault(consts[node.id], f"{where}:{line}")
            elif not (isinstance(node, ast.Name) and node.id in params):
                unresolved.append(f"{where}:{line}: {ast.unparse(node)}")

        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
                owner = fn.value.id if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name) else ""
                is_audit = (name in ("record", "refused") and (owner == "audit" or path.name == "audit.py"
                                                               and not owner)) or \
                    name in ("require_admin", "_require_admin")
                if is_audit and len(node.args) >= 3:
                    take(node.args[2], node.lineno)
                if name == "AuditRecord":
                    for kw in node.keywords:
                        if kw.arg == "action":
                            take(kw.value, node.lineno)
            if isinstance(node, ast.Dict):
                keys = {k.value: v for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)}
                if "action" in keys and "entity_type" in keys and "action_label" not in keys:  # not a /history row
                    take(keys["action"], node.lineno)
    assert not unresolved, "audit actions the test cannot read (use a literal or a module constant):\n" + \
        "\n".join(unresolved)
    return found


def test_every_action_any_service_records_reads_in_words():
    found = _recorded_actions()
    assert {"create", "update", "move", "login_failed", "denied", "intake_assign", "rule_update",
            "user_create", "token_list"} <= set(found), sorted(found)  # the scan sees them all
    missing = {code: where for code, where in found.items() if code not in history.ACTION_LABEL}
    assert not missing, f"no words for these action codes on /history: {missing}"
    # and the /history filter offers every action that makes a row of its own
    offered = {code for code, _ in history.history_actions()}
    own_rows = {code for code in found if code not in history.REFUSAL_ONLY}
    assert own_rows <= offered, sorted(own_rows - offered)


def test_an_assignment_by_an_integration_reads_in_words(world):
    db, ids, A = world
    from rxcrm.models import Lead
    from rxcrm.services import assignment
    with session_scope(db) as s:
        lead = s.exec(select(Lead).where(Lead.title == "С сайта")).one()
        assignment.record(s, Actor.system("intake"), "landing", "lead", lead, "по очереди")
    with session_scope(db) as s:
        rows, _ = history.history_page(s, A["admin"], action="intake_assign", now=NOW)
    assert rows and rows[0]["action_label"] == "Назначение ответственного"
    assert rows[0]["details"] == "Лендинг → Петров И. (по очереди)"


# ---- the page's state: rows, filter options and labels in the person's language --------

def test_the_catalog_names_every_action_item_kind_and_source_as_the_service_does():
    """/history shows the service's labels through the catalog (by code): the Russian text
    is the service's own, and every code has an English one."""
    from rxcrm import i18n
    for group, labels in (("action", dict(history.history_actions())), ("entity", history.ENTITY_LABEL),
                          ("source", history.SOURCE_LABEL)):
        for code, label in labels.items():
            assert i18n.RU.get(f"history.{group}.{code}") == label, (group, code)
            assert i18n.EN[f"history.{group}.{code}"] != label, (group, code)


@pytest.fixture(scope="module")
def page_world():
    from rxcrm.db import migrate
    from rxcrm.services.bootstrap import ensure_defaults
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
        if not s.exec(select(User).where(User.login == "hsadmin")).first():
            boss = f.user(s, "hsadmin", role="admin", dept_code=None, full_name="Историева Анна")
            m = f.user(s, "hsmgr", full_name="Журналов Пётр")
            deal = f.deal(s, "Сделка для журнала", m)
            cards.open_card(s, auth.actor_for(boss), "deal", deal.id)
            create.create_lead(s, Actor.system("intake"), title="Лид из журнала", last_name="Лендингов",
                               phones=["+7 900 765-43-21"], responsible_id=m.id)
    import rxcrm.rxcrm  # noqa: F401  (registers the pages and states)
    with session_scope() as s:
        admin_token, _ = auth.login(s, "hsadmin", "demo")
        manager_token, _ = auth.login(s, "hsmgr", "demo")
    return admin_token, manager_token


def _history_state(token, lang="ru", path="/history"):
    from rxcrm.state.history import HistoryState
    st = f.logged_in(HistoryState, token, path)
    st.check_login()
    st.lang = lang
    st.on_load()
    return st


def test_the_page_loads_its_rows_in_russian_and_in_english(page_world):
    admin_token, _ = page_world
    st = _history_state(admin_token)
    assert st.h_error == "" and st.h_total > 0 and st.h_rows
    view = next(r for r in st.h_rows if r.title == "Сделка для журнала")
    assert (view.action_label, view.entity_label, view.source_label) == ("Просмотр", "Сделка", "Интерфейс")
    by_intake = next(r for r in st.h_rows if r.title == "Лид из журнала")
    assert by_intake.user == "Интеграция" and by_intake.source_label == "Интеграция"
    assert [o.label for o in st.h_user_options][:1] == ["Все сотрудники"]
    assert dict((o.value, o.label) for o in st.h_action_options)["view"] == "Просмотр"

    st = _history_state(admin_token, "en")
    view = next(r for r in st.h_rows if r.title == "Сделка для журнала")
    assert (view.action_label, view.entity_label, view.source_label) == ("Viewed", "Deal", "Interface")
    by_intake = next(r for r in st.h_rows if r.title == "Лид из журнала")
    assert by_intake.user == "Integration" and by_intake.source_label == "Integration"
    assert [o.label for o in st.h_user_options][:1] == ["All users"]
    assert dict((o.value, o.label) for o in st.h_entity_options)["lead"] == "Lead"


def test_the_page_filters_by_the_url_and_refuses_managers(page_world):
    admin_token, manager_token = page_world
    st = _history_state(admin_token, path="/history?action=view")
    assert st.h_action == "view" and st.h_rows and all(r.action_label == "Просмотр" for r in st.h_rows)
    st.set_filter("action", "create")
    assert st.h_rows and all(r.action_label == "Создание" for r in st.h_rows)
    st = _history_state(manager_token)
    assert st.h_error == "История доступна руководителям, директору и администратору" and not st.h_rows
    st = _history_state(manager_token, "en")
    assert st.h_error.startswith("The history is available")
