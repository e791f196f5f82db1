"""The import wizard in a browser (components/import_wizard.py, state/imports.py,
services/imports.py): a Bitrix24-style Windows-1251 «;» CSV of leads made by hand here goes
through upload → automatic mapping → the check (progress, counts, rejected rows with their
Russian reasons, the Excel report of rejected rows read back) → the import → the list shows
the new leads → /settings → Импорт lists the job and undoes it. A manager has no «Импорт»;
an .xlsx of deals across two pipelines is imported straight away (without the check)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import openpyxl
from playwright.sync_api import Page, expect

from rxcrm.models import imports as st
from rxcrm.services.imports import status_label

from .conftest import login

# the status labels as the service words them (the wording is the service's: «Импорт завершён»…)
CHECKED, DONE, UNDONE = status_label(st.CHECKED, True), status_label(st.DONE), status_label(st.UNDONE)
RUN_TIMEOUT = 30000  # the import task works queued jobs about every second; a shared 2-core box is slow
SHOTS = Path("/tmp/notes")

HEADERS = ["ID", "Название лида", "Имя", "Фамилия", "Мобильный телефон", "Рабочий e-mail", "Стадия", "Источник",
           "Ответственный", "Дата создания", "Сумма"]
GOOD = [
    ["e2e-9001", "Импортный лид Альфа", "Пётр", "Импортов", "+7 (916) 555-01-01", "alfa@e2e-import.example",
     "Не обработан", "Веб-сайт", "manager1", "21.05.2024 12:30:00", "45 000,50"],
    ["e2e-9002", "Импортный лид Бета", "Анна", "Импортова", "8 916 555-01-02", "beta@e2e-import.example",
     "Знакомство", "Звонок", "manager1", "01.02.2024", ""],
    ["e2e-9003", "Импортный лид Гамма", "Олег", "Импортов", "+79165550103", "", "Не обработан", "", "admin", "", "1000"],
]
BAD = [
    ["e2e-9004", "Импортный лид Плохой телефон", "Иван", "Белов", "12-34", "", "Не обработан", "", "manager1", "", ""],
    ["e2e-9005", "Импортный лид Чужая стадия", "Иван", "Чернов", "+79165550105", "", "Переговоры", "", "manager1",
     "", ""],
]
QUERY = "Импортный"  # a word only the file's titles have (the seed has none)


def _leads_csv(tmp_path: Path) -> Path:
    """As Bitrix24 exports leads: Windows-1251, «;», CRLF; good rows first, then the bad ones."""
    lines = [";".join(HEADERS)] + [";".join(r) for r in GOOD + BAD]
    path = tmp_path / "leads_b24.csv"
    path.write_bytes("\r\n".join(lines).encode("cp1251"))
    return path


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"e2e-import-{name}.png"))


def _open_wizard(page: Page, section: str, path: Path):
    page.goto(f"/{section}")
    page.get_by_test_id("import-button").click()
    wizard = page.get_by_test_id("import-wizard")
    expect(wizard).to_be_visible()
    page.locator("input[type=file]").set_input_files(str(path))
    expect(wizard.get_by_test_id("import-file-name")).to_have_text(path.name, timeout=RUN_TIMEOUT)
    return wizard


def _count(wizard, what: str):
    return wizard.get_by_test_id(f"import-{what}")


def test_import_wizard_from_upload_to_report(page, tmp_path):
    path = _leads_csv(tmp_path)
    login(page, "admin")
    wizard = _open_wizard(page, "leads", path)

    # «Сопоставление полей»: every column of the file, each mapped by its Bitrix24 header
    columns = wizard.get_by_test_id("import-column")
    expect(columns).to_have_count(len(HEADERS))
    expect(wizard).to_contain_text("Сопоставление полей")
    for i, header in enumerate(HEADERS):
        expect(columns.nth(i)).to_contain_text(header)
    phone = columns.nth(HEADERS.index("Мобильный телефон")).get_by_test_id("import-target")
    expect(phone).to_have_text("Мобильный телефон")
    expect(columns.nth(HEADERS.index("Стадия")).get_by_test_id("import-target")).to_have_text("Стадия")
    expect(columns.nth(HEADERS.index("Рабочий e-mail")).get_by_test_id("import-target")).to_have_text(
        "Рабочий e-mail")
    expect(wizard.get_by_test_id("import-encoding")).to_have_text("Windows-1251")  # detected, not asked
    expect(wizard.get_by_test_id("import-duplicates")).to_be_visible()
    _shot(page, "map")

    # the check: nothing written, the counts of what the import would do, the rejected rows
    wizard.get_by_test_id("import-check").click()
    expect(wizard.get_by_test_id("import-progress")).to_be_visible()
    expect(wizard.get_by_test_id("import-run")).to_be_visible(timeout=RUN_TIMEOUT)  # shown once the check ends
    expect(wizard.get_by_test_id("import-status")).to_have_text(CHECKED)
    expect(_count(wizard, "created")).to_have_text("3")
    expect(_count(wizard, "updated")).to_have_text("0")
    expect(_count(wizard, "skipped")).to_have_text("0")
    expect(_count(wizard, "rejected")).to_have_text("2")
    expect(wizard.get_by_test_id("import-progress-text")).to_contain_text("5 из 5")
    rejects = wizard.get_by_test_id("import-reject")
    expect(rejects).to_have_count(2)
    expect(rejects.nth(0)).to_contain_text("Мобильный телефон")
    expect(rejects.nth(0)).to_contain_text("12-34")
    expect(rejects.nth(0)).to_contain_text("введите номер полностью")
    expect(rejects.nth(1)).to_contain_text("Стадия")
    expect(rejects.nth(1)).to_contain_text("Стадия «Переговоры» не найдена")
    _shot(page, "check")

    # the report of rejected rows: the file's own columns as text + «Ошибка импорта»
    with page.expect_download(timeout=60000) as dl:
        wizard.get_by_test_id("import-report").click()
    report = tmp_path / "report.xlsx"
    dl.value.save_as(report)
    assert dl.value.suggested_filename.endswith(".xlsx")
    ws = openpyxl.load_workbook(report, read_only=True).active
    got = [list(r) for r in ws.iter_rows(values_only=True)]
    assert got[0] == HEADERS + ["Ошибка импорта"]
    assert len(got) == 3, got
    for want, row in zip(BAD, got[1:]):
        assert [v or "" for v in row[:len(HEADERS)]] == want  # the original values, as text
    assert got[1][-1].startswith("Строка 5: «Мобильный телефон» = «12-34»") and "полностью" in got[1][-1]
    assert got[2][-1].startswith("Строка 6: «Стадия»") and "Переговоры" in got[2][-1]

    # the import itself
    wizard.get_by_test_id("import-run").click()
    final = wizard.get_by_test_id("import-final")
    expect(final).to_have_text(DONE, timeout=RUN_TIMEOUT)
    expect(_count(wizard, "created")).to_have_text("3")
    expect(_count(wizard, "rejected")).to_have_text("2")
    expect(wizard.get_by_test_id("import-undo")).to_be_visible()
    _shot(page, "done")
    wizard.get_by_test_id("import-finish").click()
    expect(wizard).to_be_hidden()

    page.goto(f"/leads?view=list&q={QUERY}")
    expect(page.get_by_test_id("list-total")).to_have_text("Всего: 3")
    expect(page.get_by_test_id("list-row").filter(has_text="Импортный лид Альфа")).to_have_count(1)
    expect(page.get_by_test_id("list-row").filter(has_text="Плохой телефон")).to_have_count(0)

    # /settings → Импорт: the job, and its undo
    page.goto("/settings")
    page.get_by_test_id("tab-imports").click()
    job = page.get_by_test_id("import-job").filter(has_text=path.name)
    expect(job).to_have_count(1)
    expect(job).to_contain_text(DONE)
    expect(job).to_contain_text("Лиды")
    job.get_by_test_id("job-undo").click()
    page.get_by_test_id("job-undo-confirm").click()
    expect(job).to_contain_text(UNDONE, timeout=RUN_TIMEOUT)
    expect(job.get_by_test_id("job-undo")).to_have_count(0)
    _shot(page, "undone")
    page.goto(f"/leads?view=list&q={QUERY}")
    expect(page.get_by_test_id("empty-hint")).to_contain_text("Ничего не найдено")
    expect(page.get_by_test_id("list-row").filter(has_text="Импортный лид Альфа")).to_have_count(0)


def test_import_button_hidden_for_a_manager(page):
    login(page, "manager1")
    page.goto("/leads")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    expect(page.get_by_test_id("kanban-column").first).to_be_visible()
    expect(page.get_by_test_id("import-button")).to_have_count(0)
    page.goto("/leads?view=list")
    expect(page.get_by_test_id("list-total")).to_be_visible()
    expect(page.get_by_test_id("import-button")).to_have_count(0)


def _deals_xlsx(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ID", "Название сделки", "Воронка", "Стадия сделки", "Сумма", "Ответственный"])
    ws.append([8001, "Импортная сделка ДПО", "Воронка ДПО 2 часть", "Регистрация", 45000.0, "manager1"])
    ws.append([8002, "Импортная сделка Магистратура", "Магистратура (платный приём)", "Заявка", "350 000",
               "admin"])
    ws.append([8003, "Импортная сделка ДПО вторая", "Воронка ДПО 2 часть", "Интерес", 1000, "manager1"])
    ws.append([8004, "Импортная сделка без договора", "Воронка ДПО 2 часть", "Договор", 1000, "manager1"])
    path = tmp_path / "deals_b24.xlsx"
    wb.save(path)
    return path


def test_deals_xlsx_across_two_pipelines_imported_without_check(page, tmp_path, app_env):
    path = _deals_xlsx(tmp_path)
    login(page, "admin")
    wizard = _open_wizard(page, "deals", path)
    expect(wizard.get_by_test_id("import-column")).to_have_count(6)
    expect(wizard.get_by_test_id("import-column").nth(2).get_by_test_id("import-target")).to_have_text("Воронка")
    expect(wizard.get_by_test_id("import-encoding")).to_have_count(0)  # not a CSV: nothing to ask
    wizard.get_by_test_id("import-run-now").click()
    expect(wizard.get_by_test_id("import-final")).to_have_text(DONE, timeout=RUN_TIMEOUT)
    expect(_count(wizard, "created")).to_have_text("3")
    expect(_count(wizard, "rejected")).to_have_text("1")
    rejects = wizard.get_by_test_id("import-reject")
    expect(rejects).to_have_count(1)
    expect(rejects.first).to_contain_text("Номер договора")
    _shot(page, "deals-done")
    wizard.get_by_test_id("import-finish").click()
    expect(wizard).to_be_hidden()
    db = sqlite3.connect(app_env["REFLEX_DB_URL"].removeprefix("sqlite:///"))
    try:
        got = db.execute("select d.title, p.code, s.name from deal d join pipeline p on p.id = d.pipeline_id "
                         "join stage s on s.id = d.stage_id where d.title like 'Импортная сделка%' "
                         "and d.deleted_at is null order by d.title").fetchall()
    finally:
        db.close()
    assert got == [("Импортная сделка ДПО", "dpo", "Регистрация"),
                   ("Импортная сделка ДПО вторая", "dpo", "Интерес"),
                   ("Импортная сделка Магистратура", "masters", "Заявка")]
    page.goto("/deals?view=list&q=Импортная")  # the default pipeline (ДПО) shows its two
    expect(page.get_by_test_id("list-row").filter(has_text="Импортная сделка ДПО вторая")).to_have_count(1)
    # undone from the wizard itself (as the person would after a wrong file): the other browser
    # tests read the same database and must find it as it was
    wizard = _open_wizard(page, "deals", path)
    wizard.get_by_test_id("import-run-now").click()
    expect(wizard.get_by_test_id("import-final")).to_have_text(DONE, timeout=RUN_TIMEOUT)
    expect(_count(wizard, "created")).to_have_text("0")  # the same file again: nothing duplicated
    wizard.get_by_test_id("import-finish").click()
    page.goto("/settings")
    page.get_by_test_id("tab-imports").click()
    job = page.get_by_test_id("import-job").filter(has_text=path.name).filter(has_text="3 · 0")
    expect(job).to_have_count(1)
    job.get_by_test_id("job-undo").click()
    page.get_by_test_id("job-undo-confirm").click()
    expect(job).to_contain_text(UNDONE, timeout=RUN_TIMEOUT)
    db = sqlite3.connect(app_env["REFLEX_DB_URL"].removeprefix("sqlite:///"))
    try:
        left = db.execute("select count(*) from deal where title like 'Импортная сделка%' "
                          "and deleted_at is null").fetchone()[0]
    finally:
        db.close()
    assert left == 0
