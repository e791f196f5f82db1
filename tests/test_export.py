"""Excel export of exactly the filtered view, the private file store and the download
endpoint, on SQLite and PostgreSQL (known answers)."""
from __future__ import annotations

import os
import stat
import warnings
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import openpyxl
import pandas as pd
import pytest
from sqlmodel import select
from starlette.applications import Starlette

with warnings.catch_warnings():  # starlette 1.x nudges towards httpx2; httpx is the pinned test dep
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from rxcrm import api, settings, web
from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, User
from rxcrm.services import auth, export, listing
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import AccessDenied, ValidationFailed
from rxcrm.services.export import export_xlsx

from . import factories as f

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
LANDING = {"source": ["Лендинг"]}
COLUMNS = ["id", "title", "amount", "created_at", "next_activity_at", "close_date", "is_repeat",
           "stage_id", "responsible_id"]
HEADERS = ["ID", "Сделка", "Сумма", "Дата создания", "Дела", "Предполагаемая дата закрытия",
           "Повторная сделка", "Стадия", "Ответственный"]


@pytest.fixture(autouse=True)
def export_dir(tmp_path, monkeypatch):
    d = tmp_path / "exports"
    monkeypatch.setattr(settings, "EXPORT_DIR", str(d))
    return d


@pytest.fixture
def world(db):
    """ДПО: manager1 (3 landing deals + 1 call), manager2 (1 landing), a head of ДПО;
    admissions: one landing deal. Landing deals: 5 in all."""
    with session_scope(db) as s:
        m1 = f.user(s, "manager1", full_name="Петров Иван")
        m2 = f.user(s, "manager2", full_name="Сидорова Анна")
        head = f.user(s, "head1", role="head", full_name="Волков Олег")
        adm = f.user(s, "admissions1", dept_code="admissions", full_name="Орлова Мария")
        boss = f.user(s, "admin", role="admin", dept_code=None, full_name="Админ")
        d1 = f.deal(s, "Python — Иванов", m1, amount=45000, source="Лендинг",
                    created_at=NOW - timedelta(days=3), next_activity_at=NOW + timedelta(hours=5),
                    close_date=date(2026, 12, 15), is_repeat=True)
        d2 = f.deal(s, "=HYPERLINK(\"http://evil\";\"x\")", m1, amount=30000, source="Лендинг",
                    created_at=NOW - timedelta(days=2))
        d3 = f.deal(s, "Управление\x0b проектами", m1, stage_code="REGISTRATION", amount=12345,
                    source="Лендинг", created_at=NOW - timedelta(days=1))
        d4 = f.deal(s, "Звонок", m1, amount=5000, source="Звонок", created_at=NOW - timedelta(hours=2))
        d5 = f.deal(s, "Проекты — Кузнецова", m2, amount=20000, source="Лендинг", created_at=NOW - timedelta(days=4))
        d6 = f.deal(s, "Магистратура — Орлова", adm, pipe_code="masters", stage_code="REGISTRATION",
                    amount=300000, source="Лендинг", created_at=NOW - timedelta(days=5),
                    custom={"masters_exam_score": 245, "masters_consent_date": "2026-08-01",
                            "masters_yearly_cost": "310000.50"})
        ids = dict(d1=d1.id, d2=d2.id, d3=d3.id, d4=d4.id, d5=d5.id, d6=d6.id, m1=m1.id, m2=m2.id)
        users = {u.login: actor_for(u) for u in (m1, m2, head, adm, boss)}
    return db, ids, users


def run_export(db, actor, filters, columns, tmp_path, name="out.xlsx", **kw):
    dest = tmp_path / name
    with session_scope(db) as s:
        n = export_xlsx(s, actor, "deal", filters, columns, dest=dest, now=NOW, **kw)
    return n, dest


def test_file_has_exactly_the_filtered_rows_with_the_chosen_columns(world, tmp_path):
    db, ids, u = world
    n, dest = run_export(db, u["admin"], LANDING, COLUMNS, tmp_path)
    assert n == 5
    df = pd.read_excel(dest)
    assert list(df.columns) == HEADERS
    # newest first, as the list shows it
    assert list(df["ID"]) == [ids["d3"], ids["d2"], ids["d1"], ids["d5"], ids["d6"]]
    with session_scope(db) as s:
        items, _ = listing.query_items(s, u["admin"], "deal", LANDING, limit=None, now=NOW, action="export")
    assert list(df["ID"]) == [i.id for i in items]
    row = df[df["ID"] == ids["d1"]].iloc[0]
    assert row["Сделка"] == "Python — Иванов"
    assert row["Сумма"] == 45000
    assert row["Дата создания"] == pd.Timestamp(2026, 11, 17, 12, 0)  # Moscow time, naive
    assert row["Дела"] == pd.Timestamp(2026, 11, 20, 17, 0)
    assert row["Предполагаемая дата закрытия"] == pd.Timestamp(2026, 12, 15)
    assert row["Повторная сделка"] == "Да"
    assert row["Стадия"] == "Интерес"
    assert row["Ответственный"] == "Петров Иван"
    other = df[df["ID"] == ids["d5"]].iloc[0]
    assert pd.isna(other["Дела"]) and other["Повторная сделка"] == "Нет"


def test_cells_are_typed_and_the_sheet_is_formatted(world, tmp_path):
    db, ids, u = world
    _, dest = run_export(db, u["admin"], LANDING, COLUMNS, tmp_path)
    wb = openpyxl.load_workbook(dest)
    ws = wb.active
    assert ws.title == "Сделки"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:I6"
    assert all(c.font.bold for c in ws[1])
    assert ws.column_dimensions["B"].width >= 10
    by_id = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    r1 = by_id[ids["d1"]]
    assert r1[0].data_type == "n" and r1[0].value == ids["d1"]
    amount = r1[2]
    assert amount.data_type == "n" and amount.value == 45000 and amount.number_format == '#,##0 "₽"'
    created = r1[3]
    assert created.is_date and created.value == datetime(2026, 11, 17, 12, 0)
    assert created.number_format == "DD.MM.YYYY HH:MM"
    assert r1[4].is_date and r1[4].value == datetime(2026, 11, 20, 17, 0)
    assert r1[5].is_date and r1[5].number_format == "DD.MM.YYYY" and r1[5].value == datetime(2026, 12, 15)
    assert by_id[ids["d5"]][4].value is None  # no planned activity → empty cell
    # text from web forms never becomes a formula; characters Excel refuses are dropped
    evil = by_id[ids["d2"]][1]
    assert evil.data_type == "s" and evil.value.startswith("=HYPERLINK")
    assert by_id[ids["d3"]][1].value == "Управление проектами"


def test_custom_fields_export_typed(world, tmp_path):
    db, ids, u = world
    cols = ["id", "custom.masters_exam_score", "custom.masters_consent_date", "custom.masters_yearly_cost"]
    n, dest = run_export(db, u["admin"], {"id": [ids["d6"]]}, cols, tmp_path)
    assert n == 1
    ws = openpyxl.load_workbook(dest).active
    assert [c.value for c in ws[1]] == ["ID", "Сумма баллов", "Дата подачи согласия",
                                        "Стоимость в год (с учетом скидки)"]
    _, score, consent, cost = ws[2]
    assert score.value == 245 and score.number_format == "#,##0"
    assert consent.is_date and consent.value == datetime(2026, 8, 1)
    assert cost.data_type == "n" and cost.value == pytest.approx(310000.5)


def test_empty_columns_mean_the_default_columns(world, tmp_path):
    db, _, u = world
    _, dest = run_export(db, u["admin"], LANDING, [], tmp_path)
    assert list(pd.read_excel(dest).columns) == ["Сделка", "Стадия", "Контакт", "Сумма",
                                                  "Образовательная программа", "Дела", "Ответственный",
                                                  "Дата создания"]


def test_manager_exports_only_what_the_matrix_allows(world, tmp_path):
    db, ids, u = world
    n, dest = run_export(db, u["manager1"], LANDING, ["id"], tmp_path, "m1.xlsx")
    assert n == 4  # export level "department" (what the list shows): never the admissions deal
    assert ids["d6"] not in set(pd.read_excel(dest)["ID"])
    from rxcrm.models import RolePermission
    with session_scope(db) as s:
        rp = s.exec(select(RolePermission).where(RolePermission.role_code == "manager",
                                                 RolePermission.entity == "deal",
                                                 RolePermission.action == "export")).one()
        rp.level = "own"
        s.add(rp)
    n, dest = run_export(db, u["manager1"], LANDING, ["id"], tmp_path, "m1own.xlsx")
    assert n == 3  # level "own": not manager2's deal either
    assert set(pd.read_excel(dest)["ID"]) == {ids["d1"], ids["d2"], ids["d3"]}
    n, dest = run_export(db, u["head1"], LANDING, ["id"], tmp_path, "head.xlsx")
    assert n == 4  # the whole ДПО department, never admissions
    assert ids["d6"] not in set(pd.read_excel(dest)["ID"])


def test_no_export_right_is_refused(world, tmp_path):
    db, _, u = world
    from rxcrm.models import RolePermission
    with session_scope(db) as s:
        rp = s.exec(select(RolePermission).where(RolePermission.role_code == "manager",
                                                 RolePermission.entity == "deal",
                                                 RolePermission.action == "export")).one()
        rp.level = "none"
        s.add(rp)
    with pytest.raises(AccessDenied):
        run_export(db, u["manager1"], LANDING, ["id"], tmp_path)
    assert not (tmp_path / "out.xlsx").exists()


def test_unknown_column_is_refused(world, tmp_path):
    db, _, u = world
    with pytest.raises(ValidationFailed) as err:
        run_export(db, u["admin"], LANDING, ["title", "password_hash"], tmp_path)
    assert "неизвестные колонки" in err.value.message and "password_hash" in err.value.message
    assert not (tmp_path / "out.xlsx").exists()


def test_audit_record_has_the_row_count(world, tmp_path):
    db, _, u = world
    run_export(db, u["manager1"], LANDING, ["id", "title"], tmp_path)
    with session_scope(db) as s:
        rec = s.exec(select(AuditRecord).where(AuditRecord.action == "export")).one()
        assert rec.user_id == u["manager1"].user_id and rec.entity_type == "deal"
        assert rec.details == {"filters": {"source": ["Лендинг"]}, "columns": ["id", "title"], "rows": 4}


def test_chunks_keep_the_view_order_and_report_progress(world, tmp_path, monkeypatch):
    db, ids, u = world
    monkeypatch.setattr(export, "CHUNK", 2)
    calls = []
    n, dest = run_export(db, u["admin"], LANDING, ["id", "amount"], tmp_path, sort="amount", desc=False,
                         progress=lambda done, total: calls.append((done, total)))
    assert n == 5
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert list(pd.read_excel(dest)["ID"]) == [ids["d3"], ids["d5"], ids["d2"], ids["d1"], ids["d6"]]


def test_empty_view_gives_a_header_only_file(world, tmp_path):
    db, _, u = world
    calls = []
    n, dest = run_export(db, u["admin"], {"source": ["Выставка"]}, ["id", "title"], tmp_path,
                         progress=lambda d, t: calls.append((d, t)))
    assert n == 0 and calls == [(0, 0)]
    df = pd.read_excel(dest)
    assert list(df.columns) == ["ID", "Сделка"] and len(df) == 0


# ---- file store -----------------------------------------------------------------------

def test_store_gives_the_file_only_to_its_owner_within_the_hour(export_dir):
    token, path = export.new_export(7, "deal", now=NOW)
    assert path.parent == export_dir and stat.S_IMODE(export_dir.stat().st_mode) == 0o700
    assert export.export_path(token, 7, now=NOW) is None  # not written yet
    path.write_bytes(b"xlsx")
    assert export.export_path(token, 7, now=NOW + timedelta(minutes=59)) == path
    assert export.export_file(token, 7, now=NOW)[1] == "Сделки_2026-11-20.xlsx"
    assert export.export_path(token, 8, now=NOW) is None  # another user
    assert export.export_path(token, None, now=NOW) is None
    assert export.export_path(token, 7, now=NOW + timedelta(hours=1)) is None  # expired
    for bad in ("../" + token, token + "/../x", "", "a" * 500, "short"):
        assert export.export_path(bad, 7, now=NOW) is None


def test_cleanup_removes_old_exports(export_dir):
    fresh, fresh_path = export.new_export(7, "lead", now=NOW)
    fresh_path.write_bytes(b"new")
    old, old_path = export.new_export(7, "lead", now=NOW - timedelta(hours=2))
    old_path.write_bytes(b"old")
    stray = export_dir / ".x.xlsx.abcd.part"  # an export that died half-way
    stray.write_bytes(b"")
    os.utime(stray, (NOW.timestamp() - 7200,) * 2)
    assert export.cleanup_exports(timedelta(hours=1), now=NOW) == 2
    assert not old_path.exists() and not stray.exists() and not (export_dir / f"{old}.json").exists()
    assert export.export_path(fresh, 7, now=NOW) == fresh_path


# ---- download endpoint ----------------------------------------------------------------

@pytest.fixture
def client(world, monkeypatch):
    db, ids, u = world
    monkeypatch.setenv("REFLEX_DB_URL", db)
    return TestClient(web.SecurityMiddleware(Starlette(routes=api.routes)))  # as served: behind the HTTP edge


def _login(db, login):
    with session_scope(db) as s:
        token, _ = auth.login(s, login, "demo")
    return token


def test_download_endpoint(world, client, tmp_path):
    db, ids, u = world
    token, path = export.new_export(ids["m1"], "deal")
    with session_scope(db) as s:
        export_xlsx(s, u["manager1"], "deal", LANDING, ["id", "title"], dest=path)
    url = f"/api/export/{token}"

    r = client.get(url)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = client.get(url, headers={"Cookie": "rxcrm_session=not-a-session"})
    assert r.status_code == 401

    other = _login(db, "manager2")
    r = client.get(url, headers={"Cookie": f"rxcrm_session={other}"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"

    owner = _login(db, "manager1")
    r = client.get(f"/api/export/{'x' * 32}", headers={"Cookie": f"rxcrm_session={owner}"})
    assert r.status_code == 404
    r = client.get(url, headers={"Cookie": f"rxcrm_session={owner}"})
    assert r.status_code == 200
    assert r.content == path.read_bytes()
    assert r.headers["content-type"] == export.XLSX_MIME
    name = export.export_filename("deal")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert f"filename*=UTF-8''{quote(name)}" in r.headers["content-disposition"]
    assert "no-store" in r.headers["cache-control"]


def test_a_forged_session_hash_header_is_not_a_session(world, client):
    db, ids, u = world
    token, _ = export.new_export(ids["m1"], "deal")
    owner = _login(db, "manager1")
    r = client.get(f"/api/export/{token}", headers={"x-rxcrm-session": auth.session_key(owner)})
    assert r.status_code == 401  # only the edge may say which session a request has


def test_lead_export_with_computed_columns(world, tmp_path):
    db, ids, u = world
    with session_scope(db) as s:
        m1 = s.get(User, ids["m1"])
        f.lead(s, "Вопрос с лендинга", m1, last="Смирнов", first="Алексей", phones=["8(903)555-44-33"],
               emails=["smirnov@yandex.ru"], source="Лендинг", created_at=NOW)
    with session_scope(db) as s:
        n = export_xlsx(s, u["manager1"], "lead", {}, ["name", "phone", "email", "stage_id"],
                        dest=tmp_path / "leads.xlsx", now=NOW)
    assert n == 1
    ws = openpyxl.load_workbook(tmp_path / "leads.xlsx").active
    assert ws.title == "Лиды"
    assert [c.value for c in ws[2]] == ["Смирнов Алексей", "+7 903 555-44-33", "smirnov@yandex.ru", "Не обработан"]
