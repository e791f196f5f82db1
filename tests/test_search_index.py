"""The search index over `search_text` (migration 0011; services/filters.py `search_condition`):
a trigram GIN index on PostgreSQL, FTS5 trigram tables kept by triggers on SQLite. It must
find exactly what a plain substring scan finds (folded: case, ё/е), whatever the input, for
rows written before and after the migration, and be what the database uses for a query of
3+ characters — on SQLite and PostgreSQL."""
from __future__ import annotations

import re

import pytest
from alembic import command
from sqlalchemy import event, func, insert, select, text
from sqlmodel import Session

from rxcrm.db import alembic_config, get_engine, session_scope
from rxcrm.models import Communication, Company, Contact, Deal, Lead
from rxcrm.services import auth, filters, listing, search
from rxcrm.services.phones import comm_row, fold, search_text

from . import factories as f

MODELS = {"lead": Lead, "deal": Deal, "contact": Contact, "company": Company}
TEXTS = [
    "Артём Соколов", "ООО «Ёлка-палка»", "Иванова Мария Олеговна", "Ёжик в тумане", "Python — программирование",
    "100% скидка_вебинар", "O'Brien \"Quoted\" Name", "back\\slash test", "NEAR(x) AND or NOT * ^ : {col}",
    "Семён Пономарёв", "ИП Ежов Е.Е.", "Анна-Мария 50_50", "ЕЛЕНА ЁЛКИНА", "mixed Латиница и кириллица",
]
EMAILS = ["artem.sokolov@mail.ru", "ivanova_m@yandex.ru", "o.brien@example.com", "pct%user@test.org"]
QUERIES = [
    # Cyrillic, any case, ё/е either way
    "артем", "АРТЁМ", "артём соколов", "соко", "ёлка", "елка", "ЁЖИК", "ежик в", "пономарев", "семен",
    "ова", "ов", "ё", "е", "ив", "ооо «ёлка-", "«", "—", "программирование", "кириллица", "елен",
    # Latin, e-mail fragments
    "python", "PYTHON —", "sokolov", "mail.ru", "@mail", "ivanova_m", "a_m", "brien@", "example.com", ".ru",
    # LIKE wildcards, quotes, backslashes and FTS5 syntax as plain characters
    "100%", "0%", "%", "%%", "_", "__", "%_%", "pct%u", "50_5", "o'b", "'", "''", "\"quoted\"", "\"",
    "\"\"\"", "ted\" na", "\\", "k\\s", "\\slash", "near(", "near(x)", "and or", "* ^", "^", ":",
    "{col}", "col:", "search_text:арт", "-", "x", "zzz", "  соколов  ",
]


@pytest.fixture
def items(db):
    """Every text on each kind of item (contacts/leads with an e-mail), written after the migration."""
    with session_scope(db) as s:
        m = f.user(s, "idx1", full_name="Менеджер Индекса")
        for i, title in enumerate(TEXTS):
            email = EMAILS[i % len(EMAILS)]
            c = f.contact(s, title, "", emails=[email], responsible=m)
            f.lead(s, title, m, emails=[email])
            f.deal(s, title, m, contact_=c)
            s.add(Company(title=title, responsible_id=m.id, department_id=m.department_id,
                          search_text=search_text(title, email)))
        actor = auth.actor_for(m)
    return db, actor


def _substring(s: Session, model, q: str) -> set[int]:
    """The reference: a plain substring test in Python over every row."""
    needle = fold(q.strip())
    return {i for i, st in s.execute(select(model.id, model.search_text)) if needle in st}


def _indexed(s: Session, model, q: str) -> set[int]:
    return set(s.execute(select(model.id).where(filters.search_condition(model, q))).scalars())


@pytest.mark.parametrize("way", ["ids", "fts", "scan"])
def test_the_index_finds_what_a_substring_scan_finds(items, way, monkeypatch):
    """Every way a statement may take (SQLite): the ids the FTS table gave beforehand (a
    Session), the FTS table inside the statement (a bare Connection: nothing resolves it),
    a scan (more candidates than the limit) — and PostgreSQL's index."""
    db, _ = items
    if way == "scan":
        monkeypatch.setattr(filters, "INDEX_FLOOR", 0)
        monkeypatch.setattr(filters, "INDEX_SHARE", 10**9)
    with session_scope(db, write=False) as s:
        for entity, model in MODELS.items():
            hits = 0
            for q in QUERIES:
                expected = _substring(s, model, q)
                stmt = select(model.id).where(filters.search_condition(model, q))
                found = s.connection().execute(stmt) if way == "fts" else s.execute(stmt)
                assert set(found.scalars()) == expected, (entity, q)
                hits += bool(expected)
            assert hits > len(QUERIES) // 2, entity  # the queries do find things


def test_lists_and_the_top_search_answer_as_without_the_index(items, monkeypatch):
    """The whole free-text condition (names, e-mail prefixes, phones, ids) under the access
    scope: the same rows with the index as with the plain scan it replaces."""
    db, actor = items

    def answers():
        with session_scope(db, write=False) as s:
            lists = {(e, q): listing.matching_ids(s, actor, e, {"q": q}) for e in MODELS for q in QUERIES}
            top = {q: search.search(s, actor, q, per_group=20) for q in QUERIES}
        return lists, top

    indexed = answers()
    monkeypatch.setattr(filters, "INDEX_MIN", 10**6)  # every query scans, as before the index
    scanned = answers()
    assert indexed == scanned
    assert sum(bool(ids) for ids in indexed[0].values()) > len(QUERIES) * 2


def test_hostile_input_is_text(items):
    """FTS5 syntax, unbalanced quotes, wildcards, control characters: no error, literal meaning."""
    db, actor = items
    with session_scope(db, write=False) as s:
        for q in ['"', '" OR "', 'NEAR("a" "b")', "a* OR b*", "\"'\\%_", "deal_fts", "'; DROP TABLE deal; --",
                  "x\ty", "аб\u0301в", "😀 эмодзи", "\x00abc", "abc\ud800def"]:
            for model in MODELS.values():
                assert _indexed(s, model, search.clean(q)) == _substring(s, model, search.clean(q)), q
            search.search(s, actor, q)
        assert s.execute(select(func.count()).select_from(Deal)).scalar_one() == len(TEXTS)
    with session_scope(db, write=False) as s:
        assert _indexed(s, Deal, "'; drop table deal; --") == set()
        assert _indexed(s, Company, "pct%user@") == _substring(s, Company, "pct%user@") != set()


def test_rows_created_renamed_and_deleted_are_followed(db):
    """Rows written after the migration: found when created, under the new name only after a
    rename, not at all after a delete (the SQLite triggers; the index of PostgreSQL)."""
    with session_scope(db) as s:
        m = f.user(s, "idx2")
        c = f.contact(s, "Щукина", "Алёна", emails=["shchukina@example.ru"], responsible=m)
        d = f.deal(s, "Охрана труда — Щукина", m, contact_=c)
        ld = f.lead(s, "Заявка", m, last="Щукина", first="Алёна")
        ids = {"contact": c.id, "deal": d.id, "lead": ld.id}
    with session_scope(db, write=False) as s:
        for entity, i in ids.items():
            assert _indexed(s, MODELS[entity], "щукин") == {i}, entity
            assert _indexed(s, MODELS[entity], "ЩУКИНА АЛЕНА") == {i}, entity  # the deal: its contact
    with session_scope(db) as s:
        for entity, i in ids.items():
            item = s.get(MODELS[entity], i)
            item.search_text = search_text("Кузьмина Ольга")
            s.add(item)
    with session_scope(db, write=False) as s:
        for entity, i in ids.items():
            assert _indexed(s, MODELS[entity], "щукин") == set(), entity
            assert _indexed(s, MODELS[entity], "кузьмин") == {i}, entity
    with session_scope(db) as s:  # a change of another column keeps the row findable
        item = s.get(Deal, ids["deal"])
        item.amount = 5
        s.add(item)
    with session_scope(db, write=False) as s:
        assert _indexed(s, Deal, "кузьмин") == {ids["deal"]}
    with session_scope(db) as s:
        s.delete(s.get(Deal, ids["deal"]))
        s.delete(s.get(Lead, ids["lead"]))
    with session_scope(db, write=False) as s:
        assert _indexed(s, Deal, "кузьмин") == set() and _indexed(s, Lead, "кузьмин") == set()
        assert _indexed(s, Contact, "кузьмин") == {ids["contact"]}
    _fts_consistent(db)


def _fts_consistent(db) -> None:
    """SQLite: each FTS5 table agrees with its content table (FTS5's own integrity check)."""
    engine = get_engine(db)
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as c:
        for table in MODELS:
            c.exec_driver_sql(f"INSERT INTO {table}_fts({table}_fts, rank) VALUES ('integrity-check', 1)")


def test_bulk_statements_keep_the_index(db):
    """Statements that bypass the ORM (bulk insert, UPDATE, DELETE) are followed too."""
    with session_scope(db) as s:
        m = f.user(s, "idx3")
        rows = [{"title": f"Компания {i}", "search_text": search_text(f"Компания номер {i:04d}", "bulk"),
                 "responsible_id": m.id, "department_id": m.department_id} for i in range(300)]
        s.execute(insert(Company), rows)
    with session_scope(db, write=False) as s:
        assert len(_indexed(s, Company, "номер 01")) == 100
    with session_scope(db) as s:
        s.execute(Company.__table__.update().where(Company.title.like("Компания 1%"))
                  .values(search_text=func.replace(Company.search_text, "номер", "№")))
        s.execute(Company.__table__.delete().where(Company.title.like("Компания 2%")))
    with session_scope(db, write=False) as s:
        assert _indexed(s, Company, "№ 01") == _substring(s, Company, "№ 01") != set()
        assert _indexed(s, Company, "номер 02") == set()
        assert _indexed(s, Company, "номер 0") == _substring(s, Company, "номер 0")
    _fts_consistent(db)


def test_a_batch_of_new_leads_is_indexed_at_once(db):
    """create.create_leads (an import's chunk) writes with the insert trigger standing aside
    (search_index.indexed_together) and indexes the batch itself: every lead is found; the
    switch is gone when the batch ends — also when it failed and its unit went on — so the
    next lead written one by one is indexed by the trigger again."""
    from rxcrm.services import create, search_index
    with session_scope(db) as s:
        actor = auth.actor_for(f.user(s, "idx5", role="admin"))
        made = create.create_leads(s, actor, [{"last_name": f"Пакетный{i:03d}", "first_name": "Ёжик",
                                                "emails": [f"batch{i}@mail.ru"]} for i in range(120)])
        assert all(isinstance(m, Lead) for m in made)
    with session_scope(db) as s:
        with pytest.raises(RuntimeError):
            with search_index.indexed_together(s, "lead", lambda: []):
                raise RuntimeError("a batch that failed half-way")
        create.create_lead(s, actor, last_name="Одиночкин", first_name="Семён")  # the same unit goes on
    with session_scope(db, write=False) as s:
        if s.get_bind().dialect.name == "sqlite":
            assert s.execute(text("SELECT count(*) FROM search_pause")).scalar() == 0
        assert _indexed(s, Lead, "пакетный0") == _substring(s, Lead, "пакетный0") != set()
        assert len(_indexed(s, Lead, "ежик")) == 120 and len(_indexed(s, Lead, "batch11")) == 11
        assert len(_indexed(s, Lead, "одиночкин семен")) == 1
    _fts_consistent(db)


def _plan(db, sql: str, params: dict) -> str:
    engine = get_engine(db)
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            return "\n".join(r[-1] for r in c.execute(text("EXPLAIN QUERY PLAN " + sql), params))
        return "\n".join(r[0] for r in c.execute(text("EXPLAIN " + sql), params))


def test_a_fragment_of_three_or_more_characters_uses_the_index(db):
    """EXPLAIN of what a list asks (its count and its page): for «иван» the index (SQLite: the
    FTS table gives the ids, rows are read by rowid; PostgreSQL: a bitmap scan of the trigram
    index), also when an ASCII query is OR-ed with the e-mail look-ups; a scan for «ов» (no
    trigram) and for «сделка» (every row has it: reading them by id would cost more)."""
    with session_scope(db) as s:
        actor = auth.actor_for(f.user(s, "idx4", role="admin", dept_code=None))
        st = f.stage(s, "dpo", "INTEREST")
        s.execute(insert(Contact), [{"full_name": f"Контакт {i}", "search_text": search_text(
            f"Контакт {i}", f"user{i}@example.ru")} for i in range(3000)])
        contacts = s.execute(select(Contact.id).order_by(Contact.id)).scalars().all()
        s.execute(insert(Communication), [comm_row("contact", c, "email", f"user{i}@example.ru")
                                          for i, c in enumerate(contacts)])
        rows = [{"title": f"Сделка {i}", "pipeline_id": st.pipeline_id, "stage_id": st.id, "contact_id": contacts[i],
                 "search_text": search_text(f"Сделка {i}", ("петров", "сидоров", "кузнецов")[i % 3])}
                for i in range(3000)]
        rows[7]["search_text"] = search_text("Сделка 7", "иванов")
        s.execute(insert(Deal), rows)
    engine = get_engine(db)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            # VACUUM also moves the new rows from the GIN pending list into the index
            # (autovacuum does it after inserts; the planner shuns an index with a long list)
            c.exec_driver_sql("VACUUM ANALYZE deal, contact, communication")
    for entity, q, indexed, total in (("deal", "иван", True, 1), ("deal", "ИВАНОВ", True, 1),
                                      ("contact", "user2999@", True, 1), ("deal", "ов", False, 3000),
                                      ("deal", "сделка", False, 3000)):
        statements: list[tuple[str, object]] = []

        def seen(conn, cursor, statement, params, context, executemany):
            if "search_text" in statement:
                statements.append((statement, params))

        event.listen(engine, "before_cursor_execute", seen)
        try:  # (the FTS question asked before each statement names no search_text)
            with session_scope(db, write=False) as s:
                assert listing.count(s, actor, entity, {"q": q}) == total
                listing.query_items(s, actor, entity, {"q": q})
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert len(statements) == 2
        for statement, params in statements:
            with engine.connect() as c:
                if sqlite:
                    plan = "\n".join(r[-1] for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
                    # the ids the FTS table gave drive: rows are looked up by rowid, never scanned
                    uses = ("json_each" in statement and "rowid=?" in plan
                            and re.search(rf"SCAN {entity}\b", plan) is None)
                else:
                    plan = "\n".join(r[0] for r in c.exec_driver_sql("EXPLAIN " + statement, params))
                    uses = f"ix_{entity}_search_trgm" in plan
            assert uses == indexed, (q, statement, plan)


def test_migration_down_and_up_again(db_url):
    """0011 down: no index left; up: rows written meanwhile are indexed, ё folded to е."""
    cfg = alembic_config(db_url)
    engine = get_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"

    def index_objects(c) -> set[str]:
        if sqlite:
            sql = "SELECT name FROM sqlite_master WHERE name LIKE '%\\_fts%' ESCAPE '\\'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE indexname LIKE '%%\\_search\\_trgm'"
        return {r[0] for r in c.exec_driver_sql(sql)}

    with engine.connect() as c:
        assert len(index_objects(c)) == (4 * 8 if sqlite else 4)  # tables, shadow tables, triggers
    command.downgrade(cfg, "0010")
    try:
        with engine.begin() as c:
            assert index_objects(c) == set()
            c.execute(text("INSERT INTO company (title, inn, industry, address, website, created_at, updated_at, "
                           "version, custom, search_text, comment) VALUES ('x', '', '', '', '', "
                           "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, '{}', :t, '')"),
                      [{"t": "ооо «ёлочка» артём"}, {"t": "ИП ЁЖИКОВ"}, {"t": "без буквы"}])
    finally:
        command.upgrade(cfg, "head")
    with engine.connect() as c:
        assert len(index_objects(c)) == (4 * 8 if sqlite else 4)
        assert sorted(c.exec_driver_sql("SELECT search_text FROM company").scalars()) == [
            "ИП ЕЖИКОВ", "без буквы", "ооо «елочка» артем"]
    with session_scope(db_url, write=False) as s:
        assert len(_indexed(s, Company, "елочк")) == 1 and len(_indexed(s, Company, "ёлочка» арт")) == 1
    _fts_consistent(db_url)


def test_every_indexed_table_keeps_its_triggers(db_url):
    """A later batch migration that rebuilds lead/deal/contact/company drops its triggers on
    SQLite (and the FTS table would silently go stale): after all migrations, each is there."""
    engine = get_engine(db_url)
    if engine.dialect.name != "sqlite":
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").scalar() == 1
        return
    with engine.connect() as c:
        triggers = {(r[0], r[1]) for r in c.exec_driver_sql(
            "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")}
    for table in MODELS:
        assert {(table, f"{table}_fts_{x}") for x in ("ai", "ad", "au")} <= triggers, table
