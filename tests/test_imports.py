"""Import from CSV and Excel (services/imports.py): known answers from small files made
by hand here (not by our export), the check, duplicates, undo, the round trip, the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import select

from rxcrm.db import session_scope, transact
from rxcrm.models import (
    Activity, AuditRecord, Communication, Contact, Deal, ExternalRef, ImportJob, ImportReject, Lead, Notification,
    Stage, StageHistory, TimelineEvent, User,
)
from rxcrm.services import export, fmt, import_map, imports
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import AccessDenied, ServiceError, ValidationFailed
from rxcrm.services.phones import normalize_phone
from rxcrm.settings import TZ
from tests import factories as f

ROOT = Path(__file__).resolve().parents[1]

LEADS_CSV = [  # a Bitrix24 export of leads: Windows-1251, «;», quoted values with «;» and a line break
    "ID;Название лида;Имя;Фамилия;Отчество;Рабочий телефон;Мобильный телефон;Рабочий e-mail;Стадия;Источник;"
    "Ответственный;Дата создания;Сумма;Комментарий;Рекламная система",
    '501;Заявка с сайта;Пётр;Иванов;Сергеевич;+7 (495) 111-22-33;8 916 111-22-33;Ivanov@Mail.ru;Не обработан;'
    'Веб-сайт;Мария Петрова;21.05.2024 12:30:00;"45 000,50 руб.";"Звонить после 18:00; не раньше";yandex',
    '502;Звонок;Анна;Смирнова;;;+79162223344;;Знакомство;Звонок;manager1;01.02.2024;;"Первая строка\n'
    'вторая строка";',
    "503;Выставка;Олег;Ким;;;;oleg.kim@example.com;Некачественный;TRADE_SHOW;Мария Петрова;2023-11-05;;;",
]


def _csv(tmp_path: Path, lines: list[str], name="leads.csv", encoding="cp1251", sep=None) -> Path:
    text = "\r\n".join(lines if sep is None else [ln.replace(";", sep) for ln in lines])
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _people(s):
    admin = f.user(s, "boss", role="admin", dept_code=None, full_name="Администратор Системы")
    head = f.user(s, "head1", role="head", full_name="Начальник Отдела")
    maria = f.user(s, "mpetrova", full_name="Петрова Мария")
    f.user(s, "manager1", full_name="Сидоров Иван")
    mgr = f.user(s, "plain", full_name="Простой Менеджер")
    return admin, head, maria, mgr


@pytest.fixture
def people(db):
    with session_scope(db) as s:
        admin, head, maria, mgr = _people(s)
        return {"admin": admin.id, "head": head.id, "maria": maria.id, "mgr": mgr.id}


def _actor(s, uid):
    return actor_for(s.get(User, uid))


def run(db, uid, entity, path, *, mapping=None, options=None, dry=False, name=None) -> dict:
    """Start, configure, queue and work an import in-process; its summary."""
    def prepare(s):
        actor = _actor(s, uid)
        job, _info = imports.start(s, actor, entity, path, name or path.name)
        imports.configure(s, actor, job.id, mapping if mapping is not None else job.mapping, options or {})
        imports.request(s, actor, job.id, dry_run=dry)
        return job.id
    job_id = transact(prepare, db)
    imports.work(job_id, db)
    return transact(lambda s: {**imports.summary(s.get(ImportJob, job_id)), "mapping": s.get(ImportJob, job_id).mapping},
                    db, write=False)


def reasons(db, job_id, *, skipped=False) -> list[tuple[int, str, str]]:
    with session_scope(db, write=False) as s:
        rows = s.exec(select(ImportReject).where(ImportReject.job_id == job_id, ImportReject.skipped == skipped)
                      .order_by(ImportReject.row)).all()
        return [(r.row, e["column"], e["message"]) for r in rows for e in r.errors]


# ---- a Bitrix24 leads export in Windows-1251 --------------------------------------------------
def test_bitrix24_leads_csv_cp1251(db, people, tmp_path):
    path = _csv(tmp_path, LEADS_CSV)
    out = run(db, people["admin"], "lead", path)
    assert out["mapping"] == {"0": "external_id", "1": "title", "2": "first_name", "3": "last_name",
                              "4": "middle_name", "5": "phone.work", "6": "phone.mobile", "7": "email.work",
                              "8": "stage_id", "9": "source", "10": "responsible_id", "11": "created_at",
                              "12": "amount", "13": "comment", "14": "utm_source"}
    assert (out["status"], out["created"], out["updated"], out["skipped"], out["rejected"]) == ("done", 3, 0, 0, 0)
    with session_scope(db, write=False) as s:
        leads = {r.entity_id: s.get(Lead, r.entity_id) for r in s.exec(select(ExternalRef)).all()}
        refs = {r.external_id: r.entity_id for r in s.exec(select(ExternalRef)).all()}
        ivanov = s.get(Lead, refs["501"])
        assert (ivanov.title, ivanov.last_name, ivanov.first_name, ivanov.middle_name) == \
            ("Заявка с сайта", "Иванов", "Пётр", "Сергеевич")
        assert ivanov.amount == Decimal("45000.50") and ivanov.source == "Лендинг" and ivanov.utm_source == "yandex"
        assert ivanov.comment == "Звонить после 18:00; не раньше"
        assert ivanov.responsible_id == people["maria"]
        assert ivanov.created_at.astimezone(TZ).replace(tzinfo=None) == datetime(2024, 5, 21, 12, 30)
        phones = s.exec(select(Communication.value_type, Communication.norm).where(
            Communication.entity_type == "lead", Communication.entity_id == ivanov.id,
            Communication.kind == "phone").order_by(Communication.id)).all()
        assert phones == [("work", "74951112233"), ("mobile", "79161112233")]
        hist = s.exec(select(StageHistory).where(StageHistory.entity_type == "lead",
                                                 StageHistory.entity_id == ivanov.id)).one()
        assert hist.created_at == ivanov.created_at  # funnels count it when it really came
        smirnova = s.get(Lead, refs["502"])
        assert smirnova.comment == "Первая строка\nвторая строка" and smirnova.amount in (None, Decimal(0))
        kim = s.get(Lead, refs["503"])
        assert (kim.semantic, kim.source) == ("failure", "Выставка") and kim.closed_at is not None
        assert len(leads) == 3
        audit = s.exec(select(AuditRecord).where(AuditRecord.action == "import")).one()
        assert audit.details["created"] == 3 and audit.source == "import"
        # the bell: one notice per responsible, not one per lead
        bell = s.exec(select(Notification).where(Notification.user_id == people["maria"])).all()
        assert len(bell) == 1 and "2" in bell[0].text


def test_a_listener_refusing_one_new_lead_refuses_its_row_alone(db, people, tmp_path):
    """New leads go in as one batch without a savepoint (services/import_rows.py Worker):
    when something after the checks refuses one of them (an ITEM_CREATED listener, as a rule
    may), the chunk's unit is rolled back whole and worked again row by row — the check and
    the import both report that row alone; nothing of it is stored, the others are."""
    from rxcrm.services import events

    def refuse(session, *, entity, item, **_):
        if entity == "lead" and item.last_name == "Смирнова":
            raise ValidationFailed("Правило не пускает этот лид")
    events.subscribe(events.ITEM_CREATED, refuse)
    try:
        path = _csv(tmp_path, LEADS_CSV)
        check = run(db, people["admin"], "lead", path, dry=True)
        out = run(db, people["admin"], "lead", path)
    finally:
        events.unsubscribe(events.ITEM_CREATED, refuse)
    for job in (check, out):
        assert (job["created"], job["rejected"], job["skipped"]) == (2, 1, 0), job
        assert reasons(db, job["id"]) == [(3, "", "Правило не пускает этот лид")]
    with session_scope(db, write=False) as s:
        assert sorted(ld.last_name for ld in s.exec(select(Lead)).all()) == ["Иванов", "Ким"]
        assert s.exec(select(Communication).where(Communication.norm == "79162223344")).all() == []
        assert {r.external_id for r in s.exec(select(ExternalRef)).all()} == {"501", "503"}


def test_same_file_twice_updates_instead_of_duplicating(db, people, tmp_path):
    path = _csv(tmp_path, LEADS_CSV)
    run(db, people["admin"], "lead", path)
    again = run(db, people["admin"], "lead", path, options={"duplicates": "skip"})
    assert (again["created"], again["skipped"], again["rejected"]) == (0, 3, 0)
    changed = _csv(tmp_path, [LEADS_CSV[0], LEADS_CSV[1].replace("Заявка с сайта", "Заявка с сайта (новая)")],
                   name="b.csv")
    upd = run(db, people["admin"], "lead", changed, options={"duplicates": "update", "update_mode": "overwrite"})
    assert (upd["created"], upd["updated"]) == (0, 1)
    with session_scope(db, write=False) as s:
        assert s.exec(select(Lead).where(Lead.deleted_at.is_(None))).all().__len__() == 3
        assert s.exec(select(Lead).where(Lead.title == "Заявка с сайта (новая)")).one()


def test_encodings_and_separators_give_the_same_rows(db, people, tmp_path):
    for i, (enc, sep) in enumerate((("utf-8-sig", ","), ("utf-8", "\t"), ("cp1251", ";"))):
        lines = [LEADS_CSV[0], LEADS_CSV[3].replace("503", f"9{i}")]
        if sep == ",":
            lines = [ln.replace(",", " ") for ln in lines]
        path = _csv(tmp_path, lines, name=f"x{i}.csv", encoding=enc, sep=sep)
        out = run(db, people["admin"], "lead", path, options={"duplicates": "create"})
        assert out["created"] == 1, (enc, sep, out)


# ---- the check writes nothing and says what the import will do -------------------------------
def _snapshot(db) -> dict:
    with session_scope(db, write=False) as s:
        def rows(model, *cols):
            return sorted(tuple(getattr(r, c) for c in cols) for r in s.exec(select(model)).all())
        return {"lead": rows(Lead, "id", "title", "stage_id", "amount", "comment", "responsible_id", "deleted_at"),
                "deal": rows(Deal, "id", "title", "stage_id", "amount", "contact_id", "deleted_at"),
                "contact": rows(Contact, "id", "full_name", "deleted_at"),
                "comm": rows(Communication, "id", "entity_type", "entity_id", "norm"),
                "activity": rows(Activity, "id", "entity_type", "entity_id", "status")}


def test_dry_run_writes_nothing_and_predicts_the_import(db, people, tmp_path):
    path = _csv(tmp_path, LEADS_CSV + [LEADS_CSV[1].replace("501", "504")])
    before = _snapshot(db)
    check = run(db, people["admin"], "lead", path, dry=True, options={"match": ["phone"]})
    assert _snapshot(db) == before
    with session_scope(db, write=False) as s:
        assert not s.exec(select(TimelineEvent)).all() and not s.exec(select(ExternalRef)).all()
    real = run(db, people["admin"], "lead", path, options={"match": ["phone"]})
    assert [check[k] for k in ("created", "updated", "skipped", "rejected")] == \
        [real[k] for k in ("created", "updated", "skipped", "rejected")] == [3, 0, 1, 0]
    assert reasons(db, real["id"], skipped=True) == [(5, "", "Повтор строки 2")]


# ---- every kind of bad row --------------------------------------------------------------------
BAD = [
    "Название лида;ФИО;Мобильный телефон;E-mail;Стадия;Ответственный;Дата создания;Образовательная программа",
    "Хорошая;Орлов Пётр;+79031234567;orlov@example.com;Не обработан;Петрова Мария;10.03.2024;",
    "Плохой телефон;Белов Иван;12-34;;;;;",
    "Неизвестная стадия;Чернов Иван;+79031234568;;Переговоры;;;",
    "Неизвестный ответственный;Зайцев Иван;+79031234569;;;Вася Пупкин;;",
    "Без программы;Волков Иван;+79031234570;;Образовательная программа;;;",
    "Плохая дата;Лисицын Иван;+79031234571;;;;31.02.2024;",
    "Плохой e-mail;Ежов Иван;;ezhov@@example;;;;",
    "Хорошая;Орлов Пётр;+79031234567;orlov@example.com;Не обработан;Петрова Мария;10.03.2024;",
    ";;;;;;;",
    "Неизвестная программа;Соколов Иван;+79031234572;;;;;Курс вязания",
]


def test_every_kind_of_bad_row_is_rejected_with_its_reason(db, people, tmp_path):
    path = _csv(tmp_path, BAD, name="bad.csv", encoding="utf-8")
    out = run(db, people["head"], "lead", path)
    assert (out["created"], out["updated"], out["skipped"], out["rejected"]) == (1, 0, 1, 7)
    assert reasons(db, out["id"]) == [
        (3, "Мобильный телефон", "Телефон «12-34»: введите номер полностью, не меньше 10 цифр"),
        (4, "Стадия", "Стадия «Переговоры» не найдена в воронке «Лиды»"),
        (5, "Ответственный", "Ответственный «Вася Пупкин» не найден среди активных сотрудников "
                             "(укажите ФИО, логин или e-mail)"),
        (6, "Образовательная программа",
         "Чтобы создать на стадии «Образовательная программа», заполните: «Образовательная программа»"),
        (7, "Дата создания", "Неверная дата: «31.02.2024»"),
        (8, "E-mail", "E-mail «ezhov@@example»: неверный адрес"),
        (11, "Образовательная программа", "Образовательная программа «Курс вязания» не найдена"),
    ]
    assert reasons(db, out["id"], skipped=True) == [(9, "", "Повтор строки 2")]
    with session_scope(db, write=False) as s:
        assert [ld.title for ld in s.exec(select(Lead)).all()] == ["Хорошая"]  # nothing half-stored


def test_report_is_an_excel_of_rejected_rows_that_reimports_as_is(db, people, tmp_path):
    path = _csv(tmp_path, BAD, name="bad.csv", encoding="utf-8")
    out = run(db, people["admin"], "lead", path)
    report = tmp_path / "report.xlsx"
    with session_scope(db, write=False) as s:
        n = imports.report(s, _actor(s, people["admin"]), out["id"], report)
    assert n == 7
    ws = openpyxl.load_workbook(report, read_only=True).active
    got = [list(r) for r in ws.iter_rows(values_only=True)]
    assert got[0] == BAD[0].split(";") + ["Ошибка импорта"]
    assert got[1][:8] == BAD[2].split(";")[:3] + [None] * 5 or got[1][:3] == ["Плохой телефон", "Белов Иван", "12-34"]
    assert got[1][8].startswith("Строка 3: «Мобильный телефон» = «12-34»: Телефон")
    # fixed in the report itself and imported again: «Ошибка импорта» is not loaded
    wb = openpyxl.load_workbook(report)
    wb.active["C2"] = "+79031112233"
    wb.save(report)
    again = run(db, people["admin"], "lead", report)
    assert "8" not in again["mapping"]  # the reason column maps to nothing
    assert (again["created"], again["rejected"]) == (1, 6)


# ---- a Bitrix24 contacts export: UTF-8 with a BOM, «,» ------------------------------------------
CONTACTS_CSV = [
    "\ufeffID,Фамилия,Имя,Отчество,Мобильный телефон,Рабочий e-mail,Компания,Должность,Дата рождения,Ответственный",
    "91,Орлова,Анна,Петровна,+7 903 000-00-01,a.orlova@mail.ru,ООО Ромашка,Бухгалтер,12.04.1990,mpetrova",
    "92,Ким,Олег,,89030000002,,,,,",
    "93,,,,+7 903 000-00-03,,,,,",
]


def test_bitrix24_contacts_csv_keeps_names_company_and_dates(db, people, tmp_path):
    """A contacts export has the name in three columns (not one «ФИО»): each maps by itself."""
    path = _csv(tmp_path, CONTACTS_CSV, name="contacts.csv", encoding="utf-8")
    out = run(db, people["admin"], "contact", path)
    assert out["mapping"] == {"0": "external_id", "1": "last_name", "2": "first_name", "3": "middle_name",
                              "4": "phone.mobile", "5": "email.work", "6": "company", "7": "position",
                              "8": "birthday", "9": "responsible_id"}
    assert (out["created"], out["rejected"]) == (2, 1)
    assert reasons(db, out["id"]) == [(4, "Фамилия", "Укажите фамилию или имя контакта")]
    with session_scope(db, write=False) as s:
        orlova = s.exec(select(Contact).where(Contact.last_name == "Орлова")).one()
        assert (orlova.full_name, orlova.position, orlova.birthday.isoformat()) == \
            ("Орлова Анна Петровна", "Бухгалтер", "1990-04-12")
        assert orlova.company_id is not None and orlova.responsible_id == people["maria"]
        kim = s.exec(select(Contact).where(Contact.last_name == "Ким")).one()
        assert (kim.full_name, kim.company_id) == ("Ким Олег", None)


# ---- deals from Excel across two pipelines --------------------------------------------------
def _deals_xlsx(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ID", "Название сделки", "Воронка", "Стадия сделки", "Сумма", "Контакт", "Телефон контакта",
               "Компания", "Ответственный", "Дата создания", "Номер договора"])
    ws.append([7001, "ДПО: Управление проектами", "Воронка ДПО 2 часть", "Регистрация", 45000.0,
               "Орлова Анна Петровна", "+7 903 000-00-01", "ООО Ромашка", "mpetrova", datetime(2024, 3, 1, 10, 0),
               None])
    ws.append([7002, "Магистратура: Аналитика", "Магистратура (платный приём)", "Заявка", "350 000",
               "Орлова Анна Петровна", "89030000001", None, "Петрова Мария", "02.03.2024", None])
    ws.append([7003, "ДПО: Договор без номера", "Воронка ДПО 2 часть", "Договор", 1000, None, None, None,
               None, None, None])
    ws.append([7004, "ДПО: Договор", "Воронка ДПО 2 часть", "Договор", 1000, None, None, None, None, None,
               "Д-17/2024"])
    ws.append([7005, "Старая сделка", "Воронка ДПО 2 часть", "Сделка успешна", 90000, None, None, None, None,
               "15.01.2023", None])
    path = tmp_path / "deals.xlsx"
    wb.save(path)
    return path


def test_deals_xlsx_across_two_pipelines(db, people, tmp_path):
    path = _deals_xlsx(tmp_path)
    with session_scope(db, write=False) as s:
        info = imports.import_files.sniff(path, "deals.xlsx")
        mapping = import_map.auto_map(s, "deal", info.headers)
    mapping["10"] = "custom.dpo_contract_number"
    out = run(db, people["admin"], "deal", path, mapping=mapping)
    assert (out["created"], out["rejected"]) == (4, 1)
    assert reasons(db, out["id"]) == [(4, "Номер договора", "Чтобы создать на стадии «Договор», заполните: "
                                                           "«Номер договора»")]
    with session_scope(db, write=False) as s:
        refs = {r.external_id: s.get(Deal, r.entity_id) for r in s.exec(select(ExternalRef)).all()}
        dpo, mag = refs["7001"], refs["7002"]
        assert dpo.pipeline_id == f.pipeline(s, "dpo").id and mag.pipeline_id == f.pipeline(s, "masters").id
        assert dpo.stage_id == f.stage(s, "dpo", "REGISTRATION").id
        assert mag.stage_id == f.stage(s, "masters", "APPLICATION").id and mag.amount == Decimal("350000")
        assert dpo.contact_id == mag.contact_id is not None  # one client, found again by phone
        contact = s.get(Contact, dpo.contact_id)
        assert contact.full_name == "Орлова Анна Петровна" and dpo.company_id is not None
        assert refs["7004"].custom["dpo_contract_number"] == "Д-17/2024"
        assert refs["7005"].semantic == "success"
        # the on-enter rule of «Регистрация» planned its call, as for any other new deal
        acts = s.exec(select(Activity).where(Activity.entity_type == "deal", Activity.entity_id == dpo.id)).all()
        assert [a.subject for a in acts] == ["Подтвердить регистрацию"]


def test_a_refused_deal_row_leaves_no_client_behind(db, people, tmp_path):
    """A deal row names a new client (made by the import) but the deal is refused: the
    contact and the company it made go with it, as when each row was written alone."""
    path = _deals_xlsx(tmp_path)
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    ws.append([7006, "ДПО: Договор без номера", "Воронка ДПО 2 часть", "Договор", 1000, "Новый Клиент Иванович",
               "+7 905 555-66-77", "ООО Новая", None, None, None])
    wb.save(path)
    with session_scope(db, write=False) as s:
        mapping = import_map.auto_map(s, "deal", imports.import_files.sniff(path, "deals.xlsx").headers)
    mapping["10"] = "custom.dpo_contract_number"
    out = run(db, people["admin"], "deal", path, mapping=mapping)
    assert (out["created"], out["rejected"]) == (4, 2)
    assert [r for r, _c, _m in reasons(db, out["id"])] == [4, 7]
    with session_scope(db, write=False) as s:
        assert s.exec(select(Contact).where(Contact.full_name == "Новый Клиент Иванович")).all() == []
        from rxcrm.models import Company
        assert s.exec(select(Company).where(Company.title == "ООО Новая")).all() == []
        assert s.exec(select(Contact).where(Contact.full_name == "Орлова Анна Петровна")).one() is not None


def test_create_deals_writes_what_create_deal_writes(db, people):
    """The batch of an import's chunk and the one-by-one service write the same rows and
    refuse the same specs — the repeat detection included: a contact's first deal does not
    make it a repeat of itself, its second (in the same batch) does, a stranger with the
    same phone does."""
    from rxcrm.services import create
    with session_scope(db) as s:
        m = s.get(User, people["maria"])
        older = f.contact(s, "Старый", "Клиент", phones=["+7 903 000-00-09"], responsible=m)
        fresh = f.contact(s, "Новый", "Клиент", phones=["+7 903 000-00-08"], emails=["new@mail.ru"], responsible=m)
        twin = f.contact(s, "Двойник", "Старого", phones=["8 903 000 00 09"], responsible=m)
        dpo, masters = f.pipeline(s, "dpo").id, f.pipeline(s, "masters").id
        contract = f.stage(s, "dpo", "CONTRACT").id
        won = next(st.id for st in s.exec(select(Stage).where(Stage.pipeline_id == dpo)).all() if st.semantic == "success")
        ids = {"older": older.id, "fresh": fresh.id, "twin": twin.id}
    specs_of = lambda: [  # noqa: E731 — fresh dicts each time (the services may keep what they are given)
        dict(pipeline_id=dpo, title="Первая", contact_id=ids["fresh"], amount="45 000", source="Звонок",
             utm={"utm_source": "ya"}, created_at=datetime(2024, 5, 1, 9, 0, tzinfo=TZ)),
        dict(pipeline_id=dpo, title="Вторая того же", contact_id=ids["fresh"]),
        dict(pipeline_id=masters, title="Двойник", contact_id=ids["twin"], comment="к"),
        dict(pipeline_id=dpo, title="Закрытая", stage_id=won, allow_final=True,
             created_at=datetime(2023, 1, 2, 10, 0, tzinfo=TZ), closed_at=datetime(2023, 2, 3, 10, 0, tzinfo=TZ)),
        dict(pipeline_id=dpo, title=""),  # refused
        dict(pipeline_id=dpo, title="Договор без номера", stage_id=contract),  # refused: a required field
        dict(pipeline_id=10**6, title="Нет воронки"),  # refused
    ]

    def rows(s, deal_ids):
        out = []
        for i in deal_ids:
            d = s.get(Deal, i)
            cols = {c: getattr(d, c) for c in Deal.__table__.columns.keys()
                    if c not in ("id", "updated_at", "stage_changed_at") and not (c == "created_at" and
                                                                                   d.created_at.year == 2026)}
            hist = [(h.pipeline_id, h.stage_id, h.from_stage_id, h.semantic, h.responsible_id)
                    for h in s.exec(select(StageHistory).where(StageHistory.entity_id == i,
                                                               StageHistory.entity_type == "deal")).all()]
            line, audit = _lines_and_audit(s, "deal", i, users=True)
            acts = sorted(a.subject for a in s.exec(select(Activity).where(Activity.entity_type == "deal",
                                                                             Activity.entity_id == i)).all())
            out.append((cols, hist, line, audit, acts))
        return out

    # the same starting point for both: each runs in a unit that is then rolled back
    def one_by_one(s, actor):
        made, refused = [], []
        for spec in specs_of():
            try:
                with s.begin_nested():
                    made.append(create.create_deal(s, actor, **spec).id)
            except ServiceError as exc:
                refused.append(exc.message)
        return made, refused

    def batch(s, actor):
        out = create.create_deals(s, actor, specs_of())
        s.flush()
        return [d.id for d in out if isinstance(d, Deal)], [e.message for e in out if not isinstance(e, Deal)]

    results = []
    for way in (one_by_one, batch):
        s_ctx = session_scope(db)
        with s_ctx as s:
            actor = _actor(s, people["admin"])
            made, refused = way(s, actor)
            results.append((rows(s, made), refused))
            assert len(made) == 4 and len(refused) == 3
            first, second, twin_deal = (s.get(Deal, i) for i in made[:3])
            assert (first.is_repeat, second.is_repeat, twin_deal.is_repeat) == (False, True, True)
            s.rollback()
    assert results[0] == results[1]


# ---- undo ------------------------------------------------------------------------------------
def test_undo_restores_the_same_rows(db, people, tmp_path):
    with session_scope(db) as s:
        maria = s.get(User, people["maria"])
        f.lead(s, "Старый лид", maria, last="Иванов", first="Пётр", phones=["+7 495 111-22-33"])
    before = _snapshot(db)
    path = _csv(tmp_path, LEADS_CSV)
    out = run(db, people["admin"], "lead", path,
              options={"duplicates": "update", "update_mode": "overwrite", "match": ["phone"]})
    assert (out["created"], out["updated"]) == (2, 1)
    assert _snapshot(db) != before
    with session_scope(db) as s:
        imports.undo(s, _actor(s, people["admin"]), out["id"])
    assert imports.work(out["id"], db) == "undone"
    after = _snapshot(db)
    live = {k: [r for r in v if k in ("comm", "activity") or r[-1] is None] for k, v in after.items()}
    # what the import created is in the recycle bin; what it overwrote is back
    assert live["lead"] == [r for r in before["lead"]]
    assert [r for r in after["comm"] if r[1] == "lead" and r[2] == before["lead"][0][0]] == \
        [r for r in before["comm"] if r[1] == "lead"]
    with session_scope(db, write=False) as s:
        assert s.exec(select(ExternalRef)).all() == []
        assert s.get(ImportJob, out["id"]).status == "undone"
        assert s.exec(select(AuditRecord).where(AuditRecord.action == "import_undone")).one()


def test_undo_keeps_what_was_changed_after_the_import(db, people, tmp_path):
    from rxcrm.services import items
    with session_scope(db) as s:
        f.lead(s, "Старый лид", s.get(User, people["maria"]), phones=["+7 495 111-22-33"])
    out = run(db, people["admin"], "lead", _csv(tmp_path, LEADS_CSV[:2]),
              options={"duplicates": "update", "update_mode": "overwrite", "match": ["phone"]})
    with session_scope(db) as s:
        lead = s.exec(select(Lead).where(Lead.deleted_at.is_(None))).one()
        items.update_fields(s, _actor(s, people["admin"]), "lead", lead.id, {"title": "Исправлено вручную"})
        imports.undo(s, _actor(s, people["admin"]), out["id"])
    imports.work(out["id"], db)
    with session_scope(db, write=False) as s:
        lead = s.exec(select(Lead).where(Lead.deleted_at.is_(None))).one()
        assert lead.title == "Исправлено вручную" and lead.comment == ""
        assert s.get(ImportJob, out["id"]).message == "Изменены после импорта и оставлены как есть: 1"


# ---- round trip through our export ----------------------------------------------------------
def test_export_then_reimport_with_update_changes_nothing(db, people, tmp_path):
    path = _csv(tmp_path, LEADS_CSV)
    run(db, people["admin"], "lead", path)
    with session_scope(db) as s:
        actor = _actor(s, people["admin"])
        xlsx = tmp_path / "Лиды.xlsx"
        cols = ["id", "title", "name", "stage_id", "phone", "email", "source", "amount", "comment",
                "responsible_id", "created_at", "utm_source"]
        assert export.export_xlsx(s, actor, "lead", {}, cols, dest=xlsx) == 3
    before = _snapshot(db)
    with session_scope(db, write=False) as s:
        versions = sorted((ld.id, ld.version) for ld in s.exec(select(Lead)).all())
    out = run(db, people["admin"], "lead", xlsx, options={"duplicates": "update", "update_mode": "overwrite"})
    assert out["mapping"]["0"] == "id"
    assert (out["created"], out["updated"], out["rejected"], out["skipped"]) == (0, 0, 0, 3)
    assert _snapshot(db) == before
    with session_scope(db, write=False) as s:
        assert sorted((ld.id, ld.version) for ld in s.exec(select(Lead)).all()) == versions


# ---- resumable, cancellable, permitted -------------------------------------------------------
def test_an_interrupted_import_resumes_without_duplicates(db, people, tmp_path, monkeypatch):
    lines = [LEADS_CSV[0]] + [LEADS_CSV[3].replace("503", str(1000 + i)).replace("oleg.kim", f"k{i}")
                              for i in range(25)]
    path = _csv(tmp_path, lines, encoding="utf-8")
    monkeypatch.setattr(imports, "CHUNK_ROWS", 10)

    def prepare(s):
        actor = _actor(s, people["admin"])
        job, _ = imports.start(s, actor, "lead", path, "x.csv")
        imports.configure(s, actor, job.id, job.mapping, {})
        imports.request(s, actor, job.id, dry_run=False)
        return job.id
    job_id = transact(prepare, db)
    assert imports.work_chunk(job_id, db) == "running"
    imports._OPEN.clear()  # another process takes over
    assert imports.work(job_id, db) == "done"
    with session_scope(db, write=False) as s:
        job = s.get(ImportJob, job_id)
        assert (job.created, job.done_count) == (25, 25)
        assert len(s.exec(select(Lead)).all()) == 25


def test_cancel_stops_after_the_current_chunk(db, people, tmp_path, monkeypatch):
    lines = [LEADS_CSV[0]] + [LEADS_CSV[3].replace("503", str(1000 + i)) for i in range(30)]
    monkeypatch.setattr(imports, "CHUNK_ROWS", 10)
    path = _csv(tmp_path, lines, encoding="utf-8")

    def prepare(s):
        actor = _actor(s, people["admin"])
        job, _ = imports.start(s, actor, "lead", path, "x.csv")
        imports.configure(s, actor, job.id, job.mapping, {"duplicates": "create"})
        imports.request(s, actor, job.id, dry_run=False)
        return job.id
    job_id = transact(prepare, db)
    imports.work_chunk(job_id, db)
    with session_scope(db) as s:
        imports.cancel(s, _actor(s, people["admin"]), job_id)
    assert imports.work(job_id, db) == "cancelled"
    with session_scope(db, write=False) as s:
        assert s.get(ImportJob, job_id).created == 10 == len(s.exec(select(Lead)).all())


def test_a_manager_may_not_import_and_bad_input_is_refused(db, people, tmp_path):
    path = _csv(tmp_path, LEADS_CSV)
    with session_scope(db) as s:
        with pytest.raises(AccessDenied):
            imports.start(s, _actor(s, people["mgr"]), "lead", path, "x.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with session_scope(db) as s:
        actor = _actor(s, people["admin"])
        with pytest.raises(ValidationFailed, match="пуст"):
            imports.start(s, actor, "lead", empty, "empty.csv")
        job, _ = imports.start(s, actor, "lead", path, "x.csv")
        with pytest.raises(ValidationFailed, match="выбрано для двух колонок"):
            imports.configure(s, actor, job.id, {"1": "title", "2": "title"})
        with pytest.raises(ValidationFailed, match="Не выбрана колонка"):
            imports.configure(s, actor, job.id, {"13": "comment"})
        with pytest.raises(ValidationFailed, match="Дубликаты"):
            imports.configure(s, actor, job.id, job.mapping, {"duplicates": "merge"})


def test_saved_mapping_is_reused(db, people, tmp_path):
    path = _csv(tmp_path, LEADS_CSV)
    with session_scope(db) as s:
        actor = _actor(s, people["admin"])
        job, _ = imports.start(s, actor, "lead", path, "x.csv")
        mapping = dict(job.mapping)
        mapping.pop("13")  # the comment column is not loaded
        imports.configure(s, actor, job.id, mapping, {"duplicates": "update"}, save_as="Выгрузка из Битрикс24")
    with session_scope(db) as s:
        job2, _ = imports.start(s, _actor(s, people["admin"]), "lead", path, "y.csv")
        assert job2.mapping == mapping and job2.mapping_name == "Выгрузка из Битрикс24"


def test_cli_prints_one_json_object(tmp_path):
    """The CLI against a database of its own (a SQLite file, as REFLEX_DB_URL names it)."""
    from rxcrm.db import migrate
    from rxcrm.services.bootstrap import ensure_defaults
    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(db_url)
    with session_scope(db_url) as s:
        ensure_defaults(s)
        _people(s)
    path = _csv(tmp_path, BAD, name="bad.csv", encoding="utf-8")
    env = {**os.environ, "REFLEX_DB_URL": db_url, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "rxcrm.manage", "import", "--entity", "lead", "--file", str(path),
                          "--as", "boss", "--dry-run"], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["created"], out["updated"], out["skipped"], out["rejected"]) == (1, 0, 1, 7)
    assert out["errors"][0] == {"row": 3, "column": "Мобильный телефон", "value": "12-34",
                                "message": "Телефон «12-34»: введите номер полностью, не меньше 10 цифр"}
    with session_scope(db_url, write=False) as s:
        assert s.exec(select(Lead)).all() == []
    res = subprocess.run([sys.executable, "-m", "rxcrm.manage", "import", "--entity", "lead", "--file", str(path),
                          "--as", "nobody"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert res.returncode == 1 and "не найден" in json.loads(res.stdout)["error"]


def test_phone_keys_and_formats():
    assert import_map.money_text("1 234,50 руб.") == "1234.50"
    assert import_map.money_text("1,234.50") == "1234.50"
    assert import_map.split_name("Иванов Пётр Сергеевич") == ("Иванов", "Пётр", "Сергеевич")
    assert import_map.phone_keys([("8 (916) 111-22-33", "work"), ("12-34", "work")]) == [normalize_phone("+79161112233")]
    assert import_map.norm_header(" Сумма (руб.): ") == "сумма"
    moscow = {"tz": TZ}
    assert fmt.parse_moment("16.08.2024 10:00", **moscow) == datetime(2024, 8, 16, 10, 0, tzinfo=TZ)
    assert fmt.parse_moment("2024-05-21T12:00:00 03:00").utcoffset().total_seconds() == 3 * 3600
    assert fmt.parse_moment("05.11.23", **moscow).date().isoformat() == "2023-11-05"
    with pytest.raises(ValueError):
        fmt.parse_moment("32.13.2024")


# ---- the batched writer is the one-by-one writer -----------------------------------------------
def _lines_and_audit(s, entity: str, item_id: int, *, users: bool = False) -> tuple[list, list]:
    """An item's timeline lines (kind[, user], data) and audit records, comparable across units."""
    from rxcrm.models import AuditRecord as Audit
    lines = sorted(((t.kind, t.user_id) if users else (t.kind,)) + (json.dumps(t.data, sort_keys=True,
                                                                              ensure_ascii=False),)
                   for t in s.exec(select(TimelineEvent).where(TimelineEvent.entity_type == entity,
                                                               TimelineEvent.entity_id == item_id)).all())
    audit = [(a.action, a.details) for a in s.exec(select(Audit).where(Audit.entity_type == entity,
                                                                        Audit.entity_id == item_id)).all()]
    return lines, audit


def _both_ways(s, one, many, model, specs) -> tuple[list, list, list, list]:
    """The specs written one by one (each in a savepoint) and as one batch, in the same unit:
    (ids one by one, their refusals, ids of the batch, its refusals)."""
    ids_one, refused_one = [], []
    for spec in specs:
        try:
            with s.begin_nested():
                ids_one.append(one(spec).id)
        except ServiceError as exc:
            refused_one.append(exc.message)
    made = many(specs)
    s.flush()
    return (ids_one, refused_one, [m.id for m in made if isinstance(m, model)],
            [m.message for m in made if not isinstance(m, model)])


def test_create_leads_writes_what_create_lead_writes(db, people):
    from rxcrm.services import create
    with session_scope(db) as s:
        f.contact(s, "Орлова", "Анна", phones=["+7 903 000-00-01"])
    specs = [
        dict(title="Первый", last_name="Иванов", first_name="Пётр", phones=[("8 916 111-22-33", "mobile")],
             emails=["p@example.com"], source="Звонок", amount="1 500", comment="к", utm={"utm_source": "ya"},
             created_at=datetime(2024, 5, 1, 9, 0, tzinfo=TZ)),
        dict(first_name="Повтор", phones=["+79030000001"]),  # a known contact's phone: a repeat lead
        dict(title="Закрытый", first_name="Олег", stage_code="JUNK", allow_final=True,
             created_at=datetime(2023, 1, 2, 10, 0, tzinfo=TZ), closed_at=datetime(2023, 2, 3, 10, 0, tzinfo=TZ)),
        dict(title="Без имени и связи"),  # refused: nothing of it is written
        dict(title="Неверный телефон", phones=["12-34"]),  # refused
    ]

    def rows(s, ids):
        out = []
        for i in ids:
            lead = s.get(Lead, i)
            cols = {c: getattr(lead, c) for c in Lead.__table__.columns.keys()
                    if c not in ("id", "updated_at", "stage_changed_at") and not (c == "created_at" and
                                                                                   lead.created_at.year == 2026)}
            comms = s.exec(select(Communication.kind, Communication.value, Communication.value_type,
                                  Communication.norm).where(Communication.entity_type == "lead",
                                                            Communication.entity_id == i)
                           .order_by(Communication.id)).all()
            hist = [(h.pipeline_id, h.stage_id, h.from_stage_id, h.semantic, h.responsible_id)
                    for h in s.exec(select(StageHistory).where(StageHistory.entity_id == i,
                                                               StageHistory.entity_type == "lead")).all()]
            out.append((cols, comms, hist, *_lines_and_audit(s, "lead", i)))
        return out

    with session_scope(db) as s:
        actor = _actor(s, people["admin"])
        one, refused_one, batch, refused_batch = _both_ways(
            s, lambda spec: create.create_lead(s, actor, **spec), lambda specs: create.create_leads(s, actor, specs),
            Lead, specs)
        assert refused_batch == refused_one and len(refused_one) == 2
        assert rows(s, batch) == rows(s, one)
        assert s.get(Lead, batch[1]).is_repeat and s.get(Lead, batch[1]).contact_id is not None
        assert s.get(Lead, batch[2]).closed_at == datetime(2023, 2, 3, 10, 0, tzinfo=TZ)


def test_create_contacts_writes_what_create_contact_writes(db, people):
    """The batch of an import's chunk and the one-by-one service write the same rows (the
    contact, its phones and e-mails, its timeline line, its audit) and refuse the same specs."""
    from rxcrm.models import Company
    from rxcrm.services import create
    with session_scope(db) as s:
        company = Company(title="ООО Ромашка", search_text="ооо ромашка")
        s.add(company)
        s.flush()
        company_id = company.id
    specs = [
        dict(last_name="Орлова", first_name="Анна", middle_name="Петровна", phones=[("8 903 000-00-01", "mobile")],
             emails=["a.orlova@mail.ru"], company_id=company_id, position="Бухгалтер", birthday="1990-04-12",
             source="Звонок", comment="к", created_at=datetime(2024, 5, 1, 9, 0, tzinfo=TZ),
             values={"comment": "по значению"}),
        dict(last_name="Ким", first_name=""),
        dict(last_name="", first_name=""),  # refused: nothing of it is written
        dict(last_name="Связь", first_name="Без", company_id=10**6),  # refused: no such company
        dict(last_name="Телефон", first_name="Неверный", phones=["12-34"]),  # refused
    ]

    def rows(s, ids):
        out = []
        for i in ids:
            c = s.get(Contact, i)
            cols = {k: getattr(c, k) for k in Contact.__table__.columns.keys()
                    if k not in ("id", "updated_at") and not (k == "created_at" and c.created_at.year == 2026)}
            comms = s.exec(select(Communication.kind, Communication.value, Communication.value_type,
                                  Communication.norm).where(Communication.entity_type == "contact",
                                                            Communication.entity_id == i)
                           .order_by(Communication.id)).all()
            out.append((cols, comms, *_lines_and_audit(s, "contact", i)))
        return out

    with session_scope(db) as s:
        actor = _actor(s, people["admin"])
        one, refused_one, batch, refused_batch = _both_ways(
            s, lambda spec: create.create_contact(s, actor, **spec),
            lambda specs: create.create_contacts(s, actor, specs), Contact, specs)
        assert refused_batch == refused_one and len(refused_one) == 3
        assert rows(s, batch) == rows(s, one) and len(batch) == 2
        orlova = s.get(Contact, batch[0])
        assert (orlova.full_name, orlova.company_id, orlova.comment) == ("Орлова Анна Петровна", company_id,
                                                                         "по значению")
    with session_scope(db, write=False) as s:  # findable by the search box, like any contact
        from rxcrm.services import filters
        assert len(s.exec(select(Contact.id).where(filters.search_condition(Contact, "орлова анна"))).all()) == 2


def test_new_row_is_the_model_without_its_cost():
    from rxcrm.models.base import new_row
    kw = dict(title="t", pipeline_id=1, stage_id=2, semantic="process", last_name="a", search_text="t a")
    fast, slow = new_row(Lead, **kw), Lead(**kw)
    for col in Lead.__table__.columns.keys():
        if col not in ("created_at", "updated_at", "stage_changed_at"):
            assert getattr(fast, col) == getattr(slow, col), col
    assert fast.custom == {} and fast.custom is not slow.custom
    with pytest.raises(TypeError):
        new_row(Lead, nonsense=1)


def test_reserved_ids_are_fresh(db):
    from rxcrm.db import reserve_ids
    with session_scope(db) as s:
        first = reserve_ids(s, "lead", 3)
        assert len(set(first)) == 3
    with session_scope(db) as s:
        assert min(reserve_ids(s, "lead", 2)) > (0 if db.startswith("sqlite") else max(first))


def test_twenty_people_pressing_undo_at_once_undo_it_once(db, people, tmp_path):
    """20 clients send the same undo together: one is taken, the others get a clear refusal,
    and the import is taken back once (its audit says so once)."""
    from concurrent.futures import ThreadPoolExecutor
    out = run(db, people["admin"], "lead", _csv(tmp_path, LEADS_CSV))

    def press(_):
        try:
            transact(lambda s: imports.undo(s, _actor(s, people["admin"]), out["id"]), db)
            return "ok"
        except ValidationFailed as exc:
            return exc.message
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(press, range(20)))
    assert answers.count("ok") == 1
    assert set(answers) - {"ok"} == {"Отменить можно только выполненный импорт, который что-то записал"}
    assert imports.work(out["id"], db) == "undone"
    with session_scope(db, write=False) as s:
        assert len(s.exec(select(AuditRecord).where(AuditRecord.action == "import_undo")).all()) == 1
        assert s.exec(select(Lead).where(Lead.deleted_at.is_(None))).all() == []


def test_status_labels_in_both_languages():
    """Every job state has a label in Russian and in English (an English screen shows no Russian)."""
    from rxcrm.models import imports as st
    states = [st.DRAFT, st.CHECKING, st.CHECKED, st.QUEUED, st.RUNNING, st.DONE, st.CANCELLED, st.FAILED,
              st.UNDOING, st.UNDONE]
    for state in states:
        ru, en = imports.status_label(state), imports.status_label(state, lang="en")
        assert ru != state and en != state and ru != en
        assert not any("а" <= ch <= "я" for ch in en.lower()), en
    assert imports.status_label(st.CANCELLED, True, "en") == "Check stopped"
    assert imports.status_label(st.DONE) == "Импорт завершён"


def test_a_batch_costs_a_few_statements_not_a_few_per_item(db, people):
    """create_leads / create_contacts / create_deals read and write per batch: 20 or 200 new
    items take the same number of statements (a per-item query — the rules re-reading the
    pipeline when nothing held it — once made an import 40 % slower)."""
    from collections import Counter

    from sqlalchemy import event

    from rxcrm.db import get_engine
    from rxcrm.services import create
    engine = get_engine(db)
    counted = []

    def count(_conn, _cursor, statement, *_a, **_k):
        counted.append(statement.split("WHERE")[0][:90])

    with session_scope(db) as s:
        dpo = f.pipeline(s, "dpo").id
    batches = {
        "lead": lambda n, k: [dict(last_name=f"Пакет{k}", first_name=f"Лид{i}", phones=[f"+7 901 {k}{i:06d}"])
                              for i in range(n)],
        "contact": lambda n, k: [dict(last_name=f"Пакет{k}", first_name=f"Контакт{i}",
                                      emails=[f"c{k}.{i}@mail.ru"]) for i in range(n)],
        "deal": lambda n, k: [dict(pipeline_id=dpo, title=f"Сделка {k}-{i}") for i in range(n)],
    }
    write = {"lead": create.create_leads, "contact": create.create_contacts, "deal": create.create_deals}
    for entity, specs in batches.items():
        statements = []
        for n, k in ((20, 1), (200, 2)):
            with session_scope(db) as s:  # as an import writes (no audit row nor bell notice per item)
                actor = actor_for(s.get(User, people["admin"]), source=imports.SOURCE)
                counted.clear()
                event.listen(engine, "before_cursor_execute", count)
                try:
                    made = write[entity](s, actor, specs(n, k))
                    s.flush()
                finally:
                    event.remove(engine, "before_cursor_execute", count)
                assert all(not isinstance(m, ServiceError) for m in made), made
                statements.append(len(counted))
        assert statements[1] <= statements[0] + 4, (entity, statements, Counter(counted).most_common(3))
