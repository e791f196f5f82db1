"""State handler tests for /analytics: on_load from the URL, the filter events, sorting, the
funnel click → the filtered list, saved views, bad input keeps the page usable; the page builds."""
from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from rxcrm.db import migrate, session_scope
from rxcrm.models import Deal, FilterPreset, User
from rxcrm.services import auth, items
from rxcrm.services.bootstrap import ensure_defaults

from . import factories as f


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def app_db():
    migrate()
    with session_scope() as s:
        ensure_defaults(s)
    import rxcrm.rxcrm  # noqa: F401  (registers the pages and states)


def _state(monkeypatch, query: dict | None = None, login: str = "anhead", role: str = "head"):
    from rxcrm.state import analytics as mod
    with session_scope() as s:
        if s.exec(select(User).where(User.login == login)).first() is None:
            f.user(s, login, role=role, full_name="Аналитикова Анна")
        m = s.exec(select(User).where(User.login == "anmgr")).first() or f.user(s, "anmgr", full_name="Петров Пётр")
        if not s.exec(select(Deal).where(Deal.title == "Аналитика A")).first():
            d = f.deal(s, "Аналитика A", m, amount=1000)
            items.move_stage(s, auth.actor_for(m), "deal", d.id, f.stage(s, "dpo", "REGISTRATION").id)
        token, _ = auth.login(s, login, "demo")
    st = f.logged_in(mod.AnalyticsState, token, "/analytics" + ("?" + urlencode(query) if query else ""))
    st.check_login()
    assert st.user_id
    return st


def test_on_load_shows_the_dashboard(app_db, monkeypatch):
    st = _state(monkeypatch, {"period": "year"})
    run(st.on_load())
    assert st.an_error == "" and st.an_loaded
    assert st.an_period == "year" and st.an_pipeline  # the head's department pipeline was chosen
    assert [k.label for k in st.an_kpis][:3] == ["Новые лиды", "Новые сделки", "Выиграно"]
    names = [r.name for r in st.deal_rows]
    assert names[:2] == ["Интерес", "Регистрация"] and names[-1] == "Сделка успешна"
    reg = st.deal_rows[1]
    assert reg.count >= 1 and "reached_stage=" in reg.href
    fig = st.deal_fig
    assert fig.data[0].type == "funnel" and list(fig.data[0].y)[:2] == ["Интерес", "Регистрация"]
    assert "₽" in fig.layout.yaxis.ticktext[0] and "\u202f" in fig.layout.yaxis.ticktext[0] or reg.amount < 1000
    # a click on the «Регистрация» bar opens its list
    ev = st.deal_click([{"pointNumber": 1, "curveNumber": 0}])
    assert reg.href in str(ev)
    assert st.deal_click([]) is None and st.deal_click([{"pointNumber": 99}]) is None


def test_filters_sorting_and_bad_input(app_db, monkeypatch):
    st = _state(monkeypatch, {"period": "quarter"})
    run(st.on_load())
    st.set_conv_dim("manager")
    assert st.conv_dim == "manager" and st.conv_dim_label == "Менеджер"
    st.set_conv_dim("nonsense")
    assert st.conv_dim == "manager"
    st.sort_conv("label")
    labels = [r.label for r in st.conv_rows]
    assert labels == sorted(labels, key=str.casefold)
    st.sort_mgr("in_work")
    values = [r.in_work for r in st.mgr_sorted]
    assert values == sorted(values, reverse=True)
    run(st.set_filter("an_source", "Звонок"))
    assert st.an_source == "Звонок" and "Звонок" in st.an_subtitle
    run(st.set_filter("user_id", "1"))  # not a filter: ignored
    run(st.set_period("custom"))  # waits for the dates, nothing reloaded yet
    assert st.an_period == "custom"
    run(st.apply_dates({"date_from": "2026-11-30", "date_to": "2026-11-01"}))
    assert st.an_error == "Конец периода раньше начала"
    run(st.apply_dates({"date_from": "2026-11-01", "date_to": "2026-11-30"}))
    assert st.an_error == "" and st.an_subtitle.startswith("1 ноября 2026 — 30 ноября 2026")
    run(st.reset_filters())
    assert (st.an_period, st.an_source) == ("month", "all")


def test_bad_url_does_not_break_the_page(app_db, monkeypatch):
    st = _state(monkeypatch, {"period": "decade", "pipeline": "x"})
    run(st.on_load())
    assert st.an_error  # says what is wrong …
    assert st.an_period == "month"  # … and shows the default dashboard


def test_saved_views(app_db, monkeypatch):
    st = _state(monkeypatch, {"period": "year"})
    run(st.on_load())
    run(st.set_filter("an_source", "Лендинг"))
    st.save_preset({"name": "Лендинг за год", "shared": True})
    assert [p.name for p in st.an_presets] == ["Лендинг за год"] and st.an_preset_id
    with session_scope() as s:
        row = s.get(FilterPreset, st.an_preset_id)
        assert row.page == "analytics" and row.filters["source"] == "Лендинг" and row.filters["period"] == "year"
        assert row.is_shared
    run(st.reset_filters())
    run(st.apply_preset(st.an_presets[0].id))
    assert (st.an_period, st.an_source) == ("year", "Лендинг")
    st.save_preset({"name": "  "})  # no name: refused, nothing lost
    assert len(st.an_presets) == 1
    st.pin_preset(st.an_presets[0].id)
    assert st.an_presets[0].is_default
    fresh = _state(monkeypatch, {})
    run(fresh.on_load())  # no URL filter: the pinned view opens
    assert (fresh.an_period, fresh.an_source) == ("year", "Лендинг")
    st.delete_preset(st.an_presets[0].id)
    assert st.an_presets == [] and st.an_preset_id == 0


def test_download_writes_a_private_export(app_db, monkeypatch):
    from rxcrm.services import export
    st = _state(monkeypatch, {"period": "year"})
    run(st.on_load())
    ev = run(st.download())
    token = str(ev).split("/api/export/")[1].split("'")[0].split('"')[0].split(")")[0]
    found = export.export_file(token, st.user_id)
    assert found is not None and found[1].startswith("Аналитика_")
    assert export.export_file(token, st.user_id + 1000) is None


def test_page_builds(app_db):
    from rxcrm.pages.analytics import analytics_page
    assert analytics_page() is not None


def _replaced_url(ev) -> dict[str, str]:
    """The query of the URL a `history.replaceState` event writes."""
    import re
    from urllib.parse import parse_qs, urlsplit
    url = re.search(r"replaceState\(null, '', '(/analytics[^']*)'\)", str(ev)).group(1)
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_the_url_always_says_what_is_shown(app_db, monkeypatch):
    """A saved view with another period (year) opened from a month URL: the URL says year."""
    st = _state(monkeypatch, {"period": "year", "source": "Звонок"})
    run(st.on_load())
    st.save_preset({"name": "Звонки за год"})
    view_id = st.an_preset_id
    st = _state(monkeypatch, {"period": "month"})
    assert _replaced_url(run(st.on_load()))["period"] == "month"
    q = _replaced_url(run(st.apply_preset(view_id)))
    assert (st.an_period, st.an_source) == ("year", "Звонок")
    assert q["period"] == "year" and q["source"] == "Звонок" and q["view"] == str(view_id)
    # a reload of that URL shows the same dashboard and marks the same view
    again = _state(monkeypatch, q)
    q2 = _replaced_url(run(again.on_load()))
    assert (again.an_period, again.an_source, again.an_preset_id) == ("year", "Звонок", view_id)
    assert q2 == q
    # a filter change leaves the view: the URL no longer names it
    q3 = _replaced_url(run(again.set_period("quarter")))
    assert q3["period"] == "quarter" and "view" not in q3
    # the pinned default view opened on a bare /analytics: the URL names its period and the view
    again.pin_preset(view_id)
    fresh = _state(monkeypatch, {})
    q4 = _replaced_url(run(fresh.on_load()))
    assert (q4["period"], q4["view"]) == ("year", str(view_id))
    again.pin_preset(view_id)


def test_the_catalog_keeps_the_russian_words_of_the_services():
    """Labels the state words from the catalog say in Russian exactly what the services say
    (periods, breakdowns, the groups without a value, the figures' words)."""
    from rxcrm import i18n
    from rxcrm.services import analytics as an
    from rxcrm.services import charts
    assert {k: i18n.RU[f"analytics.period.{k}"] for k, _ in an.PERIODS} == dict(an.PERIODS)
    assert {k: i18n.RU[f"analytics.dim.{k}"] for k in an.DIMENSION_LABEL} == an.DIMENSION_LABEL
    assert {k: i18n.RU[f"analytics.conv.none.{k}"] for k in an.DIMENSION_LABEL} == \
        {k: an._empty_label(k) for k in an.DIMENSION_LABEL}
    assert {k: i18n.RU[f"analytics.chart.{k}"] for k in charts.WORDS} == charts.WORDS
    assert i18n.RU["analytics.lost.no_reason"] == an.NO_REASON


def test_the_dashboard_speaks_english(app_db, monkeypatch):
    """The same dashboard in English: labels, KPIs, the filter in words and the figures'
    words follow the language at once (no reload); back in Russian, it is Russian again."""
    import re
    st = _state(monkeypatch, {"period": "custom", "from": "2026-11-01", "to": "2026-11-30"})
    run(st.on_load())
    ru_kpis = [k.label for k in st.an_kpis]
    assert st.an_subtitle.startswith("1 ноября 2026 — 30 ноября 2026")
    assert st.deal_title.startswith("Воронка сделок — ") and st.dyn_title == "По неделям"
    st.lang = "en"
    st.redraw_figures()  # the page asks for it when the language changes
    assert [k.label for k in st.an_kpis] == ["New leads", "New deals", "Won", "Lost", "Deal conversion",
                                              "Overdue activities"]
    notes = [k.note for k in st.an_kpis]
    assert notes[0] == "created in the period" and notes[4].startswith("from “Интерес”")
    assert notes[5].startswith("forgotten deals: ")
    assert st.an_subtitle.startswith("1 November 2026 — 30 November 2026")
    assert st.deal_title.startswith("Deal funnel — ") and st.deal_summary.startswith("Conversion to won: ")
    assert st.lead_title.startswith("Lead funnel")
    assert [o.label for o in st.an_period_options] == ["This month", "Last month", "This quarter", "This year",
                                                       "Custom period"]
    assert [o.label for o in st.an_user_options][0] == "All managers"
    assert [o.label for o in st.an_source_options][0] == "All sources"
    assert st.dyn_title == "By week" and all("нояб" not in x and "дек" not in x for x in st.dyn_labels)
    assert "Nov" in st.dyn_labels[0]
    st.set_conv_dim("lead_source")
    assert st.conv_dim_label == "Lead source"
    st.set_conv_dim("manager")
    assert st.conv_dim_label == "Manager"
    # the figures: nothing Russian but the data (stage names)
    fig = st.deal_fig
    assert "Click to open the list" in fig.data[0].hovertext[0] and "items" in fig.data[0].hovertext[0]
    assert [t.name for t in st.time_fig.data] == ["90th percentile", "Median"]
    assert st.time_fig.layout.xaxis.ticksuffix == " days"
    assert [t.name for t in st.dyn_fig.data] == ["New leads", "New deals", "Won", "Lost"]
    stage_names = {r.name for r in st.deal_rows}
    words = re.sub("|".join(map(re.escape, sorted(stage_names, key=len, reverse=True))), "",
                   " ".join(fig.data[0].hovertext) + " ".join(fig.layout.yaxis.ticktext))
    assert not re.search("[А-Яа-яЁё]", words), words
    st.lang = "ru"
    st.redraw_figures()
    assert [k.label for k in st.an_kpis] == ru_kpis
    assert [t.name for t in st.time_fig.data] == ["90-й перцентиль", "Медиана"]


def test_groups_without_a_value_and_lost_deals_without_a_reason_are_named_in_the_language(app_db, monkeypatch):
    from rxcrm.services import analytics as an
    from rxcrm.state.analytics import ConvRowView
    st = _state(monkeypatch, {"period": "year"})
    run(st.on_load())
    st.conv_data = {"utm": [ConvRowView(label="Без кампании", key="", created=2),
                            ConvRowView(label="autumn", key="autumn", created=1)],
                    "lead_source": [ConvRowView(label="Не указан", key="", created=1)]}
    st.lost_labels, st.lost_counts = [an.NO_REASON, "Дорого"], [2, 1]
    st._draw()  # as a load does
    st.redraw_figures()  # already drawn in this language: nothing to do
    st.set_conv_dim("utm")
    assert [r.label for r in st.conv_rows] == ["Без кампании", "autumn"]
    assert list(st.lost_fig.data[0].y) == ["Причина не указана", "Дорого"]
    st.lang = "en"
    st.redraw_figures()
    assert [r.label for r in st.conv_rows] == ["No campaign", "autumn"]
    st.set_conv_dim("lead_source")
    assert [r.label for r in st.conv_rows] == ["Not specified"]
    assert list(st.lost_fig.data[0].y) == ["No reason given", "Дорого"]
