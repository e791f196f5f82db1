"""/analytics in a browser as a head: the Plotly funnel renders with the stage names, a click
on a stage opens the deal list filtered to exactly the items the funnel counted, and the
Excel download holds the same numbers."""
from __future__ import annotations

import io
import re

import openpyxl
from playwright.sync_api import expect

from .conftest import login


def _digits(text: str) -> int:
    return int(re.sub(r"\D", "", text))


def test_head_clicks_a_funnel_stage_and_gets_the_matching_deal_list(page):
    login(page, "head")
    page.goto("/analytics?period=year")
    chart = page.get_by_test_id("an-deal-funnel-chart")
    expect(chart.locator("svg.main-svg").first).to_be_visible(timeout=30000)
    expect(chart.locator("g.ytick").filter(has_text="Договор")).to_have_count(1)
    expect(chart.locator("g.ytick").filter(has_text="Интерес")).to_have_count(1)
    expect(page.get_by_test_id("an-subtitle")).to_contain_text("Воронка ДПО 2 часть")
    # bars are in stage order: Интерес, Регистрация, Договор, …
    bars = chart.locator("g.point")
    expect(bars.nth(2).locator("text")).not_to_have_text("")
    funnel_number = _digits(bars.nth(2).locator("text").text_content())
    assert funnel_number > 0
    box = bars.nth(2).locator("path").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(re.compile(r"/deals\?view=list.*reached_stage=\d+"), timeout=30000)
    expect(page.get_by_test_id("filter-chip").filter(has_text="Дошли до «Договор» · 01.01–31.12.")).to_be_visible()
    expect(page.get_by_test_id("list-total")).to_have_text(f"Всего: {funnel_number}")


def test_excel_download_has_the_funnel(page):
    login(page, "head")
    page.goto("/analytics?period=year")
    chart = page.get_by_test_id("an-deal-funnel-chart")
    expect(chart.locator("g.point").first.locator("text")).not_to_have_text("")
    first = _digits(chart.locator("g.point").first.locator("text").text_content())
    with page.expect_download(timeout=60000) as dl:
        page.get_by_test_id("an-download").click()
    wb = openpyxl.load_workbook(io.BytesIO(open(dl.value.path(), "rb").read()))
    rows = list(wb["Воронка сделок"].iter_rows(values_only=True))
    assert rows[1][0] == "Интерес" and rows[1][1] == first
    assert "Менеджеры" in wb.sheetnames


def _switch_language(page, lang: str) -> None:
    page.get_by_test_id("user-menu").click()
    page.get_by_test_id(f"lang-{lang}").click()


def test_the_language_switch_redraws_the_figures_in_place(page):
    """English chosen on /analytics: the labels and the Plotly figures (legends, axis ticks,
    the funnel's second lines) change without a reload; back to Russian, they are Russian."""
    login(page, "director")
    page.goto("/analytics?period=year")
    times = page.get_by_test_id("an-times-chart")
    funnel = page.get_by_test_id("an-deal-funnel-chart")
    expect(times.locator("g.legend")).to_contain_text("Медиана", timeout=30000)
    expect(funnel.locator("g.ytick").nth(1)).to_contain_text("от пред.")
    try:
        _switch_language(page, "en")
        expect(page.get_by_test_id("an-kpi").first).to_contain_text("New leads")
        expect(times.locator("g.legend")).to_contain_text("Median")
        expect(times.locator("g.legend")).not_to_contain_text("Медиана")
        expect(funnel.locator("g.ytick").nth(1)).to_contain_text("of prev.")
        expect(page.get_by_test_id("an-dyn-chart").locator("g.xtick").first).to_contain_text("January")
        expect(page.get_by_test_id("an-subtitle")).to_contain_text("1 January")
    finally:
        _switch_language(page, "ru")
    expect(times.locator("g.legend")).to_contain_text("Медиана")
    expect(page.get_by_test_id("an-dyn-chart").locator("g.xtick").first).to_contain_text("Январь")
