"""Analytics (issue 7) on hand-built stage history with known answers — on SQLite and
PostgreSQL: funnel counts/amounts/conversion, the click-through list total equal to every
funnel number, conversion by dimension, time-in-stage percentiles, dynamics, lost reasons,
the manager rating, access (manager / head / other department), parameters, saved views,
the Excel workbook."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from io import BytesIO
from urllib.parse import parse_qsl, urlparse

import openpyxl
import pytest
from sqlmodel import select

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, Deal, StageHistory
from rxcrm.services import analytics as an
from rxcrm.services import auth, filters as flt, listing, views
from rxcrm.services.errors import ValidationFailed
from rxcrm.services.fields import field_map

from . import factories as f

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NOV = {"period": "custom", "date_from": "2026-11-01", "date_to": "2026-11-30"}


def at(day: int, month: int = 11, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def walk(s, item, entity: str, pipe_code: str, steps: list[tuple[str, datetime]]) -> None:
    """Stage-history entries as the app writes them (from_stage_id, prev_at) and the item's
    resulting stage."""
    prev = None
    for code, when in steps:
        st = f.stage(s, pipe_code, code)
        s.add(StageHistory(entity_type=entity, entity_id=item.id, pipeline_id=st.pipeline_id, stage_id=st.id,
                           from_stage_id=prev[0].id if prev else None, prev_at=prev[1] if prev else None,
                           semantic=st.semantic, created_at=when, responsible_id=item.responsible_id,
                           department_id=item.department_id))
        prev = (st, when)
    item.stage_id, item.semantic, item.stage_changed_at = prev[0].id, prev[0].semantic, prev[1]
    item.closed_at = prev[1] if prev[0].semantic != "process" else None
    s.add(item)
    s.flush()


@pytest.fixture
def world(db):
    with session_scope(db) as s:
        m1 = f.user(s, "m1", full_name="Петров Иван")
        m2 = f.user(s, "m2", full_name="Сидорова Анна")
        head = f.user(s, "dpohead", role="head", full_name="Волков Олег")
        ahead = f.user(s, "admhead", role="head", dept_code="admissions", full_name="Смирнова Ольга")
        adm = f.user(s, "adm1", dept_code="admissions", full_name="Орлова Мария")
        boss = f.user(s, "director", role="director", dept_code=None, full_name="Директоров Денис")
        a = f.deal(s, "A", m1, amount=100, created_at=at(2), source="Лендинг", utm_campaign="autumn")
        b = f.deal(s, "B", m1, amount=200, created_at=at(3), source="Лендинг", lost_reason="Дорого")
        c = f.deal(s, "C", m2, amount=300, created_at=at(6), source="Звонок")
        d = f.deal(s, "D", m1, amount=400, created_at=at(1, 10), source="Лендинг",
                   next_activity_at=datetime(2026, 11, 19, 9, 0, tzinfo=UTC))
        gone = f.deal(s, "F", m1, amount=999, created_at=at(2), source="Лендинг", deleted_at=at(15))
        e = f.deal(s, "E", adm, pipe_code="masters", stage_code="REGISTRATION", amount=5000, created_at=at(2))
        walk(s, a, "deal", "dpo", [("INTEREST", at(2)), ("REGISTRATION", at(4)), ("CONTRACT", at(5)), ("WON", at(10))])
        walk(s, b, "deal", "dpo", [("INTEREST", at(3)), ("REGISTRATION", at(7)), ("LOST", at(8))])
        walk(s, c, "deal", "dpo", [("INTEREST", at(6)), ("CONTRACT", at(9))])
        walk(s, d, "deal", "dpo", [("INTEREST", at(1, 10)), ("REGISTRATION", at(20, 10)), ("CONTRACT", at(12))])
        walk(s, gone, "deal", "dpo", [("INTEREST", at(2)), ("WON", at(3))])
        walk(s, e, "deal", "masters", [("REGISTRATION", at(2)), ("WON", at(5))])
        ld = f.lead(s, "Лид 1", m1, created_at=at(2), source="Маркетплейс")
        walk(s, ld, "lead", "leads", [("NEW", at(2)), ("ACQUAINTANCE", at(3)), ("CONVERTED", at(4))])
        ld2 = f.lead(s, "Лид 2", m2, created_at=at(5), source="Лендинг")
        walk(s, ld2, "lead", "leads", [("NEW", at(5)), ("JUNK", at(6))])
        users = (m1, m2, head, ahead, adm, boss)
        ids = {u.login: u.id for u in users} | {"dpo": f.pipeline(s, "dpo").id, "masters": f.pipeline(s, "masters").id,
                                                  "dpo_dept": f.dept(s, "dpo").id}
        actors = {u.login: auth.actor_for(u) for u in users}
    return db, ids, actors


def _dash(db, actor, **extra):
    with session_scope(db) as s:
        return an.dashboard(s, actor, NOV | extra, now=NOW)


def _stage(fun: an.Funnel, name: str) -> an.FunnelStage:
    return next(x for x in fun.stages + fun.lost if x.name == name)


def test_deal_funnel_known_answers(world):
    db, ids, A = world
    fun = _dash(db, A["director"], pipeline_id=ids["dpo"]).deal_funnel
    got = {x.name: (x.count, int(x.amount)) for x in fun.stages + fun.lost}
    assert got == {"Интерес": (4, 1000), "Регистрация": (4, 1000), "Договор": (3, 800),
                   "Аванс\\Предоплата": (1, 100), "Зачисление": (1, 100), "Постоплата": (1, 100),
                   "Обучение": (1, 100), "Сделка успешна": (1, 100), "Сделка проиграна": (1, 200)}
    assert [x.name for x in fun.stages][-1] == "Сделка успешна"
    assert (fun.entered, fun.won, fun.lost_count, fun.conversion) == (4, 1, 1, 25.0)
    assert _stage(fun, "Регистрация").conv_prev == 100.0
    assert _stage(fun, "Договор").conv_prev == 75.0 and _stage(fun, "Договор").conv_first == 75.0
    assert _stage(fun, "Интерес").conv_prev is None


def test_lead_funnel(world):
    db, ids, A = world
    fun = _dash(db, A["director"]).lead_funnel
    got = {x.name: x.count for x in fun.stages + fun.lost}
    assert got["Не обработан"] == 2 and got["Знакомство"] == 1 and got["Качественный"] == 1
    assert got["Некачественный"] == 1 and got["Уровень образования"] == 1
    assert fun.conversion == 50.0


@pytest.mark.parametrize("login", ["director", "dpohead", "m1", "m2", "admhead"])
def test_click_through_total_equals_every_funnel_number(world, login):
    db, ids, A = world
    dash = _dash(db, A[login], pipeline_id=ids["dpo"])
    with session_scope(db) as s:
        for fun in (dash.lead_funnel, dash.deal_funnel):
            for st in fun.stages + fun.lost:
                q = dict(parse_qsl(urlparse(st.href).query))
                entity = "lead" if st.href.startswith("/leads") else "deal"
                assert q["view"] == "list" and q["reached_stage"] == str(st.stage_id)
                pipe = int(q.get("pipeline", fun.pipeline_id))
                filters = flt.decode(q, field_map(s, entity, pipe)) | {"pipeline_id": [pipe]}
                assert listing.count(s, A[login], entity, filters, now=NOW, pipeline_id=pipe) == st.count, st.name
        for row in dash.conversion["source"] + dash.conversion["manager"]:
            if row.href:
                q = dict(parse_qsl(urlparse(row.href).query))
                filters = flt.decode(q, field_map(s, "deal", ids["dpo"])) | {"pipeline_id": [ids["dpo"]]}
                assert listing.count(s, A[login], "deal", filters, now=NOW, pipeline_id=ids["dpo"]) == row.created


def test_access_scopes_the_figures(world):
    db, ids, A = world
    mine = _dash(db, A["m2"], pipeline_id=ids["dpo"])
    assert mine.ctx.responsible_id == ids["m2"]
    assert _stage(mine.deal_funnel, "Интерес").count == 1  # only C
    assert [m.name for m in mine.managers] == ["Сидорова Анна"]
    # a manager cannot widen the view by asking for a colleague
    other = _dash(db, A["m2"], pipeline_id=ids["dpo"], responsible_id=ids["m1"])
    assert _stage(other.deal_funnel, "Интерес").count == 1
    head = _dash(db, A["dpohead"], pipeline_id=ids["dpo"])
    assert _stage(head.deal_funnel, "Интерес").count == 4
    foreign = _dash(db, A["admhead"], pipeline_id=ids["dpo"])
    assert foreign.deal_funnel.entered == 0 and foreign.managers == []
    assert _dash(db, A["admhead"], pipeline_id=ids["masters"]).deal_funnel.won == 1
    # a head's default pipeline is their department's
    assert _dash(db, A["admhead"]).ctx.deal_pipeline.id == ids["masters"]
    assert _dash(db, A["dpohead"]).ctx.deal_pipeline.id == ids["dpo"]


def test_filters_narrow_the_figures(world):
    db, ids, A = world
    by_source = _dash(db, A["director"], pipeline_id=ids["dpo"], source="Звонок")
    assert by_source.deal_funnel.entered == 1
    by_user = _dash(db, A["director"], pipeline_id=ids["dpo"], responsible_id=ids["m1"])
    assert by_user.deal_funnel.entered == 3
    assert "responsible_id=" in _stage(by_user.deal_funnel, "Интерес").href
    by_dept = _dash(db, A["director"], pipeline_id=ids["dpo"], department_id=ids["dpo_dept"])
    assert by_dept.deal_funnel.entered == 4


def test_conversion_by_dimension(world):
    db, ids, A = world
    dash = _dash(db, A["director"], pipeline_id=ids["dpo"])
    src = {r.label: (r.created, r.in_work, r.won, r.lost, r.conversion, int(r.won_amount)) for r in dash.conversion["source"]}
    assert src == {"Лендинг": (2, 0, 1, 1, 50.0, 100), "Звонок": (1, 1, 0, 0, 0.0, 0)}
    mgr = {r.label: (r.created, r.won) for r in dash.conversion["manager"]}
    assert mgr == {"Петров Иван": (2, 1), "Сидорова Анна": (1, 0)}
    utm = {r.label: r.created for r in dash.conversion["utm"]}
    assert utm == {"autumn": 1, "Без кампании": 2}
    empty = next(r for r in dash.conversion["utm"] if r.label == "Без кампании")
    assert empty.href == ""  # no filter for "empty": no link rather than a wrong list
    assert {r.label for r in dash.lead_sources} == {"Маркетплейс", "Лендинг"}


def test_time_in_stage_percentiles(world):
    db, ids, A = world
    times = {t.name: (t.stays, t.median_days, t.p90_days) for t in _dash(db, A["director"], pipeline_id=ids["dpo"]).stage_times}
    assert times["Интерес"] == (3, 3.0, 3.8)  # 2, 4, 3 days
    assert times["Регистрация"] == (3, 1.0, 18.6)  # 1, 1 and 23 days (entered in October)
    assert times["Договор"] == (1, 5.0, 5.0)
    assert times["Обучение"] == (0, None, None)


def test_dynamics_lost_reasons_and_managers(world):
    db, ids, A = world
    dash = _dash(db, A["director"], pipeline_id=ids["dpo"])
    assert dash.ctx.grain == "week"
    dyn = dash.dynamics
    assert list(dyn.index)[0] == date(2026, 10, 26) and list(dyn.index)[-1] == date(2026, 11, 30)
    assert dyn.loc[date(2026, 11, 2)].to_dict() == {"new_leads": 2, "new_deals": 3, "won": 0, "lost": 1}
    assert dyn.loc[date(2026, 11, 9), "won"] == 1
    assert int(dyn["new_deals"].sum()) == 3  # D was created in October, F is deleted
    assert dash.lost_reasons == [("Дорого", 1)]
    rows = {m.name: m for m in dash.managers}
    p = rows["Петров Иван"]
    assert (p.in_work, p.overdue, p.forgotten, p.created, p.won_created, p.conversion, p.won, int(p.won_amount)) == \
        (1, 1, 0, 2, 1, 50.0, 1, 100)
    s2 = rows["Сидорова Анна"]
    assert (s2.in_work, s2.forgotten, s2.leads_in_work) == (1, 1, 0)
    assert [m.name for m in dash.managers][0] == "Петров Иван"  # by won amount
    assert "activity=none" in s2.forgotten_href and f"responsible_id={ids['m2']}" in s2.forgotten_href


def test_empty_period_is_empty_not_an_error(world):
    db, ids, A = world
    dash = _dash(db, A["director"], date_from="2024-01-01", date_to="2024-01-31")
    assert dash.is_empty and dash.deal_funnel.entered == 0 and dash.lost_reasons == []
    assert all(t.stays == 0 for t in dash.stage_times) and int(dash.dynamics.values.sum()) == 0
    assert dash.ctx.grain == "week"
    assert _dash(db, A["director"], date_from="2025-01-01", date_to="2026-12-31").ctx.grain == "month"


def test_parameters_are_validated():
    for bad in ({"period": "decade"}, {"period": "custom"}, {"period": "custom", "date_from": "2026-11-10",
                                                               "date_to": "2026-11-01"},
                {"period": "custom", "date_from": "2026-13-01", "date_to": "2026-12-01"},
                {"pipeline_id": "abc"}, {"colour": "red"},
                {"period": "custom", "date_from": "2020-01-01", "date_to": "2026-01-01"}):
        with pytest.raises(ValidationFailed):
            an.parse(bad)
    assert an.parse({"pipeline_id": "3", "source": "all", "responsible_id": "all"}).as_dict() == \
        {"period": "month", "pipeline_id": 3}
    today = date(2026, 11, 23)
    assert an.period_dates(an.Params("month"), today) == (date(2026, 11, 1), date(2026, 11, 30))
    assert an.period_dates(an.Params("last_month"), today) == (date(2026, 10, 1), date(2026, 10, 31))
    assert an.period_dates(an.Params("quarter"), today) == (date(2026, 10, 1), date(2026, 12, 31))
    assert an.period_dates(an.Params("year"), today) == (date(2026, 1, 1), date(2026, 12, 31))
    assert an.period_dates(an.Params("last_month"), date(2026, 1, 5)) == (date(2025, 12, 1), date(2025, 12, 31))


def test_reached_filter_rejects_garbage(world):
    db, ids, A = world
    with session_scope(db) as s:
        for bad in ({"reached_stage": ["x"]}, {"reached_stage": [1], "reached_at": {"from": "31.11.2026"}},
                    {"department_id": ["dpo"]}):
            with pytest.raises(ValidationFailed):
                listing.count(s, A["director"], "deal", bad, now=NOW)


def test_dashboard_views_are_saved_presets(world):
    db, ids, A = world
    with session_scope(db) as s:
        p = views.save_preset(s, A["dpohead"], "analytics", "ДПО за ноябрь", NOV | {"pipeline_id": ids["dpo"]},
                              shared=True)
        assert p.filters == NOV | {"pipeline_id": ids["dpo"]}
        with pytest.raises(ValidationFailed):
            views.save_preset(s, A["dpohead"], "analytics", "Плохой", {"period": "decade"})
        views.set_default_preset(s, A["m1"], "analytics", p.id)
    with session_scope(db) as s:
        names = [x.name for x in views.list_presets(s, A["m1"], "analytics")]
        assert names == ["ДПО за ноябрь"]  # shared: everyone sees it
        assert views.default_preset(s, A["m1"], "analytics").id == p.id
        assert views.list_presets(s, A["m1"], "deals")[0].page == "deals"  # pages stay apart


def test_workbook_has_every_table(world):
    db, ids, A = world
    dash = _dash(db, A["dpohead"], pipeline_id=ids["dpo"])
    with session_scope(db) as s:
        data = an.workbook(s, A["dpohead"], dash)
    wb = openpyxl.load_workbook(BytesIO(data))
    assert wb.sheetnames[:3] == ["Фильтр", "Воронка лидов", "Воронка сделок"]
    assert {"Время на стадиях", "Динамика", "Причины проигрыша", "Менеджеры"} <= set(wb.sheetnames)
    rows = list(wb["Воронка сделок"].iter_rows(values_only=True))
    assert rows[0][:3] == ("Стадия", "Количество", "Сумма, ₽")
    assert ("Договор", 3, 800) == rows[3][:3]
    assert wb["Воронка сделок"]["C2"].number_format == '#,##0 "₽"'
    with session_scope(db) as s:
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "export",
                                               AuditRecord.entity_type == "analytics")).one()
        assert rec.user_id == ids["dpohead"] and rec.details["period"] == {"from": "2026-11-01", "to": "2026-11-30"}


def test_deleted_items_stay_out(world):
    db, ids, A = world
    with session_scope(db) as s:
        gone = s.exec(select(Deal).where(Deal.title == "F")).one()
        assert gone.deleted_at is not None
    dash = _dash(db, A["director"], pipeline_id=ids["dpo"])
    assert dash.deal_funnel.won == 1 and dash.deal_funnel.won_amount == Decimal(100)


def test_chip_texts_of_the_click_through_filter(world):
    db, ids, A = world
    with session_scope(db) as s:
        st = f.stage(s, "dpo", "CONTRACT")
        f_ = {"reached_stage": [st.id], "reached_at": {"from": "2026-11-01", "to": "2026-11-30"}}
        assert flt.describe_reserved(s, "reached_stage", [st.id], f_) == "Дошли до «Договор» · 01.11–30.11.2026"
        f_["reached_at"] = {"from": "2025-12-01", "to": "2026-01-31"}
        assert flt.describe_reserved(s, "reached_stage", [st.id], f_).endswith("01.12.2025–31.01.2026")
        assert flt.describe_reserved(s, "department_id", [ids["dpo_dept"]], {}) == "Отдел: ДПО"
